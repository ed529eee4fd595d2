//! The plugin loader: scans a directory for `.so` files, checks each against the
//! plugin ABI versions this host knows, and keeps a registry of plugins by
//! (kind, name). abi_stable stays inside this module.

mod abi_adapters;
mod error;
mod instance;
pub mod isolation;
mod kind;
mod library;
mod plugin_log;
mod registry;
mod residency;
mod worker;

pub use error::{closest, CreateError, PluginCallError, ScanError};
pub use instance::{
    NotificationInstance, PollLimits, PollOutput, PollerInstance, PublisherInstance,
    TraitPluginInstance, TransformOutput, TransformerInstance,
};
pub use isolation::{IsolationMode, IsolationPolicy, WorkerSettings};
pub use kind::PluginKind;
pub use library::{load_library, LoadedLibrary};
pub use registry::{
    remove_private_copies, PluginRegistry, PluginStamp, RegisteredPlugin, Rejection, ScanChanges,
    ScanOptions,
};
pub use residency::{release_after_work, release_start_up_pages, Released};
pub use worker::{kill_all_workers, serve as serve_worker, WorkerError};
