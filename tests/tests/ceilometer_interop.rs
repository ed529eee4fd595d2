//! Mixed fleets, both ways, against Ceilometer's own code (PyPI `ceilometer` with
//! oslo.messaging in a virtual environment, `CEILO_CEILOMETER_PYTHON`, set up by
//! tests/run.sh) over the test RabbitMQ: samples Ceilometer's SampleNotifierPublisher
//! sends are verified and stored by `ceilo collector` (a forged one refused), so are
//! the events its EventNotifierPublisher sends, and what
//! ceilo's `notifier://` sends is unwrapped by oslo.messaging and verified by
//! Ceilometer's verify_signature.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ceilo_tests::*;

const SECRET: &str = "mixed-fleet-secret";

/// The Python of the virtual environment holding Ceilometer; `None` (skip) when not
/// set up, a failure under `CEILO_REQUIRE_SERVICES=1`.
fn ceilometer_python() -> Option<PathBuf> {
    match std::env::var_os("CEILO_CEILOMETER_PYTHON").map(PathBuf::from) {
        Some(p) if p.exists() => Some(p),
        _ if std::env::var("CEILO_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("CEILO_CEILOMETER_PYTHON (Ceilometer from PyPI in a virtual environment) is not set up and CEILO_REQUIRE_SERVICES=1: tests/run.sh installs it")
        }
        _ => {
            eprintln!(
                "skipped: CEILO_CEILOMETER_PYTHON is not set (tests/run.sh installs Ceilometer)"
            );
            None
        }
    }
}

fn script(name: &str) -> PathBuf {
    workspace_root().join("tests/interop").join(name)
}

#[test]
fn ceilometers_notifier_publisher_feeds_ceilo_collector_and_forgeries_are_refused() {
    let Some(python) = ceilometer_python() else {
        return;
    };
    let Some(amqp) = rabbitmq() else { return };
    let Some(mongo) = mongodb() else { return };
    let queue = unique("ceilo.from-ceilometer");
    // Ceilometer's exchange and routing key; a queue of ceilo's own beside the one
    // oslo.messaging declares for Ceilometer's consumers.
    let collector = spawn_ceilo(
        &[
            "collector",
            "--amqp-url",
            &amqp,
            "--storage",
            &mongo,
            "--exchange",
            "ceilometer",
            "--routing-key",
            "metering.sample",
            "--queue",
            &queue,
        ],
        &[("CEILO_TELEMETRY_SECRET", SECRET)],
    );
    std::thread::sleep(Duration::from_secs(3));
    let out = Command::new(&python)
        .arg(script("ceilometer_publish.py"))
        .args(["127.0.0.1:5672", SECRET, "5", "1"])
        .stderr(Stdio::inherit())
        .output()
        .expect("run Ceilometer's publisher");
    assert!(out.status.success(), "Ceilometer's publisher failed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ids = |kind: &str| -> HashSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(kind))
            .map(|id| id.trim().to_owned())
            .collect()
    };
    let (good, forged) = (ids("good "), ids("forged "));
    assert_eq!((good.len(), forged.len()), (5, 1), "{text}");

    let t = Instant::now();
    let mut stored: HashSet<String> = HashSet::new();
    while t.elapsed() < Duration::from_secs(20) && !good.is_subset(&stored) {
        std::thread::sleep(Duration::from_millis(250));
        stored = stored_message_ids(&mongo).into_iter().collect();
    }
    let log = stop_ceilo(collector, Duration::from_secs(15));
    let ids: Vec<String> = stored_message_ids(&mongo);
    assert_eq!(
        ids.len(),
        5,
        "each of Ceilometer's samples stored once: {ids:?}\n{log}"
    );
    assert!(good.is_subset(&stored), "{stored:?}\n{log}");
    assert!(
        stored.is_disjoint(&forged),
        "the forged sample was stored\n{log}"
    );
    assert!(log.contains("signature does not verify"), "{log}");
}

#[test]
fn ceilo_notifier_output_is_read_and_verified_by_ceilometers_own_code() {
    let Some(python) = ceilometer_python() else {
        return;
    };
    let Some(amqp) = rabbitmq() else { return };
    let topic = unique("ceilo-interop");
    let plugins = agent_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let pipeline = data.path().join("pipeline.yaml");
    let broker = amqp.trim_start_matches("amqp://");
    std::fs::write(
        &pipeline,
        format!(
            "sources:\n  - name: s\n    interval: 1\n    meters: [\"load.*\", \"memory.*\"]\n    sinks: [k]\n\
             sinks:\n  - name: k\n    publishers: [\"notifier://{broker}?topic={topic}&linger_ms=10\", \"file:produced.json\"]\n"
        ),
    )
    .unwrap();
    let agent = spawn_service(
        "agent",
        &pipeline,
        plugins.path(),
        data.path(),
        &[],
        &[("CEILO_TELEMETRY_SECRET", SECRET)],
    );
    std::thread::sleep(Duration::from_millis(2500));
    let log = stop_ceilo(agent, Duration::from_secs(20));
    let produced = read_samples(&data.path().join("produced.json")).len();
    assert!(produced >= 5, "{produced} samples produced\n{log}");
    let bodies = drain_queue(&amqp, &format!("{topic}.sample"));
    let mut input = String::new();
    for (_, body) in &bodies {
        input.push_str(&String::from_utf8_lossy(body));
        input.push('\n');
    }
    let run = |secret: &str| {
        let mut child = Command::new(&python)
            .arg(script("ceilometer_verify.py"))
            .arg(secret)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run Ceilometer's verifier");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write");
        child.wait_with_output().expect("wait")
    };
    let out = run(SECRET);
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}\n{log}");
    assert_eq!(
        said.lines().find(|l| l.starts_with("verified")),
        Some(format!("verified {produced}").as_str()),
        "every sample the agent produced reached Ceilometer verified: {said}"
    );
    let out = run("another secret");
    assert!(
        !out.status.success(),
        "a wrong secret must fail verification"
    );
}

/// Events too: what Ceilometer's EventNotifierPublisher sends (its own signing, its
/// own envelope) is verified and stored by `ceilo collector`, typed traits intact; an
/// event signed with another secret is refused.
#[test]
fn ceilometers_event_notifier_feeds_ceilo_collector_and_forgeries_are_refused() {
    let Some(python) = ceilometer_python() else {
        return;
    };
    let Some(amqp) = rabbitmq() else { return };
    let topic = unique("event-from-ceilometer");
    let store = tempfile::tempdir().expect("tempdir");
    let collector = spawn_ceilo(
        &[
            "collector",
            "--amqp-url",
            &amqp,
            "--queue",
            &unique("samples"),
            "--event-queue",
            &format!("{topic}.sample"),
            "--data-dir",
            store.path().to_str().expect("utf-8"),
        ],
        &[("CEILO_TELEMETRY_SECRET", SECRET)],
    );
    std::thread::sleep(Duration::from_secs(3));
    let out = Command::new(&python)
        .arg(script("ceilometer_publish_events.py"))
        .args(["127.0.0.1:5672", &topic, SECRET, "3", "1"])
        .stderr(Stdio::inherit())
        .output()
        .expect("run Ceilometer's event publisher");
    assert!(out.status.success(), "Ceilometer's event publisher failed");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ids = |kind: &str| -> HashSet<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(kind))
            .map(|id| id.trim().to_owned())
            .collect()
    };
    let (good, forged) = (ids("good "), ids("forged "));
    assert_eq!((good.len(), forged.len()), (3, 1), "{text}");

    let url = format!("sqlite://{}/ceilo.db", store.path().display());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let read = || {
        if !store.path().join("ceilo.db").is_file() {
            return Vec::new();
        }
        rt.block_on(async {
            let s = ceilo_host::storage::open(
                Some(&url),
                store.path(),
                ceilo_host::storage::Retention::default(),
            )
            .await
            .expect("open store");
            s.events(&ceilo_host::storage::EventQuery::default())
                .await
                .expect("events")
        })
    };
    let t = Instant::now();
    let mut stored = Vec::new();
    while t.elapsed() < Duration::from_secs(20) && stored.len() < 3 {
        std::thread::sleep(Duration::from_millis(250));
        stored = read();
    }
    let log = stop_ceilo(collector, Duration::from_secs(15));
    let stored_ids: HashSet<String> = stored.iter().map(|e| e.message_id.clone()).collect();
    assert_eq!(
        stored_ids, good,
        "each good event once, the forged one not\n{log}"
    );
    assert!(log.contains("signature does not verify"), "{log}");
    let first = stored
        .iter()
        .find(|e| {
            e.trait_named("instance_id").map(|t| &t.value)
                == Some(&ceilo_host::events::TraitValue::Text("vm-1".into()))
        })
        .expect("vm-1's event");
    use ceilo_host::events::TraitValue;
    assert_eq!(
        first.trait_named("memory_mb").map(|t| &t.value),
        Some(&TraitValue::Int(1024))
    );
    assert_eq!(
        first.trait_named("load").map(|t| &t.value),
        Some(&TraitValue::Float(1.5))
    );
    assert_eq!(
        first.trait_named("launched_at").map(|t| &t.value),
        Some(&TraitValue::Datetime(
            chrono::DateTime::parse_from_rfc3339("2026-12-02T17:59:00.000001Z")
                .expect("time")
                .with_timezone(&chrono::Utc)
        ))
    );
    assert_eq!(
        first.generated,
        chrono::DateTime::parse_from_rfc3339("2026-12-02T18:00:01.250000Z")
            .expect("time")
            .with_timezone(&chrono::Utc)
    );
}
