//! Watching what a running service was configured from: its configuration files and
//! its plugin directory (inotify, through `notify`), and SIGHUP. Changes are gathered
//! until the files have been quiet for the settle time, so that a library being
//! copied (`cp` writes it in pieces) or a file an editor saves in several steps is
//! read once, whole.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;

/// What to watch.
#[derive(Debug, Clone, Default)]
pub struct WatchSet {
    /// Configuration files (pipeline.yaml, polling.yaml, plugin configuration…).
    pub files: Vec<PathBuf>,
    /// The plugin directory (its `*.so` files).
    pub plugin_dir: Option<PathBuf>,
}

/// Why a reload is wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// SIGHUP.
    Signal,
    /// These watched paths changed (and have settled).
    Changed(Vec<PathBuf>),
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trigger::Signal => f.write_str("SIGHUP"),
            Trigger::Changed(paths) => {
                let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                write!(f, "change of {}", names.join(", "))
            }
        }
    }
}

/// A running watch: dropping it stops watching.
pub struct Watcher {
    _inner: Option<notify::RecommendedWatcher>,
}

impl Watcher {
    /// Starts watching `set` and listening for SIGHUP (which then no longer ends the
    /// process); triggers arrive on the receiver once the changes have been quiet for
    /// `settle`. What cannot be watched is logged, and SIGHUP still works. Must be
    /// called inside a tokio runtime.
    pub fn start(set: &WatchSet, settle: Duration) -> (Watcher, mpsc::Receiver<Trigger>) {
        let set = absolute(set);
        let (raw_tx, raw_rx) = mpsc::unbounded_channel::<PathBuf>();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(settle_changes(raw_rx, tx.clone(), settle));
        tokio::spawn(hangups(tx));
        // Parents, not the files: editors and `mv` replace a file by another inode.
        let mut dirs: Vec<PathBuf> = set
            .files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_owned))
            .chain(set.plugin_dir.clone())
            .collect();
        dirs.sort();
        dirs.dedup();
        if dirs.is_empty() {
            return (Watcher { _inner: None }, rx);
        }
        let relevant = set.clone();
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            let Ok(ev) = ev else { return };
            if matches!(ev.kind, notify::EventKind::Access(_)) {
                return;
            }
            for path in ev.paths {
                if is_relevant(&relevant, &path) {
                    let _ = raw_tx.send(path);
                }
            }
        });
        let mut inner = match watcher {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(target: "ceilo::reload", "cannot watch files ({e}): reload with SIGHUP");
                return (Watcher { _inner: None }, rx);
            }
        };
        for d in &dirs {
            if let Err(e) = inner.watch(d, RecursiveMode::NonRecursive) {
                tracing::warn!(target: "ceilo::reload", dir = %d.display(), "cannot watch {}: {e}; changes there need SIGHUP", d.display());
            }
        }
        (
            Watcher {
                _inner: Some(inner),
            },
            rx,
        )
    }
}

fn absolute(set: &WatchSet) -> WatchSet {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    WatchSet {
        files: set.files.iter().map(|f| abs(f)).collect(),
        plugin_dir: set.plugin_dir.as_deref().map(abs),
    }
}

/// A configuration file, or a visible `*.so` in the plugin directory.
fn is_relevant(set: &WatchSet, path: &Path) -> bool {
    if set.files.iter().any(|f| f == path) {
        return true;
    }
    let in_plugin_dir = set
        .plugin_dir
        .as_deref()
        .is_some_and(|d| path.parent() == Some(d));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    in_plugin_dir && name.ends_with(".so") && !name.starts_with('.')
}

/// Gathers changed paths until none arrives for `settle`, then sends one trigger.
async fn settle_changes(
    mut raw: mpsc::UnboundedReceiver<PathBuf>,
    tx: mpsc::Sender<Trigger>,
    settle: Duration,
) {
    while let Some(first) = raw.recv().await {
        let mut paths = vec![first];
        loop {
            match tokio::time::timeout(settle, raw.recv()).await {
                Ok(Some(p)) => paths.push(p),
                Ok(None) => return,
                Err(_) => break, // quiet for `settle`
            }
        }
        paths.sort();
        paths.dedup();
        if tx.send(Trigger::Changed(paths)).await.is_err() {
            return;
        }
    }
}

async fn hangups(tx: mpsc::Sender<Trigger>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(target: "ceilo::reload", "cannot listen for SIGHUP: {e}; reloads come from file changes only");
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::info!(target: "ceilo::reload", "SIGHUP received: reloading");
        if tx.send(Trigger::Signal).await.is_err() {
            return;
        }
    }
}
