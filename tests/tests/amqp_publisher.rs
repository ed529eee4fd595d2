//! agent → `amqp://` publisher → RabbitMQ, against a real broker: every sample arrives
//! once, signed, and the signature verifies; a tampered sample does not.

use std::collections::HashSet;
use std::time::Duration;

use ceilo_plugin_api::signing;
use ceilo_plugin_api::Sample;
use ceilo_tests::*;

#[test]
fn every_sample_arrives_once_signed() {
    let Some(url) = rabbitmq() else { return };
    let plugins = agent_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let (exchange, queue) = (unique("ceilo-test"), unique("metering.sample.test"));
    let amqp = format!("{url}?exchange={exchange}&queue={queue}&batch_size=7&linger_ms=10");
    let pipeline = data.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "sources:\n  - name: s\n    interval: 1\n    meters: [\"load.*\", \"memory.*\"]\n    sinks: [k]\n\
             sinks:\n  - name: k\n    publishers: [\"{amqp}\", \"file:produced.json\"]\n"
        ),
    )
    .unwrap();
    let agent = spawn_service(
        "agent",
        &pipeline,
        plugins.path(),
        data.path(),
        &[],
        &[("CEILO_TELEMETRY_SECRET", "s3cret")],
    );
    std::thread::sleep(Duration::from_millis(2500));
    let log = stop_ceilo(agent, Duration::from_secs(20));
    assert!(
        !log.contains("s3cret") && !log.contains("guest:guest"),
        "secrets never logged:\n{log}"
    );

    let sent = read_samples(&data.path().join("produced.json"));
    assert!(
        sent.len() >= 10,
        "several cycles of 5 meters: {}\n{log}",
        sent.len()
    );
    let got = drain_samples(&url, &queue);
    let ids: Vec<&str> = got
        .iter()
        .map(|v| v["message_id"].as_str().unwrap())
        .collect();
    let unique_ids: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique_ids.len(), ids.len(), "no sample arrives twice");
    let sent_ids: HashSet<&str> = sent.iter().map(|s| s.message_id()).collect();
    assert_eq!(unique_ids, sent_ids, "every produced sample arrived");

    for v in &got {
        assert!(signing::verify(v, "s3cret"), "signature verifies: {v}");
        let back: Sample = serde_json::from_value(v.clone()).expect("a sample");
        assert!(back.name().starts_with("load.") || back.name().starts_with("memory."));
    }
    let mut tampered = got[0].clone();
    tampered["volume"] = serde_json::json!(tampered["volume"].as_f64().unwrap() + 1.0);
    assert!(
        !signing::verify(&tampered, "s3cret"),
        "a tampered sample fails verification"
    );
    assert!(!signing::verify(&got[0], "wrong secret"));
}

#[test]
fn an_unroutable_publish_is_a_failure_not_a_success() {
    let Some(url) = rabbitmq() else { return };
    let plugins = plugin_dir(&[(&library("ceilo_plugin_amqp"), "libceilo_plugin_amqp.so")]);
    let reg =
        ceilo_host::loader::PluginRegistry::scan(plugins.path(), &Default::default()).unwrap();
    // No queue declared and none bound: the broker returns every message.
    let amqp = format!(
        "{url}?exchange={}&queue=&flush_timeout=2",
        unique("ceilo-unroutable")
    );
    let mut p = reg
        .create_publisher(
            "amqp",
            &serde_json::json!({ "url": amqp }),
            ceilo_plugin_api::Context::new("amqp", "test"),
        )
        .unwrap();
    let s = Sample::new("m", ceilo_plugin_api::SampleType::Gauge, "u", 1.0, "r");
    p.publish(&[s]).unwrap();
    let err = p.flush().unwrap_err();
    assert!(
        err.to_string().contains("1 sample(s) still waiting"),
        "{err}"
    );
    let stats = p.stats().unwrap();
    let get = |n: &str| stats.iter().find(|c| c.name() == n).map(|c| c.value());
    assert_eq!(get("published"), Some(0));
    assert_eq!(get("buffered"), Some(1), "kept, not lost");
    assert!(get("retried").unwrap_or(0) >= 1);
}
