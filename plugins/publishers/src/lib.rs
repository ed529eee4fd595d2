//! Built-in publishers: `file://`, `log://` and `udp://`.

mod file;
mod log;
mod udp;

pub use file::FilePublisher;
pub use log::LogPublisher;
pub use udp::UdpPublisher;

ceilo_plugin_api::export_plugins! {
    publishers: [FilePublisher, LogPublisher, UdpPublisher],
}
