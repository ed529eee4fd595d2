//! The plugin loader: scans a directory for `.so` files, checks each against the
//! plugin ABI versions this host knows, and keeps a registry of plugins by
//! (kind, name). abi_stable stays inside this module.

mod abi_adapters;
mod error;
mod instance;
mod kind;
mod library;
mod plugin_log;
mod registry;

pub use error::{closest, CreateError, PluginCallError, ScanError};
pub use instance::{
    NotificationInstance, PollerInstance, PublisherInstance, TransformOutput, TransformerInstance,
};
pub use kind::PluginKind;
pub use library::{load_library, LoadedLibrary};
pub use registry::{PluginRegistry, RegisteredPlugin, Rejection, ScanOptions};
