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
    /// `meter_links=0|1` (resources; none: 1).
    pub meter_links: Option<bool>,
    /// `unique=True` (meters).
    pub unique: bool,
    /// Every parameter name given, in order.
    pub names: Vec<String>,
}

/// wsme's words for a value that is not an integer.
fn not_an_int(field: &str, value: &str) -> ApiError {
    ApiError::invalid_input(field, value, "unable to convert to int")
}

/// Ceilometer's (oslo's) `bool_from_string`: true for these, false for anything else.
fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

/// Parses a raw query string.
pub fn parse(raw: Option<&str>) -> Result<Params, ApiError> {
    let mut p = Params::default();
    let (mut fields, mut ops, mut values, mut kinds) = (vec![], vec![], vec![], vec![]);
    // A param pairs with the func before it, as the client writes them
    // (`func=cardinality&param=resource_id&func=max`).
    let mut aggregates: Vec<(String, Option<String>)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        let v = v.into_owned();
        let once = |names: &[String], k: &str| {
            if names.iter().any(|n| n == k) {
                Err(ApiError::bad_request(format!(
                    "Unknown argument: \"{k}\": given more than once"
                )))
            } else {
                Ok(())
            }
        };
        match k.as_ref() {
            "q.field" => fields.push(v),
            "q.op" => ops.push(v),
            "q.value" => values.push(v),
            "q.type" => kinds.push(v),
            "limit" => {
                once(&p.names, "limit")?;
                let n: i64 = v.trim().parse().map_err(|_| not_an_int("limit", &v))?;
                if n <= 0 {
                    return Err(ApiError::bad_request("Limit must be positive"));
                }
                p.limit = Some(n as usize);
            }
            "period" => {
                once(&p.names, "period")?;
                let n: i64 = v.trim().parse().map_err(|_| not_an_int("period", &v))?;
                if n < 0 {
                    return Err(ApiError::bad_request("Period must be positive."));
                }
                p.period = (n > 0).then_some(n as u64);
            }
            "meter_links" => {
                once(&p.names, "meter_links")?;
                let n: i64 = v.trim().parse().map_err(|_| not_an_int("meter_links", &v))?;
                p.meter_links = Some(n != 0);
            }
            "unique" => p.unique = truthy(&v),
            "groupby" => p.groupby.push(v),
            "aggregate.func" => aggregates.push((v, None)),
            "aggregate.param" => match aggregates.last_mut() {
                Some((_, slot @ None)) => *slot = Some(v).filter(|s| !s.is_empty()),
                _ => {
                    return Err(ApiError::bad_request(
                        "aggregate.param must follow the aggregate.func it belongs to",
                    ))
                }
            },
            "direct" => p.direct = truthy(&v),
            other => {
                return Err(ApiError::bad_request(format!(
                    "Unknown argument: \"{}\" (expected q.field, q.op, q.value, q.type, limit, period, groupby, aggregate.func, aggregate.param, meter_links, unique or direct)",
                    crate::redact::shorten(other, 80)
                )))
            }
        }
        p.names.push(k.into_owned());
    }
    p.aggregates = aggregates;
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
        "datetime" => CondValue::Time(query_time(&c.value).ok_or_else(|| {
            ApiError::invalid_input(
                "timestamp",
                &c.value,
                format!("invalid timestamp format (for `{}`: ISO 8601, e.g. 2014-01-01 or 2014-01-01T12:00:00)", c.field),
            )
        })?),
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

/// A timestamp in a query: ISO 8601 with or without a time (a date is its midnight,
/// UTC), as Ceilometer's `parse_isotime` reads them.
pub(super) fn query_time(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    parse_timestamp(text).ok().or_else(|| {
        chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|t| t.and_utc())
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
                    "Unknown argument: \"{}\": unrecognized field in query (q.field takes one of {SAMPLE_FIELDS})",
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

/// Which resources `params` ask for: the resource record's own fields, and, when the
/// query also names metadata, timestamps or other operators, the samples at least one
/// of which a resource must have (as Ceilometer's drivers select resources through
/// their samples).
pub struct ResourceFilter {
    /// On the resource records.
    pub resources: ResourceQuery,
    /// On their samples, when the query needs them.
    pub samples: Option<SampleQuery>,
}

/// The resource filter `params` describe, confined to the principal's project.
pub fn resource_query(params: &Params, who: &Principal) -> Result<ResourceFilter, ApiError> {
    let mut q = ResourceQuery::default();
    let mut through_samples = false;
    for c in &params.q {
        let (f, _) = field(&c.field)?;
        let op = Op::parse(&c.op).map_err(ApiError::bad_request)?;
        let slot = match f {
            Field::ResourceId => &mut q.resource_id,
            Field::ProjectId => &mut q.project_id,
            Field::UserId => &mut q.user_id,
            Field::Source => &mut q.source,
            _ => {
                through_samples = true;
                continue;
            }
        };
        if op != Op::Eq || slot.is_some() {
            through_samples = true;
            continue;
        }
        *slot = Some(c.value.clone());
    }
    confine(&mut q.project_id, &mut [], who)?;
    let samples = if through_samples {
        let mut sq = sample_query(params, who)?;
        sq.limit = None;
        Some(sq)
    } else {
        None
    };
    Ok(ResourceFilter {
        resources: q,
        samples,
    })
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
