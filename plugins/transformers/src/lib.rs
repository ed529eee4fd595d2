//! Built-in transformers.

mod accumulator;

pub use accumulator::Accumulator;

ceilo_plugin_api::export_plugins! {
    transformers: [Accumulator],
}
