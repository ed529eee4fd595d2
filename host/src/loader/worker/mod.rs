//! Out-of-process plugins: a library chosen for isolation runs in worker processes
//! (`ceilo plugin-worker LIB`, the host's own binary loading the same `.so`), one per
//! plugin instance, called in batches over pipes. See [`super::isolation`] for which.

mod adapters;
mod client;
mod protocol;
mod server;

pub(crate) use adapters::{
    IsolatedNotification, IsolatedPoller, IsolatedPublisher, IsolatedTrait, IsolatedTransformer,
};
pub use client::kill_all_workers;
pub(crate) use client::Isolated;
pub(crate) use protocol::Request;
pub use server::{serve, WorkerError};
