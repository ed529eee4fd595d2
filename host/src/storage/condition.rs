//! Filter conditions beyond equality on ids: any comparison on a sample field or a
//! resource metadata path (the API's `q.field` / `q.op` / `q.value`).

use std::fmt;

use chrono::{DateTime, Utc};

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `>=`
    Ge,
    /// `>`
    Gt,
}

impl Op {
    /// Parses `lt le eq ne ge gt`.
    pub fn parse(text: &str) -> Result<Op, String> {
        Ok(match text {
            "lt" => Op::Lt,
            "le" => Op::Le,
            "eq" | "" => Op::Eq,
            "ne" => Op::Ne,
            "ge" => Op::Ge,
            "gt" => Op::Gt,
            other => {
                return Err(format!(
                    "unknown operator `{other}` (expected lt, le, eq, ne, ge or gt)"
                ))
            }
        })
    }
    /// The SQL operator.
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ne => "<>",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }
    /// The MongoDB query operator.
    pub(crate) fn mongo(self) -> &'static str {
        match self {
            Op::Lt => "$lt",
            Op::Le => "$lte",
            Op::Eq => "$eq",
            Op::Ne => "$ne",
            Op::Ge => "$gte",
            Op::Gt => "$gt",
        }
    }
}

/// What a condition compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// `counter_name`.
    Meter,
    /// `resource_id`.
    ResourceId,
    /// `project_id`.
    ProjectId,
    /// `user_id`.
    UserId,
    /// `source`.
    Source,
    /// `message_id`.
    MessageId,
    /// `counter_type`.
    Type,
    /// `counter_unit`.
    Unit,
    /// `counter_volume`.
    Volume,
    /// The sample timestamp.
    Timestamp,
    /// A resource metadata path (dots separate nested keys).
    Metadata(String),
}

impl Field {
    /// The stored column of a plain field (both stores use Ceilometer's names).
    pub(crate) fn column(&self) -> Option<&'static str> {
        Some(match self {
            Field::Meter => "counter_name",
            Field::ResourceId => "resource_id",
            Field::ProjectId => "project_id",
            Field::UserId => "user_id",
            Field::Source => "source",
            Field::MessageId => "message_id",
            Field::Type => "counter_type",
            Field::Unit => "counter_unit",
            Field::Volume => "counter_volume",
            Field::Timestamp => "timestamp",
            Field::Metadata(_) => return None,
        })
    }
}

/// A typed value to compare with.
#[derive(Debug, Clone, PartialEq)]
pub enum CondValue {
    /// Text.
    Text(String),
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// A time.
    Time(DateTime<Utc>),
}

impl fmt::Display for CondValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CondValue::Text(t) => write!(f, "{t:?}"),
            CondValue::Number(n) => write!(f, "{n}"),
            CondValue::Bool(b) => write!(f, "{b}"),
            CondValue::Time(t) => write!(f, "{}", ceilo_plugin_api::format_timestamp(*t)),
        }
    }
}

/// `field op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// What.
    pub field: Field,
    /// How.
    pub op: Op,
    /// With what.
    pub value: CondValue,
}
