//! Events and traits: what a notification becomes besides its samples (Ceilometer's
//! `Event` and `Trait`).

use chrono::{DateTime, Utc};
use serde_json::Value;

/// The type of a trait, as `event_definitions.yaml` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TraitType {
    /// `text` (the default): at most 255 characters, as Ceilometer crops them.
    Text,
    /// `int`
    Int,
    /// `float`
    Float,
    /// `datetime`: UTC.
    Datetime,
}

/// Longest text trait, in characters (Ceilometer's storage column).
pub const TEXT_MAX_CHARS: usize = 255;

impl TraitType {
    /// The type named `name` in a definition file.
    pub fn from_name(name: &str) -> Option<TraitType> {
        match name {
            "text" => Some(TraitType::Text),
            "int" => Some(TraitType::Int),
            "float" => Some(TraitType::Float),
            "datetime" => Some(TraitType::Datetime),
            _ => None,
        }
    }

    /// The name the API uses (`string`, `integer`, `float`, `datetime`).
    pub fn api_name(self) -> &'static str {
        match self {
            TraitType::Text => "string",
            TraitType::Int => "integer",
            TraitType::Float => "float",
            TraitType::Datetime => "datetime",
        }
    }

    /// Ceilometer's number for the type (its storage and wire form).
    pub fn code(self) -> u8 {
        match self {
            TraitType::Text => 1,
            TraitType::Int => 2,
            TraitType::Float => 3,
            TraitType::Datetime => 4,
        }
    }

    /// `value` as a trait of this type, as Ceilometer converts it (`int()`,
    /// `float()`, an ISO 8601 time, `str()` cropped), or why it cannot be.
    pub fn convert(self, value: &Value) -> Result<TraitValue, String> {
        let shown = || format!("`{}`", crate::redact::shorten(&value.to_string(), 80));
        match self {
            TraitType::Text => Ok(TraitValue::Text(
                text_of(value).chars().take(TEXT_MAX_CHARS).collect(),
            )),
            TraitType::Int => match value {
                // int(20.7) is 20; int(True) is 1.
                Value::Number(n) => n
                    .as_i64()
                    .or_else(|| {
                        n.as_f64()
                            .filter(|f| f.is_finite())
                            .map(|f| f.trunc() as i64)
                    })
                    .map(TraitValue::Int)
                    .ok_or_else(|| format!("{} is not an integer", shown())),
                Value::Bool(b) => Ok(TraitValue::Int(i64::from(*b))),
                // int('20') is 20, int(' 20 ') too; int('20.5') is an error.
                Value::String(s) => s
                    .trim()
                    .parse::<i64>()
                    .map(TraitValue::Int)
                    .map_err(|_| format!("{} is not an integer", shown())),
                _ => Err(format!("{} is not an integer", shown())),
            },
            TraitType::Float => match value {
                Value::Number(n) => n
                    .as_f64()
                    .map(TraitValue::Float)
                    .ok_or_else(|| format!("{} is not a number", shown())),
                Value::Bool(b) => Ok(TraitValue::Float(f64::from(u8::from(*b)))),
                Value::String(s) => s
                    .trim()
                    .parse::<f64>()
                    .map(TraitValue::Float)
                    .map_err(|_| format!("{} is not a number", shown())),
                _ => Err(format!("{} is not a number", shown())),
            },
            TraitType::Datetime => match value {
                Value::String(s) => ceilo_plugin_api::parse_timestamp(s.trim())
                    .map(TraitValue::Datetime)
                    .map_err(|_| format!("{} is not an ISO 8601 time", shown())),
                _ => Err(format!("{} is not an ISO 8601 time", shown())),
            },
        }
    }
}

/// The text of a JSON value: a string as it is, anything else in JSON.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A typed trait value.
#[derive(Debug, Clone, PartialEq)]
pub enum TraitValue {
    /// Text.
    Text(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A UTC time.
    Datetime(DateTime<Utc>),
}

impl TraitValue {
    /// The type of this value.
    pub fn trait_type(&self) -> TraitType {
        match self {
            TraitValue::Text(_) => TraitType::Text,
            TraitValue::Int(_) => TraitType::Int,
            TraitValue::Float(_) => TraitType::Float,
            TraitValue::Datetime(_) => TraitType::Datetime,
        }
    }
}

/// One named, typed value of an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Trait {
    /// The trait's name (the key in its definition).
    pub name: String,
    /// Its value.
    pub value: TraitValue,
}

/// An event: one notification, its type, when it happened and its traits.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The notification's message id (unique; storage dedupes by it).
    pub message_id: String,
    /// `compute.instance.create.end`, …
    pub event_type: String,
    /// When the notification was emitted (UTC).
    pub generated: DateTime<Utc>,
    /// The traits, in the order of their definitions (the default traits first).
    pub traits: Vec<Trait>,
    /// The whole notification, when its priority is one the converter keeps raw;
    /// else an empty object.
    pub raw: Value,
}

impl Event {
    /// The trait named `name`.
    pub fn trait_named(&self, name: &str) -> Option<&Trait> {
        self.traits.iter().find(|t| t.name == name)
    }

    /// The event as Ceilometer serializes one for its publishers: `message_id`,
    /// `event_type`, `generated` and `raw`, and `traits` as `[name, type code,
    /// value]` (type codes 1 text, 2 int, 3 float, 4 datetime; times in Python's
    /// `isoformat()`).
    pub fn to_ceilometer_json(&self) -> Value {
        let traits: Vec<Value> = self
            .traits
            .iter()
            .map(|t| {
                let value = match &t.value {
                    TraitValue::Text(s) => Value::from(s.as_str()),
                    TraitValue::Int(i) => Value::from(*i),
                    TraitValue::Float(f) => Value::from(*f),
                    TraitValue::Datetime(d) => Value::from(isoformat(*d)),
                };
                serde_json::json!([t.name, t.value.trait_type().code(), value])
            })
            .collect();
        serde_json::json!({
            "message_id": self.message_id,
            "event_type": self.event_type,
            "generated": isoformat(self.generated),
            "traits": traits,
            "raw": self.raw,
        })
    }
}

impl Event {
    /// An event message as Ceilometer's publishers send one (see
    /// [`Event::to_ceilometer_json`]; `message_signature` is ignored here).
    pub fn from_ceilometer_json(v: &Value) -> Result<Event, String> {
        let text = |k: &str| {
            v.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("`{k}` is missing or not text"))
        };
        let generated = ceilo_plugin_api::parse_timestamp(&text("generated")?)
            .map_err(|e| format!("`generated`: {e}"))?;
        let mut traits = Vec::new();
        for t in v
            .get("traits")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let (name, code, value) = match t.as_array().map(Vec::as_slice) {
                Some([Value::String(n), c, value]) => (n, c.as_i64().unwrap_or(0), value),
                _ => {
                    return Err(format!(
                        "a trait is not [name, type, value]: {}",
                        crate::redact::shorten(&t.to_string(), 80)
                    ))
                }
            };
            let trait_type = crate::storage::trait_type_of_code(code)
                .ok_or_else(|| format!("trait `{name}`: unknown type {code}"))?;
            let value = trait_type
                .convert(value)
                .map_err(|e| format!("trait `{name}`: {e}"))?;
            traits.push(Trait {
                name: name.clone(),
                value,
            });
        }
        Ok(Event {
            message_id: text("message_id")?,
            event_type: text("event_type")?,
            generated,
            traits,
            raw: v
                .get("raw")
                .cloned()
                .unwrap_or_else(|| Value::Object(Default::default())),
        })
    }
}

/// Python's `datetime.isoformat()` of a naive UTC time, as Ceilometer and Panko
/// write times: no offset, microseconds only when there are some.
pub fn isoformat(t: DateTime<Utc>) -> String {
    if t.timestamp_subsec_micros() == 0 {
        t.format("%Y-%m-%dT%H:%M:%S").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_convert_as_ceilometer_converts_them() {
        use TraitType::*;
        use TraitValue as V;
        assert_eq!(Int.convert(&json!("20")), Ok(V::Int(20)));
        assert_eq!(Int.convert(&json!(20.7)), Ok(V::Int(20)));
        assert_eq!(Int.convert(&json!(true)), Ok(V::Int(1)));
        assert!(Int.convert(&json!("20.5")).is_err());
        assert!(Int.convert(&json!({"a": 1})).is_err());
        assert_eq!(Float.convert(&json!("1.5")), Ok(V::Float(1.5)));
        assert_eq!(Float.convert(&json!(2)), Ok(V::Float(2.0)));
        assert!(Float.convert(&json!("x")).is_err());
        let t = chrono::DateTime::parse_from_rfc3339("2013-08-08T21:06:37.803826Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            Datetime.convert(&json!("2013-08-08 21:06:37.803826")),
            Ok(V::Datetime(t))
        );
        assert_eq!(
            Datetime.convert(&json!("2013-08-08T23:06:37.803826+02:00")),
            Ok(V::Datetime(t))
        );
        assert!(Datetime.convert(&json!("yesterday")).is_err());
        assert_eq!(Text.convert(&json!(50)), Ok(V::Text("50".into())));
        let long = "x".repeat(300);
        assert_eq!(
            Text.convert(&json!(long)),
            Ok(V::Text("x".repeat(TEXT_MAX_CHARS)))
        );
    }

    #[test]
    fn type_names_are_the_definition_files_and_the_apis() {
        for (name, t, api, code) in [
            ("text", TraitType::Text, "string", 1),
            ("int", TraitType::Int, "integer", 2),
            ("float", TraitType::Float, "float", 3),
            ("datetime", TraitType::Datetime, "datetime", 4),
        ] {
            assert_eq!(TraitType::from_name(name), Some(t));
            assert_eq!((t.api_name(), t.code()), (api, code));
        }
        assert_eq!(TraitType::from_name("bogus"), None);
        assert_eq!(TraitType::from_name("string"), None);
    }
}
