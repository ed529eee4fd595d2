//! [`Notification`]: an event from another service, as a notification handler sees it.

use serde_json::{Map, Value};

use crate::PluginError;

/// One notification (oslo.messaging's JSON shape: `event_type`, `payload`,
/// `publisher_id`, `timestamp`, `message_id`, `_context_*`), already unwrapped from any
/// `oslo.message` envelope by the host.
///
/// ```
/// use ceilo_plugin_api::Notification;
/// let n = Notification::from_json(r#"{
///     "event_type": "compute.instance.create.end",
///     "publisher_id": "compute.host1",
///     "payload": {"instance_id": "i-1", "memory_mb": 512},
///     "_context_user_id": "u1"
/// }"#).unwrap();
/// assert_eq!(n.event_type, "compute.instance.create.end");
/// assert_eq!(n.payload["memory_mb"], 512);
/// assert_eq!(n.context("user_id").and_then(|v| v.as_str()), Some("u1"));
/// assert!(Notification::from_json(r#"{"payload": {}}"#).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Notification {
    /// e.g. `compute.instance.create.end`.
    pub event_type: String,
    /// The event's own data (an object in well-formed notifications).
    pub payload: Value,
    /// The emitting service, e.g. `compute.host1`.
    pub publisher_id: Option<String>,
    /// When the event happened, as sent.
    pub timestamp: Option<String>,
    /// The notification's id.
    pub message_id: Option<String>,
    /// The whole message, for anything not given a field above.
    pub body: Map<String, Value>,
}

impl Notification {
    /// Parses a notification from JSON text; `event_type` is required.
    pub fn from_json(text: &str) -> Result<Self, PluginError> {
        let body: Map<String, Value> = serde_json::from_str(text).map_err(|e| {
            PluginError::invalid_input(format!("notification is not a JSON object: {e}"))
        })?;
        let event_type = match body.get("event_type") {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(PluginError::invalid_input(
                    "notification `event_type` is not a string",
                ))
            }
            None => {
                return Err(PluginError::invalid_input(
                    "notification has no `event_type`",
                ))
            }
        };
        let text_field = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(Notification {
            payload: body.get("payload").cloned().unwrap_or(Value::Null),
            publisher_id: text_field("publisher_id"),
            timestamp: text_field("timestamp"),
            message_id: text_field("message_id"),
            event_type,
            body,
        })
    }

    /// A request-context value (`_context_<key>` in the message).
    pub fn context(&self, key: &str) -> Option<&Value> {
        self.body.get(&format!("_context_{key}"))
    }
}
