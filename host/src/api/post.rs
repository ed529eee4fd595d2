//! `POST /v2/meters/{name}`: a list of OldSamples, validated field by field, given
//! server-side message ids, then sent through the pipeline (sources whose meters
//! allow the name), or with `?direct=True` (admin only) straight to the store.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use ceilo_plugin_api::{parse_timestamp, Sample, SampleBatch, SampleType};
use chrono::Utc;
use serde_json::{Map, Value};

use super::auth::Principal;
use super::error::ApiError;
use super::{models, query, ApiState};
use crate::storage::StoredSample;

/// What a POST takes from its headers when a sample leaves it out (Ceilometer: the
/// `X-Project-Id` and `X-User-Id` keystone's middleware sets; ceilo: the token's
/// project first).
struct Defaults {
    project_id: Option<String>,
    user_id: Option<String>,
}

/// The source Ceilometer's API gives a sample without one (`sample_source`).
const DEFAULT_SOURCE: &str = "openstack";

/// Builds the samples from a POSTed body.
fn samples_from(
    body: &[u8],
    name: &str,
    who: &Principal,
    defaults: &Defaults,
) -> Result<Vec<Sample>, ApiError> {
    let items = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) if !items.is_empty() => items,
        Ok(Value::Array(_) | Value::Null) => return Err(no_samples()),
        Err(_) if body.iter().all(u8::is_ascii_whitespace) => return Err(no_samples()),
        Err(e) => {
            return Err(ApiError::invalid_input(
                "samples",
                &String::from_utf8_lossy(body),
                format!("the body is not valid JSON: {e}"),
            ))
        }
        Ok(other) => {
            return Err(ApiError::invalid_input(
                "samples",
                &other.to_string(),
                "expected a JSON list of samples",
            ))
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(ApiError::invalid_input(
                "samples",
                &item.to_string(),
                format!("sample {i} is not an object"),
            ));
        };
        let s = sample_from(i, o, name, who, defaults)?;
        // Refused here rather than dead-lettered later by the collector.
        if let Some(why) = crate::storage::unstorable(&s) {
            return Err(ApiError::invalid_input(
                "samples",
                &item.to_string(),
                format!("sample {i}: {why}"),
            ));
        }
        out.push(s);
    }
    Ok(out)
}

fn no_samples() -> ApiError {
    ApiError::bad_request("Samples should be included in request body")
}

fn sample_from(
    i: usize,
    o: &Map<String, Value>,
    name: &str,
    who: &Principal,
    defaults: &Defaults,
) -> Result<Sample, ApiError> {
    // A value of the wrong type fails the whole list in wsme: attribute `samples`.
    let wrong = |k: &str, v: &Value, what: &str| {
        ApiError::invalid_input(
            "samples",
            &v.to_string(),
            format!("sample {i}: field {k} {what}"),
        )
    };
    let text = |k: &str| -> Result<Option<String>, ApiError> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong(k, other, "must be a string")),
        }
    };
    let required = |k: &str| -> Result<String, ApiError> {
        text(k)?.ok_or_else(|| {
            ApiError::invalid_input(k, "None", format!("Mandatory field missing. (sample {i})"))
        })
    };
    let counter_name = required("counter_name")?;
    if counter_name != name {
        return Err(ApiError::invalid_input(
            "counter_name",
            &counter_name,
            format!("should be {name}"),
        ));
    }
    // As Ceilometer (`if s.message_id`): an empty one counts as not set.
    if let Some(id) = text("message_id")?.filter(|id| !id.is_empty()) {
        return Err(ApiError::invalid_input(
            "message_id",
            &id,
            "The message_id must not be set (the API gives each sample its own)",
        ));
    }
    let kind_text = required("counter_type")?;
    let kind: SampleType = kind_text.parse().map_err(|_| {
        ApiError::invalid_input(
            "counter_type",
            &kind_text,
            "The counter type must be: gauge, delta, cumulative",
        )
    })?;
    let unit = required("counter_unit")?;
    let volume = match o.get("counter_volume") {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid_input(
                "counter_volume",
                "None",
                format!("Mandatory field missing. (sample {i})"),
            ))
        }
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(v @ Value::String(s)) => s
            .parse::<f64>()
            .map_err(|_| wrong("counter_volume", v, "must be a number"))?,
        Some(other) => return Err(wrong("counter_volume", other, "must be a number")),
    };
    if !volume.is_finite() {
        return Err(wrong(
            "counter_volume",
            &o["counter_volume"],
            "must be a finite number",
        ));
    }
    let resource = required("resource_id")?;
    let mut s = Sample::new(name, kind, unit, volume, resource);
    let project = text("project_id")?
        .or_else(|| who.project().map(str::to_owned))
        .or_else(|| defaults.project_id.clone());
    if let Some(own) = who.project() {
        if project.as_deref() != Some(own) {
            return Err(ApiError::invalid_input(
                "project_id",
                project.as_deref().unwrap_or("None"),
                "can not post samples to other projects",
            ));
        }
    }
    // As Ceilometer: the source is prefixed with the project (`None` without one).
    let source = text("source")?.unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
    s.set_source(format!("{}:{source}", project.as_deref().unwrap_or("None")));
    s.set_project_id(project);
    s.set_user_id(text("user_id")?.or_else(|| defaults.user_id.clone()));
    if let Some(t) = text("timestamp")? {
        let parsed = parse_timestamp(&t)
            .map_err(|e| wrong("timestamp", &o["timestamp"], &format!("is not valid: {e}")))?;
        s.set_timestamp(parsed);
    }
    match o.get("resource_metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => s.set_resource_metadata(restore_nesting(m)),
        Some(other) => return Err(wrong("resource_metadata", other, "must be an object")),
    }
    Ok(s)
}

/// Dotted keys back into nested objects (`{"a.b": 1}` → `{"a": {"b": 1}}`), as
/// Ceilometer's API stores what its clients send flattened.
fn restore_nesting(flat: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in flat {
        let parts: Vec<&str> = key.split('.').collect();
        insert_at(&mut out, &parts, value.clone());
    }
    out
}

fn insert_at(map: &mut Map<String, Value>, path: &[&str], value: Value) {
    match path {
        [] => {}
        [last] => {
            map.insert((*last).to_owned(), value);
        }
        [first, rest @ ..] => {
            let slot = map
                .entry((*first).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            if let Value::Object(next) = slot {
                insert_at(next, rest, value);
            }
        }
    }
}

/// The handler.
pub async fn post_samples(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let who = st.auth.principal(&headers)?;
    let params = query::parse(raw.as_deref())?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim() == "application/json")
        });
    if !json {
        return Err(ApiError::unsupported_media(
            "the body must be JSON (Content-Type: application/json)",
        ));
    }
    let header = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let defaults = Defaults {
        project_id: header("x-project-id"),
        user_id: header("x-user-id"),
    };
    let samples = samples_from(&body, &name, &who, &defaults)?;
    let recorded_at = Utc::now();
    if params.direct {
        if who != Principal::Admin {
            return Err(ApiError::forbidden(
                "direct=True (straight to storage) is for admin tokens only",
            ));
        }
        st.store.record(&samples).await?;
    } else {
        let Some(pipeline) = st.pipeline.clone() else {
            return Err(ApiError::conflict(
                "no pipeline is loaded in this API process: POST with ?direct=True (admin), or run the API with a pipeline",
            ));
        };
        let batch: SampleBatch = samples.iter().cloned().collect();
        let meter = name.clone();
        let accepted = tokio::task::spawn_blocking(move || {
            let Ok(runtime) = pipeline.lock() else {
                return false;
            };
            let mut sinks = Vec::new();
            for src in runtime.sources.iter().filter(|s| s.filter.allows(&meter)) {
                for sink in &src.sinks {
                    if !sinks.iter().any(|s| std::sync::Arc::ptr_eq(s, sink)) {
                        sinks.push(sink.clone());
                    }
                }
            }
            for sink in &sinks {
                if let Ok(mut s) = sink.lock() {
                    s.process(batch.clone());
                    s.flush();
                }
            }
            !sinks.is_empty()
        })
        .await
        .unwrap_or(false);
        if !accepted {
            return Err(ApiError::conflict(format!(
                "no pipeline source accepts meter `{name}`: add it to a source's meters in pipeline.yaml, or POST with ?direct=True (admin)"
            )));
        }
    }
    let out: Vec<Value> = samples
        .into_iter()
        .map(|sample| {
            models::old_sample(&StoredSample {
                sample,
                recorded_at,
            })
        })
        .collect();
    Ok((StatusCode::CREATED, Json(Value::Array(out))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys_nest_again() {
        let flat = serde_json::json!({"a.b": 1, "a.c": "x", "d": true});
        let Value::Object(flat) = flat else { panic!() };
        assert_eq!(
            Value::Object(restore_nesting(&flat)),
            serde_json::json!({"a": {"b": 1, "c": "x"}, "d": true})
        );
    }
}
