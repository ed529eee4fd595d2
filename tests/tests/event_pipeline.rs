//! `ceilo notification` with an event pipeline, on a real RabbitMQ: Nova, Cinder
//! and Glance notifications become their samples *and* their events, by Ceilometer
//! 27.0.0's shipped `event_definitions.yaml`; the events reach `direct://` (the
//! store, then the events API) and `file:`; malformed messages are dead-lettered
//! and make no event. Then definitions written for the converter's rules (later
//! definitions win, exclusions, typed traits, drop_unmatched, store_raw) and the
//! built-in trait plugins (split, bitfield, timedelta, map: plugin ABI 1.3) run
//! through the same agent.

use std::time::Duration;

use ceilo_host::events::{Event, TraitValue};
use ceilo_host::storage::{self, EventQuery, Retention};
use ceilo_tests::*;
use serde_json::Value;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join("tests/notifications").join(name)).expect("fixture")
}

/// Runs `ceilo notification` with the event pipeline `event_pipeline` (and `extra`
/// arguments) over `notifications`; the events stored, oldest first, and the log.
fn run_agent(
    url: &str,
    data: &std::path::Path,
    event_pipeline: &str,
    extra: &[&str],
    notifications: Vec<Vec<u8>>,
    expect_events: usize,
) -> (Vec<Event>, String) {
    run_agent_with(
        url,
        data,
        event_pipeline,
        extra,
        notifications,
        expect_events,
        &[],
    )
}

/// [`run_agent`] with more libraries in the plugin directory: (file, name).
fn run_agent_with(
    url: &str,
    data: &std::path::Path,
    event_pipeline: &str,
    extra: &[&str],
    notifications: Vec<Vec<u8>>,
    expect_events: usize,
    libraries: &[(&std::path::Path, &str)],
) -> (Vec<Event>, String) {
    let plugins = notification_plugin_dir();
    for (file, name) in libraries {
        std::fs::copy(file, plugins.path().join(name)).expect("copy the library");
    }
    let pipeline = data.join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        "sources:\n  - name: n\n    meters: [\"*\"]\n    sinks: [k]\nsinks:\n  - name: k\n    publishers: [\"file:samples.json\"]\n",
    )
    .expect("pipeline");
    let events_file = data.join("event_pipeline.yaml");
    std::fs::write(&events_file, event_pipeline).expect("event pipeline");
    let (exchange, topic) = (unique("nova-events"), unique("notifications.info"));
    let mut args = vec![
        "--exchange",
        &exchange,
        "--topic",
        &topic,
        "--event-pipeline",
        events_file.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    let agent = spawn_service(
        "notification",
        &pipeline,
        plugins.path(),
        data,
        &args,
        // The loader's debug line says which ABI each library has and whether it
        // runs isolated.
        &[
            ("CEILO_AMQP_URL", url),
            ("RUST_LOG", "info,ceilo::loader=debug"),
        ],
    );
    wait_for_consumer(url, &format!("ceilo.{topic}"), Duration::from_secs(30));
    publish_notifications(url, &exchange, &topic, notifications);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store_url = format!("sqlite://{}/ceilo.db", data.display());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut found = Vec::new();
    if expect_events == 0 {
        // Nothing stored here (the events leave over RabbitMQ): time to publish them.
        std::thread::sleep(Duration::from_secs(3));
    }
    while expect_events > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        if !data.join("ceilo.db").is_file() {
            continue;
        }
        found = rt.block_on(async {
            let store = storage::open(Some(&store_url), data, Retention::default())
                .await
                .expect("open store");
            store.events(&EventQuery::default()).await.expect("events")
        });
        if found.len() >= expect_events {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let log = stop_ceilo(agent, Duration::from_secs(20));
    let _ = drain_queue(url, &format!("ceilo.{topic}"));
    let _ = drain_queue(url, &format!("ceilo.{topic}.dead"));
    (found, log)
}

fn trait_of<'a>(e: &'a Event, name: &str) -> Option<&'a TraitValue> {
    e.trait_named(name).map(|t| &t.value)
}

fn text(v: &str) -> Option<TraitValue> {
    Some(TraitValue::Text(v.into()))
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&chrono::Utc)
}

#[test]
fn notifications_become_events_by_ceilometers_shipped_definitions() {
    let Some(url) = rabbitmq() else { return };
    let Some(definitions) = ceilometer_event_definitions().pop() else {
        return;
    };
    let data = tempfile::tempdir().expect("tempdir");
    let exists = String::from_utf8(fixture("nova_instance_exists.json")).expect("utf-8");
    let envelope = serde_json::json!({"oslo.version": "2.0", "oslo.message": exists});
    let (events, log) = run_agent(
        &url,
        data.path(),
        "---\nsources:\n    - name: event_source\n      events:\n          - \"*\"\n      sinks:\n          - event_sink\nsinks:\n    - name: event_sink\n      transformers:\n      publishers:\n          - direct://\n          - file:events.json\n",
        &["--event-definitions", definitions.to_str().expect("utf-8")],
        vec![
            fixture("nova_instance_create_end.json"),
            b"this is not JSON".to_vec(),
            envelope.to_string().into_bytes(),
            fixture("cinder_volume_create_end.json"),
            fixture("glance_image_upload.json"),
        ],
        4,
    );
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "compute.instance.exists",
            "compute.instance.create.end",
            "volume.create.end",
            "image.upload",
        ],
        "one event per notification, oldest first; none of the malformed one\n{log}"
    );

    // Nova: the instance traits of Ceilometer's definitions (merged into
    // create.end's with `<<`), `split` on the publisher id, the default traits.
    let create = &events[1];
    assert_eq!(create.message_id, "dae6f69c-00e0-41c0-b371-41ec3b7f4451");
    assert_eq!(create.generated, at("2012-05-08T20:23:48.028195Z"));
    assert_eq!(
        trait_of(create, "instance_id").cloned(),
        text("9f9d01b9-4a58-4271-9e27-398b21ab20d1")
    );
    assert_eq!(trait_of(create, "memory_mb"), Some(&TraitValue::Int(512)));
    assert_eq!(trait_of(create, "root_gb"), Some(&TraitValue::Int(1)));
    assert_eq!(trait_of(create, "host").cloned(), text("vagrant-precise"));
    assert_eq!(trait_of(create, "service").cloned(), text("compute"));
    assert_eq!(trait_of(create, "availability_zone").cloned(), text("nova"));
    assert_eq!(
        trait_of(create, "launched_at"),
        Some(&TraitValue::Datetime(at("2012-05-08T20:23:47.985999Z")))
    );
    assert_eq!(
        trait_of(create, "request_id").cloned(),
        text("req-3ac4f43b-ba1f-4fc6-b5ba-a1d2ed5c6a08"),
        "a default trait, from the request context"
    );
    assert_eq!(
        trait_of(create, "project_id").cloned(),
        text("7c150a59fe714e6f9263774af9688f0e")
    );
    // `deleted_at` is "": an empty value of a typed trait is no trait (Ceilometer).
    assert!(trait_of(create, "deleted_at").is_none());
    assert_eq!(
        create.raw,
        serde_json::json!({}),
        "raw is kept only when asked"
    );

    // Cinder and Glance.
    let volume = &events[2];
    assert_eq!(
        trait_of(volume, "resource_id").cloned(),
        text("3b761164-84b4-4eb3-8fcb-1974c641d6ef")
    );
    assert_eq!(trait_of(volume, "size"), Some(&TraitValue::Int(2)));
    let image = &events[3];
    assert_eq!(trait_of(image, "size"), Some(&TraitValue::Int(13147648)));
    assert_eq!(
        trait_of(image, "project_id").cloned(),
        text("fd2dc62ceb4e4e6e95a75d5d4ea7bcb8")
    );
    assert_eq!(
        trait_of(image, "created_at"),
        Some(&TraitValue::Datetime(at("2013-07-29T21:40:37Z")))
    );

    // The file: output got the same events, in Ceilometer's serialized form.
    let text_out = std::fs::read_to_string(data.path().join("events.json")).expect("events.json");
    let lines: Vec<Value> = text_out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["message_id"].as_str().unwrap_or(""))
        .collect();
    let mut stored: Vec<&str> = events.iter().map(|e| e.message_id.as_str()).collect();
    let mut written = ids.clone();
    stored.sort_unstable();
    written.sort_unstable();
    assert_eq!(written, stored);
    let create_line = lines
        .iter()
        .find(|l| l["event_type"] == "compute.instance.create.end")
        .expect("create.end written");
    assert!(
        create_line["traits"]
            .as_array()
            .expect("traits")
            .contains(&serde_json::json!(["memory_mb", 2, 512])),
        "{create_line}"
    );
    // Samples still flow beside the events.
    assert!(
        !read_samples(&data.path().join("samples.json")).is_empty(),
        "samples beside events"
    );

    // The events API serves them.
    let (api, listen) = spawn_api(&[
        "--no-auth",
        "--data-dir",
        data.path().to_str().expect("utf-8"),
        "--log-level",
        "warn",
    ]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .get(format!(
            "http://{listen}/v2/events?q.field=memory_mb&q.type=integer&q.op=ge&q.value=512&q.field=all_tenants&q.op=eq&q.type=string&q.value=True"
        ))
        .header("X-User-Id", "u")
        .header("X-Project-Id", "p")
        .header("X-Roles", "admin")
        .call()
        .expect("request");
    let body: Value =
        serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).expect("JSON");
    // `ceilo events` against an API without tokens: every project's events.
    let (code, out, err) = run_ceilo(&[
        "events",
        "--api-url",
        &format!("http://{listen}"),
        "--format",
        "json",
    ]);
    let _ = stop_ceilo(api, Duration::from_secs(20));
    assert_eq!(code, 0, "{err}");
    let listed: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(listed.as_array().map(Vec::len), Some(4), "{out}");
    let found: Vec<&str> = body
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .map(|e| e["message_id"].as_str().unwrap_or(""))
        .collect();
    // create.end (512) and exists (2048): both Nova instances (all_tenants: the
    // admin's own project would see only events without a project).
    assert_eq!(found.len(), 2, "{body}");
    assert!(found.contains(&"dae6f69c-00e0-41c0-b371-41ec3b7f4451"));
}

/// Definitions for the converter's rules, restating facts of Ceilometer's
/// `test_converter.py`: the last matching definition wins; `!` excludes; types
/// convert; with drop_unmatched an unmatched notification makes no event; raw is
/// kept for the priorities asked.
#[test]
fn the_converters_rules_hold_through_the_notification_agent() {
    let Some(url) = rabbitmq() else { return };
    let data = tempfile::tempdir().expect("tempdir");
    let definitions = data.path().join("event_definitions.yaml");
    std::fs::write(
        &definitions,
        concat!(
            "- event_type: 'compute.*'\n",
            "  traits:\n",
            "    size: {fields: payload.memory_mb, type: int}\n",
            "    which: {fields: publisher_id}\n",
            "- event_type: ['compute.instance.*', '!compute.instance.exists']\n",
            "  traits:\n",
            "    size: {fields: payload.memory_mb, type: float}\n",
            "    zone: {fields: [payload.nope, payload.availability_zone]}\n",
            "    node: {fields: publisher_id, plugin: {name: split, parameters: {segment: 1}}}\n",
            "    flags:\n",
            "      type: int\n",
            "      fields: [payload.state, payload.vcpus, payload.nope]\n",
            "      plugin:\n",
            "        name: bitfield\n",
            "        parameters:\n",
            "          initial_bitfield: 256\n",
            "          flags:\n",
            "            - {path: payload.state, bit: 0, value: active}\n",
            "            - {path: payload.vcpus, bit: 3}\n",
            "            - {path: payload.nope, bit: 5}\n",
            "    boot_seconds:\n",
            "      type: float\n",
            "      fields: [payload.created_at, payload.launched_at]\n",
            "      plugin: timedelta\n",
            "    state_code:\n",
            "      type: int\n",
            "      fields: payload.state\n",
            "      plugin:\n",
            "        name: map\n",
            "        parameters: {values: {ACTIVE: 1, deleted: 2}, default: -1, case_sensitive: false}\n",
        ),
    )
    .expect("definitions");
    let glance = fixture("glance_image_upload.json");
    let (events, log) = run_agent(
        &url,
        data.path(),
        "sources:\n  - name: s\n    events: ['!volume.*']\n    sinks: [k]\nsinks:\n  - name: k\n    publishers: [direct://]\n",
        &[
            "--event-definitions",
            definitions.to_str().expect("utf-8"),
            "--drop-unmatched-notifications",
            "--store-raw",
            "info",
        ],
        vec![
            fixture("nova_instance_create_end.json"),
            fixture("nova_instance_exists.json"),
            fixture("cinder_volume_create_end.json"),
            glance,
        ],
        2,
    );
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    // volume.*: excluded by the event source (and no definition: dropped anyway);
    // image.upload: no definition, dropped.
    assert_eq!(
        types,
        ["compute.instance.exists", "compute.instance.create.end"],
        "oldest first\n{log}"
    );
    let (exists, create) = (&events[0], &events[1]);
    // create.end: the later definition wins whole (float size, zone from the
    // first field that is there; no `which`).
    assert_eq!(trait_of(create, "size"), Some(&TraitValue::Float(512.0)));
    assert_eq!(trait_of(create, "zone").cloned(), text("nova"));
    assert!(trait_of(create, "which").is_none());
    // exists: excluded from the later one, so the first applies.
    assert_eq!(trait_of(exists, "size"), Some(&TraitValue::Int(2048)));
    assert!(trait_of(exists, "which").is_some());
    assert!(trait_of(exists, "zone").is_none());
    // Trait plugins (Ceilometer's semantics): split's segment 1 of
    // "compute.vagrant-precise"; bit 0 (state is active) and bit 3 (vcpus present)
    // over 256; created_at → launched_at is 6.985999 s; "active" maps to 1 without
    // case.
    assert_eq!(trait_of(create, "node").cloned(), text("vagrant-precise"));
    assert_eq!(
        trait_of(create, "flags"),
        Some(&TraitValue::Int(256 | 1 | 8))
    );
    assert_eq!(
        trait_of(create, "boot_seconds"),
        Some(&TraitValue::Float(6.985999))
    );
    assert_eq!(trait_of(create, "state_code"), Some(&TraitValue::Int(1)));
    // --store-raw info: the whole notification is kept.
    assert_eq!(create.raw["event_type"], "compute.instance.create.end");
    assert_eq!(create.raw["payload"]["memory_mb"], 512);
}

/// A trait plugin built out of tree (the example library, ABI 1.3) is used by a
/// definition; as code ceilo has not seen, it runs in a worker process by default.
#[test]
fn an_out_of_tree_trait_plugin_is_used_by_a_definition_from_its_worker() {
    let Some(url) = rabbitmq() else { return };
    let example = build_example(ApiChange::None);
    let data = tempfile::tempdir().expect("tempdir");
    let definitions = data.path().join("event_definitions.yaml");
    std::fs::write(
        &definitions,
        concat!(
            "- event_type: compute.instance.*\n",
            "  traits:\n",
            "    size_class:\n",
            "      fields: payload.memory_mb\n",
            "      plugin: {name: size_class, parameters: {classes: {small: 1024, large: 4096}}}\n",
        ),
    )
    .expect("definitions");
    let (events, log) = run_agent_with(
        &url,
        data.path(),
        "sources:\n  - name: s\n    events: ['*']\n    sinks: [k]\nsinks:\n  - name: k\n    publishers: [direct://]\n",
        &[
            "--event-definitions",
            definitions.to_str().expect("utf-8"),
        ],
        vec![
            fixture("nova_instance_create_end.json"),
            fixture("nova_instance_exists.json"),
        ],
        2,
        &[(example.as_path(), "libacme_ceilo_plugins.so")],
    );
    let loaded = log
        .lines()
        .find(|l| l.contains("plugin library loaded") && l.contains("libacme_ceilo_plugins"))
        .unwrap_or_else(|| panic!("the example was not loaded:\n{log}"));
    assert!(
        loaded.contains("abi=1.3") && loaded.contains("isolated=true"),
        "{loaded}"
    );
    let classes: Vec<Option<&TraitValue>> =
        events.iter().map(|e| trait_of(e, "size_class")).collect();
    // exists (2048 MB) is older than create.end (512 MB).
    assert_eq!(
        classes,
        [
            Some(&TraitValue::Text("large".into())),
            Some(&TraitValue::Text("small".into()))
        ],
        "{log}"
    );
}

#[test]
fn bad_event_configuration_stops_the_start_with_its_place() {
    build_workspace();
    let data = tempfile::tempdir().expect("tempdir");
    let d = data.path();
    let samples = d.join("pipeline.yaml");
    std::fs::write(
        &samples,
        "sources:\n  - name: s\n    meters: ['*']\n    sinks: [k]\nsinks:\n  - name: k\n    publishers: [direct://]\n",
    )
    .expect("file");
    let plugins = d.join("plugins");
    std::fs::create_dir_all(&plugins).expect("dir");
    let common = [
        "--pipeline",
        samples.to_str().expect("utf-8"),
        "--plugin-dir",
        plugins.to_str().expect("utf-8"),
        "--data-dir",
        d.to_str().expect("utf-8"),
    ];
    let events_file = d.join("event_pipeline.yaml");
    std::fs::write(
        &events_file,
        "sources:\n  - name: s\n    events: ['*']\n    sinks: [k]\nsinks:\n  - name: k\n    publishers: ['notifier://?per_meter_topic=1']\n",
    )
    .expect("file");
    let validate = || {
        let mut args = vec!["validate"];
        args.extend_from_slice(&common);
        args.extend(["--event-pipeline", events_file.to_str().expect("utf-8")]);
        run_ceilo(&args)
    };
    let (code, out, err) = validate();
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("event_pipeline.yaml:7:"), "{err}");
    assert!(err.contains("unknown option `per_meter_topic`"), "{err}");

    std::fs::write(
        &events_file,
        "sources:\n  - name: s\n    events: ['*']\n    sinks: [k]\nsinks:\n  - name: k\n    publishers: ['file:e.json']\n",
    )
    .expect("file");
    let (code, out, err) = validate();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("event sink `k` → file:e.json"), "{out}");

    // A definition that cannot be used stops the notification agent.
    let defs = d.join("event_definitions.yaml");
    std::fs::write(
        &defs,
        "- event_type: x\n  traits:\n    a: {fields: payload.a, type: number}\n",
    )
    .expect("file");
    let mut args = vec!["notification", "--amqp-url", "amqp://127.0.0.1:1/%2f"];
    args.extend_from_slice(&common);
    let (code, _, err) = run_ceilo(
        &[
            &args[..],
            &[
                "--event-pipeline",
                events_file.to_str().expect("utf-8"),
                "--event-definitions",
                defs.to_str().expect("utf-8"),
            ],
        ]
        .concat(),
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("event_definitions.yaml:3:") && err.contains("number"),
        "{err}"
    );
}

/// Events over RabbitMQ, as Ceilometer's shipped `event_pipeline.yaml` (8.1.5's and
/// 27.0.0's: `notifier://`) sends them: the notification agent publishes signed
/// event notifications, `ceilo collector` stores the events; an event signed with
/// another secret is dead-lettered, and the events reach the store once each.
#[test]
fn events_travel_over_rabbitmq_to_the_collector_signed() {
    let Some(url) = rabbitmq() else { return };
    let definitions = ceilometer_event_definitions();
    let Some(latest) = definitions.last() else {
        return;
    };
    // The shipped event pipelines validate as they are.
    for d in &definitions {
        let shipped = d.with_file_name("event_pipeline.yaml");
        let text = std::fs::read_to_string(&shipped).expect("shipped event_pipeline.yaml");
        assert!(text.contains("notifier://"), "{}", shipped.display());
        let (code, out, err) = run_ceilo(&[
            "validate",
            "--pipeline",
            workspace_root()
                .join("pipeline.yaml")
                .to_str()
                .expect("utf-8"),
            "--plugin-dir",
            built_in_plugin_dir().path().to_str().expect("utf-8"),
            "--event-pipeline",
            shipped.to_str().expect("utf-8"),
        ]);
        assert_eq!(code, 0, "{}: {out}{err}", shipped.display());
        let text = std::fs::read_to_string(&shipped).expect("read");
        assert!(text.contains("event_sink"));
    }
    // The same pipeline on a topic of this test's own (the queue is shared otherwise).
    let topic = unique("event");
    let data = tempfile::tempdir().expect("tempdir");
    let store_dir = tempfile::tempdir().expect("tempdir");
    let collector = spawn_ceilo(
        &[
            "collector",
            "--amqp-url",
            &url,
            "--queue",
            &unique("samples"),
            "--event-queue",
            &format!("{topic}.sample"),
            "--telemetry-secret",
            "s3cret",
            "--data-dir",
            store_dir.path().to_str().expect("utf-8"),
        ],
        &[],
    );
    wait_for_consumer(&url, &format!("{topic}.sample"), Duration::from_secs(30));
    let e = ceilo_host::events::Event {
        message_id: "forged-event".into(),
        event_type: "compute.instance.create.end".into(),
        generated: chrono::Utc::now(),
        traits: vec![],
        raw: serde_json::json!({}),
    };
    let forged = ceilo_host::events::notifier::signed_message(&e, "not-the-secret");
    let inner = serde_json::json!({"event_type": "event", "priority": "SAMPLE", "payload": [forged],
        "message_id": "n-forged", "publisher_id": "intruder", "timestamp": "2026-01-01 00:00:00"});
    publish_notifications(
        &url,
        "ceilometer",
        &format!("{topic}.sample"),
        vec![
            serde_json::json!({"oslo.version": "2.0", "oslo.message": inner.to_string()})
                .to_string()
                .into_bytes(),
        ],
    );
    let (_, log) = run_agent(
        &url,
        data.path(),
        &format!("---\nsources:\n    - name: event_source\n      events:\n          - \"*\"\n      sinks:\n          - event_sink\nsinks:\n    - name: event_sink\n      transformers:\n      publishers:\n          - notifier://?topic={topic}\n"),
        &[
            "--event-definitions",
            latest.to_str().expect("utf-8"),
            "--telemetry-secret",
            "s3cret",
        ],
        vec![
            fixture("nova_instance_create_end.json"),
            fixture("cinder_volume_create_end.json"),
            fixture("glance_image_upload.json"),
        ],
        0,
    );
    let store_url = format!("sqlite://{}/ceilo.db", store_dir.path().display());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let stored = loop {
        std::thread::sleep(Duration::from_millis(300));
        let found = if store_dir.path().join("ceilo.db").is_file() {
            rt.block_on(async {
                let store = storage::open(Some(&store_url), store_dir.path(), Retention::default())
                    .await
                    .expect("open store");
                store.events(&EventQuery::default()).await.expect("events")
            })
        } else {
            Vec::new()
        };
        if found.len() >= 3 || std::time::Instant::now() > deadline {
            break found;
        }
    };
    let collector_log = stop_ceilo(collector, Duration::from_secs(20));
    let mut ids: Vec<&str> = stored.iter().map(|e| e.message_id.as_str()).collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        [
            "0c65cb9c-018c-11e2-bc91-5453ed1bbb5f",
            "7a8c2d0e-1f3b-4c5d-8e9f-0a1b2c3d4e5f",
            "dae6f69c-00e0-41c0-b371-41ec3b7f4451"
        ],
        "the three events, once each, the forged one not\n{log}\n{collector_log}"
    );
    let create = stored
        .iter()
        .find(|e| e.event_type == "compute.instance.create.end")
        .expect("create.end");
    assert_eq!(trait_of(create, "memory_mb"), Some(&TraitValue::Int(512)));
    assert_eq!(
        trait_of(create, "launched_at"),
        Some(&TraitValue::Datetime(at("2012-05-08T20:23:47.985999Z")))
    );
    assert!(
        collector_log.contains("forged-event")
            && collector_log.contains("signature does not verify"),
        "{collector_log}"
    );
    let dead = drain_queue(&url, "metering.sample.dead");
    assert!(
        dead.iter()
            .any(|(_, body)| String::from_utf8_lossy(body).contains("forged-event")),
        "the forged event is dead-lettered"
    );
}

/// `ceilo run` with `--amqp-url` and `--event-pipeline`: the one-process setup makes
/// events of the notifications it consumes, stores them and serves them.
#[test]
fn ceilo_run_makes_events_of_notifications_and_serves_them() {
    let Some(url) = rabbitmq() else { return };
    build_workspace();
    let data = tempfile::tempdir().expect("tempdir");
    let pipeline = data.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        "sources:\n  - name: n\n    meters: [\"instance\"]\n    sinks: [k]\nsinks:\n  - name: k\n    publishers: [\"direct://\"]\n",
    )
    .expect("pipeline");
    let events_file = data.path().join("event_pipeline.yaml");
    std::fs::write(
        &events_file,
        "sources:\n  - name: e\n    events: ['compute.*']\n    sinks: [s]\nsinks:\n  - name: s\n    publishers: [direct://]\n",
    )
    .expect("event pipeline");
    let plugins = notification_plugin_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let child = spawn_ceilo(
        &[
            "run",
            "--pipeline",
            pipeline.to_str().expect("utf-8"),
            "--plugin-dir",
            plugins.path().to_str().expect("utf-8"),
            "--data-dir",
            data.path().to_str().expect("utf-8"),
            "--amqp-url",
            &url,
            "--event-pipeline",
            events_file.to_str().expect("utf-8"),
            "--listen",
            &listen,
        ],
        &[],
    );
    std::thread::sleep(Duration::from_millis(2500)); // its queue is declared
    let id = unique("run-event");
    let mut body: Value =
        serde_json::from_slice(&fixture("nova_instance_create_end.json")).expect("fixture");
    body["message_id"] = Value::from(id.as_str());
    publish_notifications(
        &url,
        "nova",
        "notifications.info",
        vec![serde_json::to_vec(&body).expect("json")],
    );
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (status, text) = loop {
        std::thread::sleep(Duration::from_millis(300));
        let answer = agent
            .get(format!("http://{listen}/v2/events/{id}"))
            .header("X-User-Id", "u")
            .header("X-Project-Id", "7c150a59fe714e6f9263774af9688f0e")
            .header("X-Roles", "admin")
            .call();
        let Ok(mut r) = answer else { continue };
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        if status == 200 || std::time::Instant::now() > deadline {
            break (status, text);
        }
    };
    let log = stop_ceilo(child, Duration::from_secs(20));
    assert_eq!(status, 200, "{text}\n{log}");
    let event: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        event["event_type"], "compute.instance.create.end",
        "{event}"
    );
    assert!(
        log.contains("events: 1 definition(s) tried per notification"),
        "{log}"
    );
}
