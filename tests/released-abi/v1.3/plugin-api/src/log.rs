//! Logging from a plugin through the host's log (its `tracing` subscriber), so plugin
//! messages appear with the host's own, filtered by the same `--log-level`.
//!
//! ```
//! use ceilo_plugin_api::{log_info, log_warn};
//! log_info!("polled {} devices", 3);
//! log_warn!("device {} vanished", "sdb");
//! ```
//!
//! Messages go to the host once it has loaded the library (ABI ≥ 1.1); before that (in
//! a plugin's own unit tests, say) they go to stderr.

use std::fmt;
use std::sync::OnceLock;

use abi_stable::std_types::RStr;
use abi_stable::StableAbi;

/// Severity, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Something failed.
    Error = 1,
    /// Something is wrong but work goes on.
    Warn = 2,
    /// Normal operation worth telling an operator.
    Info = 3,
    /// Detail for debugging.
    Debug = 4,
    /// Very verbose detail.
    Trace = 5,
}

impl Level {
    fn from_u8(v: u8) -> Level {
        match v {
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            _ => Level::Trace,
        }
    }
}

/// The host's logging entry points, handed to each library when it is loaded.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct HostLogger {
    /// Emits one message: level (1 = error … 5 = trace), the plugin's target, the text.
    pub log: extern "C" fn(u8, RStr<'_>, RStr<'_>),
    /// Whether a level is enabled at all, so disabled messages cost no formatting.
    pub enabled: extern "C" fn(u8) -> bool,
}

static LOGGER: OnceLock<HostLogger> = OnceLock::new();

/// Installs the host's logger (called by the host through the root module).
#[doc(hidden)]
pub fn set_host_logger(logger: HostLogger) {
    let _ = LOGGER.set(logger);
}

/// Whether a message at `level` would be recorded.
pub fn enabled(level: Level) -> bool {
    match LOGGER.get() {
        Some(l) => (l.enabled)(level as u8),
        None => level <= Level::Info,
    }
}

/// Logs a message; use the `log_*!` macros instead.
pub fn log(level: Level, target: &str, args: fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let text = args.to_string();
    match LOGGER.get() {
        Some(l) => (l.log)(level as u8, RStr::from_str(target), RStr::from_str(&text)),
        None => eprintln!("{:?} {target}: {text}", Level::from_u8(level as u8)),
    }
}

/// Logs at error level through the host. Takes `format!` arguments.
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Error, module_path!(), format_args!($($arg)+)) };
}
/// Logs at warn level through the host. Takes `format!` arguments.
#[macro_export]
macro_rules! log_warn {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Warn, module_path!(), format_args!($($arg)+)) };
}
/// Logs at info level through the host. Takes `format!` arguments.
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Info, module_path!(), format_args!($($arg)+)) };
}
/// Logs at debug level through the host. Takes `format!` arguments.
#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Debug, module_path!(), format_args!($($arg)+)) };
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[doc(hidden)]
pub fn level_from_u8(v: u8) -> Level {
    Level::from_u8(v)
}
