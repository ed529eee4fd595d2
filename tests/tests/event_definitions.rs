//! Event definitions and the converter, against what Ceilometer's own converter tests
//! expect (ceilometer/tests/unit/event/test_converter.py: the facts, restated as
//! ceilo cases) and against the `event_definitions.yaml` files Ceilometer ships
//! (8.1.5's sdist and 27.0.0's package, both fetched by tests/run.sh).

use std::path::Path;

use ceilo_tests::ceilometer_event_definitions;

use ceilo_host::events::{
    self, ceilometer_shape, Conversion, Converter, ConverterOptions, EventDefinition,
    TraitDefinition, TraitType, TraitValue,
};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

/// Ceilometer's test notification: `payload` is `payload`.
fn notification(event_type: &str, message_id: &str, payload: Value) -> Value {
    json!({
        "event_type": event_type,
        "metadata": {"message_id": message_id, "timestamp": "2013-08-08 21:06:37.803826"},
        "publisher_id": "compute.host-1-2-3",
        "payload": payload,
    })
}

fn n1() -> Value {
    notification(
        "test.thing",
        "uuid-for-notif-0001",
        json!({
            "instance_uuid": "uuid-for-instance-0001",
            "instance_id": "id-for-instance-0001",
            "instance_uuid2": null,
            "instance_id2": null,
            "host": "host-1-2-3",
            "bogus_date": "",
            "image_meta": {"disk_gb": "20", "thing": "whatzit"},
            "foobar": 50,
        }),
    )
}

fn trait_value(cfg: Value) -> Option<TraitValue> {
    TraitDefinition::new("test_trait", &cfg)
        .expect("definition")
        .to_trait(&n1())
        .expect("converts")
        .map(|t| t.value)
}

fn text(s: &str) -> Option<TraitValue> {
    Some(TraitValue::Text(s.into()))
}

#[test]
fn a_trait_takes_the_first_non_null_field() {
    assert_eq!(
        trait_value(json!({"type": "text", "fields": "payload.instance_id"})),
        text("id-for-instance-0001")
    );
    assert_eq!(
        trait_value(json!({"type": "int", "fields": "payload.image_meta.disk_gb"})),
        Some(TraitValue::Int(20))
    );
    assert_eq!(
        trait_value(json!({"fields": ["payload.instance_id", "payload.instance_uuid"]})),
        text("id-for-instance-0001")
    );
    assert_eq!(
        trait_value(json!({"fields": ["payload.instance_uuid", "payload.instance_id"]})),
        text("uuid-for-instance-0001")
    );
    assert_eq!(
        trait_value(
            json!({"type": "int", "fields": ["payload.foobar", "payload.image_meta.disk_gb"]})
        ),
        Some(TraitValue::Int(50))
    );
    assert_eq!(
        trait_value(
            json!({"type": "int", "fields": ["payload.image_meta.disk_gb", "payload.foobar"]})
        ),
        Some(TraitValue::Int(20))
    );
    // Null and missing fields are passed over.
    assert_eq!(
        trait_value(json!({"fields": ["payload.instance_id2", "payload.instance_uuid"]})),
        text("uuid-for-instance-0001")
    );
    assert_eq!(
        trait_value(json!({"fields": ["payload.not_here_boss", "payload.instance_uuid"]})),
        text("uuid-for-instance-0001")
    );
    // The fields alone, without a mapping: text.
    assert_eq!(trait_value(json!("payload.host")), text("host-1-2-3"));
}

#[test]
fn no_trait_when_nothing_matches_or_a_typed_field_is_empty() {
    assert_eq!(
        trait_value(json!({"fields": "payload.not_here_boss"})),
        None
    );
    assert_eq!(trait_value(json!({"fields": "payload.instance_id2"})), None);
    assert_eq!(
        trait_value(json!({"fields": ["payload.not_here_boss", "payload.instance_id2"]})),
        None
    );
    assert_eq!(
        trait_value(json!({"type": "datetime", "fields": "payload.bogus_date"})),
        None
    );
    // An empty text is still a text.
    assert_eq!(
        trait_value(json!({"type": "text", "fields": "payload.bogus_date"})),
        text("")
    );
}

#[test]
fn bad_trait_definitions_are_refused() {
    for (cfg, says) in [
        (json!({}), "`fields` is required"),
        (json!({"fields": "payload.bogus("}), "does not parse"),
        (
            json!({"type": "bogus", "fields": "payload.test"}),
            "invalid type `bogus`",
        ),
        (
            json!({"fields": "payload.test", "plugin": {"bogus": "true"}}),
            "without a plugin `name`",
        ),
        (
            json!({"fields": "payload.test", "plugin": {"name": "bogus"}}),
            "no trait plugin named `bogus`",
        ),
    ] {
        let e = TraitDefinition::new("test_trait", &cfg).expect_err("refused");
        assert!(e.contains(says) && e.contains("test_trait"), "{cfg}: {e}");
    }
    for (name, t) in [
        ("text", TraitType::Text),
        ("int", TraitType::Int),
        ("float", TraitType::Float),
        ("datetime", TraitType::Datetime),
    ] {
        let d = TraitDefinition::new("t", &json!({"type": name, "fields": "payload.test"}))
            .expect("definition");
        assert_eq!(d.trait_type(), t);
    }
}

fn traits_cfg() -> Value {
    json!({
        "instance_id": {"type": "text", "fields": ["payload.instance_uuid", "payload.instance_id"]},
        "host": {"type": "text", "fields": "payload.host"},
    })
}

fn event_of(def: &EventDefinition, n: &Value) -> events::Event {
    let (event, problems) = def.to_event(n, false).expect("event");
    assert!(problems.is_empty(), "{problems:?}");
    event
}

#[test]
fn a_definition_gives_the_event_its_time_type_and_traits() {
    let def = EventDefinition::new(&json!({"event_type": "test.thing", "traits": traits_cfg()}))
        .expect("definition");
    let e = event_of(
        &def,
        &notification(
            "test.thing",
            "uuid-for-notif-0001",
            json!({"instance_id": "uuid-for-instance-0001", "host": "host-1-2-3"}),
        ),
    );
    assert_eq!(e.event_type, "test.thing");
    assert_eq!(e.message_id, "uuid-for-notif-0001");
    assert_eq!(
        e.generated,
        Utc.with_ymd_and_hms(2013, 8, 8, 21, 6, 37)
            .single()
            .expect("time")
            + chrono::Duration::microseconds(803_826)
    );
    let get = |e: &events::Event, n: &str| e.trait_named(n).map(|t| t.value.clone());
    assert_eq!(get(&e, "service"), text("compute.host-1-2-3"));
    assert_eq!(get(&e, "host"), text("host-1-2-3"));
    assert_eq!(get(&e, "instance_id"), text("uuid-for-instance-0001"));
    // A missing and a null field: no trait.
    for payload in [
        json!({"instance_id": "uuid-for-instance-0002"}),
        json!({"instance_id": "uuid-for-instance-0003", "host": null}),
    ] {
        let e = event_of(&def, &notification("test.thing", "id", payload));
        assert!(e.trait_named("host").is_none());
        assert!(e.trait_named("instance_id").is_some());
        assert!(e.trait_named("service").is_some());
    }
    // The default traits, then the definition's own.
    let names: Vec<&str> = def.traits().iter().map(|t| t.name()).collect();
    assert_eq!(
        names,
        [
            "service",
            "request_id",
            "project_id",
            "user_id",
            "tenant_id",
            "instance_id",
            "host"
        ]
    );
    let bare = EventDefinition::new(&json!({"event_type": "test.thing", "traits": {}}))
        .expect("definition");
    assert_eq!(bare.traits().len(), 5);
}

#[test]
fn a_definition_needs_its_event_type_and_traits() {
    assert!(EventDefinition::new(&json!({"event_type": "test.foo"}))
        .expect_err("no traits")
        .contains("`traits`"));
    assert!(EventDefinition::new(&json!({"traits": traits_cfg()}))
        .expect_err("no type")
        .contains("`event_type`"));
}

#[test]
fn event_types_are_globs_with_exclusions() {
    let def = |types: Value| {
        EventDefinition::new(&json!({"event_type": types, "traits": traits_cfg()}))
            .expect("definition")
    };
    let cases: [(Value, &[&str], &[&str]); 5] = [
        (json!("test.thing"), &["test.thing"], &["random.thing"]),
        (
            json!(["test.thing", "other.thing"]),
            &["test.thing", "other.thing"],
            &["random.thing"],
        ),
        (json!("!test.thing"), &["random.thing"], &["test.thing"]),
        (
            json!(["!test.thing", "!other.thing"]),
            &["random.thing"],
            &["test.thing", "other.thing"],
        ),
        (
            json!(["*.thing", "!test.thing", "!other.thing"]),
            &["random.thing"],
            &["test.thing", "other.thing", "random.whatzit"],
        ),
    ];
    for (types, yes, no) in cases {
        let d = def(types.clone());
        for t in yes {
            assert!(d.match_type(t), "{types} matches {t}");
        }
        for t in no {
            assert!(!d.match_type(t), "{types} does not match {t}");
        }
    }
    for (types, catch_all) in [
        (json!(["*.thing", "!test.thing", "!other.thing"]), false),
        (json!(["!other.thing"]), false),
        (json!(["other.thing"]), false),
        (json!(["*", "!other.thing"]), false),
        (json!(["*"]), true),
        (json!(["*", "foo"]), true),
    ] {
        assert_eq!(def(types.clone()).is_catch_all(), catch_all, "{types}");
    }
}

fn valid_def1() -> EventDefinition {
    EventDefinition::new(&json!({
        "event_type": "compute.instance.create.*",
        "traits": {
            "instance_id": {"type": "text", "fields": ["payload.instance_uuid", "payload.instance_id"]},
            "host": {"type": "text", "fields": "payload.host"},
        },
    }))
    .expect("definition")
}

fn convert(c: &Converter, n: &Value) -> Option<events::Event> {
    match c.convert("info", n).expect("converts") {
        Conversion::Event(e, problems) => {
            assert!(problems.is_empty(), "{problems:?}");
            Some(e)
        }
        Conversion::Unmatched => None,
    }
}

#[test]
fn unmatched_notifications_get_the_default_traits_unless_dropped() {
    let create = notification(
        "compute.instance.create.start",
        "uuid-for-notif-0001",
        json!({"instance_id": "uuid-for-instance-0001", "host": "host-1-2-3"}),
    );
    let mars = notification(
        "bogus.notification.from.mars",
        "uuid-for-notif-0002",
        json!({"weird": "true", "host": "cydonia"}),
    );
    let keep = ConverterOptions::default();
    let drop = ConverterOptions {
        drop_unmatched: true,
        ..ConverterOptions::default()
    };
    let c = Converter::new(vec![valid_def1()], &keep);
    assert_eq!(c.len(), 2, "the catch-all is added");
    assert_eq!(convert(&c, &create).expect("event").traits.len(), 3);
    let e = convert(&c, &mars).expect("event");
    assert_eq!(e.traits.len(), 1);
    assert!(e.trait_named("service").is_some() && e.trait_named("host").is_none());

    let c = Converter::new(vec![valid_def1()], &drop);
    assert_eq!(c.len(), 1);
    assert_eq!(convert(&c, &create).expect("event").traits.len(), 3);
    assert_eq!(convert(&c, &mars), None);

    let c = Converter::new(vec![], &keep);
    assert_eq!(c.len(), 1);
    for n in [&create, &mars] {
        assert_eq!(convert(&c, n).expect("event").traits.len(), 1);
    }
    let c = Converter::new(vec![], &drop);
    assert!(c.is_empty());
    assert_eq!(convert(&c, &create), None);

    // A notification with nothing but its type, id, time and publisher.
    let c = Converter::new(vec![], &keep);
    let now = "2026-12-03 10:00:00.123456";
    let bare = json!({"event_type": "foo", "metadata": {"message_id": "abc", "timestamp": now}, "publisher_id": "1"});
    let e = convert(&c, &bare).expect("event");
    assert_eq!((e.event_type.as_str(), e.traits.len()), ("foo", 1));
    assert_eq!(
        e.generated,
        ceilo_plugin_api::parse_timestamp(now).expect("time")
    );
}

#[test]
fn the_last_matching_definition_wins() {
    let first = EventDefinition::new(
        &json!({"event_type": "compute.*", "traits": {"which": {"fields": "payload.a"}}}),
    )
    .expect("first");
    let second = EventDefinition::new(
        &json!({"event_type": "compute.instance.*", "traits": {"which": {"fields": "payload.b"}}}),
    )
    .expect("second");
    let c = Converter::new(vec![first, second], &ConverterOptions::default());
    let n = notification(
        "compute.instance.update",
        "m",
        json!({"a": "first", "b": "second"}),
    );
    let e = convert(&c, &n).expect("event");
    assert_eq!(
        e.trait_named("which").map(|t| t.value.clone()),
        text("second")
    );
    let n = notification("compute.other", "m", json!({"a": "first", "b": "second"}));
    let e = convert(&c, &n).expect("event");
    assert_eq!(
        e.trait_named("which").map(|t| t.value.clone()),
        text("first")
    );
}

#[test]
fn raw_notifications_are_kept_for_the_chosen_priorities() {
    let n = json!({"priority": "info", "event_type": "foo", "publisher_id": "1",
                   "metadata": {"message_id": "abc", "timestamp": "2013-08-08 21:06:37.803826"}});
    let raw = |levels: &[&str], priority: &str| {
        let c = Converter::new(
            vec![],
            &ConverterOptions {
                store_raw: levels.iter().map(|l| l.to_string()).collect(),
                ..ConverterOptions::default()
            },
        );
        match c.convert(priority, &n).expect("converts") {
            Conversion::Event(e, _) => e.raw != json!({}),
            Conversion::Unmatched => panic!("the catch-all matches"),
        }
    };
    assert!(raw(&["info", "error"], "info") && raw(&["info", "error"], "error"));
    assert!(raw(&["info"], "info") && !raw(&["info"], "error"));
    assert!(!raw(&["error"], "info") && raw(&["error"], "error"));
    assert!(!raw(&[], "info") && !raw(&[], "error"));
    assert!(raw(&["INFO"], "info") && !raw(&["INFO"], "error"));
    assert!(!raw(&["unknown"], "info") && !raw(&["unknown"], "error"));
    assert!(raw(&["info", "unknown"], "info") && !raw(&["info", "unknown"], "error"));
}

#[test]
fn a_trait_that_does_not_convert_is_left_out_and_said() {
    let def = EventDefinition::new(
        &json!({"event_type": "*", "traits": {"n": {"type": "int", "fields": "payload.n"}}}),
    )
    .expect("definition");
    let n = notification("x", "m", json!({"n": "many"}));
    let (e, problems) = def.to_event(&n, false).expect("event");
    assert!(e.trait_named("n").is_none());
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("trait `n`") && problems[0].contains("`\"many\"`"),
        "{problems:?}"
    );
}

#[test]
fn oslo_notifications_take_ceilometers_shape() {
    let wire = json!({
        "event_type": "compute.instance.create.end",
        "message_id": "m-1",
        "timestamp": "2026-12-03 10:00:00.000001",
        "priority": "INFO",
        "publisher_id": "compute.node-1",
        "_context_request_id": "req-1",
        "_context_project_id": "p-1",
        "_context_user_id": "u-1",
        "payload": {"instance_id": "i-1"},
    });
    let body = ceilometer_shape(&wire);
    assert_eq!(
        body["metadata"],
        json!({"message_id": "m-1", "timestamp": "2026-12-03 10:00:00.000001"})
    );
    assert_eq!(
        body["ctxt"],
        json!({"request_id": "req-1", "project_id": "p-1", "user_id": "u-1"})
    );
    let c = Converter::new(vec![], &ConverterOptions::default());
    let e = convert(&c, &body).expect("event");
    let got: Vec<(&str, TraitValue)> = e
        .traits
        .iter()
        .map(|t| (t.name.as_str(), t.value.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("service", TraitValue::Text("compute.node-1".into())),
            ("request_id", TraitValue::Text("req-1".into())),
            ("project_id", TraitValue::Text("p-1".into())),
            ("user_id", TraitValue::Text("u-1".into())),
            ("tenant_id", TraitValue::Text("p-1".into())),
        ]
    );
    // Already in that shape: unchanged.
    assert_eq!(ceilometer_shape(&body), body);
}

#[test]
fn ceilometers_shipped_definitions_load_with_none_rejected() {
    for file in ceilometer_event_definitions() {
        let loaded = events::load(&file).expect("loads");
        assert!(
            loaded.errors.is_empty(),
            "{}: {:#?}",
            file.display(),
            loaded.errors
        );
        assert!(
            loaded.definitions.len() > 20,
            "{}: {}",
            file.display(),
            loaded.definitions.len()
        );
        let c = Converter::new(loaded.definitions, &ConverterOptions::default());
        // A Nova notification, as oslo.messaging sends it.
        let wire = json!({
            "event_type": "compute.instance.create.end",
            "message_id": "0c1b4e3c-6b0a-4f4e-9d0a-5c1f0f6b7a11",
            "timestamp": "2026-12-03 10:00:00.000001",
            "priority": "INFO",
            "publisher_id": "compute.node-7",
            "_context_request_id": "req-9",
            "payload": {
                "tenant_id": "p-1", "user_id": "u-1", "instance_id": "i-1",
                "memory_mb": 512, "vcpus": "2", "root_gb": 1, "state": "active",
                "launched_at": "2026-12-03T09:59:58.000000",
                "deleted_at": "",
                "image_meta": {"org.openstack__1__architecture": "x86_64"},
            },
        });
        let e = convert(&c, &ceilometer_shape(&wire)).expect("event");
        let get = |n: &str| e.trait_named(n).map(|t| t.value.clone());
        assert_eq!(get("instance_id"), text("i-1"), "{}", file.display());
        assert_eq!(get("tenant_id"), text("p-1"));
        assert_eq!(get("host"), text("node-7"), "publisher_id split");
        assert_eq!(get("service"), text("compute"));
        assert_eq!(get("request_id"), text("req-9"));
        assert_eq!(get("memory_mb"), Some(TraitValue::Int(512)));
        assert_eq!(get("vcpus"), Some(TraitValue::Int(2)));
        assert_eq!(get("os_architecture"), text("x86_64"));
        assert_eq!(
            get("launched_at"),
            Some(TraitValue::Datetime(
                ceilo_plugin_api::parse_timestamp("2026-12-03T09:59:58Z").expect("time")
            ))
        );
        assert_eq!(get("deleted_at"), None, "'' is no time");
    }
}

#[test]
fn bad_definitions_are_reported_with_file_and_line() {
    let text = "---\n- event_type: a.*\n  traits:\n    ok:\n      fields: payload.x\n- event_type: b.*\n  traits:\n    size:\n      type: number\n      fields: payload.size\n- traits: {}\n";
    let loaded = events::parse(Path::new("event_definitions.yaml"), text).expect("parses");
    assert_eq!(loaded.definitions.len(), 1);
    let shown: Vec<String> = loaded.errors.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(
        shown[0].starts_with("event_definitions.yaml:8:5: definition 2 (event_type \"b.*\"): trait `size`: invalid type `number`"),
        "{}",
        shown[0]
    );
    assert!(
        shown[1].starts_with("event_definitions.yaml:11:3: definition 3: `event_type` is required"),
        "{}",
        shown[1]
    );
    let e = events::parse(Path::new("e.yaml"), "- event_type: [\n").expect_err("not YAML");
    assert!(e.to_string().starts_with("e.yaml:2:"), "{e}");
    let e = events::parse(Path::new("e.yaml"), "event_type: x\n").expect_err("not a list");
    assert!(e.to_string().contains("must be a list"), "{e}");
}

/// `ceilo validate --event-definitions FILE` with the default pipeline.
fn validate_events(file: &Path) -> (i32, String, String) {
    let plugins = ceilo_tests::built_in_plugin_dir();
    let pipeline = ceilo_tests::workspace_root().join("pipeline.yaml");
    ceilo_tests::run_ceilo(&[
        "validate",
        "--pipeline",
        pipeline.to_str().expect("path"),
        "--plugin-dir",
        plugins.path().to_str().expect("path"),
        "--event-definitions",
        file.to_str().expect("path"),
    ])
}

#[test]
fn ceilo_validate_checks_event_definitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("event_definitions.yaml");
    std::fs::write(
        &bad,
        "- event_type: a.*\n  traits:\n    n:\n      type: int\n      fields: payload.n(\n- event_type: b.*\n  traits:\n    p:\n      fields: payload.p\n      plugin: splitt\n",
    )
    .expect("write");
    let (code, _, err) = validate_events(&bad);
    assert_ne!(code, 0, "{err}");
    let at = |line: usize| format!("{}:{line}:", bad.display());
    assert!(err.contains("2 event definitions cannot be used"), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains(&at(3)) && l.contains("trait `n`") && l.contains("does not parse")),
        "{err}"
    );
    assert!(
        err.lines()
            .any(|l| l.contains(&at(8))
                && l.contains("no trait plugin named `splitt` is loaded (loaded trait plugins: bitfield, map, split, timedelta)")),
        "{err}"
    );
    for file in ceilometer_event_definitions() {
        let (code, out, err) = validate_events(&file);
        assert_eq!(code, 0, "{}: {err}", file.display());
        assert!(
            out.contains(&format!("{} is valid:", file.display())),
            "{out}"
        );
    }
}
