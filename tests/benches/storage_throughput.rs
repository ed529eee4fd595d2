//! Collector write throughput into each store:
//! `cargo bench -p ceilo-tests --bench storage_throughput`.
//!
//! ceilo's `Storage::record` — what the collector and `direct://` call with each batch
//! (dedupe by message id, resource upserts, durable commit) — against a baseline in
//! the same run on the same machine:
//! - embedded: raw batched INSERTs (multi-row, 64 rows per statement) of the same rows
//!   into a table with the same
//!   columns and indexes, same file settings (WAL, synchronous=FULL, 64 MiB cache, checkpoint
//!   every 10 000 pages, temp store in memory), one transaction
//!   per batch, no resource upkeep;
//! - MongoDB: the driver's `insert_many` of the same documents, prebuilt outside the
//!   timing, into a collection with the same indexes, with the same write concern
//!   (j: true), no resource upkeep.
//!
//! Samples: 1 000 resources × 10 meters, batches of 1 000. The two sides alternate
//! for several rounds, each on a fresh file or database; medians are compared.
//! `CEILO_BENCH_SKIP_EMBEDDED=1` runs the MongoDB part alone.

use std::time::Instant;

use ceilo_host::storage::{self, Retention};
use ceilo_plugin_api::Sample;
use ceilo_tests::*;
use mongodb::bson::{doc, DateTime as BsonDateTime, Document};

const BATCH: usize = 1_000;
/// The collector's batch under load: up to `--prefetch` (256) messages of up to 100.
const LOAD_BATCH: usize = 10_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn ceilo_rate(
    rt: &tokio::runtime::Runtime,
    url: &str,
    data: &std::path::Path,
    all: &[Sample],
    batch: usize,
) -> f64 {
    rt.block_on(async {
        let store = storage::open(Some(url), data, Retention::default())
            .await
            .expect("open");
        let t = Instant::now();
        for b in all.chunks(batch) {
            let o = store.record(b).await.expect("record");
            assert_eq!(o.stored, b.len());
        }
        all.len() as f64 / t.elapsed().as_secs_f64()
    })
}

/// Samples/s over a whole MongoDB run, over its first pass over the resources (each
/// resource new to the store) and over the rest (each already recorded).
struct Rates {
    whole: f64,
    new: f64,
    known: f64,
}

/// The first pass: `store_bench_samples` comes back to its first resource here.
const FIRST_PASS: usize = 10_000;

impl Rates {
    /// Times `write` over `items` in batches of `BATCH`.
    async fn timed<T>(items: &[T], write: impl AsyncFn(&[T])) -> Rates {
        let t = Instant::now();
        let mut first = None;
        for (i, b) in items.chunks(BATCH).enumerate() {
            write(b).await;
            if (i + 1) * BATCH == FIRST_PASS {
                first = Some(t.elapsed());
            }
        }
        let whole = t.elapsed();
        let first = first.expect("more than one pass");
        Rates {
            whole: items.len() as f64 / whole.as_secs_f64(),
            new: FIRST_PASS as f64 / first.as_secs_f64(),
            known: (items.len() - FIRST_PASS) as f64 / (whole - first).as_secs_f64(),
        }
    }
}

fn ceilo_mongo_rates(rt: &tokio::runtime::Runtime, url: &str, all: &[Sample]) -> Rates {
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = storage::open(Some(url), dir.path(), Retention::default())
            .await
            .expect("open");
        Rates::timed(all, async |b: &[Sample]| {
            let o = store.record(b).await.expect("record");
            assert_eq!(o.stored, b.len());
        })
        .await
    })
}

fn raw_sqlite_rate(path: &std::path::Path, all: &[Sample], batch: usize) -> f64 {
    let mut c = rusqlite::Connection::open(path).expect("open");
    c.pragma_update(None, "journal_mode", "WAL").expect("wal");
    c.pragma_update(None, "synchronous", "FULL").expect("sync");
    c.pragma_update(None, "cache_size", -65536).expect("cache");
    c.pragma_update(None, "wal_autocheckpoint", 10000)
        .expect("checkpoint");
    c.execute_batch(
        "CREATE TABLE meter (id INTEGER PRIMARY KEY, message_id TEXT NOT NULL UNIQUE,
            counter_name TEXT NOT NULL, counter_type TEXT NOT NULL, counter_unit TEXT NOT NULL,
            counter_volume REAL NOT NULL, user_id TEXT, project_id TEXT, resource_id TEXT NOT NULL,
            source TEXT NOT NULL, timestamp INTEGER NOT NULL, recorded_at INTEGER NOT NULL,
            resource_metadata TEXT NOT NULL, monotonic_time REAL);
         CREATE INDEX a ON meter (counter_name, resource_id, timestamp, counter_volume, counter_unit);
         CREATE INDEX b ON meter (project_id, timestamp);
         CREATE INDEX c ON meter (timestamp);",
    )
    .expect("schema");
    // Multi-row INSERT statements of ROWS rows, one transaction per batch.
    const ROWS: usize = 64;
    let row = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    let sql = |n: usize| {
        format!(
            "INSERT INTO meter (message_id, counter_name, counter_type, counter_unit, counter_volume, user_id, project_id, resource_id, source, timestamp, recorded_at, resource_metadata, monotonic_time) VALUES {}",
            vec![row; n].join(", ")
        )
    };
    let t = Instant::now();
    for b in all.chunks(batch) {
        let tx = c.transaction().expect("tx");
        let now = chrono::Utc::now().timestamp_micros();
        for rows in b.chunks(ROWS) {
            let mut st = tx.prepare_cached(&sql(rows.len())).expect("prepare");
            let mut i = 1;
            for s in rows {
                st.raw_bind_parameter(i, s.message_id()).expect("bind");
                st.raw_bind_parameter(i + 1, s.name()).expect("bind");
                st.raw_bind_parameter(i + 2, s.sample_type().as_str())
                    .expect("bind");
                st.raw_bind_parameter(i + 3, s.unit()).expect("bind");
                st.raw_bind_parameter(i + 4, s.volume()).expect("bind");
                st.raw_bind_parameter(i + 5, s.user_id()).expect("bind");
                st.raw_bind_parameter(i + 6, s.project_id()).expect("bind");
                st.raw_bind_parameter(i + 7, s.resource_id()).expect("bind");
                st.raw_bind_parameter(i + 8, s.source()).expect("bind");
                st.raw_bind_parameter(i + 9, s.timestamp_micros())
                    .expect("bind");
                st.raw_bind_parameter(i + 10, now).expect("bind");
                st.raw_bind_parameter(i + 11, s.resource_metadata_json())
                    .expect("bind");
                st.raw_bind_parameter(i + 12, s.monotonic_time())
                    .expect("bind");
                i += 13;
            }
            st.raw_execute().expect("insert");
        }
        tx.commit().expect("commit");
    }
    all.len() as f64 / t.elapsed().as_secs_f64()
}

fn documents(all: &[Sample]) -> Vec<Document> {
    let now = chrono::Utc::now().timestamp_micros();
    all.iter()
        .map(|s| {
            let md = mongodb::bson::to_document(&serde_json::Value::Object(s.resource_metadata()))
                .expect("metadata");
            doc! {
                "message_id": s.message_id(), "counter_name": s.name(),
                "counter_type": s.sample_type().as_str(), "counter_unit": s.unit(),
                "counter_volume": s.volume(), "user_id": s.user_id(), "project_id": s.project_id(),
                "resource_id": s.resource_id(), "source": s.source(),
                "timestamp": BsonDateTime::from_millis(s.timestamp_micros() / 1000),
                "timestamp_us": s.timestamp_micros(),
                "recorded_at": BsonDateTime::from_millis(now / 1000), "recorded_at_us": now,
                "resource_metadata": md, "monotonic_time": s.monotonic_time(),
            }
        })
        .collect()
}

fn raw_mongo_rates(rt: &tokio::runtime::Runtime, url: &str, docs: &[Document]) -> Rates {
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(url).await.expect("client");
        let db = url.rsplit('/').next().expect("db");
        let coll = client.database(db).collection_with_options::<Document>(
            "meter",
            mongodb::options::CollectionOptions::builder()
                .write_concern(
                    mongodb::options::WriteConcern::builder()
                        .journal(true)
                        .build(),
                )
                .build(),
        );
        // The same indexes ceilo's `meter` collection has.
        let index = |keys: Document, unique: bool| {
            mongodb::IndexModel::builder()
                .keys(keys)
                .options(
                    mongodb::options::IndexOptions::builder()
                        .unique(unique.then_some(true))
                        .build(),
                )
                .build()
        };
        coll.create_indexes([
            index(doc! { "message_id": 1 }, true),
            index(
                doc! { "counter_name": 1, "resource_id": 1, "timestamp_us": -1 },
                false,
            ),
            index(doc! { "project_id": 1, "timestamp_us": -1 }, false),
        ])
        .await
        .expect("indexes");
        Rates::timed(docs, async |b: &[Document]| {
            coll.insert_many(b).await.expect("insert_many");
        })
        .await
    })
}

/// Each round's database is dropped after it, so the server holds the same data
/// at every round and every run (a server kept between runs had gathered 157
/// benchmark and test databases).
fn drop_database(rt: &tokio::runtime::Runtime, url: &str) {
    rt.block_on(async {
        let client = mongodb::Client::with_uri_str(url).await.expect("client");
        let name = url.rsplit('/').next().expect("database");
        client.database(name).drop().await.expect("drop database");
    })
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 5 } else { 1 };
    let rt = tokio::runtime::Runtime::new().expect("runtime");

    // `CEILO_BENCH_SKIP_EMBEDDED=1` measures the MongoDB path alone.
    let embedded = std::env::var_os("CEILO_BENCH_SKIP_EMBEDDED").is_none();
    let n = if full { 200_000 } else { 20_000 };
    if embedded {
        println!("\nembedded store ({n} samples, {rounds} rounds, medians)");
        println!(
            "| batch | raw batched INSERT (baseline) | ceilo `Storage::record` | vs. baseline |"
        );
        println!(
            "|------:|------------------------------:|------------------------:|-------------:|"
        );
        for batch in [BATCH, LOAD_BATCH] {
            let mut ours = Vec::new();
            let mut base = Vec::new();
            for _ in 0..rounds {
                let all = store_bench_samples(n);
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}/ceilo.db", dir.path().display());
                ours.push(ceilo_rate(&rt, &url, dir.path(), &all, batch));
                base.push(raw_sqlite_rate(&dir.path().join("raw.db"), &all, batch));
            }
            let (o, b) = (median(ours), median(base));
            println!(
                "| {batch} | {b:.0} samples/s | {o:.0} samples/s | {:.2}x |",
                o / b
            );
        }
    }

    let Some(first) = mongodb() else { return };
    let base_url = first
        .rsplit_once('/')
        .map(|(h, _)| h.to_owned())
        .expect("url");
    // Two passes over the resources even in the short run.
    let n = if full { 30_000 } else { 20_000 };
    let mut ours = Vec::new();
    let mut base = Vec::new();
    for _ in 0..rounds {
        let all = store_bench_samples(n);
        let url = format!("{base_url}/{}", unique("bench").replace('-', "_"));
        ours.push(ceilo_mongo_rates(&rt, &url, &all));
        drop_database(&rt, &url);
        let docs = documents(&store_bench_samples(n));
        let url = format!("{base_url}/{}", unique("bench_raw").replace('-', "_"));
        base.push(raw_mongo_rates(&rt, &url, &docs));
        drop_database(&rt, &url);
    }
    let med = |v: &[Rates], f: fn(&Rates) -> f64| median(v.iter().map(f).collect());
    println!("\nMongoDB-wire server at {base_url} ({n} samples, batches of {BATCH}, {rounds} rounds, medians)");
    println!("| writer | whole run | vs. baseline | first {FIRST_PASS} (new resources) | vs. baseline | the rest (known resources) | vs. baseline |");
    println!("|--------|----------:|-------------:|------:|------:|------:|------:|");
    let (bw, bn, bk) = (
        med(&base, |r| r.whole),
        med(&base, |r| r.new),
        med(&base, |r| r.known),
    );
    let (ow, on, ok) = (
        med(&ours, |r| r.whole),
        med(&ours, |r| r.new),
        med(&ours, |r| r.known),
    );
    println!(
        "| driver `insert_many` (baseline) | {bw:.0} | 1.00x | {bn:.0} | 1.00x | {bk:.0} | 1.00x |"
    );
    println!(
        "| ceilo `Storage::record` | {ow:.0} | {:.2}x | {on:.0} | {:.2}x | {ok:.0} | {:.2}x |",
        ow / bw,
        on / bn,
        ok / bk
    );
}
