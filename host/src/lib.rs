//! ceilo's host: loads plugin libraries and (in later layers) wires them into
//! pipelines, services, storage and the API.
//!
//! Only [`loader`] touches abi_stable; everything else sees plugins through the
//! version-independent types it exports.

pub mod api;
pub mod cli;
pub mod events;
pub mod live;
pub mod loader;
pub mod logging;
pub mod metrics;
pub mod pipeline;
pub mod plugin_dir;
pub mod redact;
pub mod services;
pub mod storage;
