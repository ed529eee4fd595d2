//! What every system poller needs: the host name (the resource id) and a monotonic
//! clock reading for rate computations.

use ceilo_plugin_api::PluginError;

/// This machine's host name.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Seconds on the monotonic clock (for `monotonic_time`).
pub fn monotonic_seconds() -> f64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// A /proc read failure, as the poller reports it.
pub fn unavailable(what: &str, e: impl std::fmt::Display) -> PluginError {
    PluginError::unavailable(format!("cannot read {what}: {e}"))
}
