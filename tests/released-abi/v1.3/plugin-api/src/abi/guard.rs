//! Keeps panics from crossing the boundary.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::{ErrorKind, PluginError};

/// Runs `f`, turning a panic into a [`PluginError`] of kind [`ErrorKind::PANIC`] that
/// names `what` the plugin was doing. Every exported entry point goes through this:
/// unwinding across `extern "C"` would abort the host.
pub fn guard<R>(what: &str, f: impl FnOnce() -> Result<R, PluginError>) -> Result<R, PluginError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(PluginError::with_kind(
            ErrorKind::PANIC,
            format!("panicked in {what}: {}", panic_message(payload.as_ref())),
        )),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_owned()
    }
}
