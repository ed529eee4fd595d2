//! The JSON objects of Ceilometer's v2 API: Meter, OldSample, Sample, Resource,
//! Statistics. Timestamps are ISO 8601 without a zone (UTC), as Ceilometer writes
//! them; metadata is flattened to dotted keys with text values, as Ceilometer does.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::storage::{Resource, Statistics, StoredSample};

/// `2026-01-02T03:04:05.123456`.
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// Nested metadata as `{"a.b": "value"}`.
pub fn flatten(metadata: &Map<String, Value>) -> Map<String, Value> {
    fn walk(prefix: &str, v: &Map<String, Value>, out: &mut Map<String, Value>) {
        for (k, v) in v {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                Value::Object(m) => walk(&key, m, out),
                other => {
                    out.insert(key, Value::String(text(other)));
                }
            }
        }
    }
    let mut out = Map::new();
    walk("", metadata, &mut out);
    out
}

/// Ceilometer's opaque meter id: base64 of `resource_id+name`.
pub fn meter_id(resource_id: &str, name: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{resource_id}+{name}"))
}

/// An OldSample (`/v2/meters/{name}`).
pub fn old_sample(s: &StoredSample) -> Value {
    let x = &s.sample;
    json!({
        "counter_name": x.name(),
        "counter_type": x.sample_type().as_str(),
        "counter_unit": x.unit(),
        "counter_volume": x.volume(),
        "user_id": x.user_id(),
        "project_id": x.project_id(),
        "resource_id": x.resource_id(),
        "timestamp": time(x.timestamp()),
        "recorded_at": time(s.recorded_at),
        "resource_metadata": flatten(&x.resource_metadata()),
        "message_id": x.message_id(),
        "source": x.source(),
    })
}

/// A Sample (`/v2/samples`).
pub fn sample(s: &StoredSample) -> Value {
    let x = &s.sample;
    json!({
        "id": x.message_id(),
        "meter": x.name(),
        "type": x.sample_type().as_str(),
        "unit": x.unit(),
        "volume": x.volume(),
        "user_id": x.user_id(),
        "project_id": x.project_id(),
        "resource_id": x.resource_id(),
        "source": x.source(),
        "timestamp": time(x.timestamp()),
        "recorded_at": time(s.recorded_at),
        "metadata": flatten(&x.resource_metadata()),
    })
}

/// A Resource, with links to itself and (`meter_links`) to its meters.
pub fn resource(r: &Resource, base: &str, meter_links: bool) -> Value {
    let mut links =
        vec![json!({"href": format!("{base}/v2/resources/{}", r.resource_id), "rel": "self"})];
    let mut names: Vec<&str> = r.meters.iter().map(|m| m.name.as_str()).collect();
    names.dedup();
    if !meter_links {
        names.clear();
    }
    for m in names {
        links.push(json!({
            "href": format!("{base}/v2/meters/{m}?q.field=resource_id&q.value={}", r.resource_id),
            "rel": m,
        }));
    }
    json!({
        "resource_id": r.resource_id,
        "project_id": r.project_id,
        "user_id": r.user_id,
        "source": r.source,
        "first_sample_timestamp": time(r.first_sample_timestamp),
        "last_sample_timestamp": time(r.last_sample_timestamp),
        "metadata": flatten(&r.metadata),
        "links": links,
    })
}

/// The Meters of a resource.
pub fn meters(r: &Resource) -> Vec<Value> {
    r.meters
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "type": m.sample_type,
                "unit": m.unit,
                "resource_id": r.resource_id,
                "project_id": r.project_id,
                "user_id": r.user_id,
                "source": r.source,
                "meter_id": meter_id(&r.resource_id, &m.name),
            })
        })
        .collect()
}

/// A Meter of `unique=True`: its name, type and unit only.
pub fn unique_meter(m: &crate::storage::ResourceMeter) -> Value {
    json!({
        "name": m.name,
        "type": m.sample_type,
        "unit": m.unit,
        "resource_id": null,
        "project_id": null,
        "user_id": null,
        "source": null,
        "meter_id": null,
    })
}

/// A Statistics object.
pub fn statistics(s: &Statistics) -> Value {
    let mut v = json!({
        "avg": s.avg,
        "count": s.count,
        "duration": s.duration(),
        "duration_start": time(s.duration_start),
        "duration_end": time(s.duration_end),
        "max": s.max,
        "min": s.min,
        "period": s.period,
        "period_start": time(s.period_start),
        "period_end": time(s.period_end),
        "sum": s.sum,
        "unit": s.unit,
        "groupby": s.groupby,
    });
    if !s.aggregate.is_empty() {
        v["aggregate"] = json!(s.aggregate);
    }
    v
}
