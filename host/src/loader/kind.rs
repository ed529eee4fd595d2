//! The five plugin kinds.

use std::fmt;

use serde::Serialize;

/// A plugin's kind, as `ceilo plugins` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Produces samples when polled.
    Poller,
    /// Turns notifications into samples.
    Notification,
    /// Changes samples in a sink.
    Transformer,
    /// Sends samples out of a sink.
    Publisher,
    /// Computes an event trait's value (plugin ABI 1.3).
    Trait,
}

impl PluginKind {
    /// Every kind, in listing order.
    pub const ALL: [PluginKind; 5] = [
        PluginKind::Poller,
        PluginKind::Notification,
        PluginKind::Transformer,
        PluginKind::Publisher,
        PluginKind::Trait,
    ];

    /// The name used in listings and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Poller => "poller",
            PluginKind::Notification => "notification",
            PluginKind::Transformer => "transformer",
            PluginKind::Publisher => "publisher",
            PluginKind::Trait => "trait",
        }
    }
}

impl fmt::Display for PluginKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
