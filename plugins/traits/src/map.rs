//! `map`: each matched value looked up in a table, with a default, optionally
//! ignoring case.

use ceilo_plugin_api::*;
use serde_json::Value;

/// Maps values to others.
#[derive(Debug)]
pub struct Map {
    values: serde_json::Map<String, Value>,
    default: Value,
    case_sensitive: bool,
}

impl Plugin for Map {
    const NAME: &'static str = "map";
    const DESCRIPTION: &'static str =
        "each value through a table: parameters values {from: to}, default, case_sensitive (true)";

    fn create(p: &Parameters, _: &Context) -> Result<Self, PluginError> {
        let values = match p.as_map().get("values") {
            Some(Value::Object(m)) if !m.is_empty() => m.clone(),
            None | Some(Value::Null) => {
                return Err(PluginError::invalid_parameters(
                    "`values` is required: a mapping of values to what they become",
                ))
            }
            Some(Value::Object(_)) => {
                return Err(PluginError::invalid_parameters(
                    "`values` is empty: map at least one value",
                ))
            }
            Some(_) => {
                return Err(PluginError::invalid_parameters(
                    "`values` must be a mapping of values to what they become",
                ))
            }
        };
        let case_sensitive = p.get("case_sensitive")?.unwrap_or(true);
        let values = if case_sensitive {
            values
        } else {
            values.into_iter().map(|(k, v)| (fold(&k), v)).collect()
        };
        Ok(Map {
            values,
            default: p.get("default")?.unwrap_or(Value::Null),
            case_sensitive,
        })
    }
}

/// Python's `str.casefold` for the texts services send (lower case, ß as ss).
fn fold(s: &str) -> String {
    s.to_lowercase().replace('ß', "ss")
}

impl TraitPlugin for Map {
    fn trait_values(&mut self, matches: &[TraitMatch]) -> Result<Vec<Value>, PluginError> {
        Ok(matches
            .iter()
            .map(|m| {
                // Keys cross as JSON text: a number matches the key that spells it.
                let key = match (&m.value, self.case_sensitive) {
                    (Value::String(s), false) => fold(s),
                    (v, _) => crate::python_str(v),
                };
                match self.values.get(&key) {
                    Some(v) => v.clone(),
                    None => {
                        log_warn!(
                            "map: unknown value {} at {}, mapped to the default {}",
                            m.value,
                            m.path,
                            self.default
                        );
                        self.default.clone()
                    }
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plugin(extra: Value) -> Result<Map, PluginError> {
        let mut params = json!({"values": {"ACTIVE": 1, "ERROR": 2, "3": 4}, "default": -1});
        if let (Some(p), Value::Object(e)) = (params.as_object_mut(), extra) {
            p.extend(e);
        }
        Map::create(
            &Parameters::from_json(&params.to_string()).unwrap(),
            &Context::default(),
        )
    }

    // Ceilometer's test_trait_plugins.TestMapTraitPlugin, restated.
    #[test]
    fn maps_as_ceilometer() {
        let m = |p: &str, v: Value| TraitMatch::new(p, v);
        let matches = |a: &str, b: &str| {
            [
                m("payload.foo", json!(a)),
                m("payload.bar", json!(b)),
                m("thingy.boink", json!(3)),
                m("thingy.invalid", json!(999)),
            ]
        };
        let ok = |v: Vec<Value>| v;
        assert_eq!(
            ok(plugin(json!({}))
                .unwrap()
                .trait_values(&matches("ACTIVE", "ERROR"))
                .unwrap()),
            [json!(1), json!(2), json!(4), json!(-1)]
        );
        assert_eq!(
            plugin(json!({"case_sensitive": true}))
                .unwrap()
                .trait_values(&matches("ACTIVE", "error"))
                .unwrap(),
            [json!(1), json!(-1), json!(4), json!(-1)]
        );
        assert_eq!(
            plugin(json!({"case_sensitive": false}))
                .unwrap()
                .trait_values(&matches("active", "ErRoR"))
                .unwrap(),
            [json!(1), json!(2), json!(4), json!(-1)]
        );
        let none = Map::create(&Parameters::default(), &Context::default());
        assert!(none.unwrap_err().message().contains("`values` is required"));
        let list = Map::create(
            &Parameters::from_json(r#"{"values": [["ACTIVE", 1]]}"#).unwrap(),
            &Context::default(),
        );
        assert!(list.unwrap_err().message().contains("must be a mapping"));
    }
}
