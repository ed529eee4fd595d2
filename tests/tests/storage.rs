//! One storage suite, run against both stores: the embedded SQLite file and MongoDB
//! (the SecantusDB server `tests/run.sh` starts). Each test gets a fresh file or a
//! fresh database.

use std::time::Duration;

use ceilo_host::storage::{
    self, Aggregate, CondValue, Condition, Field, GroupBy, Op, ResourceQuery, Retention,
    SampleQuery, StatisticsQuery, Storage,
};
use ceilo_plugin_api::{Sample, SampleType};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

/// Where a test's store lives; reopening gives the same data.
use ceilo_tests::StorePlace as Place;

fn at(secs: i64, micros: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + secs, 0)
        .single()
        .expect("time")
        + chrono::Duration::microseconds(micros)
}

fn sample(meter: &str, resource: &str, t: DateTime<Utc>) -> Sample {
    Sample::new(meter, SampleType::Gauge, "%", 1.0, resource).with_timestamp(t)
}

fn all() -> SampleQuery {
    SampleQuery::default()
}

async fn write_and_read_back_every_field(place: Place) {
    let store = place.open(Retention::default()).await;
    let full = Sample::new("disk.read.bytes", SampleType::Cumulative, "B", 1234.5, "vm-1")
        .with_user_id("user-1")
        .with_project_id("project-1")
        .with_timestamp(at(10, 123_456))
        .with_resource_metadata(json!({"flavor": {"vcpus": 2, "name": "m1.small"}, "tags": ["a", 1, 2.5, null, true], "big": 9007199254740993_i64}))
        .with_source("openstack")
        .with_monotonic_time(42.25);
    let mut bare =
        Sample::new("memory", SampleType::Delta, "MB", -3.0, "vm-2").with_timestamp(at(5, 1));
    // Message ids other than canonical UUIDs come back exactly as written too.
    bare.set_message_id("6F9619FF-8B86-D011-B42D-00C04FC964FF");
    let before = Utc::now() - chrono::Duration::seconds(1);
    let outcome = store
        .record(&[full.clone(), bare.clone()])
        .await
        .expect("record");
    assert_eq!((outcome.stored, outcome.duplicates), (2, 0));
    let got = store.samples(&all()).await.expect("samples");
    assert_eq!(got.len(), 2);
    // Newest first, every field as written.
    assert_eq!(got[0].sample, full);
    assert_eq!(got[1].sample, bare);
    for g in &got {
        assert!(
            g.recorded_at >= before && g.recorded_at <= Utc::now() + chrono::Duration::seconds(1),
            "{:?}",
            g.recorded_at
        );
    }
    let one = store
        .samples(&SampleQuery {
            message_id: Some(full.message_id().into()),
            ..all()
        })
        .await
        .expect("by id");
    assert_eq!(one.len(), 1);
    assert_eq!(
        one[0].sample.metadata_value("flavor.name"),
        Some(json!("m1.small"))
    );
    let other = store
        .samples(&SampleQuery {
            message_id: Some(bare.message_id().into()),
            ..all()
        })
        .await
        .expect("by id");
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].sample, bare);
}

async fn queries_filter_sort_and_limit(place: Place) {
    let store = place.open(Retention::default()).await;
    let mut batch = Vec::new();
    for i in 0..10 {
        let p = if i % 2 == 0 { "even" } else { "odd" };
        batch.push(sample("cpu_util", &format!("r{}", i % 3), at(i, 0)).with_project_id(p));
    }
    batch.push(sample("memory", "r0", at(100, 0)));
    store.record(&batch).await.expect("record");
    let q = |f: SampleQuery| {
        let store = store.clone();
        async move { store.samples(&f).await.expect("query") }
    };
    let cpu = q(SampleQuery {
        meter: Some("cpu_util".into()),
        ..all()
    })
    .await;
    assert_eq!(cpu.len(), 10);
    let times: Vec<_> = cpu.iter().map(|s| s.sample.timestamp()).collect();
    let mut sorted = times.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(times, sorted, "newest first");
    let even = q(SampleQuery {
        project_id: Some("even".into()),
        ..all()
    })
    .await;
    assert_eq!(even.len(), 5);
    assert!(even.iter().all(|s| s.sample.project_id() == Some("even")));
    let r1 = q(SampleQuery {
        meter: Some("cpu_util".into()),
        resource_id: Some("r1".into()),
        ..all()
    })
    .await;
    assert_eq!(r1.len(), 3); // i = 1, 4, 7
    let window = q(SampleQuery {
        start: Some(at(3, 0)),
        end: Some(at(6, 0)),
        ..all()
    })
    .await;
    let secs: Vec<i64> = window
        .iter()
        .map(|s| s.sample.timestamp().timestamp() - at(0, 0).timestamp())
        .collect();
    assert_eq!(secs, vec![5, 4, 3], "start inclusive, end exclusive");
    let limited = q(SampleQuery {
        limit: Some(2),
        ..all()
    })
    .await;
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[0].sample.name(), "memory");
    assert!(q(SampleQuery {
        meter: Some("nothing".into()),
        ..all()
    })
    .await
    .is_empty());
}

async fn replayed_batch_is_stored_once(place: Place) {
    let store = place.open(Retention::default()).await;
    let batch: Vec<Sample> = (0..50).map(|i| sample("cpu", "r", at(i, 0))).collect();
    let first = store.record(&batch).await.expect("first");
    assert_eq!((first.stored, first.duplicates), (50, 0));
    let again = store.record(&batch).await.expect("replay");
    assert_eq!((again.stored, again.duplicates), (0, 50));
    // Half old, half new: the new half is stored, the rest counted as duplicates.
    let mut mixed: Vec<Sample> = batch[25..].to_vec();
    mixed.extend((50..75).map(|i| sample("cpu", "r", at(i, 0))));
    let m = store.record(&mixed).await.expect("mixed");
    assert_eq!((m.stored, m.duplicates), (25, 25));
    assert_eq!(store.samples(&all()).await.expect("all").len(), 75);
}

async fn samples_no_store_can_hold_are_refused_alone(place: Place) {
    let store = place.open(Retention::default()).await;
    let nul = sample("cpu", "poison", at(1, 0)).with_resource_metadata(json!({"a\u{0}b": 1}));
    let huge = sample("cpu", "poison", at(2, 0))
        .with_resource_metadata(json!({ "blob": "x".repeat(storage::MAX_DOCUMENT_BYTES) }));
    let good: Vec<Sample> = (0..3).map(|i| sample("cpu", "ok", at(10 + i, 0))).collect();
    let batch = vec![good[0].clone(), nul, good[1].clone(), huge, good[2].clone()];
    let out = store
        .record(&batch)
        .await
        .expect("a poison sample does not fail the batch");
    assert_eq!((out.stored, out.duplicates), (3, 0));
    let refused: Vec<usize> = out.refused.iter().map(|r| r.index).collect();
    assert_eq!(refused, vec![1, 3], "{:?}", out.refused);
    assert!(out.refused[0].reason.contains("NUL"), "{:?}", out.refused);
    assert!(
        out.refused[1].reason.contains("16777216"),
        "{:?}",
        out.refused
    );
    let mut ids: Vec<String> = store
        .samples(&all())
        .await
        .expect("all")
        .into_iter()
        .map(|s| s.sample.message_id().to_owned())
        .collect();
    ids.sort();
    let mut want: Vec<String> = good.iter().map(|s| s.message_id().to_owned()).collect();
    want.sort();
    assert_eq!(ids, want);
    // The refused samples' resource was not created either.
    let resources = store
        .resources(&ResourceQuery::default())
        .await
        .expect("resources");
    let names: Vec<&str> = resources.iter().map(|r| r.resource_id.as_str()).collect();
    assert_eq!(names, vec!["ok"]);
    // A batch of nothing but poison: refused, nothing else happens.
    let only = vec![sample("m", "p", at(3, 0)).with_resource_metadata(json!({"\u{0}": 0}))];
    let out = store.record(&only).await.expect("all refused");
    assert_eq!((out.stored, out.refused.len()), (0, 1));
}

async fn resources_move_outward_and_keep_the_newest_metadata(place: Place) {
    let store = place.open(Retention::default()).await;
    let newer = sample("cpu", "vm", at(100, 0))
        .with_project_id("p")
        .with_user_id("u-new")
        .with_resource_metadata(json!({"state": "active"}));
    store.record(&[newer]).await.expect("newer");
    // An older sample arriving later widens the range but does not win the metadata.
    let older = Sample::new("disk", SampleType::Cumulative, "B", 1.0, "vm")
        .with_timestamp(at(50, 0))
        .with_project_id("p")
        .with_user_id("u-old")
        .with_resource_metadata(json!({"state": "building"}));
    store.record(&[older]).await.expect("older");
    let middle = sample("cpu", "vm", at(75, 0))
        .with_project_id("p")
        .with_resource_metadata(json!({"state": "paused"}));
    store.record(&[middle]).await.expect("middle");
    let rs = store
        .resources(&ResourceQuery::default())
        .await
        .expect("resources");
    assert_eq!(rs.len(), 1);
    let r = &rs[0];
    assert_eq!(r.resource_id, "vm");
    assert_eq!(r.first_sample_timestamp, at(50, 0));
    assert_eq!(r.last_sample_timestamp, at(100, 0));
    assert_eq!(r.project_id.as_deref(), Some("p"));
    assert_eq!(r.user_id.as_deref(), Some("u-new"));
    assert_eq!(r.metadata.get("state"), Some(&json!("active")));
    let names: Vec<(&str, &str)> = r
        .meters
        .iter()
        .map(|m| (m.name.as_str(), m.sample_type.as_str()))
        .collect();
    assert_eq!(names, vec![("cpu", "gauge"), ("disk", "cumulative")]);
    // A newer sample takes over.
    let newest = sample("cpu", "vm", at(200, 0)).with_project_id("p");
    store.record(&[newest]).await.expect("newest");
    let r = store
        .resources(&ResourceQuery {
            resource_id: Some("vm".into()),
            ..Default::default()
        })
        .await
        .expect("one");
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].last_sample_timestamp, at(200, 0));
    assert_eq!(r[0].user_id, None);
    assert!(r[0].metadata.is_empty());
}

/// The same resource id in two projects is two resources: a later sample of project A
/// on B's resource id neither shows A anything of B's nor takes B's record over.
async fn resources_are_kept_per_project(place: Place) {
    let store = place.open(Retention::default()).await;
    let b = sample("b.secret.meter", "shared", at(10, 0))
        .with_project_id("B")
        .with_user_id("ub")
        .with_resource_metadata(json!({"owner": "b"}));
    let b_later = sample("b.secret.meter", "shared", at(20, 0)).with_project_id("B");
    store.record(&[b, b_later]).await.expect("B");
    // A writes later, twice: once in a batch of its own, once beside B's next sample.
    let a = sample("a.meter", "shared", at(100, 0))
        .with_project_id("A")
        .with_resource_metadata(json!({"owner": "a"}));
    store.record(&[a]).await.expect("A");
    let b_again = sample("b.secret.meter", "shared", at(30, 0))
        .with_project_id("B")
        .with_resource_metadata(json!({"owner": "b", "n": 3}));
    let a_again = sample("a.meter", "shared", at(110, 0)).with_project_id("A");
    store.record(&[a_again, b_again]).await.expect("both");

    let of = |p: &str| ResourceQuery {
        resource_id: Some("shared".into()),
        project_id: Some(p.into()),
        ..Default::default()
    };
    let rb = store.resources(&of("B")).await.expect("B's");
    assert_eq!(rb.len(), 1, "{rb:?}");
    let rb = &rb[0];
    assert_eq!(rb.project_id.as_deref(), Some("B"));
    assert_eq!(rb.user_id, None, "B's newest sample has no user");
    assert_eq!(rb.first_sample_timestamp, at(10, 0));
    assert_eq!(rb.last_sample_timestamp, at(30, 0));
    assert_eq!(rb.metadata.get("n"), Some(&json!(3)));
    let names: Vec<&str> = rb.meters.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["b.secret.meter"]);

    let ra = store.resources(&of("A")).await.expect("A's");
    assert_eq!(ra.len(), 1, "{ra:?}");
    let ra = &ra[0];
    assert_eq!(
        ra.first_sample_timestamp,
        at(100, 0),
        "not B's first sample"
    );
    assert_eq!(ra.last_sample_timestamp, at(110, 0));
    assert_eq!(ra.metadata.get("owner"), None, "A's newest has none");
    let names: Vec<&str> = ra.meters.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a.meter"], "B's meters do not leak to A");

    // Unconfined (an admin), both records, in project order.
    let both = store
        .resources(&ResourceQuery {
            resource_id: Some("shared".into()),
            ..Default::default()
        })
        .await
        .expect("both");
    let projects: Vec<Option<&str>> = both.iter().map(|r| r.project_id.as_deref()).collect();
    assert_eq!(projects, [Some("A"), Some("B")]);
    // A sample without a project is a resource of its own too.
    store
        .record(&[sample("m", "shared", at(200, 0))])
        .await
        .expect("no project");
    let all = store
        .resources(&ResourceQuery::default())
        .await
        .expect("all");
    assert_eq!(all.len(), 3);
    assert_eq!(store.resources(&of("B")).await.expect("B").len(), 1);
}

async fn metadata_keys_with_dots_and_dollars_come_back_as_given(place: Place) {
    let store = place.open(Retention::default()).await;
    let md = json!({"a.b": 1, "$where": "$not.a.path", "nested": {"c.d": {"$e": [{"f.g": true}]}}, "50%": "%2E"});
    let s = sample("m", "r", at(1, 0))
        .with_resource_metadata(md.clone())
        .with_project_id("$project");
    store
        .record(std::slice::from_ref(&s))
        .await
        .expect("record");
    let got = store.samples(&all()).await.expect("samples");
    assert_eq!(
        serde_json::Value::Object(got[0].sample.resource_metadata()),
        md
    );
    let rs = store
        .resources(&ResourceQuery::default())
        .await
        .expect("resources");
    assert_eq!(serde_json::Value::Object(rs[0].metadata.clone()), md);
    assert_eq!(rs[0].project_id.as_deref(), Some("$project"));
    assert_eq!(got[0].sample.project_id(), Some("$project"));
}

async fn retention_expires_old_samples_and_idle_resources(place: Place) {
    let store = place.open(Retention(Some(Duration::from_secs(3600)))).await;
    let now = at(10_000, 0);
    let old = sample("cpu", "idle-vm", now - chrono::Duration::hours(2));
    let old_busy = sample("cpu", "busy-vm", now - chrono::Duration::hours(3));
    let fresh = sample("cpu", "busy-vm", now - chrono::Duration::minutes(10));
    store
        .record(&[old, old_busy, fresh.clone()])
        .await
        .expect("record");
    let removed = store.expire(now).await.expect("expire");
    assert_eq!(removed, 2);
    let left = store.samples(&all()).await.expect("samples");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].sample, fresh);
    let rs = store
        .resources(&ResourceQuery::default())
        .await
        .expect("resources");
    let ids: Vec<&str> = rs.iter().map(|r| r.resource_id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["busy-vm"],
        "the idle resource expires with its samples"
    );
    // No retention: nothing expires.
    drop(store);
    let keep = place.open(Retention(None)).await;
    assert_eq!(
        keep.expire(now + chrono::Duration::days(365))
            .await
            .expect("expire"),
        0
    );
}

/// Hand-computed statistics over a fixed fixture: r1 (project p1, flavor small) has
/// 10, 20, 30 at t0, t0+30 s, t0+70 s; r2 (p2, large) has 40, 50 at t0+10 s, t0+80 s.
async fn statistics_are_computed_by_the_store(place: Place) {
    let store = place.open(Retention::default()).await;
    let t0 = at(1_000, 0);
    let s = |v: f64, r: &str, p: &str, flavor: &str, secs: i64| {
        Sample::new("cpu_util", SampleType::Gauge, "%", v, r)
            .with_project_id(p)
            .with_timestamp(t0 + chrono::Duration::seconds(secs))
            .with_resource_metadata(json!({"flavor": {"name": flavor}}))
    };
    store
        .record(&[
            s(10.0, "r1", "p1", "small", 0),
            s(20.0, "r1", "p1", "small", 30),
            s(30.0, "r1", "p1", "small", 70),
            s(40.0, "r2", "p2", "large", 10),
            s(50.0, "r2", "p2", "large", 80),
            sample("other", "r1", t0),
        ])
        .await
        .expect("record");
    let cpu = SampleQuery {
        meter: Some("cpu_util".into()),
        ..all()
    };
    let stats = |q: StatisticsQuery| {
        let store = store.clone();
        async move { store.statistics(&q).await.expect("statistics") }
    };
    let secs = |n: i64| t0 + chrono::Duration::seconds(n);

    // One period over everything.
    let all_of = stats(StatisticsQuery {
        filter: cpu.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(all_of.len(), 1);
    let a = &all_of[0];
    assert_eq!(
        (a.count, a.min, a.max, a.sum, a.avg),
        (5, 10.0, 50.0, 150.0, 30.0)
    );
    assert_eq!(a.unit, "%");
    assert_eq!(
        (a.duration_start, a.duration_end, a.duration()),
        (t0, secs(80), 80.0)
    );
    assert_eq!((a.period, a.period_start, a.period_end), (0, t0, secs(80)));
    assert_eq!(a.groupby, None);

    // Periods of 60 s from the first sample.
    let p = stats(StatisticsQuery {
        filter: cpu.clone(),
        period: Some(60),
        ..Default::default()
    })
    .await;
    assert_eq!(p.len(), 2);
    assert_eq!(
        (p[0].count, p[0].min, p[0].max, p[0].sum),
        (3, 10.0, 40.0, 70.0)
    );
    assert!((p[0].avg - 70.0 / 3.0).abs() < 1e-9);
    assert_eq!(
        (p[0].period, p[0].period_start, p[0].period_end),
        (60, t0, secs(60))
    );
    assert_eq!((p[0].duration_start, p[0].duration_end), (t0, secs(30)));
    assert_eq!((p[1].count, p[1].sum, p[1].avg), (2, 80.0, 40.0));
    assert_eq!((p[1].period_start, p[1].period_end), (secs(60), secs(120)));
    assert_eq!(
        (p[1].duration_start, p[1].duration_end),
        (secs(70), secs(80))
    );

    // Periods aligned to the query's start, 30 s before the first sample.
    let aligned = stats(StatisticsQuery {
        filter: SampleQuery {
            start: Some(secs(-30)),
            ..cpu.clone()
        },
        period: Some(60),
        ..Default::default()
    })
    .await;
    let got: Vec<_> = aligned
        .iter()
        .map(|s| (s.period_start, s.count, s.sum))
        .collect();
    assert_eq!(got, vec![(secs(-30), 2, 50.0), (secs(30), 3, 100.0)]);

    // Grouped by resource, and by a metadata path.
    let by_resource = stats(StatisticsQuery {
        filter: cpu.clone(),
        groupby: vec![GroupBy::ResourceId],
        ..Default::default()
    })
    .await;
    let got: Vec<_> = by_resource
        .iter()
        .map(|s| {
            (
                s.groupby.clone().unwrap()["resource_id"].clone(),
                s.count,
                s.sum,
                s.avg,
                s.min,
                s.max,
            )
        })
        .collect();
    // Without a period every row starts where the first sample is, and the group
    // whose first sample is newest comes first (Ceilometer's MongoDB order).
    assert_eq!(
        got,
        vec![
            (json!("r2"), 2, 90.0, 45.0, 40.0, 50.0),
            (json!("r1"), 3, 60.0, 20.0, 10.0, 30.0)
        ]
    );
    assert!(
        by_resource
            .iter()
            .all(|s| s.period_start == by_resource[1].duration_start),
        "{by_resource:?}"
    );
    let by_flavor = stats(StatisticsQuery {
        filter: cpu.clone(),
        groupby: vec![
            GroupBy::parse("resource_metadata.flavor.name").unwrap(),
            GroupBy::ProjectId,
        ],
        ..Default::default()
    })
    .await;
    // r2 (large) was first measured after r1 (small): it comes first.
    let got: Vec<_> = by_flavor
        .iter()
        .map(|s| {
            let g = s.groupby.clone().unwrap();
            (
                g["resource_metadata.flavor.name"].clone(),
                g["project_id"].clone(),
                s.count,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (json!("large"), json!("p2"), 2),
            (json!("small"), json!("p1"), 3)
        ]
    );

    // Periods and groups together.
    let both = stats(StatisticsQuery {
        filter: cpu.clone(),
        period: Some(60),
        groupby: vec![GroupBy::ResourceId],
        ..Default::default()
    })
    .await;
    // In each period, the group first measured latest in it first.
    let got: Vec<_> = both
        .iter()
        .map(|s| {
            (
                s.period_start,
                s.groupby.clone().unwrap()["resource_id"].clone(),
                s.count,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (t0, json!("r2"), 1),
            (t0, json!("r1"), 2),
            (secs(60), json!("r2"), 1),
            (secs(60), json!("r1"), 1)
        ]
    );

    // Selectable aggregates: population stddev of 10..50 is sqrt(200).
    let agg = stats(StatisticsQuery {
        filter: cpu.clone(),
        aggregates: vec![
            Aggregate::Stddev,
            Aggregate::parse("cardinality", Some("resource_id")).unwrap(),
            Aggregate::parse("cardinality", Some("project_id")).unwrap(),
        ],
        ..Default::default()
    })
    .await;
    assert!(
        (agg[0].aggregate["stddev"] - 200f64.sqrt()).abs() < 1e-9,
        "{:?}",
        agg[0].aggregate
    );
    assert_eq!(agg[0].aggregate["cardinality/resource_id"], 2.0);
    assert_eq!(agg[0].aggregate["cardinality/project_id"], 2.0);

    // Filters apply; nothing matching is no statistics at all.
    let p1 = stats(StatisticsQuery {
        filter: SampleQuery {
            project_id: Some("p1".into()),
            ..cpu.clone()
        },
        ..Default::default()
    })
    .await;
    assert_eq!((p1.len(), p1[0].count, p1[0].sum), (1, 3, 60.0));
    let none = stats(StatisticsQuery {
        filter: SampleQuery {
            meter: Some("nothing".into()),
            ..all()
        },
        period: Some(60),
        ..Default::default()
    })
    .await;
    assert!(none.is_empty());

    // A meter recorded in two units: one row per unit, as Ceilometer reports.
    store
        .record(&[
            Sample::new("mixed", SampleType::Gauge, "%", 1.0, "r1").with_timestamp(t0),
            Sample::new("mixed", SampleType::Gauge, "ratio", 0.5, "r1").with_timestamp(secs(1)),
            Sample::new("mixed", SampleType::Gauge, "%", 3.0, "r1").with_timestamp(secs(2)),
        ])
        .await
        .expect("record");
    let mut units: Vec<(String, u64, f64)> = stats(StatisticsQuery {
        filter: SampleQuery {
            meter: Some("mixed".into()),
            ..all()
        },
        groupby: vec![GroupBy::ResourceId],
        ..Default::default()
    })
    .await
    .into_iter()
    .map(|s| (s.unit, s.count, s.sum))
    .collect();
    units.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(units, vec![("%".into(), 2, 4.0), ("ratio".into(), 1, 0.5)]);
}

async fn conditions_compare_fields_and_metadata(place: Place) {
    let store = place.open(Retention::default()).await;
    let mut batch = Vec::new();
    for i in 0..6 {
        batch.push(
            Sample::new("m", SampleType::Gauge, "B", i as f64 * 10.0, format!("r{i}"))
                .with_timestamp(at(i, 0))
                .with_project_id(if i < 3 { "a" } else { "b" })
                .with_resource_metadata(json!({"flavor": {"vcpus": i % 3, "name": format!("f{}", i % 2)}, "on": i % 2 == 0, "x.y": "dotted"})),
        );
    }
    store.record(&batch).await.expect("record");
    let ids = |conditions: Vec<Condition>| {
        let store = store.clone();
        async move {
            let mut v: Vec<String> = store
                .samples(&SampleQuery {
                    conditions,
                    ..all()
                })
                .await
                .expect("query")
                .into_iter()
                .map(|s| s.sample.resource_id().to_owned())
                .collect();
            v.sort();
            v
        }
    };
    let c = |field: Field, op: &str, value: CondValue| Condition {
        field,
        op: Op::parse(op).unwrap(),
        value,
    };
    assert_eq!(
        ids(vec![c(Field::Volume, "ge", CondValue::Number(30.0))]).await,
        vec!["r3", "r4", "r5"]
    );
    assert_eq!(
        ids(vec![c(Field::Volume, "lt", CondValue::Number(10.0))]).await,
        vec!["r0"]
    );
    assert_eq!(
        ids(vec![c(Field::ProjectId, "ne", CondValue::Text("a".into()))]).await,
        vec!["r3", "r4", "r5"]
    );
    assert_eq!(
        ids(vec![
            c(Field::Timestamp, "gt", CondValue::Time(at(3, 0))),
            c(Field::Timestamp, "le", CondValue::Time(at(5, 0)))
        ])
        .await,
        vec!["r4", "r5"]
    );
    let md = |p: &str| Field::Metadata(p.into());
    assert_eq!(
        ids(vec![c(md("flavor.vcpus"), "eq", CondValue::Number(2.0))]).await,
        vec!["r2", "r5"]
    );
    assert_eq!(
        ids(vec![c(
            md("flavor.name"),
            "eq",
            CondValue::Text("f1".into())
        )])
        .await,
        vec!["r1", "r3", "r5"]
    );
    assert_eq!(
        ids(vec![c(md("on"), "eq", CondValue::Bool(true))]).await,
        vec!["r0", "r2", "r4"]
    );
    assert_eq!(
        ids(vec![
            c(md("flavor.vcpus"), "ge", CondValue::Number(1.0)),
            c(Field::ProjectId, "eq", CondValue::Text("b".into()))
        ])
        .await,
        vec!["r4", "r5"]
    );
    assert!(
        ids(vec![c(md("missing"), "eq", CondValue::Text("x".into()))])
            .await
            .is_empty()
    );
}

ceilo_tests::store_suite!(
    write_and_read_back_every_field,
    queries_filter_sort_and_limit,
    replayed_batch_is_stored_once,
    samples_no_store_can_hold_are_refused_alone,
    resources_move_outward_and_keep_the_newest_metadata,
    resources_are_kept_per_project,
    metadata_keys_with_dots_and_dollars_come_back_as_given,
    retention_expires_old_samples_and_idle_resources,
    statistics_are_computed_by_the_store,
    conditions_compare_fields_and_metadata,
);

mod mongodb_only {
    use super::*;

    /// TLS to MongoDB: the driver's own `tls=true&tlsCAFile=` options, through
    /// rustls, against a SecantusDB server serving a certificate the test makes.
    #[tokio::test(flavor = "multi_thread")]
    async fn tls_with_a_certificate_the_test_makes() {
        let Some(program) = ceilo_tests::secantusd() else {
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("params")
                .self_signed(&key)
                .expect("cert");
        let (cert_file, key_file) = (dir.path().join("db.crt"), dir.path().join("db.key"));
        std::fs::write(&cert_file, cert.pem()).expect("cert");
        std::fs::write(&key_file, key.serialize_pem()).expect("key");
        let server = ceilo_tests::OwnMongo::start_with(
            program,
            &[
                "--tls-cert-file".as_ref(),
                cert_file.as_os_str(),
                "--tls-key-file".as_ref(),
                key_file.as_os_str(),
            ],
        );
        let url = format!(
            "mongodb://localhost:{}/ceilo_tls?tls=true&tlsCAFile={}",
            server.port,
            cert_file.display()
        );
        let store = storage::open(Some(&url), dir.path(), Retention::default())
            .await
            .expect("open over TLS");
        let s = sample("cpu", "r", at(0, 0));
        assert_eq!(
            store
                .record(std::slice::from_ref(&s))
                .await
                .expect("write")
                .stored,
            1
        );
        let back = store.samples(&all()).await.expect("read");
        assert_eq!(back[0].sample.message_id(), s.message_id());
        // Plain text to the TLS port does not get through.
        let plain = format!("mongodb://localhost:{}/ceilo_tls", server.port);
        assert!(
            storage::open(Some(&plain), dir.path(), Retention::default())
                .await
                .is_err()
        );
    }
    use ::mongodb::bson::{doc, Document};

    async fn ttl(url: &str, coll: &str, name: &str) -> Option<i64> {
        let client = ::mongodb::Client::with_uri_str(url).await.expect("client");
        let db = url.rsplit('/').next().expect("db");
        let mut cursor = client
            .database(db)
            .collection::<Document>(coll)
            .list_indexes()
            .await
            .expect("indexes");
        use futures_lite::StreamExt;
        while let Some(ix) = cursor.next().await {
            let ix = ix.expect("index");
            let o = ix.options.expect("options");
            if o.name.as_deref() == Some(name) {
                return Some(o.expire_after.map(|d| d.as_secs() as i64).unwrap_or(-1));
            }
        }
        None
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn retention_is_a_ttl_index_changeable_at_restart() {
        let Some(place) = Place::mongo() else { return };
        let url = place.url.clone().expect("url");
        place
            .open(Retention(Some(Duration::from_secs(86_400))))
            .await;
        assert_eq!(ttl(&url, "meter", "meter_ttl").await, Some(86_400));
        assert_eq!(ttl(&url, "resource", "resource_ttl").await, Some(86_400));
        // Opening again with the same retention is a no-op; another one changes it.
        place
            .open(Retention(Some(Duration::from_secs(86_400))))
            .await;
        place
            .open(Retention(Some(Duration::from_secs(7_200))))
            .await;
        assert_eq!(ttl(&url, "meter", "meter_ttl").await, Some(7_200));
        assert_eq!(ttl(&url, "resource", "resource_ttl").await, Some(7_200));
        place.open(Retention(None)).await;
        assert_eq!(ttl(&url, "meter", "meter_ttl").await, None);
        assert_eq!(ttl(&url, "resource", "resource_ttl").await, None);
        // The unique index on message_id is there whatever the retention.
        let client = ::mongodb::Client::with_uri_str(&url).await.expect("client");
        let db = url.rsplit('/').next().expect("db");
        let names = client
            .database(db)
            .collection::<Document>("meter")
            .list_index_names()
            .await
            .expect("names");
        assert!(names.contains(&"meter_message_id".to_string()), "{names:?}");
    }

    async fn resource_collection(url: &str) -> ::mongodb::Collection<Document> {
        let client = ::mongodb::Client::with_uri_str(url).await.expect("client");
        client
            .database(url.rsplit('/').next().expect("db"))
            .collection::<Document>("resource")
    }

    /// Each resource's id, project and meter names.
    fn names(rs: &[storage::Resource]) -> Vec<(&str, Option<&str>, Vec<&str>)> {
        rs.iter()
            .map(|r| {
                (
                    r.resource_id.as_str(),
                    r.project_id.as_deref(),
                    r.meters.iter().map(|m| m.name.as_str()).collect(),
                )
            })
            .collect()
    }

    /// Records one sample of `meter` on resource `r` of project `p`.
    async fn record_in_p(store: &dyn storage::Storage, meter: &str, r: &str, t: DateTime<Utc>) {
        store
            .record(&[sample(meter, r, t).with_project_id("p")])
            .await
            .expect("record");
    }

    /// Resource records are found by a unique index on (resource_id, project_id):
    /// the server refuses a second record of the same pair.
    #[tokio::test(flavor = "multi_thread")]
    async fn resource_records_have_a_unique_key() {
        let Some(place) = Place::mongo() else { return };
        let url = place.url.clone().expect("url");
        let store = place.open(Retention::default()).await;
        record_in_p(&*store, "cpu", "r1", at(0, 0)).await;
        let coll = resource_collection(&url).await;
        let mut cursor = coll.list_indexes().await.expect("indexes");
        use futures_lite::StreamExt;
        let mut key = None;
        while let Some(ix) = cursor.next().await {
            let ix = ix.expect("index");
            let o = ix.options.clone().expect("options");
            if o.name.as_deref() == Some("resource_key") {
                key = Some((ix.keys, o.unique));
            }
        }
        assert_eq!(
            key,
            Some((doc! { "resource_id": 1, "project_id": 1 }, Some(true)))
        );
        let again = coll
            .insert_one(doc! { "resource_id": "r1", "project_id": "p" })
            .await;
        assert!(again.is_err(), "a second record of (r1, p) was accepted");
    }

    /// The single-field `resource_id` index of earlier versions is dropped when the
    /// store opens (the unique key's first field serves its queries), and a resource
    /// is still found by its id alone.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_redundant_resource_id_index_is_dropped() {
        let Some(place) = Place::mongo() else { return };
        let url = place.url.clone().expect("url");
        let store = place.open(Retention::default()).await;
        record_in_p(&*store, "cpu", "r1", at(0, 0)).await;
        record_in_p(&*store, "cpu", "r2", at(0, 1)).await;
        drop(store);
        let coll = resource_collection(&url).await;
        let legacy = ::mongodb::IndexModel::builder()
            .keys(doc! { "resource_id": 1 })
            .options(
                ::mongodb::options::IndexOptions::builder()
                    .name("resource_id".to_owned())
                    .build(),
            )
            .build();
        coll.create_index(legacy).await.expect("legacy index");
        let store = place.open(Retention::default()).await;
        let indexes = coll.list_index_names().await.expect("names");
        assert!(!indexes.contains(&"resource_id".to_owned()), "{indexes:?}");
        assert!(indexes.contains(&"resource_key".to_owned()), "{indexes:?}");
        assert!(
            indexes.contains(&"resource_project".to_owned()),
            "{indexes:?}"
        );
        let found = store
            .resources(&storage::ResourceQuery {
                resource_id: Some("r2".into()),
                ..Default::default()
            })
            .await
            .expect("resources");
        assert_eq!(names(&found), vec![("r2", Some("p"), vec!["cpu"])]);
    }

    /// Two records of one (resource, project) — left by a writer without the unique
    /// key — stop the store from opening with an error saying what to do, not the
    /// server's raw reply.
    #[tokio::test(flavor = "multi_thread")]
    async fn duplicate_records_are_named_with_the_fix() {
        let Some(place) = Place::mongo() else { return };
        let url = place.url.clone().expect("url");
        place.open(Retention::default()).await;
        let coll = resource_collection(&url).await;
        coll.drop_index("resource_key").await.expect("drop key");
        for last in [10, 20] {
            coll.insert_one(doc! { "resource_id": "twice", "project_id": "p", "last_us": last })
                .await
                .expect("insert");
        }
        let Err(e) = storage::open(Some(&url), place.dir.path(), Retention::default()).await else {
            panic!("opened with two records of (twice, p)");
        };
        let text = e.to_string();
        assert!(
            text.contains("two documents have the same resource_id and project_id"),
            "{text}"
        );
        assert!(
            text.contains("keep the one of each pair with the newest `last_us`"),
            "{text}"
        );
        assert!(text.len() < 800, "{} characters: {text}", text.len());
    }

    /// Records written by the previous version (`_id` the pair as a document) are
    /// found and merged into, never duplicated.
    #[tokio::test(flavor = "multi_thread")]
    async fn records_keyed_by_a_document_id_are_merged_into() {
        let Some(place) = Place::mongo() else { return };
        let url = place.url.clone().expect("url");
        place.open(Retention::default()).await;
        let coll = resource_collection(&url).await;
        coll.insert_one(doc! {
            "_id": { "resource_id": "old", "project_id": "p" },
            "resource_id": "old", "project_id": "p", "source": "ceilo", "user_id": "u0",
            "first_us": at(10, 0).timestamp_micros(), "last_us": at(20, 0).timestamp_micros(),
            "latest_us": at(20, 0).timestamp_micros(),
            "meter": [{"counter_name": "a.meter", "counter_type": "gauge", "counter_unit": "%"}],
            "metadata": { "v": 1 },
        })
        .await
        .expect("previous layout");
        // Opened again, as after an upgrade: this process has not seen `old`.
        let store = place.open(Retention::default()).await;
        store
            .record(&[
                sample("b.meter", "old", at(30, 0))
                    .with_project_id("p")
                    .with_resource_metadata(json!({"v": 2})),
                sample("b.meter", "old", at(5, 0)).with_project_id("p"),
            ])
            .await
            .expect("record");
        let rs = store
            .resources(&ResourceQuery::default())
            .await
            .expect("resources");
        assert_eq!(names(&rs), [("old", Some("p"), vec!["a.meter", "b.meter"])]);
        assert_eq!(rs[0].first_sample_timestamp, at(5, 0));
        assert_eq!(rs[0].last_sample_timestamp, at(30, 0));
        assert_eq!(rs[0].metadata.get("v"), Some(&json!(2)));
        assert_eq!(
            coll.count_documents(doc! {}).await.expect("count"),
            1,
            "merged into the existing record"
        );
    }

    /// A record removed behind the store's back (a TTL index, another process's
    /// expiry) after this process wrote it is created whole again by the next batch.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_record_removed_meanwhile_is_created_again() {
        let Some(place) = Place::mongo() else { return };
        let url = place.url.clone().expect("url");
        let store = place.open(Retention::default()).await;
        record_in_p(&*store, "cpu", "r", at(0, 0)).await;
        resource_collection(&url)
            .await
            .delete_many(doc! {})
            .await
            .expect("remove");
        store
            .record(&[sample("mem", "r", at(60, 0))
                .with_project_id("p")
                .with_user_id("u")
                .with_resource_metadata(json!({"k": "v"}))])
            .await
            .expect("record");
        let rs = store
            .resources(&ResourceQuery::default())
            .await
            .expect("resources");
        assert_eq!(names(&rs), [("r", Some("p"), vec!["mem"])]);
        assert_eq!(rs[0].first_sample_timestamp, at(60, 0));
        assert_eq!(rs[0].user_id.as_deref(), Some("u"));
        assert_eq!(rs[0].metadata.get("k"), Some(&json!("v")));
    }

    /// A record this process knows moves forward by a short statement only while it
    /// is as this process left it: another writer's newer sample (or newer metadata
    /// under an older one) is merged by the rules, never overwritten or kept wrongly.
    #[tokio::test(flavor = "multi_thread")]
    async fn another_writers_changes_are_merged_not_overwritten() {
        let Some(place) = Place::mongo() else { return };
        let (a, b) = (
            place.open(Retention::default()).await,
            place.open(Retention::default()).await,
        );
        let with = |t: DateTime<Utc>, m: &str| {
            sample("cpu", "r", t)
                .with_project_id("p")
                .with_resource_metadata(json!({ "by": m }))
        };
        a.record(&[with(at(0, 0), "a")]).await.expect("record");
        a.record(&[with(at(10, 0), "a")]).await.expect("record");
        // B writes metadata of its own, newer than A's so far.
        b.record(&[with(at(20, 0), "b")]).await.expect("record");
        // A's next sample is newer still, with A's metadata: A's must win.
        a.record(&[with(at(30, 0), "a")]).await.expect("record");
        let rs = a
            .resources(&ResourceQuery::default())
            .await
            .expect("resources");
        assert_eq!(rs.len(), 1);
        assert_eq!(rs[0].metadata.get("by"), Some(&json!("a")));
        assert_eq!(rs[0].last_sample_timestamp, at(30, 0));
        // B then records a sample newer than A's next one: A's older one moves nothing
        // but its meter set, and B's metadata stays.
        b.record(&[with(at(50, 0), "b")]).await.expect("record");
        a.record(&[with(at(40, 0), "a")]).await.expect("record");
        let rs = a
            .resources(&ResourceQuery::default())
            .await
            .expect("resources");
        assert_eq!(rs[0].metadata.get("by"), Some(&json!("b")));
        assert_eq!(
            (rs[0].first_sample_timestamp, rs[0].last_sample_timestamp),
            (at(0, 0), at(50, 0))
        );
    }

    /// A record removed and made again by another writer is not the record this
    /// process knew: its next batch merges (the meters it had written come back)
    /// instead of only moving the new record's time forward.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_record_made_again_by_another_writer_gets_every_meter() {
        let Some(place) = Place::mongo() else { return };
        let url = place.url.clone().expect("url");
        let (a, b) = (
            place.open(Retention::default()).await,
            place.open(Retention::default()).await,
        );
        record_in_p(&*a, "cpu", "r", at(0, 0)).await;
        resource_collection(&url)
            .await
            .delete_many(doc! {})
            .await
            .expect("remove");
        record_in_p(&*b, "mem", "r", at(10, 0)).await;
        record_in_p(&*a, "cpu", "r", at(20, 0)).await;
        let rs = a
            .resources(&ResourceQuery::default())
            .await
            .expect("resources");
        assert_eq!(names(&rs), [("r", Some("p"), vec!["cpu", "mem"])]);
        assert_eq!(
            (rs[0].first_sample_timestamp, rs[0].last_sample_timestamp),
            (at(10, 0), at(20, 0))
        );
    }

    /// Writers (collectors on one database) recording the same new resources at
    /// once: one record per (resource, project), holding every writer's meters and
    /// the whole time range, whoever inserted it first.
    #[tokio::test(flavor = "multi_thread")]
    async fn writers_creating_the_same_resources_make_one_record_each() {
        const WRITERS: i64 = 4;
        const ROUNDS: usize = 10;
        let Some(place) = Place::mongo() else { return };
        let mut stores = Vec::new();
        for _ in 0..WRITERS {
            stores.push(place.open(Retention::default()).await);
        }
        for round in 0..ROUNDS {
            let mut writers = Vec::new();
            for (store, w) in stores.iter().zip(0..WRITERS) {
                let batch: Vec<Sample> = (0..40)
                    .map(|i| {
                        sample(
                            &format!("m{w}"),
                            &format!("r{round}-{}", i % 20),
                            at(w * 1_000 + i, 0),
                        )
                        .with_project_id(format!("p{}", i % 2))
                    })
                    .collect();
                let store = store.clone();
                writers.push(tokio::spawn(async move { store.record(&batch).await }));
            }
            for w in writers {
                w.await.expect("join").expect("writer");
            }
        }
        let rs = stores[0]
            .resources(&ResourceQuery::default())
            .await
            .expect("resources");
        assert_eq!(rs.len(), ROUNDS * 20, "one record per (resource, project)");
        let every: Vec<String> = (0..WRITERS).map(|w| format!("m{w}")).collect();
        for r in &rs {
            assert_eq!(
                r.meters.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
                every,
                "{}",
                r.resource_id
            );
            assert!(r.first_sample_timestamp < at(1_000, 0), "{}", r.resource_id);
            assert!(
                r.last_sample_timestamp >= at((WRITERS - 1) * 1_000, 0),
                "{}",
                r.resource_id
            );
        }
    }

    /// The server's own TTL monitor (every 60 s in mongod) removes expired samples
    /// without ceilo sweeping.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_servers_ttl_monitor_expires_samples() {
        let Some(place) = Place::mongo() else { return };
        let store = place.open(Retention(Some(Duration::from_secs(60)))).await;
        let old = sample("cpu", "r", Utc::now() - chrono::Duration::hours(1));
        let fresh = sample("cpu", "r", Utc::now() + chrono::Duration::hours(1));
        store.record(&[old, fresh.clone()]).await.expect("record");
        let deadline = std::time::Instant::now() + Duration::from_secs(150);
        loop {
            let left = store.samples(&all()).await.expect("samples");
            if left.len() == 1 {
                assert_eq!(left[0].sample, fresh);
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the TTL index did not expire the old sample within 150 s"
            );
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
}

/// Stores written before resources were keyed by project are rebuilt from their
/// samples on open: each project gets back its own record, with only its meters.
mod rekeyed_on_upgrade {
    use super::*;

    fn shared_by_two_projects() -> Vec<Sample> {
        vec![
            sample("b.meter", "shared", at(10, 0))
                .with_project_id("B")
                .with_resource_metadata(json!({"owner": "b"})),
            sample("b.meter", "shared", at(20, 0))
                .with_project_id("B")
                .with_resource_metadata(json!({"owner": "b", "n": 2})),
            sample("a.meter", "shared", at(100, 0)).with_project_id("A"),
        ]
    }

    async fn assert_rebuilt(store: &dyn Storage) {
        let rs = store
            .resources(&ResourceQuery::default())
            .await
            .expect("resources");
        let got: Vec<(Option<&str>, i64, i64, Vec<&str>)> = rs
            .iter()
            .map(|r| {
                (
                    r.project_id.as_deref(),
                    r.first_sample_timestamp.timestamp() - at(0, 0).timestamp(),
                    r.last_sample_timestamp.timestamp() - at(0, 0).timestamp(),
                    r.meters.iter().map(|m| m.name.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (Some("A"), 100, 100, vec!["a.meter"]),
                (Some("B"), 10, 20, vec!["b.meter"]),
            ]
        );
        assert_eq!(rs[1].metadata.get("n"), Some(&json!(2)), "B's newest wins");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn embedded_schema_2() {
        let place = Place::embedded();
        let file = place.dir.path().join("ceilo.db");
        {
            // Write the samples, then turn the file back into schema 2: one resource
            // row per id (A's, having the newest sample) holding both projects' meters.
            let store = place.open(Retention::default()).await;
            store
                .record(&shared_by_two_projects())
                .await
                .expect("record");
        }
        let c = rusqlite::Connection::open(&file).expect("open");
        c.execute_batch(
            "DROP TABLE resource; DROP TABLE resource_meter;
             CREATE TABLE resource (resource_id TEXT PRIMARY KEY, project_id TEXT, user_id TEXT,
                 source TEXT NOT NULL, first_sample_timestamp INTEGER NOT NULL,
                 last_sample_timestamp INTEGER NOT NULL, metadata TEXT NOT NULL) WITHOUT ROWID;
             CREATE TABLE resource_meter (resource_id TEXT NOT NULL, counter_name TEXT NOT NULL,
                 counter_type TEXT NOT NULL, counter_unit TEXT NOT NULL,
                 PRIMARY KEY (resource_id, counter_name, counter_type, counter_unit)) WITHOUT ROWID;
             INSERT INTO resource SELECT 'shared', 'A', NULL, 'ceilo', min(timestamp), max(timestamp), '{}' FROM meter;
             INSERT INTO resource_meter VALUES ('shared', 'a.meter', 'gauge', '%'), ('shared', 'b.meter', 'gauge', '%');
             PRAGMA user_version = 2;",
        )
        .expect("schema 2");
        drop(c);
        let store = place.open(Retention::default()).await;
        assert_rebuilt(store.as_ref()).await;
        // Still upgraded (and still right) when opened again.
        drop(store);
        let store = place.open(Retention::default()).await;
        assert_rebuilt(store.as_ref()).await;
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn mongodb_resources_keyed_by_id_alone() {
        use ::mongodb::bson::{doc, Document};
        let Some(place) = Place::mongo() else { return };
        let url = place.url.clone().expect("url");
        {
            let store = place.open(Retention::default()).await;
            store
                .record(&shared_by_two_projects())
                .await
                .expect("record");
        }
        // The earlier layout: `_id` the resource id, A's record holding B's meters,
        // and no unique key on (resource_id, project_id).
        let client = ::mongodb::Client::with_uri_str(&url).await.expect("client");
        let db = client.database(url.rsplit('/').next().expect("db"));
        let resource = db.collection::<Document>("resource");
        resource.delete_many(doc! {}).await.expect("clear");
        resource.drop_index("resource_key").await.expect("drop key");
        resource
            .insert_one(doc! {
                "_id": "shared", "project_id": "A", "source": "ceilo",
                "first_us": at(10, 0).timestamp_micros(), "last_us": at(100, 0).timestamp_micros(),
                "meter": [
                    {"counter_name": "a.meter", "counter_type": "gauge", "counter_unit": "%"},
                    {"counter_name": "b.meter", "counter_type": "gauge", "counter_unit": "%"},
                ],
                "metadata": {},
            })
            .await
            .expect("old layout");
        // And B's record from a rebuild cut short, before the old one was removed:
        // the next open completes it instead of adding a second record of B.
        resource
            .insert_one(doc! {
                "resource_id": "shared", "project_id": "B", "source": "ceilo",
                "first_us": at(20, 0).timestamp_micros(), "last_us": at(20, 0).timestamp_micros(),
                "latest_us": at(20, 0).timestamp_micros(),
                "meter": [{"counter_name": "b.meter", "counter_type": "gauge", "counter_unit": "%"}],
                "metadata": {"owner": "b", "n": 2},
            })
            .await
            .expect("partly rebuilt");
        let store = place.open(Retention::default()).await;
        assert_rebuilt(store.as_ref()).await;
    }
}
