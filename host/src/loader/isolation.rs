//! Which libraries run in a worker process of their own rather than in the host.
//!
//! A plugin in the host's address space can take the host down (a segfault, an abort,
//! an out-of-memory kill); one in a worker can only take its worker down, which the
//! host restarts. The default, `auto`, isolates every library that is not one of
//! ceilo's own built-ins: the built-ins are built and tested with the host, so they
//! keep the in-process speed; code ceilo has never seen pays a copy per batch in
//! exchange for not being able to crash metering.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::plugin_dir::BUILT_IN_PREFIX;

/// The built-in libraries' file names (what `cargo build` produces for `plugins/`).
pub const BUILT_IN_LIBRARIES: [&str; 7] = [
    "libceilo_plugin_system.so",
    "libceilo_plugin_transformers.so",
    "libceilo_plugin_publishers.so",
    "libceilo_plugin_notifications.so",
    "libceilo_plugin_amqp.so",
    "libceilo_plugin_traits.so",
    "libceilo_plugin_remote.so",
];

/// The policy's overall choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum IsolationMode {
    /// Built-in libraries in process, every other library in a worker.
    #[default]
    Auto,
    /// Every library in a worker.
    All,
    /// Every library in the host process.
    None,
}

/// How workers are started and bounded.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The program to run as `PROGRAM [ARGS] plugin-worker LIB` (the `ceilo` binary).
    pub program: PathBuf,
    /// Arguments before `plugin-worker` (the host's log options).
    pub args: Vec<String>,
    /// Address-space limit of each worker, in bytes (`None`: unlimited).
    pub memory_limit: Option<u64>,
    /// How long a call other than `poll` may take before the worker is killed.
    pub call_timeout: Duration,
}

/// Which libraries are isolated, and how.
#[derive(Debug, Clone)]
pub struct IsolationPolicy {
    /// Overall choice.
    pub mode: IsolationMode,
    /// Library file names always isolated.
    pub isolate: Vec<String>,
    /// Library file names always in process (wins over `isolate`).
    pub in_process: Vec<String>,
    /// How workers run.
    pub worker: WorkerSettings,
}

impl IsolationPolicy {
    /// Whether `library` runs in a worker.
    pub fn isolates(&self, library: &Path) -> bool {
        let file = library
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if self.in_process.iter().any(|n| n == file) {
            return false;
        }
        if self.isolate.iter().any(|n| n == file) {
            return true;
        }
        match self.mode {
            IsolationMode::All => true,
            IsolationMode::None => false,
            IsolationMode::Auto => !is_built_in(file),
        }
    }
}

/// Whether a library file name is one of ceilo's own.
pub fn is_built_in(file: &str) -> bool {
    file.starts_with(BUILT_IN_PREFIX) && BUILT_IN_LIBRARIES.contains(&file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(mode: IsolationMode) -> IsolationPolicy {
        IsolationPolicy {
            mode,
            isolate: vec!["libceilo_plugin_system.so".into()],
            in_process: vec!["libacme.so".into()],
            worker: WorkerSettings {
                program: "ceilo".into(),
                args: vec![],
                memory_limit: None,
                call_timeout: Duration::from_secs(1),
            },
        }
    }

    #[test]
    fn auto_isolates_what_is_not_built_in_and_overrides_win() {
        let p = policy(IsolationMode::Auto);
        assert!(!p.isolates(Path::new("/x/libceilo_plugin_amqp.so")));
        assert!(p.isolates(Path::new("/x/libceilo_plugin_amqp_evil.so")));
        assert!(p.isolates(Path::new("/x/libother.so")));
        assert!(p.isolates(Path::new("/x/libceilo_plugin_system.so")));
        assert!(!p.isolates(Path::new("/x/libacme.so")));
        let none = policy(IsolationMode::None);
        assert!(!none.isolates(Path::new("/x/libother.so")));
        assert!(none.isolates(Path::new("/x/libceilo_plugin_system.so")));
    }
}
