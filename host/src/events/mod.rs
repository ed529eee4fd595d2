//! Events: what Ceilometer's event pipeline makes of every notification besides its
//! samples — typed traits picked out of the notification by `event_definitions.yaml`.
//!
//! - [`model`]: events, traits, trait types and their conversions;
//! - [`definitions`]: the definitions file, compiled, with its errors located;
//! - [`converter`]: a notification to its event (last matching definition wins);
//! - [`pipeline`]: `event_pipeline.yaml` wired: events to their sinks;
//! - [`publish`]: the outputs of event sinks (`direct://`, `file:`);
//! - [`notifier`]: `notifier://` / `amqp://`, events as Ceilometer's notifier sends them;
//! - `yaml`: definition files read as PyYAML reads them.

pub mod converter;
pub mod definitions;
pub mod model;
pub mod notifier;
pub mod pipeline;
pub mod publish;
mod yaml;

pub use converter::{ceilometer_shape, Conversion, Converter, ConverterOptions};
pub use definitions::{
    load, load_with_plugins, parse, parse_with_plugins, DefinitionError, EventDefinition,
    LoadedDefinitions, NoTraitPlugins, TraitDefinition, TraitPluginSource,
};
pub use model::{Event, Trait, TraitType, TraitValue};
pub use pipeline::{EventHost, EventPipeline, EventWiringError};
