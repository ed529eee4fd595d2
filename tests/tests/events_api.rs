//! The events API with tokens, over both stores: a project token sees only its
//! project's events (its query cannot widen that), an admin sees all of them,
//! trait filters compare by the trait's type, and bad queries get Panko's 400s.
//! (Panko's own suite, run by panko_gabbi.rs, covers the no-auth side.)

use ceilo_host::events::{Event, Trait, TraitValue};
use ceilo_host::storage::{self, Retention};
use ceilo_tests::*;
use serde_json::Value;

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&chrono::Utc)
}

fn text(name: &str, v: &str) -> Trait {
    Trait {
        name: name.into(),
        value: TraitValue::Text(v.into()),
    }
}

fn events() -> Vec<Event> {
    let instance = |id: &str, day: &str, project: &str, memory: i64, load: f64| Event {
        message_id: id.into(),
        event_type: "compute.instance.create.end".into(),
        generated: at(&format!("2026-01-{day}T10:00:00Z")),
        traits: vec![
            text("project_id", project),
            text("user_id", "u1"),
            Trait {
                name: "memory_mb".into(),
                value: TraitValue::Int(memory),
            },
            Trait {
                name: "load".into(),
                value: TraitValue::Float(load),
            },
            Trait {
                name: "launched_at".into(),
                value: TraitValue::Datetime(at(&format!("2026-01-{day}T09:59:00.250000Z"))),
            },
        ],
        raw: Value::Null,
    };
    vec![
        instance("ev-p1", "01", "p1", 512, 0.5),
        instance("ev-p2", "02", "p2", 2048, 1.0),
        Event {
            message_id: "ev-none".into(),
            event_type: "identity.authenticate".into(),
            generated: at("2026-01-03T10:00:00Z"),
            traits: vec![text("outcome", "success")],
            raw: Value::Null,
        },
    ]
}

fn get(listen: &str, path: &str, token: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .get(format!("http://{listen}{path}"))
        .header("X-Auth-Token", token)
        .call()
        .expect("request");
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// The message ids of a list of events.
fn ids(v: &Value) -> Vec<&str> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|e| e["message_id"].as_str().expect("message_id"))
        .collect()
}

fn fault(v: &Value) -> &str {
    v["error_message"]["faultstring"].as_str().unwrap_or("")
}

fn check(url: String, data: tempfile::TempDir) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = storage::open(Some(&url), data.path(), Retention::default())
            .await
            .expect("open store");
        store.record_events(&events()).await.expect("record");
    });
    let tokens = data.path().join("tokens.yaml");
    std::fs::write(&tokens, "adm: admin\np1t: {project: p1}\n").expect("tokens");
    let (api, listen) = spawn_api(&[
        "--tokens",
        tokens.to_str().expect("utf-8"),
        "--storage",
        &url,
        "--data-dir",
        data.path().to_str().expect("utf-8"),
        "--log-level",
        "warn",
    ]);
    let l = listen.as_str();

    // A project sees its own events only, and cannot ask for another's.
    let (s, v) = get(l, "/v2/events", "p1t");
    assert_eq!((s, ids(&v)), (200, vec!["ev-p1"]), "{v}");
    let (s, v) = get(l, "/v2/events?q.field=project_id&q.value=p2", "p1t");
    assert_eq!((s, ids(&v)), (200, vec![]), "{v}");
    let (s, v) = get(l, "/v2/events/ev-p2", "p1t");
    assert_eq!(s, 404, "{v}");
    assert_eq!(fault(&v), "Event ev-p2 Not Found");
    let (s, v) = get(l, "/v2/events/ev-p1", "p1t");
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["event_type"], "compute.instance.create.end");
    assert_eq!(v["generated"], "2026-01-01T10:00:00");
    let traits: Vec<(&str, &str, &str)> = v["traits"]
        .as_array()
        .expect("traits")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap_or(""),
                t["type"].as_str().unwrap_or(""),
                t["value"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        traits,
        [
            ("launched_at", "datetime", "2026-01-01T09:59:00.250000"),
            ("load", "float", "0.5"),
            ("memory_mb", "integer", "512"),
            ("project_id", "string", "p1"),
            ("user_id", "string", "u1"),
        ]
    );
    // Event types and traits span projects: admins only.
    for path in [
        "/v2/event_types",
        "/v2/event_types/compute.instance.create.end/traits",
        "/v2/event_types/compute.instance.create.end/traits/memory_mb",
    ] {
        let (s, v) = get(l, path, "p1t");
        assert_eq!(s, 401, "{path}: {v}");
        assert!(fault(&v).contains("Not Authorized"), "{path}: {v}");
    }
    // No token, a wrong one.
    assert_eq!(get(l, "/v2/events", "nope").0, 401);

    // The admin sees everything; filters by type, id, time and typed traits.
    let (_, v) = get(l, "/v2/events", "adm");
    assert_eq!(ids(&v), ["ev-p1", "ev-p2", "ev-none"]);
    let q = |qs: &str| {
        let (s, v) = get(l, &format!("/v2/events?{qs}"), "adm");
        assert_eq!(s, 200, "{qs}: {v}");
        ids(&v).into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    assert_eq!(
        q("q.field=event_type&q.value=identity.authenticate"),
        ["ev-none"]
    );
    assert_eq!(q("q.field=message_id&q.value=ev-p2"), ["ev-p2"]);
    assert_eq!(
        q("q.field=start_timestamp&q.op=ge&q.value=2026-01-02T10:00:00"),
        ["ev-p2", "ev-none"],
        "the start bound is inclusive"
    );
    assert_eq!(
        q("q.field=end_timestamp&q.op=le&q.value=2026-01-02T10:00:00"),
        ["ev-p1", "ev-p2"],
        "the end bound is inclusive"
    );
    assert_eq!(
        q("q.field=memory_mb&q.op=gt&q.type=integer&q.value=1000"),
        ["ev-p2"]
    );
    assert_eq!(
        q("q.field=memory_mb&q.op=ne&q.type=integer&q.value=512"),
        ["ev-p2"]
    );
    assert_eq!(
        q("q.field=load&q.op=lt&q.type=float&q.value=0.75"),
        ["ev-p1"]
    );
    assert_eq!(
        q("q.field=launched_at&q.op=ge&q.type=datetime&q.value=2026-01-02T00:00:00"),
        ["ev-p2"]
    );
    assert_eq!(q("q.field=outcome&q.value=success"), ["ev-none"]);
    assert_eq!(q("limit=1"), ["ev-p1"]);
    let (_, v) = get(l, "/v2/event_types", "adm");
    assert_eq!(
        v,
        serde_json::json!(["compute.instance.create.end", "identity.authenticate"])
    );
    let (_, v) = get(
        l,
        "/v2/event_types/compute.instance.create.end/traits",
        "adm",
    );
    assert_eq!(
        v,
        serde_json::json!([
            {"name": "project_id", "type": "string"},
            {"name": "user_id", "type": "string"},
            {"name": "memory_mb", "type": "integer"},
            {"name": "load", "type": "float"},
            {"name": "launched_at", "type": "datetime"},
        ])
    );
    let (_, v) = get(
        l,
        "/v2/event_types/compute.instance.create.end/traits/memory_mb",
        "adm",
    );
    assert_eq!(
        v,
        serde_json::json!([
            {"name": "memory_mb", "type": "integer", "value": "512"},
            {"name": "memory_mb", "type": "integer", "value": "2048"},
        ])
    );

    // Bad queries: 400 with what is wrong.
    for (qs, needle) in [
        (
            "q.field=memory_mb&q.type=integer&q.value=lots",
            "unable to convert to integer",
        ),
        (
            "q.field=memory_mb&q.type=blob&q.value=1",
            "data type blob is not supported",
        ),
        ("q.field=event_type&q.op=gt&q.value=a", "Only `eq' operator"),
        (
            "q.field=memory_mb&q.op=like&q.value=1",
            "Operator like is not supported",
        ),
        ("sort=generated", "Unknown argument"),
    ] {
        let (s, v) = get(l, &format!("/v2/events?{qs}"), "adm");
        assert_eq!(s, 400, "{qs}: {v}");
        assert!(fault(&v).contains(needle), "{qs}: {v}");
    }
    // `ceilo events`: the same queries from the command line, as a table.
    let api_url = format!("http://{listen}");
    let cli = |token: &str, extra: &[&str]| {
        let mut args = vec!["events", "--api-url", &api_url, "--token", token];
        args.extend_from_slice(extra);
        let (code, out, err) = run_ceilo(&args);
        assert_eq!(code, 0, "{err}");
        out
    };
    let out = cli(
        "adm",
        &[
            "--type",
            "compute.instance.create.end",
            "-q",
            "memory_mb:integer>1000",
        ],
    );
    assert!(out.starts_with("GENERATED"), "{out}");
    assert!(
        out.contains("ev-p2") && out.contains("memory_mb=2048") && !out.contains("ev-p1"),
        "{out}"
    );
    let out = cli("p1t", &["--format", "json"]);
    let v: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(ids(&v), ["ev-p1"], "a project's own events only");
    let _ = stop_ceilo(api, std::time::Duration::from_secs(20));
}

#[test]
fn events_api_with_tokens_over_the_embedded_store() {
    let d = tempfile::tempdir().expect("tempdir");
    check(format!("sqlite://{}/events.db", d.path().display()), d);
}

#[test]
fn events_api_with_tokens_over_mongodb() {
    let Some(url) = mongodb() else {
        return;
    };
    check(url, tempfile::tempdir().expect("tempdir"));
}
