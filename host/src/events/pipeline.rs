//! The event pipeline wired: each source takes the events whose type it allows and
//! hands them to its sinks; each sink hands them to its outputs. A sink fed by two
//! sources gets an event once.

use std::path::Path;

use super::model::Event;
use super::notifier::{NotifierEvents, NotifierTarget};
use super::publish::{DirectEvents, EventOutput, FileEvents};
use crate::pipeline::{
    EventPipelineConfig, MeterFilter, StoreHandle, DIRECT_SCHEME, EVENT_FILE_SCHEME,
};

struct EventSource {
    events: MeterFilter,
    sinks: Vec<usize>,
}

struct EventSink {
    name: String,
    outputs: Vec<Box<dyn EventOutput>>,
}

/// What the event outputs need from the service running them.
#[derive(Clone)]
pub struct EventHost {
    /// Where `file:` paths are relative to.
    pub data_dir: std::path::PathBuf,
    /// The store `direct://` writes to (opened when [`EventPipelineConfig::uses_direct`]).
    pub store: Option<StoreHandle>,
    /// The runtime `notifier://` does its I/O on.
    pub runtime: tokio::runtime::Handle,
    /// The broker `notifier://` without a host sends to (the agent's).
    pub amqp_url: Option<String>,
    /// The secret events are signed with (empty: unsigned).
    pub telemetry_secret: String,
}

/// A running event pipeline.
pub struct EventPipeline {
    sources: Vec<EventSource>,
    sinks: Vec<EventSink>,
}

/// Why an event pipeline could not be wired.
#[derive(Debug, thiserror::Error)]
pub enum EventWiringError {
    /// An output could not be opened.
    #[error("{file}: sink `{sink}`: publisher `{url}`: {reason}")]
    Output {
        /// The event pipeline file.
        file: String,
        /// The sink.
        sink: String,
        /// The publisher as written.
        url: String,
        /// What went wrong.
        reason: String,
    },
}

impl EventPipeline {
    /// Wires `config` with what `host` provides.
    pub fn wire(
        config: &EventPipelineConfig,
        host: &EventHost,
    ) -> Result<EventPipeline, EventWiringError> {
        let data_dir: &Path = &host.data_dir;
        let store = host.store.as_ref();
        let mut sinks = Vec::new();
        for s in &config.sinks {
            let mut outputs: Vec<Box<dyn EventOutput>> = Vec::new();
            for p in &s.publishers {
                let fail = |reason: String| EventWiringError::Output {
                    file: config.file.display().to_string(),
                    sink: s.name.clone(),
                    url: crate::redact::mask_url(&p.url),
                    reason,
                };
                let out: Box<dyn EventOutput> = match p.scheme.as_str() {
                    DIRECT_SCHEME => match store {
                        Some(h) => Box::new(DirectEvents::new(h.clone())),
                        None => return Err(fail("no store is open for direct://".into())),
                    },
                    EVENT_FILE_SCHEME => {
                        Box::new(FileEvents::open(&p.url, data_dir).map_err(fail)?)
                    }
                    "notifier" | "rpc" | "amqp" | "amqps" => {
                        let target = NotifierTarget::parse(&p.url, host.amqp_url.as_deref())
                            .map_err(fail)?;
                        Box::new(NotifierEvents::new(
                            target,
                            &host.telemetry_secret,
                            host.runtime.clone(),
                        ))
                    }
                    other => return Err(fail(format!("no event publisher `{other}`"))),
                };
                outputs.push(out);
            }
            sinks.push(EventSink {
                name: s.name.clone(),
                outputs,
            });
        }
        let sources = config
            .sources
            .iter()
            .map(|src| EventSource {
                events: src.events.clone(),
                sinks: src
                    .sinks
                    .iter()
                    .filter_map(|n| sinks.iter().position(|s| &s.name == n))
                    .collect(),
            })
            .collect();
        let pipeline = EventPipeline { sources, sinks };
        for s in &pipeline.sinks {
            let outs: Vec<String> = s.outputs.iter().map(|o| o.describe()).collect();
            tracing::info!(target: "ceilo::events", "event sink `{}` → {}", s.name, outs.join(", "));
        }
        Ok(pipeline)
    }

    /// Hands `events` to every sink whose sources allow them. `Err` when some output
    /// did not take its batch (every output is still tried).
    pub fn publish(&mut self, events: &[Event]) -> Result<(), String> {
        let mut failures = Vec::new();
        for (i, sink) in self.sinks.iter_mut().enumerate() {
            let feeding: Vec<&EventSource> = self
                .sources
                .iter()
                .filter(|s| s.sinks.contains(&i))
                .collect();
            let batch: Vec<Event> = events
                .iter()
                .filter(|e| feeding.iter().any(|s| s.events.allows(&e.event_type)))
                .cloned()
                .collect();
            if batch.is_empty() {
                continue;
            }
            for out in &mut sink.outputs {
                if let Err(e) = out.publish(&batch) {
                    failures.push(format!("event sink `{}`: {e}", sink.name));
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}
