//! Built-in publishers.

mod file;

pub use file::FilePublisher;

ceilo_plugin_api::export_plugins! {
    publishers: [FilePublisher],
}
