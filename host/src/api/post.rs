//! `POST /v2/meters/{name}`: a list of OldSamples, validated field by field, given
//! server-side message ids, then sent through the pipeline (sources whose meters
//! allow the name), or with `?direct=True` (admin only) straight to the store.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use ceilo_plugin_api::{parse_timestamp, Sample, SampleBatch, SampleType};
use chrono::Utc;
use serde_json::{Map, Value};

use super::auth::Principal;
use super::error::ApiError;
use super::{models, query, ApiState};
use crate::storage::StoredSample;

/// Builds the samples from a POSTed body.
fn samples_from(body: &[u8], name: &str, who: &Principal) -> Result<Vec<Sample>, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Array(items) = v else {
        return Err(ApiError::bad_request("expected a JSON list of samples"));
    };
    if items.is_empty() {
        return Err(ApiError::bad_request("the list of samples is empty"));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(ApiError::bad_request(format!("sample {i}: not an object")));
        };
        let s = sample_from(i, o, name, who)?;
        // Refused here rather than dead-lettered later by the collector.
        if let Some(why) = crate::storage::unstorable(&s) {
            return Err(ApiError::bad_request(format!("sample {i}: {why}")));
        }
        out.push(s);
    }
    Ok(out)
}

fn sample_from(
    i: usize,
    o: &Map<String, Value>,
    name: &str,
    who: &Principal,
) -> Result<Sample, ApiError> {
    let bad = |m: String| ApiError::bad_request(format!("sample {i}: {m}"));
    let text = |k: &str, required: bool| -> Result<Option<String>, ApiError> {
        match o.get(k) {
            None | Some(Value::Null) if required => Err(bad(format!("missing field {k}"))),
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(bad(format!("field {k} must be a string, not {other}"))),
        }
    };
    if let Some(n) = text("counter_name", false)? {
        if n != name {
            return Err(bad(format!(
                "counter_name `{n}` differs from the meter `{name}` in the path"
            )));
        }
    }
    let kind = text("counter_type", true)?.unwrap_or_default();
    let kind: SampleType = kind
        .parse()
        .map_err(|e| bad(format!("field counter_type: {e}")))?;
    let unit = text("counter_unit", true)?.unwrap_or_default();
    let volume = match o.get("counter_volume") {
        None | Some(Value::Null) => return Err(bad("missing field counter_volume".into())),
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => s
            .parse::<f64>()
            .map_err(|_| bad(format!("field counter_volume must be a number, not `{s}`")))?,
        Some(other) => {
            return Err(bad(format!(
                "field counter_volume must be a number, not {other}"
            )))
        }
    };
    if !volume.is_finite() {
        return Err(bad("field counter_volume must be a finite number".into()));
    }
    let resource = text("resource_id", true)?.unwrap_or_default();
    let mut s = Sample::new(name, kind, unit, volume, resource);
    let project = text("project_id", false)?;
    match (who.project(), project) {
        (Some(own), Some(p)) if p != own => {
            return Err(ApiError::unauthorized(format!(
                "Not Authorized to access project {p}"
            )))
        }
        (Some(own), _) => s.set_project_id(Some(own.to_owned())),
        (None, p) => s.set_project_id(p),
    }
    s.set_user_id(text("user_id", false)?);
    if let Some(src) = text("source", false)? {
        s.set_source(src);
    }
    if let Some(t) = text("timestamp", false)? {
        s.set_timestamp(parse_timestamp(&t).map_err(|e| bad(format!("field timestamp: {e}")))?);
    }
    match o.get("resource_metadata") {
        None | Some(Value::Null) => {}
        Some(Value::Object(m)) => s.set_resource_metadata(m.clone()),
        Some(other) => {
            return Err(bad(format!(
                "field resource_metadata must be an object, not {other}"
            )))
        }
    }
    Ok(s)
}

/// The handler.
pub async fn post_samples(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
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
    let samples = samples_from(&body, &name, &who)?;
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
    Ok(Json(Value::Array(out)))
}
