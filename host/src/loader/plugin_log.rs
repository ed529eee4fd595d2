//! The logger handed to each plugin library: plugin messages become `tracing` events
//! with target `ceilo::plugin`, so `--log-level` and `RUST_LOG` filter them like the
//! host's own.

use abi_stable::std_types::RStr;
use ceilo_plugin_api::log::{level_from_u8, HostLogger, Level};

pub(crate) fn host_logger() -> HostLogger {
    HostLogger {
        log: plugin_log,
        enabled: plugin_log_enabled,
    }
}

extern "C" fn plugin_log(level: u8, module: RStr<'_>, message: RStr<'_>) {
    let (module, message) = (module.as_str(), message.as_str());
    match level_from_u8(level) {
        Level::Error => tracing::error!(target: "ceilo::plugin", module, "{message}"),
        Level::Warn => tracing::warn!(target: "ceilo::plugin", module, "{message}"),
        Level::Info => tracing::info!(target: "ceilo::plugin", module, "{message}"),
        Level::Debug => tracing::debug!(target: "ceilo::plugin", module, "{message}"),
        Level::Trace => tracing::trace!(target: "ceilo::plugin", module, "{message}"),
    }
}

extern "C" fn plugin_log_enabled(level: u8) -> bool {
    match level_from_u8(level) {
        Level::Error => tracing::enabled!(target: "ceilo::plugin", tracing::Level::ERROR),
        Level::Warn => tracing::enabled!(target: "ceilo::plugin", tracing::Level::WARN),
        Level::Info => tracing::enabled!(target: "ceilo::plugin", tracing::Level::INFO),
        Level::Debug => tracing::enabled!(target: "ceilo::plugin", tracing::Level::DEBUG),
        Level::Trace => tracing::enabled!(target: "ceilo::plugin", tracing::Level::TRACE),
    }
}
