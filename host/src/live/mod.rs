//! Live operations: what makes a running service take new plugin libraries and edited
//! configuration without a restart — watching the files (and SIGHUP), and the view of
//! what the service has loaded, refused and reloaded.

pub mod status;
pub mod tokens;
pub mod watch;

pub use status::{PluginsView, ReloadOutcome};
pub use tokens::TokensReload;
pub use watch::{Trigger, WatchSet, Watcher};
