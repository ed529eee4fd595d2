//! The broker goes away mid-stream (`rabbitmqctl stop_app`) and comes back: the
//! `amqp://` publisher keeps samples, reconnects by itself, and the consumer receives
//! every sample produced, once, with no drop (`policy=queue`).
//!
//! With the disk spool (on by default under the data directory), an agent SIGKILLed
//! during the outage loses nothing either: the next one replays what was not
//! confirmed.
//!
//! Its own test binary: stopping the broker would disturb other tests running beside it.

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use ceilo_plugin_api::Sample;
use ceilo_tests::*;

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tests here stop the shared broker: one at a time.
static BROKER: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn nothing_is_lost_when_the_broker_restarts() {
    let _broker = BROKER.lock().unwrap_or_else(|p| p.into_inner());
    let Some(url) = rabbitmq() else { return };
    let plugins = agent_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let queue = unique("metering.sample.outage");
    let amqp = format!(
        "{url}?exchange={}&queue={queue}&policy=queue&flush_timeout=1",
        unique("ceilo-outage")
    );
    let pipeline = load_pipeline(data.path(), &amqp);
    let agent = spawn_service(
        "agent",
        &pipeline,
        plugins.path(),
        data.path(),
        &[],
        &[("CEILO_TELEMETRY_SECRET", "k")],
    );
    std::thread::sleep(Duration::from_millis(1500));
    rabbitmqctl(&["stop_app"]);
    std::thread::sleep(Duration::from_secs(3));
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
    std::thread::sleep(Duration::from_secs(3));
    let log = stop_ceilo(agent, Duration::from_secs(30));

    let sent: Vec<Sample> = read_samples(&data.path().join("produced.json"));
    let got = drain_samples(&url, &queue);
    let ids: Vec<&str> = got
        .iter()
        .map(|v| v["message_id"].as_str().unwrap())
        .collect();
    let got_ids: HashSet<&str> = ids.iter().copied().collect();
    let sent_ids: HashSet<&str> = sent.iter().map(|s| s.message_id()).collect();
    assert!(
        sent.len() >= 15,
        "the agent kept polling through the outage: {}",
        sent.len()
    );
    let missing: Vec<_> = sent_ids.difference(&got_ids).collect();
    assert!(
        missing.is_empty(),
        "{} of {} samples never arrived\n{log}",
        missing.len(),
        sent.len()
    );
    // Delivery is at least once: a batch whose confirm was lost with the connection is
    // sent again, and the collector's unique index on message_id removes the copy.
    assert!(ids.len() >= got_ids.len());
    assert!(
        log.contains("lost") || log.contains("cannot reach"),
        "the outage is visible in the log:\n{log}"
    );
    assert!(log.contains("connected to"), "{log}");
    assert!(
        !log.contains("dropped"),
        "policy=queue drops nothing:\n{log}"
    );
}

#[test]
fn an_agent_killed_during_an_outage_loses_nothing_with_the_spool() {
    let _broker = BROKER.lock().unwrap_or_else(|p| p.into_inner());
    let Some(url) = rabbitmq() else { return };
    let plugins = agent_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let queue = unique("metering.sample.spool");
    let amqp = format!(
        "{url}?exchange={}&queue={queue}&policy=queue&flush_timeout=1",
        unique("ceilo-spool")
    );
    let pipeline = load_pipeline(data.path(), &amqp);
    let start = || {
        spawn_service(
            "agent",
            &pipeline,
            plugins.path(),
            data.path(),
            &[],
            &[("CEILO_TELEMETRY_SECRET", "k")],
        )
    };
    let mut first = start();
    std::thread::sleep(Duration::from_millis(1500));
    rabbitmqctl(&["stop_app"]);
    std::thread::sleep(Duration::from_secs(4));
    // Killed with samples that only the spool holds.
    first.kill().expect("kill");
    let _ = first.wait();
    let during_outage = read_samples(&data.path().join("produced.json")).len();
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
    let second = start();
    std::thread::sleep(Duration::from_secs(4));
    let log = stop_ceilo(second, Duration::from_secs(30));

    let sent: Vec<Sample> = read_samples(&data.path().join("produced.json"));
    let got = drain_samples(&url, &queue);
    let got_ids: HashSet<&str> = got
        .iter()
        .filter_map(|v| v["message_id"].as_str())
        .collect();
    assert!(
        during_outage >= 9,
        "the first agent polled through the outage: {during_outage}"
    );
    let missing = sent
        .iter()
        .filter(|s| !got_ids.contains(s.message_id()))
        .count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} samples never arrived\n{log}",
        sent.len()
    );
    assert!(log.contains("replayed from"), "{log}");
    // All confirmed: the spool is emptied.
    let spooled: u64 = std::fs::read_dir(data.path().join("amqp-spool"))
        .expect("spool dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "spool"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    assert_eq!(spooled, 0, "confirmed samples are not kept");
}
