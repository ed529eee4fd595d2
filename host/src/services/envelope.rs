//! oslo.messaging's v2.0 envelope (`{"oslo.version": "2.0", "oslo.message": "<JSON
//! text>"}`), in which notifications may arrive; the collector's sample and event
//! sides both unwrap it.

use serde_json::Value;

/// The message inside `message`'s envelope, or `message` itself when it has none.
pub fn unwrap(message: Value) -> Result<Value, String> {
    match message {
        Value::Object(mut m) if m.contains_key("oslo.message") => match m.remove("oslo.message") {
            Some(Value::String(inner)) => serde_json::from_str(&inner)
                .map_err(|e| format!("an oslo.messaging envelope whose message is not JSON: {e}")),
            _ => Err("an oslo.messaging envelope whose `oslo.message` is not text".into()),
        },
        other => Ok(other),
    }
}
