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
//! alternate; medians. Two figures each: the whole run (the collector's from the
//! moment it is started, so its start-up, connecting and first batch are in it; the
//! baseline's store is opened before its clock starts), and the steady rate after the
//! first batch of each is stored. First, the decoder alone on the same messages, as
//! sent and in a general JSON spelling (`decode_table`).

use std::time::{Duration, Instant};

use ceilo_host::services::collector;
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

/// A read-only connection to the embedded store at `db`, once the file exists.
fn open_store_file(db: &std::path::Path) -> Option<rusqlite::Connection> {
    if !db.exists() {
        return None;
    }
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()
}

/// How many samples the store holds, cheaply: `meter`'s highest id (ids are given in
/// order and a fresh store never deletes, so it is the row count) plus what is staged.
/// A `count(*)` every 20 ms reads the whole index each time: at 200 000 samples that
/// observer took a share of the two cores from the collector it was timing.
fn stored_estimate(c: &rusqlite::Connection) -> usize {
    c.query_row(
        "SELECT (SELECT ifnull(max(id), 0) FROM meter) + (SELECT count(*) FROM meter_recent)",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map_or(0, |n| n as usize)
}

/// Rows in the embedded store, counted (both tables: a large store stages its newest
/// samples in `meter_recent`).
fn stored_exactly(c: &rusqlite::Connection) -> usize {
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
    first_batch: usize,
) -> Run {
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
    let mut file = None;
    // When the first batch was in: from there on the collector runs at its steady
    // rate (start-up, connecting and the first batch's fill are behind it).
    let mut steady_from: Option<(Instant, usize)> = None;
    loop {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the collector did not store {n} samples"
        );
        if file.is_none() {
            file = open_store_file(&db);
        }
        let done = if n == 0 {
            rt.block_on(queue_exists(url, queue))
        } else {
            let have = file.as_ref().map_or(0, stored_estimate);
            if steady_from.is_none() && have >= first_batch && have < n {
                steady_from = Some((Instant::now(), have));
            }
            have >= n
        };
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let end = Instant::now();
    if let Some(c) = &file {
        assert_eq!(stored_exactly(c), n, "every sample stored once");
    }
    let run = Run {
        whole: end - start,
        steady: steady_from.map(|(t, have)| (end - t, n - have)),
    };
    let _ = stop_ceilo(child, Duration::from_secs(30));
    run
}

/// One timed run: the whole of it, and its steady part (time, samples) once the first
/// batch was stored.
struct Run {
    whole: Duration,
    steady: Option<(Duration, usize)>,
}

/// Samples per second of the steady parts of `runs`, their median.
fn steady_rate(runs: &[Run]) -> f64 {
    let mut rates: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.steady)
        .map(|(t, samples)| samples as f64 / t.as_secs_f64())
        .collect();
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The decoder alone, one thread, on the same messages in two spellings: as the
/// AMQP publisher sends them (signed as their bytes stand) and as a general JSON
/// writer would (keys sorted, signature among them, numbers as serde_json writes
/// them), which is verified by parsing and canonicalising. Rounds alternate; medians.
fn decode_table(samples: &[ceilo_plugin_api::Sample], as_sent: &[Vec<u8>]) {
    let general: Vec<Vec<u8>> = samples
        .chunks(PER_MESSAGE)
        .map(|c| {
            let signed: Vec<serde_json::Value> = c
                .iter()
                .map(|s| signing::signed_value(s, SECRET).expect("sign"))
                .collect();
            serde_json::to_vec(&signed).expect("json")
        })
        .collect();
    let time = |bodies: &[Vec<u8>]| {
        let t = Instant::now();
        for b in bodies {
            let d = collector::decode(b, SECRET);
            assert_eq!((d.samples.len(), d.refused.len()), (PER_MESSAGE, 0));
        }
        t.elapsed()
    };
    let (mut fast, mut slow) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        fast.push(time(as_sent));
        slow.push(time(&general));
    }
    let per_sample = |d: Duration| d.as_secs_f64() * 1e6 / samples.len() as f64;
    let (f, s) = (per_sample(median(fast)), per_sample(median(slow)));
    println!("\nDecoding and verifying alone ({} samples, {PER_MESSAGE} per message, one thread, 5 rounds, medians)", samples.len());
    println!("| messages | µs per sample | time vs. general |");
    println!("|----------|--------------:|------------:|");
    println!("| general spelling: parsed, canonicalised, verified | {s:.2} | 1.00x |");
    println!(
        "| as the AMQP publisher sends them: verified as they stand | {f:.2} | {:.2}x |",
        f / s
    );
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
            // As the AMQP publisher sends them: each sample signed as its bytes stand.
            let signed: Vec<Vec<u8>> = c
                .iter()
                .map(|s| signing::signed_bytes(s, SECRET).expect("sign"))
                .collect();
            [b"[".as_slice(), &signed.join(&b","[..]), b"]"].concat()
        })
        .collect();
    decode_table(&all, &bodies);
    let batch = PREFETCH / 2 * PER_MESSAGE;
    let (mut ceilo_runs, mut base_runs) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (exchange, queue) = (unique("bench-metering"), unique("bench.collector"));
        // Once to declare the topology (exchange, queue, dead-lettering), then fill.
        let declared = tempfile::tempdir().expect("temp dir");
        collector(&dir, &url, &exchange, &queue, declared.path(), 0, batch);
        rt.block_on(publish(&url, &exchange, &bodies));
        let data = tempfile::tempdir().expect("temp dir");
        ceilo_runs.push(collector(
            &dir,
            &url,
            &exchange,
            &queue,
            data.path(),
            n,
            batch,
        ));

        let data = tempfile::tempdir().expect("temp dir");
        base_runs.push(rt.block_on(async {
            let url = format!("sqlite://{}/ceilo.db", data.path().display());
            let store = storage::open(Some(&url), data.path(), Retention::default())
                .await
                .expect("open");
            let t = Instant::now();
            let mut after_first = None;
            for b in all.chunks(batch) {
                store.record(b).await.expect("record");
                after_first.get_or_insert_with(Instant::now);
            }
            let end = Instant::now();
            Run {
                whole: end - t,
                steady: after_first.map(|f| (end - f, n - batch.min(n))),
            }
        }));
    }
    let whole = |runs: &[Run]| median(runs.iter().map(|r| r.whole).collect());
    let (c, b) = (whole(&ceilo_runs), whole(&base_runs));
    let (cs, bs) = (steady_rate(&ceilo_runs), steady_rate(&base_runs));
    println!("\n`ceilo collector` into the embedded store ({n} signed samples, {PER_MESSAGE} per message, batches of {batch}, {rounds} rounds, medians)");
    println!("| writer | samples/s, whole run | vs. baseline | samples/s after the first batch | vs. baseline |");
    println!("|--------|---------------------:|-------------:|--------------------------------:|-------------:|");
    println!(
        "| `Storage::record` alone, batches of {batch} (baseline; store opened before timing) | {:.0} k | 1.00x | {:.0} k | 1.00x |",
        n as f64 / b.as_secs_f64() / 1e3,
        bs / 1e3
    );
    println!(
        "| `ceilo collector` (from its start): receive, decode, verify, store, ack | {:.0} k | {:.2}x | {:.0} k | {:.2}x |",
        n as f64 / c.as_secs_f64() / 1e3,
        b.as_secs_f64() / c.as_secs_f64(),
        cs / 1e3,
        cs / bs
    );
}
