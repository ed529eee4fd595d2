//! The events API (Panko's, formerly Ceilometer's `/v2/events`): events with their
//! traits, one event by message id, the event types, their trait names and values.
//!
//! Who sees what: a project token sees the events whose `project_id` trait is its
//! project. An admin sees everything, except that with an `X-Project-Id` header it
//! gets Panko's admin view — events without a `project_id` trait, and its project's —
//! unless it asks `all_tenants=True`. Without tokens (`--no-auth`) the caller is
//! who its identity headers say, as in Panko without Keystone: `X-User-Id` and
//! `X-Project-Id` are required (403 without), `X-Roles: admin` makes an admin,
//! and a non-admin sees the events of its project and user, as in Panko.
//! Event types and traits (every project's) are for admins only, as in Panko.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::auth::Principal;
use super::error::ApiError;
use super::query::{self, RawCondition};
use super::ApiState;
use crate::events::model::isoformat;
use crate::events::{Event, Trait, TraitValue};
use crate::storage::{EventQuery, Op, TraitFilter};

type Answer = Result<Json<Value>, ApiError>;

/// Python's `str()` of a float (`1.0`, not `1`).
fn python_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

/// A trait as the API shows it: its value as text.
fn trait_json(t: &Trait) -> Value {
    let value = match &t.value {
        TraitValue::Text(s) => s.clone(),
        TraitValue::Int(i) => i.to_string(),
        TraitValue::Float(f) => python_float(*f),
        TraitValue::Datetime(d) => isoformat(*d),
    };
    json!({"name": t.name, "type": t.value.trait_type().api_name(), "value": value})
}

fn event_json(e: &Event) -> Value {
    json!({
        "message_id": e.message_id,
        "event_type": e.event_type,
        "generated": isoformat(e.generated),
        "traits": e.traits.iter().map(trait_json).collect::<Vec<_>>(),
        "raw": e.raw,
    })
}

/// The `q` conditions a GET body may carry (`{"q": [{field, op, type, value}]}`,
/// as Panko's clients send them).
fn body_conditions(headers: &HeaderMap, body: &[u8]) -> Result<Vec<RawCondition>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim().starts_with("application/json"));
    if !json {
        return Err(ApiError::unsupported_media(
            "a request body must be JSON (Content-Type: application/json)",
        ));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not JSON: {e}")))?;
    let Some(list) = v.get("q").and_then(Value::as_array) else {
        return Err(ApiError::bad_request(
            "the request body must be an object with a `q` list of {field, op, type, value} conditions",
        ));
    };
    let text = |c: &Value, k: &str| match c.get(k) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    list.iter()
        .map(|c| {
            if !c.is_object() {
                return Err(ApiError::bad_request(
                    "each of `q` must be an object with field, op, type and value",
                ));
            }
            Ok(RawCondition {
                field: text(c, "field"),
                op: text(c, "op"),
                value: text(c, "value"),
                kind: text(c, "type"),
            })
        })
        .collect()
}

fn op_of(op: &str) -> Result<Op, ApiError> {
    Ok(match op {
        "" | "eq" => Op::Eq,
        "lt" => Op::Lt,
        "le" => Op::Le,
        "ne" => Op::Ne,
        "ge" => Op::Ge,
        "gt" => Op::Gt,
        other => {
            return Err(ApiError::bad_request(format!(
                "Operator {} is not supported. The supported operators are: lt, le, eq, ne, ge, gt",
                crate::redact::shorten(other, 40)
            )))
        }
    })
}

fn time_of(c: &RawCondition) -> Result<DateTime<Utc>, ApiError> {
    ceilo_plugin_api::parse_timestamp(c.value.trim())
        .map_err(|_| ApiError::invalid_input(&c.field, &c.value, "not an ISO 8601 time"))
}

/// Who is asking (see the module's notes), and, without tokens, the user a
/// non-admin's events are limited to (Panko filters by user as well as project;
/// ceilo's project tokens carry no user).
struct Caller {
    who: Principal,
    user: Option<String>,
}

fn caller(st: &ApiState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    if !st.auth.is_open() {
        return Ok(Caller {
            who: st.auth.principal(headers)?,
            user: None,
        });
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let (Some(user), Some(project)) = (header("x-user-id"), header("x-project-id")) else {
        return Err(ApiError::forbidden(
            "the events API needs the caller's X-User-Id and X-Project-Id headers (without tokens, as Panko without Keystone)",
        ));
    };
    let admin = header("x-roles").is_some_and(|roles| {
        roles
            .split(',')
            .any(|r| r.trim().eq_ignore_ascii_case("admin"))
    });
    Ok(if admin {
        Caller {
            who: Principal::Admin,
            user: None,
        }
    } else {
        Caller {
            who: Principal::Project(project.to_owned()),
            user: Some(user.to_owned()),
        }
    })
}

/// The event types and their traits span every project: Panko serves them to
/// admins only, and so does ceilo (a project caller gets Panko's 401).
fn admin_caller(st: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    match caller(st, headers)?.who {
        Principal::Admin => Ok(()),
        Principal::Project(p) => Err(ApiError::unauthorized(format!(
            "Not Authorized to access project {}: event types and traits are for admins",
            crate::redact::shorten(&p, 80)
        ))),
    }
}

/// The store query for the conditions `q`, as `caller` may ask it.
fn event_query(
    q: &[RawCondition],
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<EventQuery, ApiError> {
    let mut eq = EventQuery::default();
    let who = &caller.who;
    match who {
        Principal::Project(p) => {
            eq.traits.push(TraitFilter {
                name: "project_id".into(),
                op: Op::Eq,
                value: TraitValue::Text(p.clone()),
            });
            if let Some(user) = &caller.user {
                eq.traits.push(TraitFilter {
                    name: "user_id".into(),
                    op: Op::Eq,
                    value: TraitValue::Text(user.clone()),
                });
            }
        }
        Principal::Admin => {
            eq.admin_project = headers
                .get("x-project-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        }
    }
    let only = |c: &RawCondition, want: &str| {
        let op = if c.op.is_empty() { "eq" } else { c.op.as_str() };
        if op == want {
            Ok(())
        } else {
            Err(ApiError::bad_request(format!(
                "Operator {} is not supported. Only `{want}' operator is available for field {}",
                crate::redact::shorten(op, 40),
                c.field
            )))
        }
    };
    for c in q {
        let op = op_of(&c.op)?;
        match c.field.as_str() {
            "event_type" => {
                only(c, "eq")?;
                eq.event_type = Some(c.value.clone());
            }
            "message_id" => {
                only(c, "eq")?;
                eq.message_id = Some(c.value.clone());
            }
            "start_timestamp" => {
                only(c, "ge")?;
                eq.start = Some(time_of(c)?);
            }
            "end_timestamp" => {
                only(c, "le")?;
                eq.end = Some(time_of(c)?);
            }
            "all_tenants" if matches!(who, Principal::Admin) => {
                if matches!(
                    c.value.trim().to_ascii_lowercase().as_str(),
                    "1" | "t" | "true" | "on" | "y" | "yes"
                ) {
                    eq.admin_project = None;
                }
            }
            name => {
                let kind = if c.kind.is_empty() {
                    "string"
                } else {
                    c.kind.as_str()
                };
                let bad = |why: &str| ApiError::invalid_input(name, &c.value, why);
                let value = match kind {
                    "string" => TraitValue::Text(c.value.clone()),
                    "integer" => TraitValue::Int(
                        c.value.trim().parse().map_err(|_| bad("unable to convert to integer"))?,
                    ),
                    "float" => TraitValue::Float(
                        c.value.trim().parse().map_err(|_| bad("unable to convert to float"))?,
                    ),
                    "datetime" => TraitValue::Datetime(time_of(c)?),
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "The data type {} is not supported. The supported data type list is: integer, float, string, datetime",
                            crate::redact::shorten(other, 40)
                        )))
                    }
                };
                eq.traits.push(TraitFilter {
                    name: name.to_owned(),
                    op,
                    value,
                });
            }
        }
    }
    Ok(eq)
}

/// `GET /v2/events`: `q` in the query string or a JSON body, and `limit`.
pub async fn events(
    State(st): State<ApiState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    body: Bytes,
) -> Answer {
    let who = caller(&st, &headers)?;
    let params = query::parse(raw.as_deref())?;
    if let Some(other) = params
        .names
        .iter()
        .find(|n| !n.starts_with("q.") && n.as_str() != "limit")
    {
        return Err(ApiError::bad_request(format!(
            "Unknown argument: \"{}\": events take q and limit",
            crate::redact::shorten(other, 80)
        )));
    }
    let mut conditions = params.q.clone();
    conditions.extend(body_conditions(&headers, &body)?);
    let mut eq = event_query(&conditions, &who, &headers)?;
    eq.limit = params.limit;
    let found = st.store.events(&eq).await?;
    Ok(Json(Value::Array(found.iter().map(event_json).collect())))
}

/// `GET /v2/events/{message_id}`.
pub async fn event(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let who = caller(&st, &headers)?;
    let mut eq = event_query(&[], &who, &headers)?;
    eq.message_id = Some(id.clone());
    match st.store.events(&eq).await?.first() {
        Some(e) => Ok(Json(event_json(e))),
        None => Err(ApiError::not_found(format!("Event {id} Not Found"))),
    }
}

/// `GET /v2/event_types`.
pub async fn event_types(State(st): State<ApiState>, headers: HeaderMap) -> Answer {
    admin_caller(&st, &headers)?;
    Ok(Json(json!(st.store.event_types().await?)))
}

/// `GET /v2/event_types/{type}`: not an API (Panko answers 404 for every type).
pub async fn event_type(Path(name): Path<String>) -> ApiError {
    ApiError::not_found(format!(
        "Event type {} has no resource of its own: use /v2/event_types/{{type}}/traits",
        crate::redact::shorten(&name, 80)
    ))
}

/// `GET /v2/event_types/{type}/traits`: the trait names and types of that type.
pub async fn traits(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Path(event_type): Path<String>,
) -> Answer {
    admin_caller(&st, &headers)?;
    let found = st.store.trait_descriptions(&event_type).await?;
    Ok(Json(Value::Array(
        found
            .iter()
            .map(|d| json!({"name": d.name, "type": d.trait_type.api_name()}))
            .collect(),
    )))
}

/// `GET /v2/event_types/{type}/traits/{name}`: every value of that trait.
pub async fn trait_values(
    State(st): State<ApiState>,
    headers: HeaderMap,
    Path((event_type, name)): Path<(String, String)>,
) -> Answer {
    admin_caller(&st, &headers)?;
    let found = st.store.trait_values(&event_type, &name).await?;
    Ok(Json(Value::Array(found.iter().map(trait_json).collect())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_panko_writes_them() {
        let t = chrono::DateTime::parse_from_rfc3339("2013-08-08T21:06:37.803826Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(isoformat(t), "2013-08-08T21:06:37.803826");
        let whole = chrono::DateTime::parse_from_rfc3339("2013-08-08T21:06:37Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(isoformat(whole), "2013-08-08T21:06:37");
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(0.25), "0.25");
    }
}
