//! What the list queries cost as the embedded store grows:
//! `cargo bench -p ceilo-tests --bench query_growth`
//! (`CEILO_BENCH_QUERY_SIZES`, default `100000,1000000`; the target compares 100 000
//! with 10 000 000).
//!
//! The same data shape at each size — 1 000 resources × 10 meters, one sample per
//! series per minute — and the same questions, each answered by `Storage` (what the
//! API's handlers call): the newest 100 samples; the newest 100 of one meter (`GET
//! /v2/meters/{name}?limit=100`); every resource (`GET /v2/resources`, and `GET
//! /v2/meters` reads the same table). The smallest size is the baseline: an answer
//! that costs O(answer) stays within 2x of it. Medians of 21 runs each.

use std::time::{Duration, Instant};

use ceilo_host::storage::{self, ResourceQuery, Retention, SampleQuery, Storage};
use ceilo_tests::series_sample;

async fn load(store: &dyn Storage, n: usize) {
    let all: Vec<usize> = (0..n).collect();
    for chunk in all.chunks(10_000) {
        let batch: Vec<_> = chunk.iter().map(|&i| series_sample(i)).collect();
        store.record(&batch).await.expect("record");
    }
}

async fn median_of<F, Fut>(mut run: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = usize>,
{
    let mut times = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let got = run().await;
        times.push(t.elapsed());
        assert!(got > 0, "an empty answer");
    }
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let sizes: Vec<usize> = std::env::var("CEILO_BENCH_QUERY_SIZES")
        .unwrap_or_else(|_| "100000,1000000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let questions = [
        "newest 100 samples",
        "newest 100 of one meter",
        "every resource",
    ];
    let mut rows: Vec<Vec<Duration>> = vec![Vec::new(); questions.len()];
    for &n in &sizes {
        let dir = tempfile::tempdir().expect("tempdir");
        rt.block_on(async {
            let store = storage::open(None, dir.path(), Retention::default())
                .await
                .expect("open");
            load(store.as_ref(), n).await;
            let newest = SampleQuery {
                limit: Some(100),
                ..Default::default()
            };
            let one_meter = SampleQuery {
                meter: Some("meter.3".into()),
                limit: Some(100),
                ..Default::default()
            };
            let s = store.as_ref();
            rows[0].push(median_of(|| async { s.samples(&newest).await.expect("q").len() }).await);
            rows[1]
                .push(median_of(|| async { s.samples(&one_meter).await.expect("q").len() }).await);
            rows[2].push(
                median_of(|| async {
                    s.resources(&ResourceQuery::default())
                        .await
                        .expect("q")
                        .len()
                })
                .await,
            );
        });
    }
    let header: Vec<String> = sizes.iter().map(|n| format!("{n} samples")).collect();
    println!(
        "| question | {} | largest vs. smallest |",
        header.join(" | ")
    );
    println!("|---|{}---:|", "---:|".repeat(sizes.len()));
    for (q, times) in questions.iter().zip(&rows) {
        let cells: Vec<String> = times
            .iter()
            .map(|t| format!("{:.2} ms", t.as_secs_f64() * 1e3))
            .collect();
        let ratio = times.last().map_or(0.0, |l| l.as_secs_f64()) / times[0].as_secs_f64();
        println!("| {q} | {} | {ratio:.1}x |", cells.join(" | "));
    }
}
