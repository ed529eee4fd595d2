//! Statistics latency through the HTTP API over large stores:
//! `cargo bench -p ceilo-tests --bench statistics_latency`.
//!
//! 1 000 resources × 10 meters, one sample per series per minute, in the embedded
//! store at 1 million and 10 million samples (MongoDB-wire at 100 000: SecantusDB, a
//! Python server, stores a few thousand samples a second, so 10 million would take
//! hours to load here). Two questions, each asked through `GET
//! /v2/meters/{name}/statistics` of an API served in this process, against a
//! baseline: the same aggregation hand-written in the store's own query language
//! (SQL with rusqlite on the same file; an aggregation pipeline with the driver),
//! run on the same data. Medians of alternating runs. For the embedded store the
//! same hand-written queries are also answered over HTTP by a bare handler on the
//! same server stack, so the API can be compared with what any HTTP answer costs.
//!  (a) one meter, one resource, period 3600;
//!  (b) one meter, all resources, groupby resource_id.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ceilo_host::api::{self, ApiState, Auth, SharedAuth};
use ceilo_host::storage::{self, GroupBy, Retention, SampleQuery, StatisticsQuery, Storage};
use ceilo_plugin_api::Sample;
use ceilo_tests::*;
use chrono::{TimeZone, Utc};
use mongodb::bson::{doc, Document};

const RESOURCES: usize = 1_000;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time")
}

async fn load(store: &dyn Storage, n: usize) {
    let all: Vec<usize> = (0..n).collect();
    for chunk in all.chunks(10_000) {
        let batch: Vec<Sample> = chunk.iter().map(|&i| series_sample(i)).collect();
        store.record(&batch).await.expect("record");
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn fmt(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

async fn serve(store: Arc<dyn Storage>) -> (String, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::watch::channel(false);
    let state = ApiState {
        store,
        auth: Arc::new(SharedAuth::new(Auth::Open)),
        pipeline: None,
        deployment: Default::default(),
    };
    tokio::spawn(api::serve(
        listener,
        state,
        api::ServerOptions::default(),
        rx,
    ));
    (format!("http://{addr}"), tx)
}

/// One request on `agent`'s kept-alive connection, as clients send them
/// (python-ceilometerclient keeps a session).
fn http(agent: &ureq::Agent, url: &str) -> Duration {
    let t = Instant::now();
    let mut res = agent.get(url).call().expect("statistics");
    let body = res.body_mut().read_to_string().expect("body");
    let took = t.elapsed();
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert!(!v.as_array().expect("list").is_empty(), "{url}: {body}");
    took
}

const QA: &str = "/v2/meters/meter.3/statistics?period=3600&q.field=resource_id&q.op=eq&q.value=resource-42&q.type=";
const QB: &str = "/v2/meters/meter.3/statistics?groupby=resource_id";

/// The store query the API builds for `path` (for the in-process column).
fn store_query(path: &str) -> StatisticsQuery {
    let filter = SampleQuery {
        meter: Some("meter.3".into()),
        ..SampleQuery::default()
    };
    if path == QA {
        StatisticsQuery {
            filter: SampleQuery {
                resource_id: Some("resource-42".into()),
                ..filter
            },
            period: Some(3600),
            ..StatisticsQuery::default()
        }
    } else {
        StatisticsQuery {
            filter,
            groupby: vec![GroupBy::ResourceId],
            ..StatisticsQuery::default()
        }
    }
}

const SQL_A: &str =
    "WITH s AS (SELECT timestamp, counter_volume FROM meter WHERE counter_name = ?1 AND resource_id = ?2
                UNION ALL
                SELECT timestamp, counter_volume FROM meter_recent WHERE counter_name = ?1 AND resource_id = ?2)
     SELECT (timestamp - (SELECT min(timestamp) FROM s)) / 3600000000 AS b,
            count(*), min(counter_volume), max(counter_volume), sum(counter_volume), avg(counter_volume),
            min(timestamp), max(timestamp)
     FROM s GROUP BY b";
const SQL_B: &str =
    "SELECT resource_id, count(*), min(counter_volume), max(counter_volume), sum(counter_volume),
            avg(counter_volume), min(timestamp), max(timestamp)
     FROM (SELECT resource_id, counter_volume, timestamp FROM meter WHERE counter_name = ?1
           UNION ALL
           SELECT resource_id, counter_volume, timestamp FROM meter_recent WHERE counter_name = ?1)
     GROUP BY resource_id";

/// The hand-written query of a question and its parameters.
fn sql_of(path: &str) -> (&'static str, &'static [&'static str]) {
    if path == QA {
        (SQL_A, &["meter.3", "resource-42"])
    } else {
        (SQL_B, &["meter.3"])
    }
}

/// The rows of the hand-written query for `path`, as JSON arrays.
fn sql_rows(c: &rusqlite::Connection, path: &str) -> Vec<serde_json::Value> {
    use rusqlite::types::ValueRef;
    let (sql, params) = sql_of(path);
    let mut st = c.prepare_cached(sql).expect("prepare");
    let columns = st.column_count();
    st.query_map(rusqlite::params_from_iter(params.iter()), |row| {
        (0..columns)
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    ValueRef::Integer(n) => serde_json::json!(n),
                    ValueRef::Real(x) => serde_json::json!(x),
                    ValueRef::Text(t) => serde_json::json!(String::from_utf8_lossy(t)),
                    _ => serde_json::Value::Null,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(serde_json::Value::Array)
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

/// The hand-written query in process (the baseline).
fn sql(c: &rusqlite::Connection, path: &str) -> Duration {
    let t = Instant::now();
    let rows = sql_rows(c, path);
    let took = t.elapsed();
    if path == QA {
        assert!(!rows.is_empty());
    } else {
        assert_eq!(rows.len(), RESOURCES);
    }
    took
}

/// The same hand-written queries behind a bare HTTP handler on the same server stack
/// (axum on tokio): what answering over HTTP costs at the least, beside the API.
async fn serve_sql(file: &std::path::Path) -> String {
    let c = Arc::new(std::sync::Mutex::new(
        rusqlite::Connection::open(file).expect("open"),
    ));
    let handler = |path: &'static str| {
        let c = c.clone();
        move || async move {
            let c = c.lock().expect("connection");
            serde_json::Value::Array(sql_rows(&c, path)).to_string()
        }
    };
    let app = axum::Router::new()
        .route("/a", axum::routing::get(handler(QA)))
        .route("/b", axum::routing::get(handler(QB)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 7 } else { 3 };
    let sizes: Vec<usize> = match std::env::var("CEILO_BENCH_STATS_SIZES") {
        Ok(v) => v
            .split(',')
            .map(|n| n.trim().parse().expect("CEILO_BENCH_STATS_SIZES: sizes"))
            .collect(),
        Err(_) if full => vec![1_000_000, 10_000_000],
        Err(_) => vec![100_000],
    };
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    println!("\nstatistics latency, embedded store ({rounds} rounds, medians)");
    println!("| samples | question | hand-written SQL (baseline) | ceilo store call | ceilo API (HTTP) | API vs. baseline | store call vs. baseline | hand-written SQL over HTTP | API vs. SQL over HTTP |");
    println!("|--------:|----------|----:|----:|----:|----:|----:|----:|----:|");
    for n in sizes {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("stats.db");
        let url = format!("sqlite://{}", file.display());
        let store = rt.block_on(async {
            let store = storage::open(Some(&url), dir.path(), Retention::default())
                .await
                .expect("open");
            let t = Instant::now();
            load(store.as_ref(), n).await;
            eprintln!("loaded {n} samples in {:.0} s", t.elapsed().as_secs_f64());
            store
        });
        let (base, _stop) = rt.block_on(serve(store.clone()));
        let bare = rt.block_on(serve_sql(&file));
        let c = rusqlite::Connection::open(&file).expect("open");
        for (name, path, bare_path) in [
            ("(a) one resource, period 3600", QA, "/a"),
            ("(b) all resources, groupby resource_id", QB, "/b"),
        ] {
            // Warm all (page cache, statement caches, connections) before measuring.
            http(&agent, &format!("{base}{path}"));
            http(&agent, &format!("{bare}{bare_path}"));
            sql(&c, path);
            let q = store_query(path);
            let (mut ours, mut theirs, mut direct, mut over_http) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            // The one-resource question takes well under a millisecond: more rounds.
            let rounds = if path == QA { rounds * 15 } else { rounds };
            for _ in 0..rounds {
                ours.push(http(&agent, &format!("{base}{path}")));
                over_http.push(http(&agent, &format!("{bare}{bare_path}")));
                theirs.push(sql(&c, path));
                direct.push(rt.block_on(async {
                    let t = Instant::now();
                    let s = store.statistics(&q).await.expect("statistics");
                    assert!(!s.is_empty());
                    t.elapsed()
                }));
            }
            let (o, b, d, h) = (
                median(ours),
                median(theirs),
                median(direct),
                median(over_http),
            );
            println!(
                "| {n} | {name} | {} | {} | {} | {:.2}x | {:.2}x | {} | {:.2}x |",
                fmt(b),
                fmt(d),
                fmt(o),
                o.as_secs_f64() / b.as_secs_f64(),
                d.as_secs_f64() / b.as_secs_f64(),
                fmt(h),
                o.as_secs_f64() / h.as_secs_f64()
            );
        }
    }

    let Some(murl) = mongodb() else { return };
    let n = if full { 100_000 } else { 20_000 };
    let (base, _stop) = rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = storage::open(Some(&murl), dir.path(), Retention::default())
            .await
            .expect("open");
        load(store.as_ref(), n).await;
        serve(store).await
    });
    let coll = rt.block_on(async {
        let client = mongodb::Client::with_uri_str(&murl).await.expect("client");
        client
            .database(murl.rsplit('/').next().expect("db"))
            .collection::<Document>("meter")
    });
    let raw_a = || {
        rt.block_on(async {
            let t = Instant::now();
            let pipeline = [
                doc! { "$match": { "counter_name": "meter.3", "resource_id": "resource-42" } },
                doc! { "$group": { "_id": { "$floor": { "$divide": [{ "$subtract": ["$timestamp_us", t0().timestamp_micros()] }, 3_600_000_000_i64] } },
                    "count": { "$sum": 1 }, "min": { "$min": "$counter_volume" }, "max": { "$max": "$counter_volume" },
                    "sum": { "$sum": "$counter_volume" }, "avg": { "$avg": "$counter_volume" },
                    "tsmin": { "$min": "$timestamp_us" }, "tsmax": { "$max": "$timestamp_us" } } },
            ];
            let mut cur = coll.aggregate(pipeline).await.expect("aggregate");
            use futures_lite::StreamExt;
            while cur.next().await.is_some() {}
            t.elapsed()
        })
    };
    let raw_b = || {
        rt.block_on(async {
            let t = Instant::now();
            let pipeline = [
                doc! { "$match": { "counter_name": "meter.3" } },
                doc! { "$group": { "_id": "$resource_id",
                    "count": { "$sum": 1 }, "min": { "$min": "$counter_volume" }, "max": { "$max": "$counter_volume" },
                    "sum": { "$sum": "$counter_volume" }, "avg": { "$avg": "$counter_volume" },
                    "tsmin": { "$min": "$timestamp_us" }, "tsmax": { "$max": "$timestamp_us" } } },
            ];
            let mut cur = coll.aggregate(pipeline).await.expect("aggregate");
            use futures_lite::StreamExt;
            while cur.next().await.is_some() {}
            t.elapsed()
        })
    };
    println!("\nstatistics latency, MongoDB-wire server ({n} samples, {rounds} rounds, medians)");
    println!("| question | hand-written aggregation (baseline) | ceilo API | vs. baseline |");
    println!("|----------|------------------------------------:|----------:|-------------:|");
    for (name, path, raw) in [
        (
            "(a) one resource, period 3600",
            QA,
            &raw_a as &dyn Fn() -> Duration,
        ),
        ("(b) all resources, groupby resource_id", QB, &raw_b),
    ] {
        http(&agent, &format!("{base}{path}"));
        raw();
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            ours.push(http(&agent, &format!("{base}{path}")));
            theirs.push(raw());
        }
        let (o, b) = (median(ours), median(theirs));
        println!(
            "| {name} | {} | {} | {:.2}x |",
            fmt(b),
            fmt(o),
            o.as_secs_f64() / b.as_secs_f64()
        );
    }
}
