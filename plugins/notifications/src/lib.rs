//! Built-in notification handlers.

mod compute;

pub use compute::Compute;

ceilo_plugin_api::export_plugins! {
    notification_handlers: [Compute],
}
