//! The collector against real parts: RabbitMQ, MongoDB-wire (SecantusDB), the `ceilo`
//! binary. Every sample produced is stored exactly once — through an agent, through a
//! SIGKILLed collector, through a database outage — and a forged one never is.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ceilo_plugin_api::{signing, Sample, SampleType};
use ceilo_tests::*;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, ExchangeKind};

const SECRET: &str = "collector-test-secret";

/// A private exchange/queue pair per test (the collector declares the same).
struct Topology {
    exchange: String,
    queue: String,
}

impl Topology {
    fn new() -> Topology {
        Topology {
            exchange: unique("ceilo-ct"),
            queue: unique("metering.sample.ct"),
        }
    }
    fn collector_args<'a>(&'a self, amqp: &'a str, storage: &'a str) -> Vec<&'a str> {
        vec![
            "collector",
            "--amqp-url",
            amqp,
            "--storage",
            storage,
            "--exchange",
            &self.exchange,
            "--queue",
            &self.queue,
            "--prefetch",
            "50",
        ]
    }
}

/// Publishes `messages` (each a list of samples, signed with `secret`) with confirms,
/// after declaring the topology exactly as the collector does.
fn publish(url: &str, t: &Topology, messages: &[Vec<serde_json::Value>]) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
            .await
            .expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .expect("confirms");
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.exchange_declare(
            t.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await
        .expect("exchange");
        ch.exchange_declare(
            "ceilo.dlx".into(),
            ExchangeKind::Fanout,
            durable,
            FieldTable::default(),
        )
        .await
        .expect("dlx");
        let mut args = FieldTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("ceilo.dlx".into()),
        );
        let q = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(t.queue.as_str().into(), q, args)
            .await
            .expect("queue");
        ch.queue_bind(
            t.queue.as_str().into(),
            t.exchange.as_str().into(),
            "metering.sample".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
        let mut confirms = Vec::new();
        for m in messages {
            let body = serde_json::to_vec(m).expect("json");
            let c = ch
                .basic_publish(
                    t.exchange.as_str().into(),
                    "metering.sample".into(),
                    BasicPublishOptions::default(),
                    &body,
                    BasicProperties::default().with_delivery_mode(2),
                )
                .await
                .expect("publish");
            confirms.push(c);
        }
        for c in confirms {
            assert!(c.await.expect("confirm").is_ack());
        }
    });
}

fn signed_messages(
    n_messages: usize,
    per_message: usize,
    secret: &str,
) -> (Vec<Vec<serde_json::Value>>, HashSet<String>) {
    let mut ids = HashSet::new();
    let mut messages = Vec::new();
    for m in 0..n_messages {
        let mut msg = Vec::new();
        for i in 0..per_message {
            let s = Sample::new(
                "collector.test",
                SampleType::Gauge,
                "1",
                (m * per_message + i) as f64,
                format!("r{}", i % 7),
            )
            .with_project_id("p")
            .with_resource_metadata(serde_json::json!({"batch": m, "a.b": {"$c": i}}));
            ids.insert(s.message_id().to_owned());
            msg.push(signing::signed_value(&s, secret).expect("sign"));
        }
        messages.push(msg);
    }
    (messages, ids)
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().expect("runtime").block_on(f)
}

/// The message ids stored (the unique index must keep each once).
fn stored_ids(url: &str) -> Vec<String> {
    stored_message_ids(url)
}

fn wait_for_count(url: &str, want: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    loop {
        let ids = stored_ids(url);
        if ids.len() >= want || Instant::now() > deadline {
            return ids;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn assert_exactly_once(ids: &[String], want: &HashSet<String>, log: &str) {
    let got: HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(got.len(), ids.len(), "a sample was stored twice\n{log}");
    assert_eq!(
        got.len(),
        want.len(),
        "stored {} of {}\n{log}",
        got.len(),
        want.len()
    );
    assert_eq!(
        &got, want,
        "the stored samples are the produced ones\n{log}"
    );
}

#[test]
fn agent_to_rabbitmq_to_collector_to_mongodb_stores_each_sample_once() {
    let Some(amqp) = rabbitmq() else { return };
    let Some(mongo) = mongodb() else { return };
    let t = Topology::new();
    let plugins = agent_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let collector = spawn_ceilo(
        &t.collector_args(&amqp, &mongo),
        &[("CEILO_TELEMETRY_SECRET", SECRET)],
    );
    let pipeline = data.path().join("pipeline.yaml");
    let publisher = format!(
        "{amqp}?exchange={}&queue={}&batch_size=5&linger_ms=10",
        t.exchange, t.queue
    );
    std::fs::write(
        &pipeline,
        format!(
            "sources:\n  - name: s\n    interval: 1\n    meters: [\"load.*\", \"memory.*\"]\n    sinks: [k]\n\
             sinks:\n  - name: k\n    publishers: [\"{publisher}\", \"file:produced.json\"]\n"
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
    std::thread::sleep(Duration::from_millis(3500));
    let agent_log = stop_ceilo(agent, Duration::from_secs(20));
    let produced: HashSet<String> = read_samples(&data.path().join("produced.json"))
        .iter()
        .map(|s| s.message_id().to_owned())
        .collect();
    assert!(
        produced.len() >= 10,
        "several cycles of 5 meters: {}\n{agent_log}",
        produced.len()
    );

    // A forged sample: signed with another secret, in a message of its own and inside
    // a message with genuine ones.
    let forged = Sample::new("forged", SampleType::Gauge, "1", 1e9, "victim");
    let forged_value = signing::signed_value(&forged, "not-the-secret").unwrap();
    let (mut genuine, genuine_ids) = signed_messages(1, 3, SECRET);
    genuine[0].push(forged_value.clone());
    publish(&amqp, &t, &[vec![forged_value], genuine.remove(0)]);

    let mut want = produced.clone();
    want.extend(genuine_ids);
    let ids = wait_for_count(&mongo, want.len(), Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(500));
    let ids_after = stored_ids(&mongo);
    let log = stop_ceilo(collector, Duration::from_secs(20));
    assert_eq!(
        ids.len(),
        ids_after.len(),
        "nothing more arrives later\n{log}"
    );
    assert_exactly_once(&ids_after, &want, &log);
    assert!(
        !ids_after.iter().any(|i| i == forged.message_id()),
        "the forged sample is not stored\n{log}"
    );
    assert!(
        log.contains(forged.message_id()) && log.contains("signature does not verify"),
        "the forgery is logged with its message id\n{log}"
    );
    assert!(!log.contains(SECRET), "the secret is never logged\n{log}");
    // Both copies of the forgery are dead-lettered (shared queue: look for ours).
    let dead: Vec<serde_json::Value> = drain_queue_keep(&amqp, "metering.sample.dead")
        .into_iter()
        .flat_map(|b| serde_json::from_slice::<Vec<serde_json::Value>>(&b).unwrap_or_default())
        .collect();
    let copies = dead
        .iter()
        .filter(|v| v["message_id"] == forged.message_id())
        .count();
    assert_eq!(
        copies, 2,
        "the forged sample is dead-lettered from both messages"
    );
}

/// Takes the messages of a shared queue without deleting it.
fn drain_queue_keep(url: &str, queue: &str) -> Vec<Vec<u8>> {
    take_all(url, queue).into_iter().map(|d| d.data).collect()
}

/// Takes (gets and acks) every message of `queue`.
fn take_all(url: &str, queue: &str) -> Vec<lapin::message::Delivery> {
    use lapin::options::{BasicAckOptions, BasicGetOptions};
    block_on(async {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
            .await
            .expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        let mut out = Vec::new();
        while let Ok(Some(m)) = ch.basic_get(queue.into(), BasicGetOptions::default()).await {
            let _ = m.delivery.ack(BasicAckOptions::default()).await;
            out.push(m.delivery);
        }
        out
    })
}

#[test]
fn a_collector_killed_mid_stream_loses_and_duplicates_nothing() {
    let Some(amqp) = rabbitmq() else { return };
    let Some(mongo) = mongodb() else { return };
    let t = Topology::new();
    let (messages, want) = signed_messages(200, 25, SECRET);
    publish(&amqp, &t, &messages);
    let env = [("CEILO_TELEMETRY_SECRET", SECRET)];
    let mut first = spawn_ceilo(&t.collector_args(&amqp, &mongo), &env);
    // Kill it once part of the stream is stored.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let n = stored_ids(&mongo).len();
        if n >= 500 {
            assert!(
                n < want.len(),
                "the kill must land mid-stream (stored {n} already)"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the collector stored nothing within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    let second = spawn_ceilo(&t.collector_args(&amqp, &mongo), &env);
    let ids = wait_for_count(&mongo, want.len(), Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(500));
    let log = stop_ceilo(second, Duration::from_secs(20));
    let ids_after = stored_ids(&mongo);
    assert_eq!(ids.len(), ids_after.len());
    assert_exactly_once(&ids_after, &want, &log);
}

#[test]
fn a_database_outage_mid_stream_loses_nothing() {
    let Some(amqp) = rabbitmq() else { return };
    let Some(program) = secantusd() else { return };
    let mut server = OwnMongo::start(program);
    let mongo = server.url("outage");
    let t = Topology::new();
    let env = [("CEILO_TELEMETRY_SECRET", SECRET)];
    let collector = spawn_ceilo(&t.collector_args(&amqp, &mongo), &env);
    let (before, mut want) = signed_messages(20, 10, SECRET);
    publish(&amqp, &t, &before);
    let ids = wait_for_count(&mongo, want.len(), Duration::from_secs(60));
    assert_eq!(ids.len(), want.len(), "stored before the outage");

    server.kill();
    let (during, during_ids) = signed_messages(30, 10, SECRET);
    want.extend(during_ids);
    publish(&amqp, &t, &during);
    // The collector now fails to store, holds the messages, and retries.
    std::thread::sleep(Duration::from_secs(8));
    server.resume();
    let (after, after_ids) = signed_messages(10, 10, SECRET);
    want.extend(after_ids);
    publish(&amqp, &t, &after);
    wait_for_count(&mongo, want.len(), Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(500));
    let log = stop_ceilo(collector, Duration::from_secs(30));
    let ids_after = stored_ids(&mongo);
    assert_exactly_once(&ids_after, &want, &log);
    assert!(
        log.contains("not stored yet"),
        "the outage is logged and retried\n{log}"
    );
}

#[test]
fn the_collector_stores_into_the_embedded_store_too() {
    let Some(amqp) = rabbitmq() else { return };
    let t = Topology::new();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/c.db", dir.path().display());
    let (messages, want) = signed_messages(10, 10, SECRET);
    publish(&amqp, &t, &messages);
    let collector = spawn_ceilo(
        &t.collector_args(&amqp, &url),
        &[("CEILO_TELEMETRY_SECRET", SECRET)],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.path().join("c.db").exists() || stored_ids(&url).len() < want.len() {
        assert!(Instant::now() < deadline, "not stored within 60 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = stop_ceilo(collector, Duration::from_secs(20));
    assert_exactly_once(&stored_ids(&url), &want, &log);
}

/// A private queue bound to the dead-letter exchange (a fanout): it gets a copy of
/// every dead letter from now on, whatever other tests take from the shared queue.
fn watch_dead_letters(url: &str) -> String {
    let name = unique("ceilo-dead-watch");
    block_on(async {
        let conn = lapin::Connection::connect(url, lapin::ConnectionProperties::default())
            .await
            .expect("connect");
        let ch = conn.create_channel().await.expect("channel");
        ch.exchange_declare(
            "ceilo.dlx".into(),
            ExchangeKind::Fanout,
            ExchangeDeclareOptions {
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("dlx");
        ch.queue_declare(
            name.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("queue");
        ch.queue_bind(
            name.as_str().into(),
            "ceilo.dlx".into(),
            "".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
    });
    name
}

/// The dead letters in `queue`: each message's samples and its `x-ceilo-refused` header.
fn dead_letters(url: &str, queue: &str) -> Vec<(Vec<serde_json::Value>, Option<String>)> {
    take_all(url, queue)
        .into_iter()
        .map(|d| {
            let header = d
                .properties
                .headers()
                .as_ref()
                .and_then(|h| h.inner().get("x-ceilo-refused").cloned())
                .and_then(|v| match v {
                    AMQPValue::LongString(s) => Some(s.to_string()),
                    _ => None,
                });
            (serde_json::from_slice(&d.data).unwrap_or_default(), header)
        })
        .collect()
}

#[test]
fn a_sample_no_store_can_hold_is_dead_lettered_alone_and_the_rest_stored() {
    let Some(amqp) = rabbitmq() else { return };
    let Some(mongo) = mongodb() else { return };
    let t = Topology::new();
    let watch = watch_dead_letters(&amqp);
    let signed = |s: &Sample| signing::signed_value(s, SECRET).expect("sign");
    let nul = Sample::new("poison", SampleType::Gauge, "1", 1.0, "r")
        .with_resource_metadata(serde_json::json!({"a\u{0}b": 1}));
    // Deeper in the metadata. (Documents over 16 MiB are refused the same way: the
    // storage suite covers them; a 4 MB message makes this test slow.)
    let deeper = Sample::new("poison", SampleType::Gauge, "1", 2.0, "r")
        .with_resource_metadata(serde_json::json!({"ok": {"deep\u{0}": [1]}}));
    let (mut good, mut want) = signed_messages(3, 2, SECRET);
    // [good, nul, good], [nul alone], [nul deeper, good, good]
    good[0].insert(1, signed(&nul));
    good[2].insert(0, signed(&deeper));
    let alone = Sample::new("poison", SampleType::Gauge, "1", 3.0, "r")
        .with_resource_metadata(serde_json::json!({"x": {"\u{0}": 0}}));
    publish(
        &amqp,
        &t,
        &[good[0].clone(), vec![signed(&alone)], good[1].clone()],
    );
    let collector = spawn_ceilo(
        &t.collector_args(&amqp, &mongo),
        &[("CEILO_TELEMETRY_SECRET", SECRET)],
    );
    publish(&amqp, &t, &[good[2].clone()]);
    // What comes after the poison is stored too.
    let (later, later_ids) = signed_messages(2, 3, SECRET);
    publish(&amqp, &t, &later);
    want.extend(later_ids);
    let ids = wait_for_count(&mongo, want.len(), Duration::from_secs(60));
    let log = stop_ceilo(collector, Duration::from_secs(20));
    assert_exactly_once(&ids, &want, &log);
    for s in [&nul, &deeper, &alone] {
        assert!(
            log.contains(s.message_id()),
            "each refused sample is logged with its message id\n{log}"
        );
    }
    assert!(log.contains("`a\\u0000b` holds a NUL character"), "{log}");
    assert!(log.contains("3 unstorable"), "counted\n{log}");
    let dead = dead_letters(&amqp, &watch);
    let ids_of = |v: &[serde_json::Value]| -> Vec<String> {
        v.iter()
            .filter_map(|s| s["message_id"].as_str().map(str::to_owned))
            .collect()
    };
    let ours: Vec<&(Vec<serde_json::Value>, Option<String>)> = dead
        .iter()
        .filter(|(v, _)| {
            ids_of(v).iter().any(|i| {
                [nul.message_id(), deeper.message_id(), alone.message_id()].contains(&i.as_str())
            })
        })
        .collect();
    assert_eq!(
        ours.len(),
        3,
        "one dead letter per poisoned message: {ours:?}"
    );
    for (v, header) in &ours {
        assert_eq!(v.len(), 1, "only the poison is dead-lettered: {v:?}");
        if ids_of(v)[0] != alone.message_id() {
            // Republished alone, with the reason; the all-poison message is rejected as is.
            assert!(
                header.as_deref().is_some_and(|h| h.contains("NUL")),
                "{header:?}"
            );
        }
    }
}

/// amqps:// end to end: the agent's publisher and the collector both trust only the
/// CA tests/run.sh made for the broker's TLS listener (`cacertfile=`).
#[test]
fn agent_to_collector_over_amqps() {
    let Some((amqps, ca)) = rabbitmq_tls() else {
        return;
    };
    let t = Topology::new();
    let plugins = agent_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}/tls.db", data.path().display());
    let broker = format!("{amqps}?cacertfile={ca}");
    let collector = spawn_ceilo(
        &t.collector_args(&broker, &store),
        &[("CEILO_TELEMETRY_SECRET", SECRET)],
    );
    let publisher = format!(
        "{amqps}?exchange={}&queue={}&batch_size=5&linger_ms=10&cacertfile={ca}",
        t.exchange, t.queue
    );
    let pipeline = load_pipeline(data.path(), &publisher);
    let agent = spawn_service(
        "agent",
        &pipeline,
        plugins.path(),
        data.path(),
        &[],
        &[("CEILO_TELEMETRY_SECRET", SECRET)],
    );
    std::thread::sleep(Duration::from_millis(3500));
    let agent_log = stop_ceilo(agent, Duration::from_secs(20));
    let produced: HashSet<String> = read_samples(&data.path().join("produced.json"))
        .iter()
        .map(|s| s.message_id().to_owned())
        .collect();
    assert!(produced.len() >= 6, "{agent_log}");
    let ids = wait_for_count(&store, produced.len(), Duration::from_secs(60));
    let log = stop_ceilo(collector, Duration::from_secs(20));
    assert_exactly_once(&ids, &produced, &format!("{agent_log}\n{log}"));
    assert!(agent_log.contains("connected to amqps://"), "{agent_log}");
    // Without the CA the broker's certificate is not trusted.
    let untrusted = spawn_ceilo(&t.collector_args(&amqps, &store), &[]);
    std::thread::sleep(Duration::from_secs(3));
    let log = stop_ceilo(untrusted, Duration::from_secs(20));
    assert!(
        log.contains("reconnecting") && !log.contains("consuming"),
        "{log}"
    );
}
