//! Reloading the API's tokens file: on SIGHUP or a settled change of the file, it is
//! read again whole; a file that does not parse (or holds no token) is refused and
//! the tokens in force stay, so a half-edited file never locks everyone out.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{status, ReloadOutcome, WatchSet, Watcher};
use crate::api::{Auth, SharedAuth};

/// Reloads `file` into `auth` on each trigger until `stop`; `watch_file` false:
/// on SIGHUP only.
pub async fn reload_tokens(
    file: PathBuf,
    auth: Arc<SharedAuth>,
    settle: Duration,
    watch_file: bool,
    mut stop: watch::Receiver<bool>,
) {
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
