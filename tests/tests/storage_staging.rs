//! The embedded store's staged writes (`meter_recent`, merged into `meter` in series
//! order): a store that stages answers every question exactly as one that writes
//! straight into `meter`, dedupes across both tables, expires from both, keeps what
//! it staged across a reopen, and a schema 3 file gains the staging table on open.

use std::time::Duration;

use ceilo_host::storage::{
    Aggregate, CondValue, Condition, EmbeddedStore, Field, GroupBy, Op, Retention, SampleQuery,
    StatisticsQuery, Storage,
};
use ceilo_plugin_api::{Sample, SampleType};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

fn t0() -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600, 0).single().expect("time")
}

fn fixed_clock() -> DateTime<Utc> {
    t0() + chrono::Duration::days(1)
}

/// 3 meters × 7 resources (3 projects, 2 flavors) × 20 minutes, in time order, every
/// sample of a minute sharing its timestamp (so ties are broken by insertion order);
/// integer volumes, so sums do not depend on the order they are added in.
fn fixture() -> Vec<Sample> {
    let mut out = Vec::new();
    for minute in 0..20 {
        for r in 0..7 {
            for m in 0..3 {
                out.push(
                    Sample::new(
                        format!("meter.{m}"),
                        SampleType::Gauge,
                        if m == 2 { "B" } else { "%" },
                        ((minute * 7 + r * 3 + m) % 50) as f64,
                        format!("vm-{r}"),
                    )
                    .with_project_id(format!("p{}", r % 3))
                    .with_user_id(format!("u{}", r % 2))
                    .with_timestamp(t0() + chrono::Duration::minutes(minute))
                    .with_resource_metadata(
                        json!({"flavor": if r % 2 == 0 { "small" } else { "large" }}),
                    ),
                );
            }
        }
    }
    out
}

async fn open(path: &std::path::Path, staged: bool) -> EmbeddedStore {
    let store = EmbeddedStore::open(path, Retention(Some(Duration::from_secs(3600 * 48))))
        .await
        .expect("open")
        .with_clock(fixed_clock);
    if staged {
        // 40 samples straight into `meter`, then staged, merged every 50.
        store.with_staging(40, 50)
    } else {
        store.with_staging(u64::MAX, u64::MAX)
    }
}

async fn record_in_batches(store: &EmbeddedStore, samples: &[Sample]) -> (usize, usize) {
    let (mut stored, mut duplicates) = (0, 0);
    for batch in samples.chunks(10) {
        let o = store.record(batch).await.expect("record");
        stored += o.stored;
        duplicates += o.duplicates;
    }
    (stored, duplicates)
}

fn rows(path: &std::path::Path, table: &str) -> i64 {
    let c = rusqlite::Connection::open(path).expect("open file");
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

fn questions() -> Vec<SampleQuery> {
    let meter = |m: &str| SampleQuery {
        meter: Some(m.into()),
        ..SampleQuery::default()
    };
    vec![
        SampleQuery::default(),
        SampleQuery {
            limit: Some(5),
            ..SampleQuery::default()
        },
        SampleQuery {
            limit: Some(37),
            ..meter("meter.1")
        },
        SampleQuery {
            resource_id: Some("vm-3".into()),
            start: Some(t0() + chrono::Duration::minutes(4)),
            end: Some(t0() + chrono::Duration::minutes(17)),
            ..meter("meter.0")
        },
        SampleQuery {
            project_id: Some("p1".into()),
            conditions: vec![Condition {
                field: Field::Metadata("flavor".into()),
                op: Op::Eq,
                value: CondValue::Text("large".into()),
            }],
            ..SampleQuery::default()
        },
    ]
}

fn statistics_questions() -> Vec<StatisticsQuery> {
    let meter = |m: &str| SampleQuery {
        meter: Some(m.into()),
        ..SampleQuery::default()
    };
    vec![
        StatisticsQuery {
            filter: meter("meter.0"),
            ..StatisticsQuery::default()
        },
        StatisticsQuery {
            filter: SampleQuery {
                resource_id: Some("vm-2".into()),
                ..meter("meter.2")
            },
            period: Some(300),
            aggregates: vec![Aggregate::Stddev],
            ..StatisticsQuery::default()
        },
        StatisticsQuery {
            filter: meter("meter.1"),
            period: Some(600),
            groupby: vec![GroupBy::ResourceId, GroupBy::ProjectId],
            ..StatisticsQuery::default()
        },
        StatisticsQuery {
            filter: meter("meter.1"),
            groupby: vec![GroupBy::Metadata("flavor".into())],
            aggregates: vec![
                Aggregate::Cardinality(GroupBy::ResourceId),
                Aggregate::Cardinality(GroupBy::UserId),
            ],
            ..StatisticsQuery::default()
        },
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_staging_store_answers_as_one_writing_straight_into_meter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (direct_file, staged_file) = (dir.path().join("direct.db"), dir.path().join("staged.db"));
    let direct = open(&direct_file, false).await;
    let staged = open(&staged_file, true).await;
    let samples = fixture();
    assert_eq!(samples.len(), 420);
    assert_eq!(record_in_batches(&direct, &samples).await, (420, 0));
    assert_eq!(record_in_batches(&staged, &samples).await, (420, 0));
    // 40 direct, 380 staged in batches of 10: merged at every 50th, 30 still staged.
    assert_eq!(rows(&direct_file, "meter_recent"), 0);
    assert_eq!(
        (
            rows(&staged_file, "meter"),
            rows(&staged_file, "meter_recent")
        ),
        (390, 30)
    );
    for q in questions() {
        let (a, b) = (
            direct.samples(&q).await.expect("direct samples"),
            staged.samples(&q).await.expect("staged samples"),
        );
        assert!(!a.is_empty(), "{q:?} selects something");
        assert_eq!(a, b, "{q:?}");
    }
    for q in statistics_questions() {
        let (a, b) = (
            direct.statistics(&q).await.expect("direct statistics"),
            staged.statistics(&q).await.expect("staged statistics"),
        );
        assert!(!a.is_empty(), "{q:?} yields statistics");
        assert_eq!(a, b, "{q:?}");
    }
    // The newest first, ties in insertion order, across the two tables: the last
    // minute's 21 samples are all staged, the 5 newest are its first five.
    let newest = staged
        .samples(&SampleQuery {
            limit: Some(5),
            ..SampleQuery::default()
        })
        .await
        .expect("newest");
    let want: Vec<&Sample> = samples[399..404].iter().collect();
    let got: Vec<&Sample> = newest.iter().map(|s| &s.sample).collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sample_is_stored_once_whichever_table_holds_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("staged.db");
    let store = open(&file, true).await;
    let samples = fixture();
    record_in_batches(&store, &samples).await;
    // Replayed: the first 390 are in `meter`, the last 30 staged.
    assert_eq!(record_in_batches(&store, &samples).await, (0, 420));
    // A batch mixing a merged, a staged and a new sample.
    let new = Sample::new("meter.0", SampleType::Gauge, "%", 1.0, "vm-new")
        .with_timestamp(t0() + chrono::Duration::minutes(30));
    let o = store
        .record(&[samples[0].clone(), samples[419].clone(), new.clone()])
        .await
        .expect("record");
    assert_eq!((o.stored, o.duplicates), (1, 2));
    let all = store
        .samples(&SampleQuery::default())
        .await
        .expect("samples");
    assert_eq!(all.len(), 421);
    assert_eq!(all[0].sample, new);
}

#[tokio::test(flavor = "multi_thread")]
async fn staged_samples_survive_a_reopen_and_expire_with_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("staged.db");
    let samples = fixture();
    {
        let store = open(&file, true).await;
        record_in_batches(&store, &samples).await;
    }
    assert_eq!(rows(&file, "meter_recent"), 30);
    // Reopened (by a writer that has to find out what is staged): everything is
    // there, and the next batch goes on staging and merging.
    let store = open(&file, true).await;
    let all = store
        .samples(&SampleQuery::default())
        .await
        .expect("samples");
    assert_eq!(all.len(), 420);
    let later: Vec<Sample> = (0..20)
        .map(|i| {
            Sample::new("meter.0", SampleType::Gauge, "%", 1.0, format!("vm-{i}"))
                .with_timestamp(t0() + chrono::Duration::hours(30))
        })
        .collect();
    assert_eq!(record_in_batches(&store, &later).await, (20, 0));
    assert_eq!(
        (rows(&file, "meter"), rows(&file, "meter_recent")),
        (440, 0),
        "30 + 20 staged reached the merge size"
    );
    // Expire everything older than 48 h before t0 + 50 h: the fixture goes (from
    // both tables), the 20 later samples stay.
    let removed = store
        .expire(t0() + chrono::Duration::hours(50))
        .await
        .expect("expire");
    assert_eq!(removed, 420);
    let left = store
        .samples(&SampleQuery::default())
        .await
        .expect("samples");
    assert_eq!(left.len(), 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn expiry_reaches_staged_samples() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("staged.db");
    // Everything staged, nothing merged yet.
    let store = EmbeddedStore::open(&file, Retention(Some(Duration::from_secs(3600))))
        .await
        .expect("open")
        .with_staging(0, 1_000_000);
    let samples = fixture();
    record_in_batches(&store, &samples).await;
    assert_eq!(
        (rows(&file, "meter"), rows(&file, "meter_recent")),
        (0, 420)
    );
    let removed = store
        .expire(t0() + chrono::Duration::minutes(70))
        .await
        .expect("expire");
    assert_eq!(removed, 10 * 21, "minutes 0–9 are over an hour old");
    assert_eq!(rows(&file, "meter_recent"), 210);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_schema_3_file_gains_the_staging_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("old.db");
    let samples = fixture();
    {
        let store = open(&file, false).await;
        record_in_batches(&store, &samples[..100]).await;
    }
    let c = rusqlite::Connection::open(&file).expect("open");
    c.execute_batch("DROP TABLE meter_recent; PRAGMA user_version = 3;")
        .expect("schema 3");
    drop(c);
    let store = open(&file, true).await;
    let all = store
        .samples(&SampleQuery::default())
        .await
        .expect("samples");
    assert_eq!(all.len(), 100);
    // 100 rows are over the 40 to stage above: the rest is staged.
    assert_eq!(record_in_batches(&store, &samples[100..]).await, (320, 0));
    assert!(rows(&file, "meter_recent") > 0);
    let c = rusqlite::Connection::open(&file).expect("open");
    let version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, 4);
}
