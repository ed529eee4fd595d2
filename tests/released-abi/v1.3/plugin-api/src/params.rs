//! [`Parameters`]: the `parameters` mapping a plugin is given in `pipeline.yaml`.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::PluginError;

/// A plugin's parameters: the YAML `parameters` mapping of its entry in
/// `pipeline.yaml` (or, for publishers, the URL's parts), as JSON.
///
/// Most plugins deserialize them into their own struct; serde's message names the
/// offending field and becomes an [`ErrorKind::INVALID_PARAMETERS`](crate::ErrorKind)
/// error that the host shows with the file and the plugin.
///
/// ```
/// use ceilo_plugin_api::Parameters;
/// use serde::Deserialize;
///
/// #[derive(Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Config { size: u32, #[serde(default)] growth_only: bool }
///
/// let p = Parameters::from_json(r#"{"size": 10}"#).unwrap();
/// let c: Config = p.parse().unwrap();
/// assert_eq!((c.size, c.growth_only), (10, false));
///
/// let bad = Parameters::from_json(r#"{"size": "ten"}"#).unwrap();
/// let err = bad.parse::<Config>().err().unwrap();
/// assert!(err.message().contains("invalid type"), "{err}");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parameters(Map<String, Value>);

impl Parameters {
    /// Parses parameters from JSON text; an empty text or `null` means no parameters.
    pub fn from_json(text: &str) -> Result<Self, PluginError> {
        if text.trim().is_empty() {
            return Ok(Parameters::default());
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(Parameters(map)),
            Ok(Value::Null) => Ok(Parameters::default()),
            Ok(other) => Err(PluginError::invalid_parameters(format!(
                "parameters must be a mapping, found {}",
                type_name(&other)
            ))),
            Err(e) => Err(PluginError::invalid_parameters(format!(
                "parameters are not valid JSON: {e}"
            ))),
        }
    }

    /// Deserializes all parameters into `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        serde_json::from_value(Value::Object(self.0.clone()))
            .map_err(|e| PluginError::invalid_parameters(e.to_string()))
    }

    /// One parameter, deserialized; `Ok(None)` when absent.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, PluginError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|e| PluginError::invalid_parameters(format!("`{key}`: {e}"))),
        }
    }

    /// The raw mapping.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Whether no parameter was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Map<String, Value>> for Parameters {
    fn from(m: Map<String, Value>) -> Self {
        Parameters(m)
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}
