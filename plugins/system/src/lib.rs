//! Built-in pollers that read this machine's `/proc`.

mod load;

pub use load::Load;

ceilo_plugin_api::export_plugins! {
    pollers: [Load],
}
