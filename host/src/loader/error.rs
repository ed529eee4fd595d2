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
        available_hint(name, available)
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

fn available_hint(name: &str, available: &[String]) -> String {
    if available.is_empty() {
        return " (none of that kind is loaded)".to_owned();
    }
    let guess = closest(name, available)
        .map(|c| format!("did you mean `{c}`? "))
        .unwrap_or_default();
    format!(" ({guess}loaded: {})", available.join(", "))
}

/// The candidate nearest to `name`, if one is near enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (c.len().max(name.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.as_str())
}
