//! Built-in trait plugins, with the semantics of Ceilometer's (`split`, `bitfield`,
//! `timedelta`, `map`): what a trait definition's `plugin:` in
//! `event_definitions.yaml` names.

mod bitfield;
mod map;
mod split;
mod timedelta;

pub use bitfield::Bitfield;
pub use map::Map;
pub use split::Split;
pub use timedelta::Timedelta;

ceilo_plugin_api::export_plugins! {
    trait_plugins: [Split, Bitfield, Timedelta, Map],
}

/// Python's `str()` of a JSON value, as Ceilometer's plugins see values.
pub(crate) fn python_str(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Bool(true) => "True".into(),
        serde_json::Value::Bool(false) => "False".into(),
        serde_json::Value::Null => "None".into(),
        other => other.to_string(),
    }
}
