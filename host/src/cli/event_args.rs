//! The event options of `ceilo notification` and `ceilo run`: which event pipeline,
//! which definitions, and the converter's choices (Ceilometer's `[event]` options).

use std::path::PathBuf;

use super::pipeline_cmds::PipelineCommandError;
use crate::events::{Converter, ConverterOptions, EventPipeline};
use crate::services::notification::EventWork;

/// Options for making events of notifications. Without `--event-pipeline` no
/// events are made (Ceilometer's `store_events` is off by default too).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct EventArgs {
    /// Route each notification's event through this event pipeline (Ceilometer's
    /// `event_pipeline.yaml` format); events are not made without it.
    #[arg(long, env = "CEILO_EVENT_PIPELINE")]
    pub event_pipeline: Option<PathBuf>,
    /// The event definitions (Ceilometer's `event_definitions.yaml` format); without
    /// it every notification becomes an event with the default traits alone.
    #[arg(long, env = "CEILO_EVENT_DEFINITIONS")]
    pub event_definitions: Option<PathBuf>,
    /// Make no event of a notification no definition matches.
    #[arg(long, env = "CEILO_DROP_UNMATCHED_NOTIFICATIONS")]
    pub drop_unmatched_notifications: bool,
    /// Keep the whole notification in the event's `raw` for these priorities
    /// (comma-separated: info, error, …).
    #[arg(long, env = "CEILO_STORE_RAW", value_delimiter = ',')]
    pub store_raw: Vec<String>,
}

impl EventArgs {
    /// The event pipeline's configuration, when one is given.
    pub fn pipeline_config(
        &self,
    ) -> Result<Option<crate::pipeline::EventPipelineConfig>, PipelineCommandError> {
        self.event_pipeline
            .as_deref()
            .map(crate::pipeline::load_event_pipeline)
            .transpose()
            .map_err(PipelineCommandError::Config)
    }

    /// The converter and the wired event pipeline (none without `--event-pipeline`);
    /// any unusable definition stops the start, as in Ceilometer.
    pub fn event_work(
        &self,
        config: Option<&crate::pipeline::EventPipelineConfig>,
        plugins: &dyn crate::events::TraitPluginSource,
        host: &crate::events::EventHost,
    ) -> Result<Option<EventWork>, PipelineCommandError> {
        let Some(config) = config else {
            return Ok(None);
        };
        let definitions = match &self.event_definitions {
            Some(file) => {
                let loaded = crate::events::load_with_plugins(file, plugins)
                    .map_err(|e| PipelineCommandError::EventDefinitions(vec![e]))?;
                if !loaded.errors.is_empty() {
                    return Err(PipelineCommandError::EventDefinitions(loaded.errors));
                }
                loaded.definitions
            }
            None => {
                tracing::info!(target: "ceilo::events", "no --event-definitions: events carry the default traits alone");
                Vec::new()
            }
        };
        let converter = Converter::new(
            definitions,
            &ConverterOptions {
                drop_unmatched: self.drop_unmatched_notifications,
                store_raw: self.store_raw.clone(),
            },
        );
        let pipeline = EventPipeline::wire(config, host)?;
        tracing::info!(
            target: "ceilo::events",
            "events: {} definition(s) tried per notification, pipeline {}",
            converter.len(),
            config.file.display()
        );
        Ok(Some(EventWork {
            converter,
            pipeline,
        }))
    }
}
