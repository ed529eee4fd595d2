//! `POST /v2/query/samples`: Ceilometer's complex query. The body is
//! `{"filter": "<JSON text>", "orderby": "<JSON text>", "limit": N}`; the filter is a
//! tree of `and`/`or` (lists), `not` (one), and leaves `{"op": {"field": value}}` with
//! `=`, `!=`, `<`, `<=`, `>`, `>=`, `=~` (a regular expression) and `in` (a list).
//! Operators are case-insensitive; fields are a sample's (`counter_name` or `meter`,
//! `user_id` or `user`, `metadata.<key>` …); the order is a list of `{"field":
//! "asc"|"desc"}`, newest first when none is given.
//!
//! The store is asked for the project's samples (and the eq conditions it can index);
//! the tree is evaluated here, on each.

use std::cmp::Ordering;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::error::ApiError;
use super::{models, ApiState};
use crate::storage::{SampleQuery, StoredSample};

/// The deepest filter taken (a bound, not Ceilometer's: it has none).
const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone)]
enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Leaf {
        op: Op,
        field: Field,
        value: Value,
    },
    /// `=~`, its expression compiled once, when the query is parsed.
    Matches {
        field: Field,
        re: regex::Regex,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Regex,
    In,
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Meter,
    Type,
    Unit,
    Volume,
    UserId,
    ProjectId,
    ResourceId,
    Source,
    MessageId,
    Timestamp,
    RecordedAt,
    Metadata(String),
}

const FIELDS: &str = "counter_name (meter), counter_type (type), counter_unit (unit), counter_volume (volume), user_id (user), project_id (project), resource_id, source, message_id, timestamp, recorded_at, metadata.<key>";

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

fn field(name: &str) -> Result<Field, ApiError> {
    Ok(match name {
        "counter_name" | "meter" => Field::Meter,
        "counter_type" | "type" => Field::Type,
        "counter_unit" | "unit" => Field::Unit,
        "counter_volume" | "volume" => Field::Volume,
        "user_id" | "user" => Field::UserId,
        "project_id" | "project" => Field::ProjectId,
        "resource_id" => Field::ResourceId,
        "source" => Field::Source,
        "message_id" => Field::MessageId,
        "timestamp" => Field::Timestamp,
        "recorded_at" => Field::RecordedAt,
        other => match other
            .strip_prefix("metadata.")
            .or_else(|| other.strip_prefix("resource_metadata."))
        {
            Some(path) if !path.is_empty() => Field::Metadata(path.to_owned()),
            _ => {
                return Err(bad(format!(
                "Unknown argument: \"{}\": unrecognized field in query (expected one of {FIELDS})",
                crate::redact::shorten(other, 80)
            )))
            }
        },
    })
}

fn parse(v: &Value, depth: usize) -> Result<Expr, ApiError> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("the filter nests deeper than {MAX_DEPTH}")));
    }
    let Value::Object(o) = v else {
        return Err(bad(format!(
            "a filter expression must be an object, not {}",
            crate::redact::shorten(&v.to_string(), 80)
        )));
    };
    let mut it = o.iter();
    let (Some((op, arg)), None) = (it.next(), it.next()) else {
        return Err(bad("a filter expression has exactly one operator"));
    };
    let op = op.to_ascii_lowercase();
    let list = |arg: &Value| -> Result<Vec<Expr>, ApiError> {
        match arg {
            Value::Array(items) if !items.is_empty() => {
                items.iter().map(|i| parse(i, depth + 1)).collect()
            }
            _ => Err(bad(format!("`{op}` takes a non-empty list of expressions"))),
        }
    };
    Ok(match op.as_str() {
        "and" => Expr::And(list(arg)?),
        "or" => Expr::Or(list(arg)?),
        "not" => Expr::Not(Box::new(parse(arg, depth + 1)?)),
        _ => {
            let op = match op.as_str() {
                "=" | "eq" => Op::Eq,
                "!=" | "ne" => Op::Ne,
                "<" | "lt" => Op::Lt,
                "<=" | "le" => Op::Le,
                ">" | "gt" => Op::Gt,
                ">=" | "ge" => Op::Ge,
                "=~" => Op::Regex,
                "in" => Op::In,
                other => {
                    return Err(bad(format!(
                    "unknown operator `{}` (expected and, or, not, =, !=, <, <=, >, >=, =~, in)",
                    crate::redact::shorten(other, 20)
                )))
                }
            };
            let Value::Object(leaf) = arg else {
                return Err(bad("an operator takes an object {\"field\": value}"));
            };
            let mut it = leaf.iter();
            let (Some((name, value)), None) = (it.next(), it.next()) else {
                return Err(bad("an operator takes exactly one field"));
            };
            let field = field(name)?;
            match (op, value) {
                (Op::In, Value::Array(items)) if !items.is_empty() => {}
                (Op::In, _) => return Err(bad("`in` takes a non-empty list of values")),
                (Op::Regex, Value::String(re)) => {
                    let re = regex::Regex::new(re).map_err(|e| {
                        bad(format!(
                            "`=~` takes a regular expression: {}",
                            crate::redact::shorten(&e.to_string(), 200)
                        ))
                    })?;
                    return Ok(Expr::Matches { field, re });
                }
                (Op::Regex, _) => return Err(bad("`=~` takes a regular expression (text)")),
                (_, Value::Array(_) | Value::Object(_) | Value::Null) => {
                    return Err(bad(format!(
                        "`{name}` is compared with a text, number or boolean"
                    )))
                }
                _ => {}
            }
            if matches!(field, Field::Timestamp | Field::RecordedAt) {
                let values = match value {
                    Value::Array(v) => v.clone(),
                    v => vec![v.clone()],
                };
                for v in values {
                    if time_of(&v).is_none() {
                        return Err(bad(format!(
                            "Failed to parse the timestamp value {}",
                            crate::redact::shorten(&v.to_string(), 80)
                        )));
                    }
                }
            }
            Expr::Leaf {
                op,
                field,
                value: value.clone(),
            }
        }
    })
}

fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    super::query::query_time(v.as_str()?)
}

/// A sample's value of a field, as JSON (metadata looked up by its dotted path).
fn value_of(s: &StoredSample, metadata: &Map<String, Value>, f: &Field) -> Value {
    let x = &s.sample;
    let opt = |v: Option<&str>| v.map_or(Value::Null, |v| Value::String(v.to_owned()));
    match f {
        Field::Meter => x.name().into(),
        Field::Type => x.sample_type().as_str().into(),
        Field::Unit => x.unit().into(),
        Field::Volume => x.volume().into(),
        Field::UserId => opt(x.user_id()),
        Field::ProjectId => opt(x.project_id()),
        Field::ResourceId => x.resource_id().into(),
        Field::Source => x.source().into(),
        Field::MessageId => x.message_id().into(),
        Field::Timestamp => models::time(x.timestamp()).into(),
        Field::RecordedAt => models::time(s.recorded_at).into(),
        Field::Metadata(path) => {
            let mut at: Option<&Value> = None;
            let mut map = Some(metadata);
            for part in path.split('.') {
                at = map.and_then(|m| m.get(part));
                map = at.and_then(Value::as_object);
            }
            at.cloned().unwrap_or(Value::Null)
        }
    }
}

/// Compares a sample's value with a query value: times as times, numbers as numbers
/// (text that reads as a number too, as metadata often holds), else as text.
fn compare(f: &Field, have: &Value, want: &Value) -> Option<Ordering> {
    if matches!(f, Field::Timestamp | Field::RecordedAt) {
        return time_of(have)?.partial_cmp(&time_of(want)?);
    }
    let num = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    match (have, want) {
        (Value::Null, _) => None,
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        _ => num(have)?.partial_cmp(&num(want)?),
    }
}

fn holds(e: &Expr, s: &StoredSample, metadata: &Map<String, Value>) -> bool {
    match e {
        Expr::And(v) => v.iter().all(|e| holds(e, s, metadata)),
        Expr::Or(v) => v.iter().any(|e| holds(e, s, metadata)),
        Expr::Not(e) => !holds(e, s, metadata),
        Expr::Leaf { op, field, value } => {
            let have = value_of(s, metadata, field);
            let cmp = |want: &Value| compare(field, &have, want);
            match op {
                Op::Eq => cmp(value) == Some(Ordering::Equal),
                Op::Ne => cmp(value) != Some(Ordering::Equal),
                Op::Lt => cmp(value) == Some(Ordering::Less),
                Op::Le => matches!(cmp(value), Some(Ordering::Less | Ordering::Equal)),
                Op::Gt => cmp(value) == Some(Ordering::Greater),
                Op::Ge => matches!(cmp(value), Some(Ordering::Greater | Ordering::Equal)),
                Op::In => value
                    .as_array()
                    .is_some_and(|v| v.iter().any(|w| cmp(w) == Some(Ordering::Equal))),
                // Parsed as `Matches`.
                Op::Regex => false,
            }
        }
        Expr::Matches { field, re } => value_of(s, metadata, field)
            .as_str()
            .is_some_and(|text| re.is_match(text)),
    }
}

/// A JSON value given as JSON text (Ceilometer's body carries the filter as a string).
fn embedded_json(body: &Value, key: &str) -> Result<Option<Value>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
        Some(Value::String(text)) => serde_json::from_str(text)
            .map(Some)
            .map_err(|e| ApiError::invalid_input(key, text, format!("not JSON text: {e}"))),
        // Accepted as a value too, though clients send text.
        Some(v) => Ok(Some(v.clone())),
    }
}

fn orderby(v: Option<Value>) -> Result<Vec<(Field, bool)>, ApiError> {
    let Some(v) = v else {
        return Ok(vec![(Field::Timestamp, false)]);
    };
    let Value::Array(items) = v else {
        return Err(bad("orderby is a list of {\"field\": \"asc\" | \"desc\"}"));
    };
    items
        .iter()
        .map(|i| {
            let o = i
                .as_object()
                .filter(|o| o.len() == 1)
                .ok_or_else(|| bad("each orderby entry is one {\"field\": \"asc\" | \"desc\"}"))?;
            let (name, dir) = o.iter().next().ok_or_else(|| bad("empty orderby entry"))?;
            let asc = match dir.as_str().map(str::to_ascii_lowercase).as_deref() {
                Some("asc") => true,
                Some("desc") => false,
                _ => return Err(bad(format!("orderby `{name}`: asc or desc"))),
            };
            Ok((field(name)?, asc))
        })
        .collect()
}

/// The handler.
pub async fn query_samples(
    State(st): State<ApiState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    let who = st.auth.principal(&headers)?;
    let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::invalid_input(
                "body",
                &String::from_utf8_lossy(&body),
                format!("not JSON: {e}"),
            )
        })?
    };
    let filter = embedded_json(&body, "filter")?
        .map(|f| parse(&f, 0))
        .transpose()?;
    let order = orderby(embedded_json(&body, "orderby")?)?;
    let limit = match body.get("limit") {
        None | Some(Value::Null) => None,
        // The client sends it as text (`"5"`), as wsme converts either.
        Some(v) => match v
            .as_i64()
            .or_else(|| v.as_str().and_then(|t| t.trim().parse().ok()))
        {
            Some(n) if n > 0 => Some(n as usize),
            Some(_) => return Err(bad("Limit must be positive")),
            None => {
                return Err(ApiError::invalid_input(
                    "limit",
                    &v.to_string(),
                    "unable to convert to int",
                ))
            }
        },
    };
    let q = SampleQuery {
        project_id: who.project().map(str::to_owned),
        ..SampleQuery::default()
    };
    let mut found: Vec<(StoredSample, Map<String, Value>)> = st
        .store
        .samples(&q)
        .await?
        .into_iter()
        .map(|s| {
            let m = s.sample.resource_metadata();
            (s, m)
        })
        .filter(|(s, m)| filter.as_ref().is_none_or(|f| holds(f, s, m)))
        .collect();
    found.sort_by(|(a, am), (b, bm)| {
        for (f, asc) in &order {
            let c = compare(f, &value_of(a, am, f), &value_of(b, bm, f)).unwrap_or(Ordering::Equal);
            let c = if *asc { c } else { c.reverse() };
            if c != Ordering::Equal {
                return c;
            }
        }
        Ordering::Equal
    });
    if let Some(l) = limit {
        found.truncate(l);
    }
    Ok(Json(Value::Array(
        found.iter().map(|(s, _)| models::sample(s)).collect(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceilo_plugin_api::{Sample, SampleType};

    fn stored(name: &str, volume: f64, project: &str, breed: &str) -> StoredSample {
        StoredSample {
            sample: Sample::new(name, SampleType::Gauge, "u", volume, "r")
                .with_project_id(project)
                .with_resource_metadata(serde_json::json!({"breed": breed})),
            recorded_at: Utc::now(),
        }
    }

    fn run(filter: &str, s: &StoredSample) -> bool {
        let e = parse(&serde_json::from_str(filter).unwrap(), 0).unwrap();
        holds(&e, s, &s.sample.resource_metadata())
    }

    #[test]
    fn trees_evaluate_as_ceilometer_defines_them() {
        let s = stored("cpu", 5.0, "p1", "cow");
        assert!(run(r#"{"=": {"meter": "cpu"}}"#, &s));
        assert!(run(
            r#"{"AND": [{">": {"volume": 4}}, {"<=": {"counter_volume": 5}}]}"#,
            &s
        ));
        assert!(!run(r#"{"not": {"in": {"project": ["p1", "p2"]}}}"#, &s));
        assert!(run(
            r#"{"or": [{"=": {"metadata.breed": "pig"}}, {"=~": {"metadata.breed": "^c"}}]}"#,
            &s
        ));
        assert!(run(r#"{">": {"timestamp": "2014-01-01"}}"#, &s));
        assert!(!run(r#"{"!=": {"resource_id": "r"}}"#, &s));
    }

    #[test]
    fn bad_filters_are_400s_that_say_why() {
        for (f, needle) in [
            (r#"{"=": {"harpoon": 1}}"#, "unrecognized field"),
            (r#"{"like": {"meter": "x"}}"#, "unknown operator"),
            (r#"{"in": {"meter": "x"}}"#, "non-empty list"),
            (r#"{"=~": {"meter": "("}}"#, "regular expression"),
            (r#"{"and": []}"#, "non-empty list"),
            (
                r#"{">": {"timestamp": "soon"}}"#,
                "Failed to parse the timestamp",
            ),
        ] {
            let e = parse(&serde_json::from_str(f).unwrap(), 0).unwrap_err();
            assert!(e.message.contains(needle), "{f}: {}", e.message);
        }
        let mut deep = String::from(r#"{"=": {"meter": "x"}}"#);
        for _ in 0..100 {
            deep = format!(r#"{{"not": {deep}}}"#);
        }
        assert!(parse(&serde_json::from_str(&deep).unwrap(), 0).is_err());
    }
}
