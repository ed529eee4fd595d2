//! `ceilo notification` against a real RabbitMQ: Nova, Cinder and Glance notification
//! fixtures (`tests/notifications/`) published on a control exchange become the
//! samples the `compute` handler produces; malformed messages land in the dead-letter
//! queue and the agent keeps consuming.

use std::collections::BTreeMap;
use std::time::Duration;

use ceilo_plugin_api::Sample;
use ceilo_tests::*;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join("tests/notifications").join(name)).expect("fixture")
}

#[test]
fn notifications_become_samples_and_malformed_ones_are_dead_lettered() {
    let Some(url) = rabbitmq() else { return };
    let plugins = notification_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let pipeline = data.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        "sources:\n  - name: notifications\n    meters: [\"instance\", \"memory\", \"vcpus\", \"disk.*\"]\n    sinks: [k]\n\
         sinks:\n  - name: k\n    publishers: [\"file:samples.json\"]\n",
    )
    .unwrap();
    let (exchange, topic) = (unique("nova-test"), unique("notifications.info"));
    let agent = spawn_service(
        "notification",
        &pipeline,
        plugins.path(),
        data.path(),
        &["--exchange", &exchange, "--topic", &topic],
        &[("CEILO_AMQP_URL", url.as_str())],
    );
    wait_for_consumer(&url, &format!("ceilo.{topic}"), Duration::from_secs(30));

    let exists = fixture("nova_instance_exists.json");
    let envelope = serde_json::json!({
        "oslo.version": "2.0",
        "oslo.message": String::from_utf8(exists).unwrap(),
    });
    publish_notifications(
        &url,
        &exchange,
        &topic,
        vec![
            fixture("nova_instance_create_end.json"),
            b"this is not JSON".to_vec(),
            envelope.to_string().into_bytes(),
            br#"{"payload": {"instance_id": "x"}}"#.to_vec(),
            fixture("cinder_volume_create_end.json"),
            fixture("glance_image_upload.json"),
            fixture("nova_instance_delete_end.json"),
        ],
    );
    // Five meters from each of the three Nova notifications, or what came in time.
    wait_for_samples(
        &data.path().join("samples.json"),
        15,
        Duration::from_secs(30),
    );
    let log = stop_ceilo(agent, Duration::from_secs(20));

    let samples: Vec<Sample> = read_samples(&data.path().join("samples.json"));
    let mut per_instance: BTreeMap<&str, Vec<(&str, f64)>> = BTreeMap::new();
    for s in &samples {
        per_instance
            .entry(s.resource_id())
            .or_default()
            .push((s.name(), s.volume()));
    }
    let created = "9f9d01b9-4a58-4271-9e27-398b21ab20d1";
    let existing = "3a513875-95c9-4012-a3e7-f90c678854e5";
    assert_eq!(
        per_instance.len(),
        2,
        "only Nova instances produce samples: {per_instance:?}\n{log}"
    );
    assert_eq!(
        per_instance[created].len(),
        10,
        "create.end and delete.end, 5 meters each"
    );
    assert!(per_instance[existing].contains(&("memory", 2048.0)));
    assert!(per_instance[existing].contains(&("vcpus", 2.0)));
    let s = samples
        .iter()
        .find(|s| s.resource_id() == existing)
        .unwrap();
    assert_eq!(s.project_id(), Some("7c150a59fe714e6f9263774af9688f0e"));
    // A list-shaped `metadata` stays as it is, as Ceilometer keeps it; the host is
    // the notification's publisher.
    assert_eq!(s.metadata_value("user_metadata.stack"), None);
    assert!(
        s.metadata_value("metadata").is_some_and(|m| m.is_array()),
        "list-shaped metadata kept: {:?}",
        s.resource_metadata()
    );
    assert!(
        s.metadata_value("host")
            .is_some_and(|h| h.as_str().is_some_and(|h| h.starts_with("compute"))),
        "{:?}",
        s.resource_metadata()
    );

    let dead = drain_queue(&url, &format!("ceilo.{topic}.dead"));
    let ids: Vec<Option<String>> = dead.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        ids,
        [Some("fixture-1".to_owned()), Some("fixture-3".to_owned())],
        "the two malformed messages"
    );
    assert!(
        log.contains("malformed notification rejected")
            && log.contains("fixture-1")
            && log.contains("not JSON"),
        "{log}"
    );
    let _ = drain_queue(&url, &format!("ceilo.{topic}"));
}

#[test]
fn the_declarative_handler_runs_ceilometer_meter_definitions() {
    let Some(url) = rabbitmq() else { return };
    let plugins = notification_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let pipeline = data.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        "sources:\n  - name: n\n    meters: [\"volume.size\", \"image.size\"]\n    sinks: [k]\n\
         sinks:\n  - name: k\n    publishers: [\"file:samples.json\"]\n",
    )
    .unwrap();
    let handlers = data.path().join("handlers.yaml");
    let meters = workspace_root().join("tests/notifications/ceilometer_meters.yaml");
    std::fs::write(
        &handlers,
        format!("declarative:\n  definitions_file: {}\n", meters.display()),
    )
    .unwrap();
    let (exchange, topic) = (unique("cinder-test"), unique("notifications.info"));
    let (p, d, h) = (
        pipeline.to_str().unwrap(),
        plugins.path().to_str().unwrap(),
        handlers.to_str().unwrap(),
    );
    let agent = spawn_service(
        "notification",
        &pipeline,
        plugins.path(),
        data.path(),
        &[
            "--handler-config",
            h,
            "--exchange",
            &exchange,
            "--topic",
            &topic,
        ],
        &[("CEILO_AMQP_URL", url.as_str())],
    );
    wait_for_consumer(&url, &format!("ceilo.{topic}"), Duration::from_secs(30));
    publish_notifications(
        &url,
        &exchange,
        &topic,
        vec![
            fixture("cinder_volume_create_end.json"),
            fixture("glance_image_upload.json"),
        ],
    );
    // Both samples, or what came within the deadline (the assertion shows which).
    wait_for_samples(
        &data.path().join("samples.json"),
        2,
        Duration::from_secs(30),
    );
    let log = stop_ceilo(agent, Duration::from_secs(20));
    let samples: Vec<Sample> = read_samples(&data.path().join("samples.json"));
    let got: Vec<(&str, f64, &str)> = samples
        .iter()
        .map(|s| (s.name(), s.volume(), s.resource_id()))
        .collect();
    assert_eq!(
        got,
        [
            ("volume.size", 2.0, "3b761164-84b4-4eb3-8fcb-1974c641d6ef"),
            (
                "image.size",
                13147648.0,
                "fda54a44-3f96-40bf-ab07-0a4ce9e1761d"
            )
        ],
        "{log}"
    );
    let _ = drain_queue(&url, &format!("ceilo.{topic}"));
    let _ = drain_queue(&url, &format!("ceilo.{topic}.dead"));

    // `ceilo validate` reports a bad definition, naming it.
    let bad = data.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "declarative:\n  definitions:\n    metric:\n      - {name: broken, event_type: x, type: rate, unit: u, volume: 1, resource_id: r}\n",
    )
    .unwrap();
    let (code, _, err) = run_ceilo(&[
        "validate",
        "--pipeline",
        p,
        "--plugin-dir",
        d,
        "--handler-config",
        bad.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("bad.yaml")
            && err.contains("\"broken\"")
            && err.contains("invalid type `rate`"),
        "{err}"
    );
    let (code, out, err) = run_ceilo(&[
        "validate",
        "--pipeline",
        p,
        "--plugin-dir",
        d,
        "--handler-config",
        h,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("notification handler declarative: ok"),
        "{out}"
    );
}
