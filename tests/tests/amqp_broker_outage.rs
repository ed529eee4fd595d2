//! The broker goes away mid-stream (`rabbitmqctl stop_app`) and comes back: the
//! `amqp://` publisher keeps samples, reconnects by itself, and the consumer receives
//! every sample produced, once, with no drop (`policy=queue`).
//!
//! With the disk spool (on by default under the data directory), an agent SIGKILLed
//! during the outage loses nothing either: the next one replays what was not
//! confirmed.
//!
//! One test puts every fault into one stream, through two collectors into both stores.
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

/// A collector on its own exchange and queue, storing into `storage`.
fn collector(amqp: &str, storage: &str, exchange: &str, queue: &str) -> std::process::Child {
    spawn_ceilo(
        &[
            "collector",
            "--amqp-url",
            amqp,
            "--storage",
            storage,
            "--exchange",
            exchange,
            "--queue",
            queue,
        ],
        &[("CEILO_TELEMETRY_SECRET", "k")],
    )
}

fn sigkill(mut child: std::process::Child) {
    child.kill().expect("SIGKILL");
    let _ = child.wait();
}

/// Every fault at once, counted by message id: agent → RabbitMQ → two collectors, one
/// into MongoDB (SecantusDB of the test's own), one into the embedded store. The
/// broker is stopped and started, the agent SIGKILLed during that outage (its spool
/// on), both collectors SIGKILLed mid-stream, and the MongoDB server SIGKILLed and
/// started again. (The embedded store lives in its collector: the collector's kill is
/// its database's.) Nothing the agents produced may be missing from either store, and
/// no sample may be stored twice.
#[test]
fn every_fault_in_one_stream_loses_and_duplicates_nothing_in_either_store() {
    let _broker = BROKER.lock().unwrap_or_else(|p| p.into_inner());
    let Some(url) = rabbitmq() else { return };
    let Some(program) = secantusd() else { return };
    let mut mongo_server = OwnMongo::start(program);
    let mongo = mongo_server.url("faults");
    let embedded_dir = tempfile::tempdir().unwrap();
    let embedded = format!("sqlite://{}/faults.db", embedded_dir.path().display());
    let (mongo_ex, mongo_q) = (unique("ceilo-faults-m"), unique("metering.sample.fm"));
    let (emb_ex, emb_q) = (unique("ceilo-faults-e"), unique("metering.sample.fe"));

    let plugins = agent_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let publisher = |ex: &str, q: &str| {
        format!(
            "{url}?exchange={ex}&queue={q}&policy=queue&flush_timeout=1&batch_size=5&linger_ms=10"
        )
    };
    let pipeline = data.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!(
            "sources:\n  - name: s\n    interval: 1\n    meters: [\"load.*\", \"memory.*\"]\n    sinks: [k]\n\
             sinks:\n  - name: k\n    publishers: [\"{}\", \"{}\", \"file:produced.json\"]\n",
            publisher(&mongo_ex, &mongo_q),
            publisher(&emb_ex, &emb_q)
        ),
    )
    .unwrap();
    let agent = || {
        spawn_service(
            "agent",
            &pipeline,
            plugins.path(),
            data.path(),
            &[],
            &[("CEILO_TELEMETRY_SECRET", "k")],
        )
    };
    let pause = |s: f64| std::thread::sleep(Duration::from_secs_f64(s));
    let mut logs = String::new();

    let c_mongo = collector(&url, &mongo, &mongo_ex, &mongo_q);
    let c_emb = collector(&url, &embedded, &emb_ex, &emb_q);
    let first_agent = agent();
    pause(2.5);

    // 1. The broker goes away; the agent is SIGKILLed with samples only its spool holds.
    rabbitmqctl(&["stop_app"]);
    pause(3.0);
    sigkill(first_agent);
    let second_agent = agent();
    pause(1.5);
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
    pause(3.0);

    // 2. Both collectors SIGKILLed mid-stream, then started again.
    sigkill(c_mongo);
    sigkill(c_emb);
    pause(1.5);
    let c_mongo = collector(&url, &mongo, &mongo_ex, &mongo_q);
    let c_emb = collector(&url, &embedded, &emb_ex, &emb_q);
    pause(2.0);

    // 3. The database SIGKILLed while samples keep coming, then started again.
    mongo_server.kill();
    pause(5.0);
    mongo_server.resume();
    pause(2.0);

    logs.push_str(&stop_ceilo(second_agent, Duration::from_secs(30)));
    let produced: HashSet<String> = read_samples(&data.path().join("produced.json"))
        .iter()
        .map(|s| s.message_id().to_owned())
        .collect();
    assert!(
        produced.len() >= 50,
        "the agents produced through every fault: {}\n{logs}",
        produced.len()
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let settled = |store: &str| loop {
        let ids = stored_message_ids(store);
        let have: HashSet<&String> = ids.iter().collect();
        if produced.iter().all(|id| have.contains(id)) || std::time::Instant::now() > deadline {
            return ids;
        }
        pause(0.5);
    };
    let in_mongo = settled(&mongo);
    let in_embedded = settled(&embedded);
    pause(1.0);
    logs.push_str(&stop_ceilo(c_mongo, Duration::from_secs(30)));
    logs.push_str(&stop_ceilo(c_emb, Duration::from_secs(30)));
    let (in_mongo_after, in_embedded_after) =
        (stored_message_ids(&mongo), stored_message_ids(&embedded));
    assert_eq!(
        in_mongo.len(),
        in_mongo_after.len(),
        "nothing arrives later"
    );
    assert_eq!(
        in_embedded.len(),
        in_embedded_after.len(),
        "nothing arrives later"
    );

    for (store, ids) in [
        ("MongoDB", &in_mongo_after),
        ("embedded", &in_embedded_after),
    ] {
        let unique_ids: HashSet<&String> = ids.iter().collect();
        assert_eq!(
            unique_ids.len(),
            ids.len(),
            "{store}: a sample was stored twice\n{logs}"
        );
        let missing = produced
            .iter()
            .filter(|id| !unique_ids.contains(id))
            .count();
        assert_eq!(
            missing,
            0,
            "{store}: {missing} of {} produced samples were lost\n{logs}",
            produced.len()
        );
        // The killed agent may have spooled (and so delivered) its last samples before
        // its `file:` output wrote them: at most that one cycle is stored unlisted.
        let unlisted = ids.iter().filter(|id| !produced.contains(*id)).count();
        assert!(
            unlisted <= 10,
            "{store}: {unlisted} stored samples were never produced\n{logs}"
        );
    }
    assert!(
        logs.contains("replayed from"),
        "the spool was replayed\n{logs}"
    );
}
