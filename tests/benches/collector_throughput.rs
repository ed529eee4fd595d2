//! `ceilo collector` draining signed samples into the embedded store:
//! `cargo bench -p ceilo-tests --bench collector_throughput`.
//!
//! 200 000 samples, signed with ceilo's rules, 100 per message, are put on a queue
//! first; then a release `ceilo collector` (prefetch 256, so batches of up to 128
//! messages) is started and timed until every sample is in its store (counted in
//! the store's file). Baseline in the same run: `Storage::record` alone, in this
//! process, storing the same samples in batches of the same size (12 800) into a
//! fresh store — what the collector would reach if receiving, decoding and
//! verifying cost nothing. Target: the collector ≥ 0.8x the baseline. Rounds
//! alternate; medians.

use std::time::{Duration, Instant};

use ceilo_host::storage::{self, Retention};
use ceilo_plugin_api::signing;
use ceilo_tests::*;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};

const SAMPLES: usize = 200_000;
const PER_MESSAGE: usize = 100;
const PREFETCH: usize = 256;
const SECRET: &str = "bench-secret";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Rows in the embedded store at `db` (0 while it does not exist yet).
fn stored(db: &std::path::Path) -> usize {
    let Ok(c) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    // Both tables: a large store stages its newest samples in `meter_recent`.
    c.query_row(
        "SELECT (SELECT count(*) FROM meter) + (SELECT count(*) FROM meter_recent)",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map_or(0, |n| n as usize)
}

async fn publish(url: &str, exchange: &str, bodies: &[Vec<u8>]) {
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .expect("connect");
    let ch = conn.create_channel().await.expect("channel");
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let mut pending = Vec::new();
    for body in bodies {
        pending.push(
            ch.basic_publish(
                exchange.into(),
                ceilo_plugin_api::topology::METERING_ROUTING_KEY.into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .expect("publish"),
        );
    }
    for p in pending {
        assert!(p.await.expect("confirm").is_ack(), "not confirmed");
    }
}

/// Whether `queue` exists on the broker.
async fn queue_exists(url: &str, queue: &str) -> bool {
    let Ok(conn) = Connection::connect(url, ConnectionProperties::default()).await else {
        return false;
    };
    let Ok(ch) = conn.create_channel().await else {
        return false;
    };
    let passive = lapin::options::QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    ch.queue_declare(queue.into(), passive, lapin::types::FieldTable::default())
        .await
        .is_ok()
}

/// Runs the collector on `queue` until `n` samples are stored in `data` and the
/// queue exists; the time from its start.
fn collector(
    dir: &std::path::Path,
    url: &str,
    exchange: &str,
    queue: &str,
    data: &std::path::Path,
    n: usize,
) -> Duration {
    let db = data.join("ceilo.db");
    let start = Instant::now();
    let child = std::process::Command::new(dir.join("ceilo"))
        .args([
            "collector",
            "--amqp-url",
            url,
            "--exchange",
            exchange,
            "--queue",
            queue,
        ])
        .args([
            "--prefetch",
            &PREFETCH.to_string(),
            "--telemetry-secret",
            SECRET,
        ])
        .arg("--storage")
        .arg(format!("sqlite://{}", db.display()))
        .env("RUST_LOG", "warn")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the collector");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    while stored(&db) < n || (n == 0 && !rt.block_on(queue_exists(url, queue))) {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the collector did not store {n} samples"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    let _ = stop_ceilo(child, Duration::from_secs(30));
    took
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let Some(url) = rabbitmq() else { return };
    let dir = build_workspace_release();
    let (rounds, n) = if full {
        (3, SAMPLES)
    } else {
        (1, SAMPLES / 10)
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let all = store_bench_samples(n);
    let bodies: Vec<Vec<u8>> = all
        .chunks(PER_MESSAGE)
        .map(|c| {
            let signed: Vec<serde_json::Value> = c
                .iter()
                .map(|s| signing::signed_value(s, SECRET).expect("sign"))
                .collect();
            serde_json::to_vec(&signed).expect("json")
        })
        .collect();
    let batch = PREFETCH / 2 * PER_MESSAGE;
    let (mut ceilo_t, mut base_t) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (exchange, queue) = (unique("bench-metering"), unique("bench.collector"));
        // Once to declare the topology (exchange, queue, dead-lettering), then fill.
        let declared = tempfile::tempdir().expect("temp dir");
        collector(&dir, &url, &exchange, &queue, declared.path(), 0);
        rt.block_on(publish(&url, &exchange, &bodies));
        let data = tempfile::tempdir().expect("temp dir");
        ceilo_t.push(collector(&dir, &url, &exchange, &queue, data.path(), n));

        let data = tempfile::tempdir().expect("temp dir");
        base_t.push(rt.block_on(async {
            let url = format!("sqlite://{}/ceilo.db", data.path().display());
            let store = storage::open(Some(&url), data.path(), Retention::default())
                .await
                .expect("open");
            let t = Instant::now();
            for b in all.chunks(batch) {
                store.record(b).await.expect("record");
            }
            t.elapsed()
        }));
    }
    let (c, b) = (median(ceilo_t), median(base_t));
    println!("\n`ceilo collector` into the embedded store ({n} signed samples, {PER_MESSAGE} per message, batches of {batch}, {rounds} rounds, medians)");
    println!("| writer | samples/s | vs. baseline |");
    println!("|--------|----------:|-------------:|");
    println!(
        "| `Storage::record` alone, batches of {batch} (baseline) | {:.0} k | 1.00x |",
        n as f64 / b.as_secs_f64() / 1e3
    );
    println!(
        "| `ceilo collector`: receive, decode, verify, store, ack | {:.0} k | {:.2}x |",
        n as f64 / c.as_secs_f64() / 1e3,
        b.as_secs_f64() / c.as_secs_f64()
    );
}
