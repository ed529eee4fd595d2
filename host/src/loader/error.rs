//! Loader errors.

use std::path::PathBuf;

use ceilo_plugin_api::PluginError;

use super::PluginKind;

/// The plugin directory itself could not be read (the only fatal loader error).
#[derive(Debug, thiserror::Error)]
#[error("cannot read plugin directory {}: {error} (set --plugin-dir or CEILO_PLUGIN_DIR to a readable directory)", dir.display())]
pub struct ScanError {
    /// The directory.
    pub dir: PathBuf,
    /// Why.
    pub error: std::io::Error,
}

/// A call into a plugin failed (or the plugin panicked, which arrives as an error).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind} plugin `{name}` ({}): {error}", library.display())]
pub struct PluginCallError {
    /// The plugin's kind.
    pub kind: PluginKind,
    /// The plugin's name.
    pub name: String,
    /// The library it came from.
    pub library: PathBuf,
    /// What the plugin reported.
    pub error: PluginError,
}

/// A plugin instance could not be created.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CreateError {
    /// No loaded library provides it.
    #[error(
        "no {kind} plugin named `{name}` is loaded{}",
        available_hint(available)
    )]
    Unknown {
        /// The kind asked for.
        kind: PluginKind,
        /// The name asked for.
        name: String,
        /// What is loaded of that kind.
        available: Vec<String>,
    },
    /// The plugin's factory refused (bad parameters) or panicked.
    #[error(transparent)]
    Plugin(#[from] PluginCallError),
}

fn available_hint(available: &[String]) -> String {
    if available.is_empty() {
        " (none of that kind is loaded)".to_owned()
    } else {
        format!(" (loaded: {})", available.join(", "))
    }
}
