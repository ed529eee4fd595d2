//! Notifications to events: the last definition matching a notification's event type
//! wins (so a file can override what it defined earlier, as with YAML merges), and
//! a notification no definition matches becomes an event with the default traits
//! alone, unless unmatched notifications are dropped.

use serde_json::{Map, Value};

use super::definitions::EventDefinition;
use super::model::Event;

/// How the converter treats what the definitions do not say.
#[derive(Debug, Clone, Default)]
pub struct ConverterOptions {
    /// Drop notifications no definition matches (else: default traits alone).
    pub drop_unmatched: bool,
    /// Keep the whole notification in `raw` for these priorities (`info`, `error`,
    /// …; any case). None by default.
    pub store_raw: Vec<String>,
}

/// What converting one notification gave.
#[derive(Debug, Clone, PartialEq)]
pub enum Conversion {
    /// The event, and the traits left out because their values did not convert.
    Event(Event, Vec<String>),
    /// No definition matches and unmatched notifications are dropped.
    Unmatched,
}

/// The compiled definitions, in the order they are tried.
#[derive(Debug, Clone)]
pub struct Converter {
    definitions: Vec<EventDefinition>,
    store_raw: Vec<String>,
}

impl Converter {
    /// A converter for `definitions` in file order.
    pub fn new(definitions: Vec<EventDefinition>, options: &ConverterOptions) -> Converter {
        let mut definitions: Vec<EventDefinition> = definitions.into_iter().rev().collect();
        if !options.drop_unmatched && !definitions.iter().any(EventDefinition::is_catch_all) {
            definitions.push(EventDefinition::catch_all());
        }
        Converter {
            definitions,
            store_raw: options
                .store_raw
                .iter()
                .map(|l| l.to_ascii_lowercase())
                .collect(),
        }
    }

    /// How many definitions are tried (the catch-all included).
    pub fn len(&self) -> usize {
        self.definitions.len()
    }

    /// Whether no definition is tried (every notification is dropped).
    pub fn is_empty(&self) -> bool {
        self.definitions.is_empty()
    }

    /// The event of `body` (Ceilometer's shape: see [`ceilometer_shape`]), emitted
    /// with `priority`. An error says why the notification cannot be an event (no
    /// message id, no timestamp…).
    pub fn convert(&self, priority: &str, body: &Value) -> Result<Conversion, String> {
        let event_type = body
            .get("event_type")
            .and_then(Value::as_str)
            .ok_or("no `event_type`")?;
        let Some(def) = self.definitions.iter().find(|d| d.match_type(event_type)) else {
            return Ok(Conversion::Unmatched);
        };
        let keep_raw = self
            .store_raw
            .iter()
            .any(|l| l.eq_ignore_ascii_case(priority));
        let (event, problems) = def.to_event(body, keep_raw)?;
        Ok(Conversion::Event(event, problems))
    }
}

/// A notification as it arrives (oslo.messaging: `message_id`, `timestamp`,
/// `priority` and the request context as `_context_*` keys beside `event_type`,
/// `publisher_id` and `payload`) in the shape Ceilometer's definitions address:
/// `metadata.message_id`, `metadata.timestamp` and the context under `ctxt`. A body
/// that already has `metadata` and `ctxt` is returned as it is.
pub fn ceilometer_shape(raw: &Value) -> Value {
    let Some(m) = raw.as_object() else {
        return raw.clone();
    };
    if m.get("metadata").is_some_and(Value::is_object) && m.get("ctxt").is_some() {
        return raw.clone();
    }
    let mut ctxt = match m.get("ctxt").or_else(|| m.get("context")) {
        Some(Value::Object(c)) => c.clone(),
        _ => Map::new(),
    };
    let mut out = Map::new();
    for (k, v) in m {
        match k.strip_prefix("_context_") {
            Some(name) => {
                ctxt.insert(name.to_owned(), v.clone());
            }
            None => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    let mut metadata = match m.get("metadata") {
        Some(Value::Object(md)) => md.clone(),
        _ => Map::new(),
    };
    for key in ["message_id", "timestamp"] {
        if let (false, Some(v)) = (metadata.contains_key(key), m.get(key)) {
            metadata.insert(key.to_owned(), v.clone());
        }
    }
    out.insert("metadata".into(), Value::Object(metadata));
    out.insert("ctxt".into(), Value::Object(ctxt));
    Value::Object(out)
}
