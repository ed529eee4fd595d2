//! Trait plugins (plugin ABI 1.3): what a trait definition's `plugin:` in
//! `event_definitions.yaml` names.

use serde_json::Value;

use crate::{Plugin, PluginError};

/// One field a trait definition's `fields` matched in a notification: its path
/// (`payload.thing.bar`, list elements as `[0]`) and its value.
///
/// ```
/// use ceilo_plugin_api::TraitMatch;
/// let m = TraitMatch::new("payload.size", serde_json::json!(2));
/// assert_eq!((m.path.as_str(), m.value.as_i64()), ("payload.size", Some(2)));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TraitMatch {
    /// Where the value was found.
    pub path: String,
    /// The value.
    pub value: Value,
}

impl TraitMatch {
    /// A match of `value` at `path`.
    pub fn new(path: impl Into<String>, value: Value) -> TraitMatch {
        TraitMatch {
            path: path.into(),
            value,
        }
    }

    /// Matches as they cross the boundary: `[[path, value], …]`.
    pub fn list_to_json(matches: &[TraitMatch]) -> String {
        Value::Array(
            matches
                .iter()
                .map(|m| Value::Array(vec![Value::String(m.path.clone()), m.value.clone()]))
                .collect(),
        )
        .to_string()
    }

    /// The matches of [`TraitMatch::list_to_json`]'s text.
    pub fn list_from_json(text: &str) -> Result<Vec<TraitMatch>, PluginError> {
        let bad = || PluginError::new("trait matches: expected a JSON list of [path, value] pairs");
        let Value::Array(items) = serde_json::from_str(text).map_err(|_| bad())? else {
            return Err(bad());
        };
        items
            .into_iter()
            .map(|item| match item {
                Value::Array(mut pair) if pair.len() == 2 => {
                    let value = pair.pop().unwrap_or(Value::Null);
                    match pair.pop() {
                        Some(Value::String(path)) => Ok(TraitMatch { path, value }),
                        _ => Err(bad()),
                    }
                }
                _ => Err(bad()),
            })
            .collect()
    }
}

/// Computes a trait's value from what its definition's fields matched, as
/// Ceilometer's trait plugins do (`split`, `bitfield`, `timedelta`, `map` are ceilo's
/// built-ins; a definition names one with `plugin: NAME` or
/// `plugin: {name: NAME, parameters: {…}}`).
///
/// The host creates one instance per trait definition that names the plugin, with
/// the definition's `parameters`, and calls [`trait_values`](Self::trait_values) for
/// every notification the definition converts — *even when no field matched*
/// (`matches` is then empty). Of the values returned, nulls are dropped and the first
/// of the others becomes the trait's value, converted to the trait's type; none
/// left: the event has no such trait. Requires plugin ABI 1.3 (a host of ABI 1.2
/// refuses the library).
///
/// A complete trait plugin, which counts the fields that matched:
///
/// ```
/// use ceilo_plugin_api::*;
///
/// pub struct CountFields;
///
/// impl Plugin for CountFields {
///     const NAME: &'static str = "count_fields";
///     const DESCRIPTION: &'static str = "how many of the trait's fields are present";
///     fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> { Ok(CountFields) }
/// }
///
/// impl TraitPlugin for CountFields {
///     fn trait_values(&mut self, matches: &[TraitMatch]) -> Result<Vec<serde_json::Value>, PluginError> {
///         Ok(vec![serde_json::json!(matches.len())])
///     }
/// }
///
/// export_plugins! { trait_plugins: [CountFields] }
///
/// let mut p = CountFields;
/// let m = [TraitMatch::new("payload.a", serde_json::json!(1))];
/// assert_eq!(p.trait_values(&m).unwrap(), vec![serde_json::json!(1)]);
/// ```
///
/// In `event_definitions.yaml`:
///
/// ```yaml
/// - event_type: compute.instance.*
///   traits:
///     present:
///       type: int
///       fields: [payload.memory_mb, payload.vcpus]
///       plugin: count_fields
/// ```
pub trait TraitPlugin: Plugin {
    /// The trait's candidate values for one notification (see the trait's notes).
    fn trait_values(&mut self, matches: &[TraitMatch]) -> Result<Vec<Value>, PluginError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_cross_as_json_pairs() {
        let m = vec![
            TraitMatch::new("payload.a", json!("x")),
            TraitMatch::new("payload.list.[0]", json!({"k": [1, null]})),
        ];
        let text = TraitMatch::list_to_json(&m);
        assert_eq!(TraitMatch::list_from_json(&text).unwrap(), m);
        for bad in ["{}", "[[1, 2]]", "[[\"p\"]]", "nope"] {
            assert!(TraitMatch::list_from_json(bad).is_err(), "{bad}");
        }
    }
}
