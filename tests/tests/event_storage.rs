//! Event storage, run against both stores (the embedded file and MongoDB on the
//! SecantusDB server tests/run.sh starts): what Panko's storage tests and API ask of
//! it — every field back, once per message id, filters on type, id, time and typed
//! traits, an admin's project view, event types and their traits, expiry.

use std::time::Duration;

use ceilo_host::events::{Event, Trait, TraitType, TraitValue};
use ceilo_host::storage::{EventQuery, Op, Retention, TraitDescription, TraitFilter};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use ceilo_tests::StorePlace as Place;

fn at(secs: i64, micros: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + secs, 0)
        .single()
        .expect("time")
        + chrono::Duration::microseconds(micros)
}

fn t(name: &str, value: TraitValue) -> Trait {
    Trait {
        name: name.into(),
        value,
    }
}

fn text(s: &str) -> TraitValue {
    TraitValue::Text(s.into())
}

/// Panko's fixture (three cookie events with a text and an int trait, a nested raw)
/// and two compute events of two projects.
fn fixture() -> Vec<Event> {
    let mut out: Vec<Event> = ["chocolate.chip", "peanut.butter", "sugar"]
        .iter()
        .enumerate()
        .map(|(ix, name)| Event {
            message_id: format!("fea1b15a-1d47-4175-85a5-a4bb2c72924{ix}"),
            event_type: format!("cookies_{name}"),
            generated: at(ix as i64, 1),
            traits: vec![t("ate", TraitValue::Int(ix as i64)), t("type", text(name))],
            raw: json!({"nested": {"inside": "value"}}),
        })
        .collect();
    for (i, project) in ["p1", "p2"].iter().enumerate() {
        out.push(Event {
            message_id: format!("compute-{i}"),
            event_type: "compute.instance.create.end".into(),
            generated: at(100 + i as i64, 999_999),
            traits: vec![
                t("launched_at", TraitValue::Datetime(at(50, 123_456))),
                t("memory_mb", TraitValue::Int(512 * (i as i64 + 1))),
                t("project_id", text(project)),
                t("ratio", TraitValue::Float(0.25 + i as f64)),
            ],
            raw: json!({}),
        });
    }
    out
}

fn ids(events: &[Event]) -> Vec<&str> {
    events.iter().map(|e| e.message_id.as_str()).collect()
}

async fn events_come_back_whole_and_once(place: Place) {
    let store = place.open(Retention::default()).await;
    let all = fixture();
    let o = store.record_events(&all).await.expect("record");
    assert_eq!((o.stored, o.duplicates), (5, 0));
    // Replayed, with one new event: only the new one is stored.
    let mut again = all.clone();
    again.push(Event {
        message_id: "late".into(),
        event_type: "cookies_sugar".into(),
        generated: at(-10, 0),
        traits: vec![],
        raw: json!({"a.b": {"$c": 1}}),
    });
    let o = store.record_events(&again).await.expect("record again");
    assert_eq!((o.stored, o.duplicates), (1, 5));
    let got = store.events(&EventQuery::default()).await.expect("events");
    // Oldest first; every field, traits by name, times to the microsecond.
    assert_eq!(got.len(), 6);
    assert_eq!(got[0].message_id, "late");
    assert_eq!(got[0].raw, json!({"a.b": {"$c": 1}}));
    assert_eq!(&got[1..], &all[..]);
}

async fn filters_select_events(place: Place) {
    let store = place.open(Retention::default()).await;
    store.record_events(&fixture()).await.expect("record");
    let q = |f: fn(&mut EventQuery)| {
        let mut q = EventQuery::default();
        f(&mut q);
        let store = store.clone();
        async move {
            let got = store.events(&q).await.expect("events");
            got.iter().map(|e| e.message_id.clone()).collect::<Vec<_>>()
        }
    };
    assert_eq!(
        q(|q| q.event_type = Some("cookies_sugar".into())).await,
        ["fea1b15a-1d47-4175-85a5-a4bb2c729242"]
    );
    assert_eq!(
        q(|q| q.message_id = Some("compute-1".into())).await,
        ["compute-1"]
    );
    assert!(q(|q| q.event_type = Some("bad".into())).await.is_empty());
    // Both ends inclusive.
    assert_eq!(
        q(|q| {
            q.start = Some(at(1, 1));
            q.end = Some(at(100, 999_999));
        })
        .await,
        [
            "fea1b15a-1d47-4175-85a5-a4bb2c729241",
            "fea1b15a-1d47-4175-85a5-a4bb2c729242",
            "compute-0"
        ]
    );
    assert_eq!(q(|q| q.limit = Some(2)).await.len(), 2);
    let with = |name: &str, op: Op, value: TraitValue| TraitFilter {
        name: name.into(),
        op,
        value,
    };
    let store2 = store.clone();
    let by_traits = |filters: Vec<TraitFilter>| {
        let store = store2.clone();
        async move {
            let q = EventQuery {
                traits: filters,
                ..EventQuery::default()
            };
            ids(&store.events(&q).await.expect("events"))
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        by_traits(vec![with("type", Op::Eq, text("peanut.butter"))]).await,
        ["fea1b15a-1d47-4175-85a5-a4bb2c729241"]
    );
    assert_eq!(
        by_traits(vec![with("ate", Op::Gt, TraitValue::Int(0))])
            .await
            .len(),
        2
    );
    assert_eq!(
        by_traits(vec![
            with("type", Op::Ne, text("sugar")),
            with("ate", Op::Le, TraitValue::Int(1))
        ])
        .await
        .len(),
        2
    );
    assert_eq!(
        by_traits(vec![with("ratio", Op::Lt, TraitValue::Float(1.0))]).await,
        ["compute-0"]
    );
    assert_eq!(
        by_traits(vec![with(
            "launched_at",
            Op::Ge,
            TraitValue::Datetime(at(50, 123_456))
        )])
        .await
        .len(),
        2
    );
    // A filter compares in its own type: `ate` is an integer, not the text "1".
    assert!(by_traits(vec![with("ate", Op::Eq, text("1"))])
        .await
        .is_empty());
    // An admin's project view: events without a project, and its project's.
    let admin = q(|q| q.admin_project = Some("p2".into())).await;
    assert_eq!(admin.len(), 4);
    assert!(admin.contains(&"compute-1".to_owned()) && !admin.contains(&"compute-0".to_owned()));
}

async fn event_types_and_their_traits(place: Place) {
    let store = place.open(Retention::default()).await;
    assert!(store.event_types().await.expect("types").is_empty());
    store.record_events(&fixture()).await.expect("record");
    assert_eq!(
        store.event_types().await.expect("types"),
        [
            "compute.instance.create.end",
            "cookies_chocolate.chip",
            "cookies_peanut.butter",
            "cookies_sugar"
        ]
    );
    assert_eq!(
        store
            .trait_descriptions("cookies_chocolate.chip")
            .await
            .expect("traits"),
        [
            TraitDescription {
                name: "type".into(),
                trait_type: TraitType::Text
            },
            TraitDescription {
                name: "ate".into(),
                trait_type: TraitType::Int
            },
        ]
    );
    assert!(store
        .trait_descriptions("bad_event_type")
        .await
        .expect("traits")
        .is_empty());
    assert_eq!(
        store
            .trait_values("compute.instance.create.end", "memory_mb")
            .await
            .expect("values"),
        [
            t("memory_mb", TraitValue::Int(512)),
            t("memory_mb", TraitValue::Int(1024))
        ]
    );
    assert!(store
        .trait_values("cookies_sugar", "bad_trait_name")
        .await
        .expect("values")
        .is_empty());
}

async fn old_events_expire(place: Place) {
    let store = place.open(Retention(Some(Duration::from_secs(60)))).await;
    store.record_events(&fixture()).await.expect("record");
    // At 100 s + 30 s the cookies (0–2 s) are over a minute old; compute events stay.
    store.expire(at(130, 0)).await.expect("expire");
    let left = store.events(&EventQuery::default()).await.expect("events");
    assert_eq!(ids(&left), ["compute-0", "compute-1"]);
    assert_eq!(
        store.event_types().await.expect("types"),
        ["compute.instance.create.end"]
    );
}

ceilo_tests::store_suite!(
    events_come_back_whole_and_once,
    filters_select_events,
    event_types_and_their_traits,
    old_events_expire,
);
