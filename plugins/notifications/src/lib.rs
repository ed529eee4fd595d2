//! Built-in notification handlers.

mod compute;
pub mod declarative;

pub use compute::Compute;
pub use declarative::Declarative;

ceilo_plugin_api::export_plugins! {
    notification_handlers: [Compute, Declarative],
}
