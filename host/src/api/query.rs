//! The query string: Ceilometer's simple queries (`q.field`, `q.op`, `q.value`,
//! `q.type`, repeated and paired by position), `limit`, `period`, `groupby`,
//! `aggregate.func`/`aggregate.param`, `direct`. Every mistake is a 400 that names
//! the parameter.

use ceilo_plugin_api::parse_timestamp;

use super::auth::Principal;
use super::error::ApiError;
use crate::storage::{CondValue, Condition, Field, Op, ResourceQuery, SampleQuery};

/// One `q.*` condition as given.
#[derive(Debug, Clone, Default)]
pub struct RawCondition {
    /// `q.field`.
    pub field: String,
    /// `q.op` (empty: eq).
    pub op: String,
    /// `q.value`.
    pub value: String,
    /// `q.type` (empty: inferred).
    pub kind: String,
}

/// Everything the query string holds.
#[derive(Debug, Clone, Default)]
pub struct Params {
    /// Conditions.
    pub q: Vec<RawCondition>,
    /// `limit`.
    pub limit: Option<usize>,
    /// `period`.
    pub period: Option<u64>,
    /// `groupby` values.
    pub groupby: Vec<String>,
    /// `aggregate.func` with its `aggregate.param`.
    pub aggregates: Vec<(String, Option<String>)>,
    /// `direct=True`.
    pub direct: bool,
}

/// Parses a raw query string.
pub fn parse(raw: Option<&str>) -> Result<Params, ApiError> {
    let mut p = Params::default();
    let (mut fields, mut ops, mut values, mut kinds) = (vec![], vec![], vec![], vec![]);
    let (mut funcs, mut fparams) = (vec![], vec![]);
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            "q.field" => fields.push(v),
            "q.op" => ops.push(v),
            "q.value" => values.push(v),
            "q.type" => kinds.push(v),
            "limit" => {
                let n: i64 = v.parse().map_err(|_| {
                    ApiError::bad_request(format!("limit must be a positive integer, not `{v}`"))
                })?;
                if n <= 0 {
                    return Err(ApiError::bad_request("Limit must be positive"));
                }
                p.limit = Some(n as usize);
            }
            "period" => {
                let n: i64 = v.parse().map_err(|_| {
                    ApiError::bad_request(format!("period must be a whole number of seconds, not `{v}`"))
                })?;
                if n < 0 {
                    return Err(ApiError::bad_request("Period must be positive."));
                }
                p.period = (n > 0).then_some(n as u64);
            }
            "groupby" => p.groupby.push(v),
            "aggregate.func" => funcs.push(v),
            "aggregate.param" => fparams.push(v),
            "direct" => p.direct = matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"),
            // Paging marker and sort are accepted and ignored as Ceilometer's v2 does
            // for these resources; anything else is a mistake worth naming.
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter `{other}` (expected q.field, q.op, q.value, q.type, limit, period, groupby, aggregate.func, aggregate.param or direct)"
                )))
            }
        }
    }
    if values.len() != fields.len() {
        return Err(ApiError::bad_request(format!(
            "{} q.field but {} q.value: give one q.value per q.field",
            fields.len(),
            values.len()
        )));
    }
    for (name, list) in [("q.op", &ops), ("q.type", &kinds)] {
        if !list.is_empty() && list.len() != fields.len() {
            return Err(ApiError::bad_request(format!(
                "{} q.field but {} {name}: give one {name} per q.field (or none)",
                fields.len(),
                list.len()
            )));
        }
    }
    for (i, field) in fields.into_iter().enumerate() {
        p.q.push(RawCondition {
            field,
            op: ops.get(i).cloned().unwrap_or_default(),
            value: values[i].clone(),
            kind: kinds.get(i).cloned().unwrap_or_default(),
        });
    }
    if !fparams.is_empty() && fparams.len() != funcs.len() {
        // Ceilometer pairs a param with the func before it; without one each,
        // stddev (no param) and cardinality (param) cannot be told apart.
        return Err(ApiError::bad_request(
            "give one aggregate.param per aggregate.func (empty for stddev), or none",
        ));
    }
    for (i, f) in funcs.into_iter().enumerate() {
        let param = fparams.get(i).cloned().filter(|s| !s.is_empty());
        p.aggregates.push((f, param));
    }
    Ok(p)
}

fn typed(c: &RawCondition, default: &str) -> Result<CondValue, ApiError> {
    let kind = if c.kind.is_empty() {
        default
    } else {
        c.kind.as_str()
    };
    let bad = |what: &str| {
        ApiError::bad_request(format!(
            "q.value `{}` for `{}` is not a valid {what}",
            c.value, c.field
        ))
    };
    Ok(match kind {
        "string" => CondValue::Text(c.value.clone()),
        "integer" => CondValue::Number(c.value.parse::<i64>().map_err(|_| bad("integer"))? as f64),
        "float" => CondValue::Number(c.value.parse::<f64>().map_err(|_| bad("float"))?),
        "boolean" => match c.value.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => CondValue::Bool(true),
            "false" | "0" | "no" => CondValue::Bool(false),
            _ => return Err(bad("boolean")),
        },
        "datetime" => CondValue::Time(parse_timestamp(&c.value).map_err(|_| bad("datetime"))?),
        // Metadata values without a type: what they look like.
        "auto" => match c.value.as_str() {
            "true" | "True" => CondValue::Bool(true),
            "false" | "False" => CondValue::Bool(false),
            v => v
                .parse::<f64>()
                .map(CondValue::Number)
                .unwrap_or_else(|_| CondValue::Text(v.to_owned())),
        },
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown q.type `{other}` (expected string, integer, float, boolean or datetime)"
            )))
        }
    })
}

const SAMPLE_FIELDS: &str = "meter, resource_id (resource), project_id (project), user_id (user), source, message_id, type, unit, volume, timestamp, metadata.<key> (resource_metadata.<key>)";

fn field(name: &str) -> Result<(Field, &'static str), ApiError> {
    Ok(match name {
        "meter" | "counter_name" => (Field::Meter, "string"),
        "resource" | "resource_id" => (Field::ResourceId, "string"),
        "project" | "project_id" => (Field::ProjectId, "string"),
        "user" | "user_id" => (Field::UserId, "string"),
        "source" => (Field::Source, "string"),
        "message_id" => (Field::MessageId, "string"),
        "type" | "counter_type" => (Field::Type, "string"),
        "unit" | "counter_unit" => (Field::Unit, "string"),
        "volume" | "counter_volume" => (Field::Volume, "float"),
        "timestamp" => (Field::Timestamp, "datetime"),
        other => match other
            .strip_prefix("metadata.")
            .or_else(|| other.strip_prefix("resource_metadata."))
        {
            Some(path) => match crate::storage::metadata_path_problem(path) {
                None => (Field::Metadata(path.to_owned()), "auto"),
                Some(why) => {
                    return Err(ApiError::bad_request(format!(
                        "field `{}` in q.field: {why}",
                        crate::redact::shorten(other, 80)
                    )))
                }
            },
            None => {
                return Err(ApiError::bad_request(format!(
                    "unknown field `{}` in q.field (expected one of {SAMPLE_FIELDS})",
                    crate::redact::shorten(other, 80)
                )))
            }
        },
    })
}

/// The sample query `params` describe, confined to the principal's project.
pub fn sample_query(params: &Params, who: &Principal) -> Result<SampleQuery, ApiError> {
    let mut q = SampleQuery::default();
    for c in &params.q {
        let (f, default) = field(&c.field)?;
        let op = Op::parse(&c.op).map_err(ApiError::bad_request)?;
        let value = typed(c, default)?;
        let slot = match (&f, op, &value) {
            (Field::Meter, Op::Eq, CondValue::Text(_)) => Some(&mut q.meter),
            (Field::ResourceId, Op::Eq, CondValue::Text(_)) => Some(&mut q.resource_id),
            (Field::ProjectId, Op::Eq, CondValue::Text(_)) => Some(&mut q.project_id),
            (Field::UserId, Op::Eq, CondValue::Text(_)) => Some(&mut q.user_id),
            (Field::Source, Op::Eq, CondValue::Text(_)) => Some(&mut q.source),
            (Field::MessageId, Op::Eq, CondValue::Text(_)) => Some(&mut q.message_id),
            _ => None,
        };
        match (slot, &value) {
            (Some(slot), CondValue::Text(t)) if slot.is_none() => *slot = Some(t.clone()),
            _ => {
                // The query's start is where periods are aligned.
                if let (Field::Timestamp, Op::Ge, CondValue::Time(t)) = (&f, op, &value) {
                    q.start = Some(q.start.map_or(*t, |s| s.max(*t)));
                } else if let (Field::Timestamp, Op::Lt, CondValue::Time(t)) = (&f, op, &value) {
                    q.end = Some(q.end.map_or(*t, |e| e.min(*t)));
                } else {
                    q.conditions.push(Condition {
                        field: f,
                        op,
                        value,
                    });
                }
            }
        }
    }
    confine(&mut q.project_id, &mut q.conditions, who)?;
    q.limit = params.limit;
    Ok(q)
}

/// Confines a query to the principal's project: another project is refused (401, as
/// Ceilometer does), no project becomes theirs.
fn confine(
    project: &mut Option<String>,
    conditions: &mut [Condition],
    who: &Principal,
) -> Result<(), ApiError> {
    let Some(own) = who.project() else {
        return Ok(());
    };
    let asked_other = project.as_deref().is_some_and(|p| p != own)
        || conditions.iter().any(|c| {
            c.field == Field::ProjectId
                && c.op == Op::Eq
                && c.value != CondValue::Text(own.to_owned())
        });
    if asked_other {
        return Err(ApiError::unauthorized(format!(
            "Not Authorized to access project {}",
            project.as_deref().unwrap_or("(another)")
        )));
    }
    *project = Some(own.to_owned());
    Ok(())
}

/// The resource query `params` describe, confined to the principal's project.
pub fn resource_query(params: &Params, who: &Principal) -> Result<ResourceQuery, ApiError> {
    let mut q = ResourceQuery::default();
    for c in &params.q {
        let (f, _) = field(&c.field)?;
        let op = Op::parse(&c.op).map_err(ApiError::bad_request)?;
        let slot = match f {
            Field::ResourceId => &mut q.resource_id,
            Field::ProjectId => &mut q.project_id,
            Field::UserId => &mut q.user_id,
            Field::Source => &mut q.source,
            _ => {
                return Err(ApiError::bad_request(format!(
                    "resources can be filtered by resource_id, project_id, user_id and source, not `{}`",
                    c.field
                )))
            }
        };
        if op != Op::Eq {
            return Err(ApiError::bad_request(format!(
                "resources are filtered with eq only, not `{}`",
                c.op
            )));
        }
        *slot = Some(c.value.clone());
    }
    confine(&mut q.project_id, &mut [], who)?;
    Ok(q)
}

/// Bounded property tests: any query string is parsed or refused with a 400, never a
/// panic or another status (see tests/tests/fuzz.rs for the budget).
#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    const PIECES: &[&str] = &[
        "q.field=",
        "q.op=",
        "q.value=",
        "q.type=",
        "limit=",
        "period=",
        "groupby=",
        "aggregate.func=",
        "aggregate.param=",
        "meter_links=",
        "&",
        "=",
        "timestamp",
        "metadata.",
        "resource_metadata.",
        "project_id",
        "resource_id",
        "user_id",
        "source",
        "eq",
        "lt",
        "le",
        "gt",
        "ge",
        "ne",
        "string",
        "integer",
        "float",
        "boolean",
        "datetime",
        "2026-01-01",
        "T12:00:00",
        "1",
        "-1",
        "0",
        "1e99",
        "%",
        "%5C",
        "%00",
        "%22",
        "%2E",
        "%FF",
        "+",
        "a",
        "é",
        ".",
        "..",
        "max",
        "cardinality",
        "nan",
    ];

    proptest! {
        #[test]
        fn query_strings_are_parsed_or_a_400(
            pieces in proptest::collection::vec(proptest::sample::select(PIECES), 0..60),
            project in any::<bool>(),
        ) {
            let raw = pieces.concat();
            let who = if project { Principal::Project("p".into()) } else { Principal::Admin };
            let check = |r: Result<(), ApiError>| -> Result<(), TestCaseError> {
                if let Err(e) = r {
                    prop_assert!(
                        e.status == axum::http::StatusCode::BAD_REQUEST
                            || e.status == axum::http::StatusCode::UNAUTHORIZED,
                        "{raw}: {} {}", e.status, e.message
                    );
                    prop_assert!(e.message.len() < 1000, "quoted input is cut");
                }
                Ok(())
            };
            match parse(Some(&raw)) {
                Ok(params) => {
                    check(sample_query(&params, &who).map(|_| ()))?;
                    check(resource_query(&params, &who).map(|_| ()))?;
                }
                Err(e) => check(Err(e))?,
            }
        }
    }
}
