//! Reloading the API's tokens file: on SIGHUP or a settled change of the file, it is
//! read again whole; a file that does not parse (or holds no token) is refused and
//! the tokens in force stay, so a half-edited file never locks everyone out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{status, ReloadOutcome, WatchSet, Watcher};
use crate::api::{Auth, SharedAuth};

/// What reloads a tokens file: where it is, what it replaces, and how to watch it.
pub struct TokensReload {
    /// The tokens file.
    pub file: PathBuf,
    /// The authentication the API uses.
    pub auth: Arc<SharedAuth>,
    /// How long changes settle before the file is read.
    pub settle: Duration,
    /// False: on SIGHUP only.
    pub watch_file: bool,
}

impl TokensReload {
    /// Reloads the file into the API's authentication on each trigger until `stop`.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let TokensReload {
            file,
            auth,
            settle,
            watch_file,
        } = self;
        let set = WatchSet {
            files: if watch_file {
                vec![file.clone()]
            } else {
                Vec::new()
            },
            plugin_dir: None,
        };
        let (_watcher, mut triggers) = Watcher::start(&set, settle);
        loop {
            let trigger = tokio::select! {
                t = triggers.recv() => t,
                _ = stop.wait_for(|s| *s) => None,
            };
            let Some(trigger) = trigger else { return };
            match Auth::from_file(&file) {
                Ok(new) => {
                    let count = match &new {
                        Auth::Tokens(t) => t.len(),
                        Auth::Open => 0,
                    };
                    auth.replace(new);
                    status::reloaded(&ReloadOutcome::Applied);
                    tracing::info!(target: "ceilo::reload", "tokens reloaded ({trigger}): {count} token(s) in force");
                }
                Err(e) => {
                    tracing::error!(target: "ceilo::reload", "tokens reload refused: {e}; the tokens in force stay (fix and save, or send SIGHUP)");
                    status::reloaded(&ReloadOutcome::Failed(e));
                }
            }
        }
    }
}
