//! [`Context`]: what the host tells a plugin instance about where it runs.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::PluginError;

/// Facts the host hands to each plugin instance when it creates it. Plugins never read
/// global configuration themselves; whatever they need from the host comes here.
///
/// It crosses the boundary as JSON, so the host can add fields without breaking
/// plugins: a plugin built against an older `plugin-api` ignores what it does not know.
/// The telemetry secret is never shown by `Debug`.
///
/// ```
/// use ceilo_plugin_api::Context;
/// let ctx = Context::new("file", "sink cpu_sink, publisher 1").with_telemetry_secret("s3cret");
/// assert_eq!(ctx.telemetry_secret(), Some("s3cret"));
/// assert!(!format!("{ctx:?}").contains("s3cret"));
/// let back = Context::from_json(&ctx.to_json()).unwrap();
/// assert_eq!(back.plugin, "file");
/// ```
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Context {
    /// The plugin's name, as `pipeline.yaml` refers to it.
    pub plugin: String,
    /// Where this instance sits, for log messages ("sink cpu_sink, transformer 2").
    pub instance: String,
    /// The host's version (`ceilo --version`).
    pub host_version: String,
    /// The plugin ABI the host loaded this plugin with, e.g. `"1.1"`.
    pub abi_version: String,
    /// A directory the plugin may keep state in, if the host has one.
    pub data_dir: Option<PathBuf>,
    /// The host is only checking a configuration (`ceilo validate`): report problems
    /// a running plugin would skip with a warning as parameter errors instead.
    pub validating: bool,
    telemetry_secret: Option<String>,
}

impl Context {
    /// A context for plugin `plugin` at `instance`.
    pub fn new(plugin: impl Into<String>, instance: impl Into<String>) -> Self {
        Context {
            plugin: plugin.into(),
            instance: instance.into(),
            abi_version: crate::abi::CURRENT.to_string(),
            ..Context::default()
        }
    }
    /// Sets the telemetry secret used to sign samples (empty means unsigned).
    pub fn with_telemetry_secret(mut self, secret: impl Into<String>) -> Self {
        let s = secret.into();
        self.telemetry_secret = (!s.is_empty()).then_some(s);
        self
    }
    /// Sets the host version.
    pub fn with_host_version(mut self, v: impl Into<String>) -> Self {
        self.host_version = v.into();
        self
    }
    /// Sets the ABI version the plugin was loaded with.
    pub fn with_abi_version(mut self, v: impl Into<String>) -> Self {
        self.abi_version = v.into();
        self
    }
    /// Marks the instance as created for validation only.
    pub fn validating(mut self) -> Self {
        self.validating = true;
        self
    }
    /// Sets the data directory.
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }
    /// The telemetry secret, when samples must be signed.
    pub fn telemetry_secret(&self) -> Option<&str> {
        self.telemetry_secret.as_deref()
    }
    /// The JSON form the host sends.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
    /// Parses the JSON form; an empty text is an empty context.
    pub fn from_json(text: &str) -> Result<Self, PluginError> {
        if text.trim().is_empty() {
            return Ok(Context::default());
        }
        serde_json::from_str(text)
            .map_err(|e| PluginError::new(format!("the host sent an unreadable context: {e}")))
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("plugin", &self.plugin)
            .field("instance", &self.instance)
            .field("host_version", &self.host_version)
            .field("abi_version", &self.abi_version)
            .field("data_dir", &self.data_dir)
            .field("validating", &self.validating)
            .field(
                "telemetry_secret",
                &self.telemetry_secret.as_ref().map(|_| "***"),
            )
            .finish()
    }
}
