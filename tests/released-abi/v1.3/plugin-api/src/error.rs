//! [`PluginError`]: what a plugin returns when it cannot do what it was asked.

use std::fmt;

use abi_stable::std_types::RString;
use abi_stable::StableAbi;

/// What went wrong, so the host can decide what to do (log, back off, retry).
///
/// A code rather than an enum so that new kinds can be added without changing the
/// layout; a host that meets a code it does not know treats it as [`ErrorKind::FAILED`].
///
/// ```
/// use ceilo_plugin_api::{ErrorKind, PluginError};
/// let e = PluginError::unavailable("broker down");
/// assert_eq!(e.kind(), ErrorKind::UNAVAILABLE);
/// assert!(matches!(e.kind(), ErrorKind::UNAVAILABLE));
/// ```
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorKind(u8);

impl ErrorKind {
    /// The operation failed; trying again later may work.
    pub const FAILED: ErrorKind = ErrorKind(0);
    /// The plugin's parameters are wrong: the operator must change `pipeline.yaml`.
    pub const INVALID_PARAMETERS: ErrorKind = ErrorKind(1);
    /// Something the plugin depends on (a service, a device) is unavailable for now.
    pub const UNAVAILABLE: ErrorKind = ErrorKind(2);
    /// The plugin panicked; the host caught it at the boundary.
    pub const PANIC: ErrorKind = ErrorKind(3);
    /// The input (a sample, a notification) cannot be handled by this plugin.
    pub const INVALID_INPUT: ErrorKind = ErrorKind(4);

    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::INVALID_PARAMETERS => "invalid parameters",
            ErrorKind::UNAVAILABLE => "unavailable",
            ErrorKind::PANIC => "panicked",
            ErrorKind::INVALID_INPUT => "invalid input",
            _ => "failed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error returned by a plugin: a kind and a message for the operator.
///
/// Write messages that say what to fix, e.g. "parameter `path` is missing: give the
/// file to write to".
///
/// ```
/// use ceilo_plugin_api::PluginError;
/// let e = PluginError::invalid_parameters("`size` must be a positive integer");
/// assert_eq!(e.to_string(), "invalid parameters: `size` must be a positive integer");
/// ```
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    kind: ErrorKind,
    message: RString,
}

impl PluginError {
    /// An error of the given kind.
    pub fn with_kind(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            message: RString::from(message.into()),
        }
    }
    /// A generic failure ([`ErrorKind::FAILED`]).
    pub fn new(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::FAILED, message)
    }
    /// Bad plugin parameters ([`ErrorKind::INVALID_PARAMETERS`]).
    pub fn invalid_parameters(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::INVALID_PARAMETERS, message)
    }
    /// A dependency is unavailable for now ([`ErrorKind::UNAVAILABLE`]).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::UNAVAILABLE, message)
    }
    /// Input this plugin cannot handle ([`ErrorKind::INVALID_INPUT`]).
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::with_kind(ErrorKind::INVALID_INPUT, message)
    }
    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for PluginError {}
