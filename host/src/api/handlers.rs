//! The GET endpoints.

use std::collections::HashSet;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::{models, query, ApiState};
use crate::storage::{Aggregate, GroupBy, ResourceQuery, SampleQuery, StatisticsQuery};

type Answer = Result<Json<Value>, ApiError>;

/// `http://host[:port][/prefix]` as the client reached the API, for links.
pub(super) fn base_url(st: &ApiState, headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost:8777");
    let scheme = if st.deployment.https { "https" } else { "http" };
    format!("{scheme}://{host}{}", st.deployment.prefix)
}

/// The (resource, project, meter) triples the samples `q` selects have: how queries on
/// metadata and timestamps select meters and resources.
async fn measured(
    st: &ApiState,
    q: &SampleQuery,
) -> Result<HashSet<(String, Option<String>, String)>, ApiError> {
    Ok(st
        .store
        .samples(q)
        .await?
        .into_iter()
        .map(|s| {
            let x = s.sample;
            (
                x.resource_id().to_owned(),
                x.project_id().map(str::to_owned),
                x.name().to_owned(),
            )
        })
        .collect())
}

/// `GET /v2/meters`: every (meter, resource) pair, from the resources; with
/// `unique=True` each meter name once, without resource, project, user or source.
pub async fn meters(
    State(st): State<ApiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let who = st.auth.principal(&headers)?;
    let params = query::parse(raw.as_deref())?;
    let mut sq = query::sample_query(&params, &who)?;
    sq.limit = None;
    let through_samples = !sq.conditions.is_empty()
        || sq.start.is_some()
        || sq.end.is_some()
        || sq.message_id.is_some();
    let seen = match through_samples {
        true => Some(measured(&st, &sq).await?),
        false => None,
    };
    let rq = ResourceQuery {
        resource_id: sq.resource_id.clone(),
        project_id: sq.project_id.clone(),
        user_id: sq.user_id.clone(),
        source: sq.source.clone(),
    };
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for r in st.store.resources(&rq).await? {
        for (m, meter) in models::meters(&r).into_iter().zip(&r.meters) {
            if sq.meter.as_deref().is_some_and(|n| meter.name != n) {
                continue;
            }
            let key = (
                r.resource_id.clone(),
                r.project_id.clone(),
                meter.name.clone(),
            );
            if seen.as_ref().is_some_and(|s| !s.contains(&key)) {
                continue;
            }
            if params.unique {
                if names.insert(meter.name.clone()) {
                    out.push(models::unique_meter(meter));
                }
            } else {
                out.push(m);
            }
        }
    }
    if let Some(l) = params.limit {
        out.truncate(l);
    }
    Ok(Json(Value::Array(out)))
}

/// `GET /v2/meters/{name}`: OldSamples, newest first.
pub async fn meter_samples(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let who = st.auth.principal(&headers)?;
    let params = query::parse(raw.as_deref())?;
    let mut q = query::sample_query(&params, &who)?;
    constrain_meter(&mut q, &name)?;
    let samples = st.store.samples(&q).await?;
    Ok(Json(Value::Array(
        samples.iter().map(models::old_sample).collect(),
    )))
}

fn constrain_meter(q: &mut SampleQuery, name: &str) -> Result<(), ApiError> {
    match &q.meter {
        Some(m) if m != name => Err(ApiError::bad_request(format!(
            "the query names meter `{m}` but the path names `{name}`"
        ))),
        _ => {
            q.meter = Some(name.to_owned());
            Ok(())
        }
    }
}

/// `GET /v2/meters/{name}/statistics`.
pub async fn statistics(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let who = st.auth.principal(&headers)?;
    let params = query::parse(raw.as_deref())?;
    let mut filter = query::sample_query(&params, &who)?;
    constrain_meter(&mut filter, &name)?;
    filter.limit = None;
    let groupby = params
        .groupby
        .iter()
        .map(|g| {
            GroupBy::parse(g)
                .map_err(|why| ApiError::bad_request(format!("Invalid groupby fields: {why}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The standard five are computed always; selected, they are also reported under
    // `aggregate`, as Ceilometer reports what was selected.
    let (mut standard, mut aggregates) = (Vec::new(), Vec::new());
    for (f, p) in &params.aggregates {
        match (f.as_str(), p) {
            ("max" | "min" | "sum" | "avg" | "count", None) => standard.push(f.clone()),
            ("stddev" | "cardinality", _) => aggregates.push(
                Aggregate::parse(f, p.as_deref()).map_err(ApiError::bad_request)?,
            ),
            (other, _) => {
                return Err(ApiError::bad_request(format!(
                    "Invalid aggregation function: {} (expected max, min, sum, avg, count, stddev, or cardinality with aggregate.param)",
                    crate::redact::shorten(other, 80)
                )))
            }
        }
    }
    let q = StatisticsQuery {
        filter,
        period: params.period,
        groupby,
        aggregates,
    };
    let mut stats = st.store.statistics(&q).await?;
    for s in &mut stats {
        for f in &standard {
            let v = match f.as_str() {
                "max" => s.max,
                "min" => s.min,
                "sum" => s.sum,
                "avg" => s.avg,
                _ => s.count as f64,
            };
            s.aggregate.insert(f.clone(), v);
        }
    }
    Ok(Json(Value::Array(
        stats.iter().map(models::statistics).collect(),
    )))
}

/// `GET /v2/samples`.
pub async fn samples(
    State(st): State<ApiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let who = st.auth.principal(&headers)?;
    let params = query::parse(raw.as_deref())?;
    let q = query::sample_query(&params, &who)?;
    let samples = st.store.samples(&q).await?;
    Ok(Json(Value::Array(
        samples.iter().map(models::sample).collect(),
    )))
}

/// `GET /v2/samples/{id}`: 404 when unknown, or in another project.
pub async fn sample(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Answer {
    let who = st.auth.principal(&headers)?;
    if let Some(name) = query::parse(raw.as_deref())?.names.first() {
        return Err(ApiError::bad_request(format!(
            "Unknown argument: \"{}\": a sample is fetched by its id alone",
            crate::redact::shorten(name, 80)
        )));
    }
    let q = SampleQuery {
        message_id: Some(id.clone()),
        project_id: who.project().map(str::to_owned),
        ..SampleQuery::default()
    };
    match st.store.samples(&q).await?.first() {
        Some(s) => Ok(Json(models::sample(s))),
        None => Err(ApiError::not_found(format!("Sample {id} Not Found"))),
    }
}

/// `GET /v2/resources`.
pub async fn resources(
    State(st): State<ApiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Answer {
    let who = st.auth.principal(&headers)?;
    let params = query::parse(raw.as_deref())?;
    let filter = query::resource_query(&params, &who)?;
    let seen: Option<HashSet<(String, Option<String>)>> = match &filter.samples {
        Some(sq) => Some(
            measured(&st, sq)
                .await?
                .into_iter()
                .map(|(r, p, _)| (r, p))
                .collect(),
        ),
        None => None,
    };
    let base = base_url(&st, &headers);
    let links = params.meter_links.unwrap_or(true);
    let mut out: Vec<Value> = st
        .store
        .resources(&filter.resources)
        .await?
        .iter()
        .filter(|r| {
            seen.as_ref()
                .is_none_or(|s| s.contains(&(r.resource_id.clone(), r.project_id.clone())))
        })
        .map(|r| models::resource(r, &base, links))
        .collect();
    if let Some(l) = params.limit {
        out.truncate(l);
    }
    Ok(Json(Value::Array(out)))
}

/// `GET /v2/resources/{id}`: 404 when unknown, or only in another project.
pub async fn resource(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let who = st.auth.principal(&headers)?;
    let q = ResourceQuery {
        resource_id: Some(id.clone()),
        project_id: who.project().map(str::to_owned),
        ..ResourceQuery::default()
    };
    // A project sees its own record only. An admin may find the id in several
    // projects (each its own resource): the one measured last answers, as one id
    // names one resource in this endpoint.
    let found = st.store.resources(&q).await?;
    match found.iter().max_by_key(|r| r.last_sample_timestamp) {
        Some(r) => Ok(Json(models::resource(r, &base_url(&st, &headers), true))),
        None => Err(ApiError::not_found(format!("Resource {id} Not Found"))),
    }
}

/// `GET /v2/capabilities`.
pub async fn capabilities(State(st): State<ApiState>, headers: HeaderMap) -> Answer {
    st.auth.principal(&headers)?;
    Ok(Json(json!({
        "api": {
            "meters:query:simple": true, "meters:query:metadata": true, "meters:query:complex": false,
            "resources:query:simple": true, "resources:query:metadata": true, "resources:query:complex": false,
            "samples:query:simple": true, "samples:query:metadata": true, "samples:query:complex": true,
            "statistics:groupby": true, "statistics:query:simple": true, "statistics:query:metadata": true,
            "statistics:query:complex": false,
            "statistics:aggregation:standard": true,
            "statistics:aggregation:selectable:max": true, "statistics:aggregation:selectable:min": true,
            "statistics:aggregation:selectable:sum": true, "statistics:aggregation:selectable:avg": true,
            "statistics:aggregation:selectable:count": true,
            "statistics:aggregation:selectable:stddev": true,
            "statistics:aggregation:selectable:cardinality": true,
            "events:query:simple": true,
        },
        "storage": {"storage:production_ready": true},
        "event_storage": {"storage:production_ready": true},
    })))
}

/// `GET /metrics`: ceilo's own counters, Prometheus text format (no token needed,
/// like a health check; it holds counts, not data).
pub async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::global().prometheus(),
    )
}
