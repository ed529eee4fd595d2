//! Embedded store load rate as the file grows:
//! `cargo bench -p ceilo-tests --bench store_growth`
//! (`CEILO_BENCH_GROWTH_SAMPLES`, default 4 000 000; the README's figures are at
//! 10 000 000).
//!
//! The same samples — 1 000 resources × 10 meters, one per series per minute, in
//! batches of 10 000 (the collector's batch under load) — are loaded through
//! `Storage::record` into a fresh embedded store twice: with random (version 4) UUID
//! message ids, as ceilo made them before, and with the time-ordered (version 7) ids
//! `Sample::new` makes now. For each, the rate over the first tenth of the load and
//! over the last tenth; the target is last ≥ 0.5x first for the ids ceilo makes.
//! Only `record` is timed (the samples are built outside the timing).

use std::time::{Duration, Instant};

use ceilo_host::storage::{self, Retention, Storage};
use ceilo_plugin_api::Sample;
use ceilo_tests::series_sample;

const BATCH: usize = 10_000;

#[derive(Clone, Copy)]
enum Ids {
    Random,
    TimeOrdered,
}

fn batch(start: usize, ids: Ids) -> Vec<Sample> {
    (start..start + BATCH)
        .map(|i| {
            let mut s = series_sample(i);
            if let Ids::Random = ids {
                s.set_message_id(uuid::Uuid::new_v4().to_string());
            }
            s
        })
        .collect()
}

/// Samples/s over the first and the last tenth of a load of `n` samples.
async fn load(store: &dyn Storage, n: usize, ids: Ids) -> (f64, f64) {
    let batches = n / BATCH;
    let tenth = (batches / 10).max(1);
    let (mut first, mut last) = (Duration::ZERO, Duration::ZERO);
    for b in 0..batches {
        let samples = batch(b * BATCH, ids);
        let t = Instant::now();
        let o = store.record(&samples).await.expect("record");
        let took = t.elapsed();
        assert_eq!(o.stored, samples.len());
        if b < tenth {
            first += took;
        }
        if b >= batches - tenth {
            last += took;
        }
    }
    let window = (tenth * BATCH) as f64;
    (window / first.as_secs_f64(), window / last.as_secs_f64())
}

fn main() {
    let n: usize = std::env::var("CEILO_BENCH_GROWTH_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4_000_000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    println!("embedded store, {n} samples loaded in batches of {BATCH}\n");
    println!("| message ids | first tenth | last tenth | last vs. first |");
    println!("|-------------|------------:|-----------:|---------------:|");
    for (ids, label) in [
        (Ids::Random, "random, version 4 (before; baseline)"),
        (
            Ids::TimeOrdered,
            "time-ordered, version 7 (`Sample::new` now)",
        ),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, last) = rt.block_on(async {
            let store = storage::open(None, dir.path(), Retention::default())
                .await
                .expect("open");
            load(store.as_ref(), n, ids).await
        });
        println!(
            "| {label} | {:.0} samples/s | {:.0} samples/s | {:.2}x |",
            first,
            last,
            last / first
        );
    }
}
