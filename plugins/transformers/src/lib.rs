//! Built-in transformers, with Ceilometer's semantics, and the small safe expression
//! language their `scale` and `expr` parameters use.

mod accumulator;
mod aggregator;
mod arithmetic;
mod conversion;
mod delta;
pub mod expr;
mod lenient;
mod rate_of_change;
mod unit_conversion;

pub use accumulator::Accumulator;
pub use aggregator::Aggregator;
pub use arithmetic::Arithmetic;
pub use delta::Delta;
pub use rate_of_change::RateOfChange;
pub use unit_conversion::UnitConversion;

ceilo_plugin_api::export_plugins! {
    transformers: [Accumulator, Aggregator, Arithmetic, Delta, RateOfChange, UnitConversion],
}
