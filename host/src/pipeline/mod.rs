//! The pipeline: `pipeline.yaml` parsed and validated, then wired into sources
//! (pollers and meter filters) and sinks (transformers and outputs).

mod config;
pub(crate) mod direct;
mod error;
mod event_config;
mod legacy;
mod meters;
pub mod output;
mod plugin_config;
mod polling;
pub(crate) mod positions;
pub(crate) mod retry;
mod sink;
mod validator;
mod wiring;

pub use config::{
    load, parse, Catalog, PipelineConfig, PublisherConfig, SinkConfig, SourceConfig,
    TransformerConfig, DEFAULT_INTERVAL_SECS, DIRECT_SCHEME,
};
pub use direct::{DirectOutput, StoreHandle};
pub use error::{ConfigError, ConfigErrors};
pub use event_config::{
    load_event_pipeline, parse_event_pipeline, EventPipelineConfig, EventSinkConfig,
    EventSourceConfig, EVENT_FILE_SCHEME,
};
pub use meters::MeterFilter;
pub use plugin_config::{load_plugin_params, PluginParams};
pub use polling::{load_polling, parse_polling, PollingConfig, PollingSource};
pub use positions::{Pos, Positions};
pub use sink::{Sink, SinkReport};
pub use wiring::{
    discover_pollers, handler_meters, poller_meters, wire, wire_reusing, HostSettings, OutputMode,
    PollerDiscovery, PollerSlot, Reusable, Reused, Route, Runtime, SourceRuntime, WiringCause,
    WiringError,
};
