//! AMQP throughput against the local RabbitMQ:
//! `cargo bench -p ceilo-tests --bench amqp_throughput`.
//!
//! (a) Samples/s from the `amqp://` publisher plugin (signing, batching, confirms),
//!     against a plain lapin loop publishing the same messages (already serialised,
//!     unsigned) with confirms, one at a time, on the same broker.
//! (b) Notifications/s through `ceilo notification` (decode, `compute` handler,
//!     pipeline, null publisher, ack), against a plain lapin consumer that only acks.
//! (c) Notifications/s through `ceilo notification` making events as well (Ceilometer
//!     27.0.0's shipped `event_definitions.yaml`, `CEILO_CEILOMETER_PYTHON`'s package;
//!     events into the embedded store by `direct://`), against the samples-only agent
//!     of (b) on the same notifications (each with its own message id).
//! Both sides alternate within one run; medians are compared.

use std::time::{Duration, Instant};

use ceilo_host::loader::{PluginRegistry, ScanOptions};
use ceilo_plugin_api::{Context, Sample, SampleType};
use ceilo_tests::*;
use futures_lite::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};

const SAMPLES: usize = 50_000;
const BATCH: usize = 100;
const NOTIFICATIONS: usize = 5_000;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let Some(url) = rabbitmq() else { return };
    let dir = build_workspace_release();
    let rounds = if full { 5 } else { 1 };
    let scale = if full { 1 } else { 10 };
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    // (a) publisher
    let plugins = tempfile::tempdir().expect("temp dir");
    for lib in [
        "ceilo_plugin_amqp",
        "ceilo_plugin_notifications",
        "ceilo_fixture_bench_transformer",
    ] {
        std::fs::copy(
            dir.join(format!("lib{lib}.so")),
            plugins.path().join(format!("lib{lib}.so")),
        )
        .expect("copy");
    }
    let registry = PluginRegistry::scan(plugins.path(), &ScanOptions::default()).expect("scan");
    let n = SAMPLES / scale;
    let samples: Vec<Sample> = (0..n)
        .map(|i| {
            Sample::new(
                "bench.counter",
                SampleType::Cumulative,
                "B",
                i as f64,
                format!("r{}", i % 100),
            )
            .with_project_id("p")
            .with_resource_metadata(serde_json::json!({"host": "bench", "device": "vda"}))
        })
        .collect();
    let mut ceilo_t = Vec::new();
    let mut base_t = Vec::new();
    for _ in 0..rounds {
        let queue = unique("bench.sample");
        let exchange = unique("bench-ex");
        let amqp = format!("{url}?exchange={exchange}&queue={queue}&batch_size={BATCH}&linger_ms=5&flush_timeout=300");
        let ctx = Context::new("amqp", "bench").with_telemetry_secret("bench-secret");
        let mut publisher = registry
            .create_publisher("amqp", &serde_json::json!({ "url": amqp }), ctx)
            .expect("publisher");
        publisher.publish(&samples[..1]).expect("warm-up");
        publisher.flush().expect("warm-up flush");
        let start = Instant::now();
        for chunk in samples.chunks(1000) {
            publisher.publish(chunk).expect("publish");
        }
        publisher.flush().expect("all confirmed");
        ceilo_t.push(start.elapsed());
        drop(publisher);

        let payloads: Vec<Vec<u8>> = samples
            .chunks(BATCH)
            .map(|c| serde_json::to_vec(c).expect("json"))
            .collect();
        base_t.push(rt.block_on(plain_publish(&url, &exchange, &queue, &payloads)));
        rt.block_on(delete_queue(&url, &queue));
    }
    let (c, b) = (median(ceilo_t), median(base_t));
    println!("\n(a) samples into RabbitMQ with publisher confirms ({n} samples, {BATCH} per message, {rounds} rounds, medians)");
    println!("| publisher | samples/s | vs. baseline |");
    println!("|-----------|----------:|-------------:|");
    println!(
        "| plain lapin loop, pre-serialised, unsigned (baseline) | {:.0} k | 1.00x |",
        n as f64 / b.as_secs_f64() / 1e3
    );
    println!(
        "| ceilo `amqp://` plugin: sign, serialise, buffer, confirm | {:.0} k | {:.2}x |",
        n as f64 / c.as_secs_f64() / 1e3,
        b.as_secs_f64() / c.as_secs_f64()
    );

    // (b) notification agent
    let n = NOTIFICATIONS / scale;
    let body =
        std::fs::read(workspace_root().join("tests/notifications/nova_instance_create_end.json"))
            .expect("fixture");
    let mut ceilo_t = Vec::new();
    let mut base_t = Vec::new();
    for _ in 0..rounds {
        let (exchange, topic) = (unique("bench-nova"), unique("bench.notifications"));
        let data = tempfile::tempdir().expect("temp dir");
        let pipeline = data.path().join("pipeline.yaml");
        std::fs::write(&pipeline, "sources:\n  - name: n\n    meters: [\"*\"]\n    sinks: [k]\nsinks:\n  - name: k\n    publishers: [\"null://\"]\n").expect("pipeline");
        let agent = std::process::Command::new(dir.join("ceilo"))
            .args(["notification", "--pipeline"])
            .arg(&pipeline)
            .arg("--plugin-dir")
            .arg(plugins.path())
            .args([
                "--exchange",
                &exchange,
                "--topic",
                &topic,
                "--log-level",
                "warn",
            ])
            .env("CEILO_AMQP_URL", &url)
            .spawn()
            .expect("ceilo notification");
        let queue = format!("ceilo.{topic}");
        rt.block_on(wait_for_queue(&url, &queue));
        rt.block_on(fill(&url, &exchange, &topic, &body, n));
        let start = Instant::now();
        rt.block_on(wait_drained(&url, &queue));
        ceilo_t.push(start.elapsed());
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &agent.id().to_string()])
            .status();
        let mut agent = agent;
        let _ = agent.wait();
        rt.block_on(delete_queue(&url, &queue));
        rt.block_on(delete_queue(&url, &format!("ceilo.{topic}.dead")));

        let plain = unique("bench.plain");
        rt.block_on(async {
            let conn = Connection::connect(&url, ConnectionProperties::default())
                .await
                .expect("connect");
            let ch = conn.create_channel().await.expect("channel");
            ch.queue_declare(
                plain.as_str().into(),
                QueueDeclareOptions {
                    durable: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("queue");
            ch.queue_bind(
                plain.as_str().into(),
                exchange.as_str().into(),
                topic.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        });
        rt.block_on(fill(&url, &exchange, &topic, &body, n));
        base_t.push(rt.block_on(plain_consume(&url, &plain, n)));
        rt.block_on(delete_queue(&url, &plain));
    }
    let (c, b) = (median(ceilo_t), median(base_t));
    println!("\n(b) notifications consumed ({n} Nova compute.instance.create.end, prefetch 64, {rounds} rounds, medians)");
    println!("| consumer | notifications/s | vs. baseline |");
    println!("|----------|----------------:|-------------:|");
    println!(
        "| plain lapin consumer, ack only (baseline) | {:.0} | 1.00x |",
        n as f64 / b.as_secs_f64()
    );
    println!(
        "| `ceilo notification`: decode, compute handler, pipeline, ack | {:.0} | {:.2}x |",
        n as f64 / c.as_secs_f64(),
        b.as_secs_f64() / c.as_secs_f64()
    );

    // (c) events beside samples
    let Some(definitions) = ceilometer_event_definitions().pop() else {
        return;
    };
    let template: serde_json::Value = serde_json::from_slice(&body).expect("fixture JSON");
    let mut with_events = Vec::new();
    let mut samples_only = Vec::new();
    for round in 0..rounds {
        for events in [false, true] {
            let (exchange, topic) = (unique("bench-nova"), unique("bench.notifications"));
            let data = tempfile::tempdir().expect("temp dir");
            let pipeline = data.path().join("pipeline.yaml");
            std::fs::write(&pipeline, "sources:\n  - name: n\n    meters: [\"*\"]\n    sinks: [k]\nsinks:\n  - name: k\n    publishers: [\"null://\"]\n").expect("pipeline");
            let event_pipeline = data.path().join("event_pipeline.yaml");
            std::fs::write(&event_pipeline, "sources:\n  - name: e\n    events: [\"*\"]\n    sinks: [s]\nsinks:\n  - name: s\n    publishers: [\"direct://\"]\n").expect("event pipeline");
            let mut cmd = std::process::Command::new(dir.join("ceilo"));
            cmd.args(["notification", "--pipeline"])
                .arg(&pipeline)
                .arg("--plugin-dir")
                .arg(plugins.path())
                .arg("--data-dir")
                .arg(data.path())
                .args([
                    "--exchange",
                    &exchange,
                    "--topic",
                    &topic,
                    "--log-level",
                    "warn",
                ])
                .env("CEILO_AMQP_URL", &url);
            if events {
                cmd.arg("--event-pipeline")
                    .arg(&event_pipeline)
                    .arg("--event-definitions")
                    .arg(&definitions);
            }
            let mut agent = cmd.spawn().expect("ceilo notification");
            let queue = format!("ceilo.{topic}");
            rt.block_on(wait_for_queue(&url, &queue));
            let bodies: Vec<Vec<u8>> = (0..n)
                .map(|i| {
                    let mut b = template.clone();
                    b["message_id"] = format!("bench-{round}-{events}-{i}").into();
                    serde_json::to_vec(&b).expect("json")
                })
                .collect();
            rt.block_on(fill_each(&url, &exchange, &topic, &bodies));
            let start = Instant::now();
            rt.block_on(wait_drained(&url, &queue));
            if events {
                // Drained means none left to deliver; the last batch may still be in
                // hand: the time runs until every event is in the store.
                rt.block_on(async {
                    let store = ceilo_host::storage::open(
                        None,
                        data.path(),
                        ceilo_host::storage::Retention::default(),
                    )
                    .await
                    .expect("open the store");
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        let stored = store
                            .events(&ceilo_host::storage::EventQuery::default())
                            .await
                            .expect("events")
                            .len();
                        if stored == n {
                            break;
                        }
                        assert!(Instant::now() < deadline, "{stored} of {n} events stored");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                });
            }
            let took = start.elapsed();
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &agent.id().to_string()])
                .status();
            let _ = agent.wait();
            if events {
                with_events.push(took);
            } else {
                samples_only.push(took);
            }
            rt.block_on(delete_queue(&url, &queue));
            rt.block_on(delete_queue(&url, &format!("ceilo.{topic}.dead")));
        }
    }
    let (e, s) = (median(with_events), median(samples_only));
    println!("\n(c) notifications with their events ({n} Nova compute.instance.create.end, Ceilometer 27.0.0's event definitions, events by direct:// into the embedded store, {rounds} rounds, medians)");
    println!("| `ceilo notification` | notifications/s | vs. samples only |");
    println!("|----------------------|----------------:|-----------------:|");
    println!(
        "| samples only (baseline) | {:.0} | 1.00x |",
        n as f64 / s.as_secs_f64()
    );
    println!(
        "| samples and events (convert, store, then ack) | {:.0} | {:.2}x |",
        n as f64 / e.as_secs_f64(),
        s.as_secs_f64() / e.as_secs_f64()
    );
}

/// Publishes each of `bodies` once (confirmed).
async fn fill_each(url: &str, exchange: &str, topic: &str, bodies: &[Vec<u8>]) {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    ch.exchange_declare(
        exchange.into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    for body in bodies {
        drop(
            ch.basic_publish(
                exchange.into(),
                topic.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .expect("publish"),
        );
    }
    let _ = ch.wait_for_confirms().await.expect("confirms");
}

async fn plain_publish(url: &str, exchange: &str, queue: &str, payloads: &[Vec<u8>]) -> Duration {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    ch.queue_purge(queue.into(), QueuePurgeOptions::default())
        .await
        .expect("purge");
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into());
    let opts = BasicPublishOptions {
        mandatory: true,
        ..Default::default()
    };
    let start = Instant::now();
    for p in payloads {
        let c = ch
            .basic_publish(
                exchange.into(),
                "metering.sample".into(),
                opts,
                p,
                props.clone(),
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
        assert!(c.is_ack());
    }
    start.elapsed()
}

async fn fill(url: &str, exchange: &str, topic: &str, body: &[u8], n: usize) {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    ch.exchange_declare(
        exchange.into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("exchange");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    for _ in 0..n {
        // Confirms are awaited all at once below.
        drop(
            ch.basic_publish(
                exchange.into(),
                topic.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default(),
            )
            .await
            .expect("publish"),
        );
    }
    let _ = ch.wait_for_confirms().await.expect("confirms");
}

/// Messages ready in `queue` (a passive declare: an error when it does not exist).
async fn message_count(ch: &lapin::Channel, queue: &str) -> lapin::Result<u32> {
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let q = ch
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await?;
    Ok(q.message_count())
}

async fn ready(url: &str, queue: &str) -> Option<u32> {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .ok()?;
    let ch = conn.create_channel().await.ok()?;
    message_count(&ch, queue).await.ok()
}

async fn wait_for_queue(url: &str, queue: &str) {
    for _ in 0..200 {
        if ready(url, queue).await.is_some() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the notification agent never declared {queue}");
}

async fn wait_drained(url: &str, queue: &str) {
    // One channel, polled often: reconnecting each time would distort the timing.
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    while message_count(&ch, queue).await.expect("passive declare") > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn plain_consume(url: &str, queue: &str, n: usize) -> Duration {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    ch.basic_qos(64, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let start = Instant::now();
    for _ in 0..n {
        let d = consumer.next().await.expect("delivery").expect("delivery");
        let _: serde_json::Value = serde_json::from_slice(&d.data).expect("json");
        d.ack(BasicAckOptions::default()).await.expect("ack");
    }
    start.elapsed()
}

async fn delete_queue(url: &str, queue: &str) {
    if let Ok(conn) = Connection::connect(url, ConnectionProperties::default()).await {
        if let Ok(ch) = conn.create_channel().await {
            let _ = ch
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await;
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
