//! The HTTP API (`ceilo api`) over both stores, on a fixed fixture: every endpoint,
//! statistics values computed by hand, filters, limits, Ceilometer's HTTP errors, and
//! access control (project A never sees project B).

use std::time::Duration;

use ceilo_host::storage::{self, Retention};
use ceilo_plugin_api::{Sample, SampleType};
use ceilo_tests::*;
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};

const ADMIN: &str = "admin-token-1";
const TOKEN_A: &str = "token-of-project-a";
const TOKEN_B: &str = "token-of-project-b";

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("time")
}

fn secs(n: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(n)
}

/// cpu_util: ra1 (A) 10 @0s, 20 @30s, 30 @70s; ra2 (A) 40 @10s, 50 @80s; rb1 (B) 99 @20s.
/// memory: ra1 (A) 512 @0s.
fn fixture() -> Vec<Sample> {
    let s = |v: f64, r: &str, p: &str, at: i64| {
        Sample::new("cpu_util", SampleType::Gauge, "%", v, r)
            .with_project_id(p)
            .with_user_id(format!("user-{p}"))
            .with_timestamp(secs(at))
            .with_resource_metadata(
                json!({"flavor": {"name": if r == "ra2" { "large" } else { "small" }}}),
            )
    };
    vec![
        s(10.0, "ra1", "A", 0),
        s(20.0, "ra1", "A", 30),
        s(30.0, "ra1", "A", 70),
        s(40.0, "ra2", "A", 10),
        s(50.0, "ra2", "A", 80),
        s(99.0, "rb1", "B", 20),
        Sample::new("memory", SampleType::Gauge, "MB", 512.0, "ra1")
            .with_project_id("A")
            .with_timestamp(secs(0)),
    ]
}

struct Api {
    base: String,
    /// The store behind it, for tests that write beside the API.
    url: String,
    child: Option<std::process::Child>,
    _dir: tempfile::TempDir,
}

impl Drop for Api {
    fn drop(&mut self) {
        if let Some(c) = self.child.take() {
            let _ = stop_ceilo(c, Duration::from_secs(10));
        }
    }
}

fn start(url: &str, dir: tempfile::TempDir) -> Api {
    build_workspace();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = storage::open(Some(url), dir.path(), Retention::default())
            .await
            .unwrap();
        store.record(&fixture()).await.unwrap();
    });
    let tokens = dir.path().join("tokens.yaml");
    std::fs::write(
        &tokens,
        format!("{ADMIN}: admin\n{TOKEN_A}: A\n{TOKEN_B}: {{project: B}}\n"),
    )
    .unwrap();
    let empty = dir.path().join("no-plugins");
    std::fs::create_dir_all(&empty).unwrap();
    let (child, listen) = spawn_api(&[
        "--storage",
        url,
        "--tokens",
        tokens.to_str().unwrap(),
        "--pipeline",
        dir.path().join("none.yaml").to_str().unwrap(),
        "--plugin-dir",
        empty.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    Api {
        base: format!("http://{listen}"),
        url: url.to_owned(),
        child: Some(child),
        _dir: dir,
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// (status, headers of interest, JSON body or text) of a request.
fn call(
    api: &Api,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
    accept: Option<&str>,
) -> (u16, Option<String>, Value) {
    let url = format!("{}{path}", api.base);
    let a = agent();
    let mut res = match (method, body) {
        ("GET", _) => {
            let mut r = a.get(&url);
            if let Some(t) = token {
                r = r.header("X-Auth-Token", t);
            }
            if let Some(x) = accept {
                r = r.header("Accept", x);
            }
            r.call()
        }
        ("DELETE", _) => {
            let mut r = a.delete(&url);
            if let Some(t) = token {
                r = r.header("X-Auth-Token", t);
            }
            r.call()
        }
        ("POST", Some((ctype, text))) => {
            let mut r = a.post(&url).header("Content-Type", ctype);
            if let Some(t) = token {
                r = r.header("X-Auth-Token", t);
            }
            r.send(text)
        }
        _ => panic!("unsupported"),
    }
    .expect("request");
    let status = res.status().as_u16();
    let allow = res
        .headers()
        .get("allow")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = res.body_mut().read_to_string().unwrap_or_default();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, allow, v)
}

fn get(api: &Api, path: &str, token: &str) -> (u16, Value) {
    let (s, _, v) = call(api, "GET", path, Some(token), None, None);
    (s, v)
}

fn fault(v: &Value) -> String {
    v["error_message"]["faultstring"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {v}"))
        .to_owned()
}

fn every_endpoint(api: &Api) {
    // Meters: one per (meter, resource).
    let (s, meters) = get(api, "/v2/meters", ADMIN);
    assert_eq!(s, 200, "{meters}");
    let mut pairs: Vec<(String, String)> = meters
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap().to_owned(),
                m["resource_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    pairs.sort();
    assert_eq!(
        pairs,
        vec![
            ("cpu_util".into(), "ra1".into()),
            ("cpu_util".into(), "ra2".into()),
            ("cpu_util".into(), "rb1".into()),
            ("memory".into(), "ra1".into())
        ]
    );
    let m = meters
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "memory")
        .unwrap();
    assert_eq!(
        (
            m["type"].as_str(),
            m["unit"].as_str(),
            m["project_id"].as_str()
        ),
        (Some("gauge"), Some("MB"), Some("A"))
    );
    assert_eq!(
        m["meter_id"], "cmExK21lbW9yeQ==",
        "base64 of resource_id+name"
    );

    // Samples of a meter: OldSamples, newest first, limit.
    let (s, old) = get(api, "/v2/meters/cpu_util?limit=2", ADMIN);
    assert_eq!(s, 200);
    let old = old.as_array().unwrap();
    assert_eq!(old.len(), 2);
    assert_eq!(
        (
            old[0]["counter_volume"].as_f64(),
            old[1]["counter_volume"].as_f64()
        ),
        (Some(50.0), Some(30.0))
    );
    for f in [
        "counter_name",
        "counter_type",
        "counter_unit",
        "counter_volume",
        "user_id",
        "project_id",
        "resource_id",
        "timestamp",
        "recorded_at",
        "resource_metadata",
        "message_id",
        "source",
    ] {
        assert!(old[0].get(f).is_some(), "{f} missing: {}", old[0]);
    }
    assert_eq!(old[0]["timestamp"], "2026-03-01T12:01:20.000000");
    assert_eq!(
        old[0]["resource_metadata"]["flavor.name"], "large",
        "metadata flattened as Ceilometer does"
    );

    // Statistics: hand-computed.
    let (s, st) = get(
        api,
        "/v2/meters/cpu_util/statistics?q.field=project_id&q.value=A",
        ADMIN,
    );
    assert_eq!(s, 200, "{st}");
    let a = &st[0];
    assert_eq!(
        (
            a["count"].as_u64(),
            a["min"].as_f64(),
            a["max"].as_f64(),
            a["sum"].as_f64(),
            a["avg"].as_f64()
        ),
        (Some(5), Some(10.0), Some(50.0), Some(150.0), Some(30.0))
    );
    assert_eq!(
        (
            a["duration"].as_f64(),
            a["period"].as_u64(),
            a["unit"].as_str()
        ),
        (Some(80.0), Some(0), Some("%"))
    );
    assert_eq!(
        (a["duration_start"].as_str(), a["duration_end"].as_str()),
        (
            Some("2026-03-01T12:00:00.000000"),
            Some("2026-03-01T12:01:20.000000")
        )
    );
    assert_eq!(a["groupby"], Value::Null);
    let (_, st) = get(
        api,
        "/v2/meters/cpu_util/statistics?period=60&q.field=project&q.value=A",
        ADMIN,
    );
    let got: Vec<_> = st
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["period_start"].as_str().unwrap().to_owned(),
                s["count"].as_u64().unwrap(),
                s["sum"].as_f64().unwrap(),
                s["period_end"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "2026-03-01T12:00:00.000000".into(),
                3,
                70.0,
                "2026-03-01T12:01:00.000000".into()
            ),
            (
                "2026-03-01T12:01:00.000000".into(),
                2,
                80.0,
                "2026-03-01T12:02:00.000000".into()
            ),
        ]
    );
    // Periods aligned to the query's start.
    let (_, st) = get(api, "/v2/meters/cpu_util/statistics?period=60&q.field=timestamp&q.op=ge&q.value=2026-03-01T11:59:30&q.field=timestamp&q.op=lt&q.value=2026-03-01T12:01:30&q.field=project_id&q.op=eq&q.value=A", ADMIN);
    let got: Vec<_> = st
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["period_start"].as_str().unwrap().to_owned(),
                s["count"].as_u64().unwrap(),
                s["sum"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("2026-03-01T11:59:30.000000".into(), 2, 50.0),
            ("2026-03-01T12:00:30.000000".into(), 3, 100.0)
        ]
    );
    let (_, st) = get(
        api,
        "/v2/meters/cpu_util/statistics?groupby=resource_id&groupby=project_id",
        ADMIN,
    );
    let got: Vec<_> = st
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["groupby"]["resource_id"].as_str().unwrap().to_owned(),
                s["groupby"]["project_id"].as_str().unwrap().to_owned(),
                s["avg"].as_f64().unwrap(),
            )
        })
        .collect();
    // Ceilometer's order (its MongoDB driver): one period, so the group whose first
    // sample is newest comes first.
    assert_eq!(
        got,
        vec![
            ("rb1".into(), "B".into(), 99.0),
            ("ra2".into(), "A".into(), 45.0),
            ("ra1".into(), "A".into(), 20.0)
        ]
    );
    let (_, st) = get(api, "/v2/meters/cpu_util/statistics?groupby=resource_metadata.flavor.name&q.field=project_id&q.value=A", ADMIN);
    let got: Vec<_> = st
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["groupby"]["resource_metadata.flavor.name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                s["count"].as_u64().unwrap(),
            )
        })
        .collect();
    // One period: the group whose first sample is newest first (Ceilometer's order).
    assert_eq!(got, vec![("large".into(), 2), ("small".into(), 3)]);
    let (_, st) = get(api, "/v2/meters/cpu_util/statistics?aggregate.func=stddev&aggregate.param=&aggregate.func=cardinality&aggregate.param=resource_id&q.field=project_id&q.value=A", ADMIN);
    assert!(
        (st[0]["aggregate"]["stddev"].as_f64().unwrap() - 200f64.sqrt()).abs() < 1e-9,
        "{st}"
    );
    assert_eq!(
        st[0]["aggregate"]["cardinality/resource_id"].as_f64(),
        Some(2.0)
    );

    // Samples: filters, by id, limit=0 is a 400.
    let (s, all) = get(
        api,
        "/v2/samples?q.field=volume&q.op=ge&q.value=40&q.field=meter&q.op=eq&q.value=cpu_util",
        ADMIN,
    );
    assert_eq!(s, 200, "{all}");
    let mut vols: Vec<f64> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["volume"].as_f64().unwrap())
        .collect();
    vols.sort_by(f64::total_cmp);
    assert_eq!(vols, vec![40.0, 50.0, 99.0]);
    let (_, md) = get(
        api,
        "/v2/samples?q.field=metadata.flavor.name&q.value=large",
        ADMIN,
    );
    assert_eq!(md.as_array().unwrap().len(), 2);
    let one = &all[0];
    for f in [
        "id",
        "meter",
        "type",
        "unit",
        "volume",
        "user_id",
        "project_id",
        "resource_id",
        "source",
        "timestamp",
        "recorded_at",
        "metadata",
    ] {
        assert!(one.get(f).is_some(), "{f} missing: {one}");
    }
    let (s, by_id) = get(
        api,
        &format!("/v2/samples/{}", one["id"].as_str().unwrap()),
        ADMIN,
    );
    assert_eq!((s, &by_id["id"]), (200, &one["id"]));
    let (s, v) = get(api, "/v2/samples/no-such-id", ADMIN);
    assert_eq!(s, 404);
    assert!(fault(&v).contains("no-such-id"));
    let (s, v) = get(api, "/v2/samples?limit=0", ADMIN);
    assert_eq!(s, 400);
    assert!(fault(&v).to_lowercase().contains("limit"));

    // Resources.
    let (s, rs) = get(api, "/v2/resources", ADMIN);
    assert_eq!(s, 200);
    assert_eq!(rs.as_array().unwrap().len(), 3);
    let (s, r) = get(api, "/v2/resources/ra1", ADMIN);
    assert_eq!(s, 200);
    assert_eq!(
        (
            r["first_sample_timestamp"].as_str(),
            r["last_sample_timestamp"].as_str()
        ),
        (
            Some("2026-03-01T12:00:00.000000"),
            Some("2026-03-01T12:01:10.000000")
        )
    );
    let rels: Vec<&str> = r["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["rel"].as_str().unwrap())
        .collect();
    assert_eq!(rels, vec!["self", "cpu_util", "memory"]);
    assert_eq!(get(api, "/v2/resources/nope", ADMIN).0, 404);
    assert_eq!(get(api, "/v2/capabilities", ADMIN).0, 200);

    // Ceilometer's HTTP behaviour.
    let (s, allow, v) = call(api, "DELETE", "/v2/meters", Some(ADMIN), None, None);
    assert_eq!(s, 405);
    assert!(allow.unwrap_or_default().contains("GET"));
    fault(&v);
    let (s, _, v) = call(
        api,
        "GET",
        "/v2/meters",
        Some(ADMIN),
        None,
        Some("text/html"),
    );
    assert_eq!(s, 406);
    fault(&v);
    let (s, _, v) = call(
        api,
        "POST",
        "/v2/meters/cpu_util?direct=True",
        Some(ADMIN),
        Some(("text/plain", "hello")),
        None,
    );
    assert_eq!(s, 415, "{v}");
    for (query, needle) in [
        (
            "q.field=nope&q.value=1",
            "Unknown argument: \"nope\": unrecognized field in query",
        ),
        (
            "q.field=volume&q.op=like&q.value=1",
            "unknown operator `like`",
        ),
        ("q.field=volume&q.value=much", "not a valid float"),
        (
            "q.field=timestamp&q.op=ge&q.value=yesterday",
            "invalid timestamp format",
        ),
        ("limit=-3", "Limit must be positive"),
        ("q.field=meter", "q.value"),
        // Metadata keys neither store's path syntax carries: a 400, not a 503.
        ("q.field=metadata.a%5C&q.value=1", "cannot be queried"),
        ("q.field=metadata.%00&q.value=1", "cannot be queried"),
        (
            "q.field=resource_metadata.a%22b&q.value=1",
            "cannot be queried",
        ),
        ("q.field=metadata.a..b&q.value=1", "between every two dots"),
    ] {
        let (s, v) = get(api, &format!("/v2/samples?{query}"), ADMIN);
        assert_eq!(s, 400, "{query}: {v}");
        assert!(fault(&v).contains(needle), "{query}: {v}");
    }
    for path in [
        "/v2/meters/cpu_util/statistics?groupby=resource_metadata.a%5C",
        "/v2/meters/cpu_util/statistics?groupby=resource_metadata.%00",
        "/v2/meters/cpu_util/statistics?q.field=metadata.a%5C&q.value=1",
        "/v2/meters/cpu_util?q.field=metadata.%00&q.value=1",
    ] {
        let (s, v) = get(api, path, ADMIN);
        assert_eq!(s, 400, "{path}: {v}");
        assert!(fault(&v).contains("cannot be queried"), "{path}: {v}");
    }
    // Quoted input is cut to a readable length.
    let long = "x".repeat(5000);
    let (s, v) = get(api, &format!("/v2/samples?q.field={long}&q.value=1"), ADMIN);
    assert_eq!(s, 400);
    assert!(fault(&v).len() < 1000, "{}", fault(&v).len());
    let (s, v) = get(
        api,
        "/v2/meters/cpu_util/statistics?groupby=counter_volume",
        ADMIN,
    );
    assert_eq!(s, 400);
    assert!(fault(&v).contains("cannot group by"));
    let (s, v) = get(
        api,
        "/v2/meters/cpu_util/statistics?aggregate.func=median",
        ADMIN,
    );
    assert_eq!(s, 400);
    assert!(fault(&v).contains("median"));

    // POST: validation, direct for admins only, 409 without a pipeline.
    let post = |token: &str, q: &str, body: &Value| {
        call(
            api,
            "POST",
            &format!("/v2/meters/posted{q}"),
            Some(token),
            Some(("application/json", &body.to_string())),
            None,
        )
    };
    let good = json!([{"counter_name": "posted", "counter_type": "gauge", "counter_unit": "u", "counter_volume": 7.5, "resource_id": "rp", "project_id": "A", "resource_metadata": {"k": "v"}}]);
    for (body, needle) in [
        (
            json!([{"counter_name": "posted", "counter_type": "gauge", "counter_unit": "u", "resource_id": "rp"}]),
            "counter_volume",
        ),
        (
            json!([{"counter_name": "other", "counter_type": "gauge", "counter_unit": "u", "counter_volume": 1, "resource_id": "rp"}]),
            "counter_name",
        ),
        (
            json!([{"counter_name": "posted", "counter_type": "rate", "counter_unit": "u", "counter_volume": 1, "resource_id": "rp"}]),
            "counter_type",
        ),
        (
            json!([{"counter_name": "posted", "counter_type": "gauge", "counter_unit": 5, "counter_volume": 1, "resource_id": "rp"}]),
            "counter_unit",
        ),
        (json!({"counter_type": "gauge"}), "list"),
        // Ceilometer's wording, and its rule: the API gives message ids.
        (
            json!([{"counter_name": "posted", "counter_type": "gauge", "counter_unit": "u", "counter_volume": 1, "resource_id": "rp", "message_id": "mine"}]),
            "Invalid input for field/attribute message_id. Value: 'mine'. The message_id must not be set",
        ),
        // What no store can hold is refused here, not dead-lettered later.
        (
            json!([{"counter_name": "posted", "counter_type": "gauge", "counter_unit": "u", "counter_volume": 1, "resource_id": "rp", "resource_metadata": {"a\u{0}b": 1}}]),
            "`a\\u0000b` holds a NUL character",
        ),
    ] {
        let (s, _, v) = post(ADMIN, "?direct=True", &body);
        assert_eq!(s, 400, "{body}: {v}");
        assert!(fault(&v).contains(needle), "{body}: {v}");
    }
    let (s, _, v) = post(TOKEN_A, "?direct=True", &good);
    assert_eq!(s, 403, "{v}");
    let (s, _, v) = post(ADMIN, "", &good);
    assert_eq!(s, 409, "{v}");
    let (s, _, v) = post(ADMIN, "?direct=True", &good);
    assert_eq!(s, 201, "{v}");
    // As Ceilometer: the source is prefixed with the project.
    assert_eq!(v[0]["source"], "A:openstack", "{v}");
    let id = v[0]["message_id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty());
    let (s, stored) = get(api, &format!("/v2/samples/{id}"), TOKEN_A);
    assert_eq!(s, 200, "{stored}");
    assert_eq!(
        (stored["volume"].as_f64(), stored["metadata"]["k"].as_str()),
        (Some(7.5), Some("v"))
    );

    let (s, text) = get(api, "/metrics", ADMIN);
    assert_eq!(s, 200);
    assert!(
        text.as_str()
            .unwrap_or_default()
            .contains("ceilo_samples_stored_total"),
        "{text}"
    );
}

fn access_control(api: &Api) {
    // No token, a wrong token: 401 everywhere.
    for path in [
        "/v2/meters",
        "/v2/samples",
        "/v2/resources",
        "/v2/meters/cpu_util/statistics",
    ] {
        let (s, _, v) = call(api, "GET", path, None, None, None);
        assert_eq!(s, 401, "{path}");
        fault(&v);
        assert_eq!(get(api, path, "wrong-token").0, 401, "{path}");
    }
    // Bearer works like X-Auth-Token.
    let mut res = agent()
        .get(format!("{}/v2/resources", api.base))
        .header("Authorization", format!("Bearer {TOKEN_B}"))
        .call()
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let rs: Value = serde_json::from_str(&res.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(rs.as_array().unwrap().len(), 1);
    assert_eq!(rs[0]["resource_id"], "rb1");

    // Project A sees only A through every endpoint.
    let (_, meters) = get(api, "/v2/meters", TOKEN_A);
    assert!(
        meters
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["project_id"] == "A"),
        "{meters}"
    );
    let (_, samples) = get(api, "/v2/samples", TOKEN_A);
    assert!(!samples.as_array().unwrap().is_empty());
    assert!(
        samples
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["project_id"] == "A"),
        "{samples}"
    );
    let (_, old) = get(api, "/v2/meters/cpu_util", TOKEN_A);
    assert!(old
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["project_id"] == "A"));
    let (_, st) = get(api, "/v2/meters/cpu_util/statistics", TOKEN_A);
    assert_eq!(
        (st[0]["count"].as_u64(), st[0]["max"].as_f64()),
        (Some(5), Some(50.0)),
        "B's 99 is not counted"
    );
    let (_, st) = get(
        api,
        "/v2/meters/cpu_util/statistics?groupby=project_id",
        TOKEN_A,
    );
    assert_eq!(st.as_array().unwrap().len(), 1);
    let (_, rs) = get(api, "/v2/resources", TOKEN_A);
    assert!(rs
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["project_id"] == "A"));
    assert_eq!(get(api, "/v2/resources/rb1", TOKEN_A).0, 404);
    let (_, b_samples) = get(api, "/v2/samples", TOKEN_B);
    let b_id = b_samples[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(get(api, &format!("/v2/samples/{b_id}"), TOKEN_A).0, 404);
    for path in [
        "/v2/samples?q.field=project_id&q.value=B",
        "/v2/meters/cpu_util/statistics?q.field=project&q.value=B",
        "/v2/resources?q.field=project_id&q.value=B",
    ] {
        let (s, v) = get(api, path, TOKEN_A);
        assert_eq!(s, 401, "{path}: {v}");
    }
    // A malformed query is a 400 for a project token too.
    assert_eq!(
        get(
            api,
            "/v2/samples?q.field=volume&q.op=around&q.value=1",
            TOKEN_A
        )
        .0,
        400
    );
    // A project token writes only its project.
    let body = json!([{"counter_name": "m", "counter_type": "gauge", "counter_unit": "u", "counter_volume": 1, "resource_id": "x", "project_id": "B"}]).to_string();
    let (s, _, _) = call(
        api,
        "POST",
        "/v2/meters/m",
        Some(TOKEN_A),
        Some(("application/json", &body)),
        None,
    );
    // Ceilometer: 400, `can not post samples to other projects`.
    assert_eq!(s, 400);

    cross_project_resource_ids(api);
}

/// Project A writes a later sample on B's resource id `rb1` (as a POST through a
/// pipeline would store it): A gets a resource of its own, B's stays B's.
fn cross_project_resource_ids(api: &Api) {
    let (s, b_before) = get(api, "/v2/resources/rb1", TOKEN_B);
    assert_eq!(s, 200, "{b_before}");
    let probe = Sample::new("probe.a", SampleType::Gauge, "u", 1.0, "rb1")
        .with_project_id("A")
        .with_timestamp(secs(500))
        .with_resource_metadata(json!({"probe": true}));
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = storage::open(Some(&api.url), dir.path(), Retention::default())
            .await
            .unwrap();
        store.record(&[probe]).await.unwrap();
    });
    let (s, b_after) = get(api, "/v2/resources/rb1", TOKEN_B);
    assert_eq!(s, 200, "B still owns its resource: {b_after}");
    assert_eq!(b_after, b_before, "B's record is untouched");
    let (s, a_view) = get(api, "/v2/resources/rb1", TOKEN_A);
    assert_eq!(s, 200, "{a_view}");
    assert_eq!(a_view["project_id"], "A");
    assert_ne!(
        a_view["first_sample_timestamp"], b_before["first_sample_timestamp"],
        "B's first sample time leaked: {a_view}"
    );
    assert_eq!(a_view["metadata"]["probe"], "True", "{a_view}");
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect();
        n.sort();
        n
    };
    let (_, a_meters) = get(api, "/v2/meters?q.field=resource_id&q.value=rb1", TOKEN_A);
    assert_eq!(
        names(&a_meters),
        ["probe.a"],
        "B's meters leaked: {a_meters}"
    );
    let (_, b_meters) = get(api, "/v2/meters?q.field=resource_id&q.value=rb1", TOKEN_B);
    assert_eq!(names(&b_meters), ["cpu_util"], "{b_meters}");
    let (_, a_all) = get(api, "/v2/meters", TOKEN_A);
    assert!(
        a_all
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["resource_id"] != "rb1" || m["name"] == "probe.a"),
        "{a_all}"
    );
    let (_, a_samples) = get(api, "/v2/samples?q.field=resource_id&q.value=rb1", TOKEN_A);
    assert_eq!(a_samples.as_array().unwrap().len(), 1, "{a_samples}");
    let (_, st) = get(
        api,
        "/v2/meters/cpu_util/statistics?q.field=resource_id&q.value=rb1",
        TOKEN_A,
    );
    assert_eq!(st, json!([]), "B's cpu_util on rb1 is not A's");
    let (_, b_resources) = get(api, "/v2/resources", TOKEN_B);
    assert_eq!(b_resources.as_array().unwrap().len(), 1, "{b_resources}");
    // An admin sees both records; by id, the one measured last.
    let (_, both) = get(api, "/v2/resources?q.field=resource_id&q.value=rb1", ADMIN);
    let mut projects: Vec<&str> = both
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["project_id"].as_str().unwrap())
        .collect();
    projects.sort();
    assert_eq!(projects, ["A", "B"], "{both}");
    assert_eq!(get(api, "/v2/resources/rb1", ADMIN).1["project_id"], "A");
}

/// `ceilo api` over a fresh embedded store holding the fixture.
fn embedded_api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/api.db", dir.path().display());
    start(&url, dir)
}

#[test]
fn every_endpoint_over_the_embedded_store() {
    let api = embedded_api();
    every_endpoint(&api);
}

#[test]
fn every_endpoint_over_mongodb() {
    let Some(url) = mongodb() else { return };
    let api = start(&url, tempfile::tempdir().unwrap());
    every_endpoint(&api);
}

#[test]
fn access_control_over_the_embedded_store() {
    let api = embedded_api();
    access_control(&api);
}

#[test]
fn access_control_over_mongodb() {
    let Some(url) = mongodb() else { return };
    let api = start(&url, tempfile::tempdir().unwrap());
    access_control(&api);
}

#[test]
fn the_query_commands_print_tables_and_json() {
    let api = embedded_api();
    let client = ["--api-url", api.base.as_str(), "--token", ADMIN];
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(&client);
        let (code, out, err) = run_ceilo(&all);
        assert_eq!(code, 0, "{args:?}: {err}");
        out
    };
    let table = run(&[
        "statistics",
        "cpu_util",
        "--period",
        "60",
        "--groupby",
        "resource_id",
        "-q",
        "project_id=A",
    ]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("PERIOD_START")
            && lines[0].contains("RESOURCE_ID")
            && lines[0].contains("AVG"),
        "{table}"
    );
    // ra1: 10, 20 in the first minute (avg 15), 30 in the second; ra2: 40, then 50.
    // In a period, the group whose first sample is newest first (Ceilometer's order).
    assert_eq!(lines.len(), 5, "{table}");
    assert!(
        lines[2].contains("ra1") && lines[2].contains(" 15 "),
        "{table}"
    );
    assert!(
        lines[3].contains("ra2") && lines[3].contains(" 50 "),
        "{table}"
    );
    let json: Value = serde_json::from_str(&run(&["meters", "--format", "json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 4);
    let samples = run(&["samples", "cpu_util", "--limit", "2"]);
    assert_eq!(samples.lines().count(), 3, "{samples}");
    assert!(
        samples
            .lines()
            .nth(1)
            .unwrap()
            .contains("2026-03-01T12:01:20"),
        "{samples}"
    );
    let resources = run(&["resources", "-q", "project_id=B"]);
    assert!(
        resources.contains("rb1") && !resources.contains("ra1"),
        "{resources}"
    );
    // Errors from the API come through with their message.
    let (code, _, err) = run_ceilo(&[
        "samples",
        "cpu_util",
        "-q",
        "volume~3",
        "--api-url",
        api.base.as_str(),
        "--token",
        ADMIN,
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("-q `volume~3`"), "{err}");
    let (code, _, err) = run_ceilo(&["meters", "--api-url", api.base.as_str(), "--token", "bad"]);
    assert_ne!(code, 0);
    assert!(err.contains("401") && err.contains("not valid"), "{err}");
}

/// Without `direct`, POSTed samples go through the pipeline: the sources whose meters
/// allow the name, here to `direct://`, so they land in the store.
#[test]
fn posted_samples_go_through_the_pipeline() {
    build_workspace();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/post.db", dir.path().display());
    let pipeline = dir.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        "sources:\n  - name: api\n    meters: [\"posted.*\"]\n    sinks: [store]\nsinks:\n  - name: store\n    publishers: [\"direct://\"]\n",
    )
    .unwrap();
    let empty = dir.path().join("no-plugins");
    std::fs::create_dir_all(&empty).unwrap();
    let (child, listen) = spawn_api(&[
        "--no-auth",
        "--storage",
        &url,
        "--pipeline",
        pipeline.to_str().unwrap(),
        "--plugin-dir",
        empty.to_str().unwrap(),
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let api = Api {
        base: format!("http://{listen}"),
        url: url.clone(),
        child: Some(child),
        _dir: dir,
    };
    let sample = |name: &str| {
        json!([{"counter_name": name, "counter_type": "delta", "counter_unit": "B", "counter_volume": 3, "resource_id": "r9", "timestamp": "2026-03-01T12:00:00"}]).to_string()
    };
    let body = sample("posted.bytes");
    let (s, _, v) = call(
        &api,
        "POST",
        "/v2/meters/posted.bytes",
        None,
        Some(("application/json", &body)),
        None,
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v[0]["counter_name"], "posted.bytes");
    let id = v[0]["message_id"].as_str().unwrap().to_owned();
    let (s, _, stored) = call(&api, "GET", &format!("/v2/samples/{id}"), None, None, None);
    assert_eq!(s, 200, "{stored}");
    assert_eq!(
        (stored["volume"].as_f64(), stored["type"].as_str()),
        (Some(3.0), Some("delta"))
    );
    // A meter no source accepts: 409.
    let (s, _, v) = call(
        &api,
        "POST",
        "/v2/meters/other",
        None,
        Some(("application/json", &sample("other"))),
        None,
    );
    assert_eq!(s, 409, "{v}");
    assert!(
        fault(&v).contains("no pipeline source accepts meter `other`"),
        "{v}"
    );
}

#[test]
fn alarms_are_gone_and_the_root_is_a_version_document() {
    let api = embedded_api();
    for path in ["/v2/alarms", "/v2/alarms/a1/history", "/v2/query/alarms"] {
        let (s, v) = get(&api, path, ADMIN);
        assert_eq!(s, 410, "{path}: {v}");
        assert!(fault(&v).contains("Aodh"), "{path}: {v}");
    }
    let (s, v) = get(&api, "/", ADMIN);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["versions"]["values"][0]["id"], "v2", "{v}");
    let href = v["versions"]["values"][0]["links"][0]["href"]
        .as_str()
        .unwrap_or_default();
    assert!(href.ends_with("/v2"), "{v}");
}
