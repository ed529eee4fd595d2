//! Turns a validated `pipeline.yaml` into running parts: per source, its pollers (one
//! instance per source and poller, selected by the meters each poller declares); per
//! sink, its own transformer instances and outputs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ceilo_plugin_api::Context;

use super::config::{PipelineConfig, DIRECT_SCHEME};
use super::direct::{DirectOutput, StoreHandle};
use super::meters::MeterFilter;
use super::output::{Output, PluginOutput, StdoutOutput};
use super::sink::Sink;
use crate::loader::{CreateError, PluginKind, PluginRegistry, PollerInstance};

/// Where sinks send samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// To the publishers `pipeline.yaml` names.
    Publishers,
    /// To stdout as JSON lines, publishers untouched (`ceilo poll --once`).
    Stdout,
}

/// Host facts handed to plugin instances.
#[derive(Debug, Clone, Default)]
pub struct HostSettings {
    /// Where plugins may keep files (`--data-dir`).
    pub data_dir: PathBuf,
    /// Signing secret for publishers (empty: unsigned).
    pub telemetry_secret: String,
    /// The host's store, for `direct://` (none: a pipeline using it cannot start).
    pub storage: Option<StoreHandle>,
}

/// A poller instance inside a source.
pub struct PollerSlot {
    /// The poller's name.
    pub name: String,
    /// The instance (locked while a poll runs).
    pub instance: Arc<Mutex<PollerInstance>>,
}

/// A source at run time.
pub struct SourceRuntime {
    /// Its name.
    pub name: String,
    /// Polling period.
    pub interval: Duration,
    /// Meter filter.
    pub filter: MeterFilter,
    /// Handed to pollers.
    pub resources: Vec<String>,
    /// Its pollers.
    pub pollers: Vec<PollerSlot>,
    /// Its sinks.
    pub sinks: Vec<Arc<Mutex<Sink>>>,
}

/// Everything that runs.
pub struct Runtime {
    /// Sources, in file order.
    pub sources: Vec<SourceRuntime>,
    /// Every sink (shared with the sources that use them).
    pub sinks: Vec<Arc<Mutex<Sink>>>,
}

impl Runtime {
    /// A runtime with the same sources (filters) and the same sink instances, but no
    /// pollers: for samples that arrive from elsewhere (the API's POST).
    pub fn sharing_sinks(&self) -> Runtime {
        Runtime {
            sources: self
                .sources
                .iter()
                .map(|s| SourceRuntime {
                    name: s.name.clone(),
                    interval: s.interval,
                    filter: s.filter.clone(),
                    resources: s.resources.clone(),
                    pollers: Vec::new(),
                    sinks: s.sinks.clone(),
                })
                .collect(),
            sinks: self.sinks.clone(),
        }
    }
}

/// Why the pipeline could not be started.
#[derive(Debug, thiserror::Error)]
#[error("{context}: {error}")]
pub struct WiringError {
    /// Which part.
    pub context: String,
    /// Why.
    pub error: WiringCause,
}

/// What stopped a part from being created.
#[derive(Debug, thiserror::Error)]
pub enum WiringCause {
    /// A plugin instance could not be created.
    #[error(transparent)]
    Plugin(#[from] CreateError),
    /// The host cannot provide it (e.g. `direct://` with no store open).
    #[error("{0}")]
    Host(String),
}

/// The meters each loaded poller produces (asked of one instance of each, created
/// with no parameters). Pollers that cannot be created so are logged and left out.
pub fn poller_meters(registry: &PluginRegistry) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for name in registry.names(PluginKind::Poller) {
        let meters = registry
            .create_poller(
                &name,
                &serde_json::json!({}),
                Context::new(name.as_str(), "meter discovery"),
            )
            .map_err(|e| e.to_string())
            .and_then(|mut p| p.meters().map_err(|e| e.to_string()));
        match meters {
            Ok(m) => {
                out.insert(name, m);
            }
            Err(e) => tracing::warn!(target: "ceilo::pipeline", "poller `{name}` left out: {e}"),
        }
    }
    out
}

/// Parameters for notification handlers, by handler name (`--handler-config`).
pub type HandlerParams = BTreeMap<String, serde_json::Value>;

/// The parameters of handler `name` (`{}` when none are configured).
pub fn handler_parameters(params: &HandlerParams, name: &str) -> serde_json::Value {
    params
        .get(name)
        .cloned()
        .unwrap_or_else(|| serde_json::json!({}))
}

/// The meters each usable notification handler declares (empty: not known).
pub fn handler_meters(
    registry: &PluginRegistry,
    params: &HandlerParams,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for name in registry.names(PluginKind::Notification) {
        let meters = registry
            .create_notification(
                &name,
                &handler_parameters(params, &name),
                Context::new(name.as_str(), "meter discovery"),
            )
            .map_err(|e| e.to_string())
            .and_then(|mut h| h.meters().map_err(|e| e.to_string()));
        // A handler that cannot be created without its parameters does not run, so it
        // produces nothing; one that runs but cannot list its meters (empty) may
        // produce anything.
        if let Ok(m) = meters {
            out.insert(name, m);
        }
    }
    out
}

/// Builds the runtime (`with_pollers`: false for the notification agent, whose
/// samples come from handlers).
pub fn wire(
    config: &PipelineConfig,
    registry: &PluginRegistry,
    meters: &BTreeMap<String, Vec<String>>,
    mode: OutputMode,
    host: &HostSettings,
    with_pollers: bool,
) -> Result<Runtime, WiringError> {
    let context = |plugin: &str, instance: String| {
        Context::new(plugin, instance)
            .with_data_dir(host.data_dir.clone())
            .with_telemetry_secret(host.telemetry_secret.clone())
    };
    let mut sinks: BTreeMap<String, Arc<Mutex<Sink>>> = BTreeMap::new();
    let mut all_sinks = Vec::new();
    for sc in &config.sinks {
        let mut transformers = Vec::new();
        for (i, t) in sc.transformers.iter().enumerate() {
            let instance = format!("sink {}, transformer {} ({})", sc.name, i + 1, t.name);
            let tr = registry
                .create_transformer(&t.name, &t.parameters, context(&t.name, instance.clone()))
                .map_err(|error| WiringError {
                    context: instance,
                    error: error.into(),
                })?;
            transformers.push(tr);
        }
        let mut outputs: Vec<Box<dyn Output>> = Vec::new();
        match mode {
            OutputMode::Stdout => outputs.push(Box::new(StdoutOutput)),
            OutputMode::Publishers => {
                for (i, p) in sc.publishers.iter().enumerate() {
                    let instance = format!(
                        "sink {}, publisher {} ({})",
                        sc.name,
                        i + 1,
                        crate::redact::mask_url(&p.url)
                    );
                    if p.scheme == DIRECT_SCHEME {
                        let Some(store) = host.storage.clone() else {
                            return Err(WiringError {
                                context: instance,
                                error: WiringCause::Host(
                                    "direct:// writes to the host's store, and none is open in this command (use `ceilo run`, or give `ceilo agent` --storage)".into(),
                                ),
                            });
                        };
                        outputs.push(Box::new(DirectOutput::new(store)));
                        continue;
                    }
                    let publisher = registry
                        .create_publisher(
                            &p.scheme,
                            &serde_json::json!({ "url": p.url }),
                            context(&p.scheme, instance.clone()),
                        )
                        .map_err(|error| WiringError {
                            context: instance,
                            error: error.into(),
                        })?;
                    outputs.push(Box::new(PluginOutput {
                        url: p.url.clone(),
                        publisher,
                    }));
                }
            }
        }
        let sink = Arc::new(Mutex::new(Sink::new(
            sc.name.clone(),
            transformers,
            outputs,
        )));
        sinks.insert(sc.name.clone(), sink.clone());
        all_sinks.push(sink);
    }

    let mut sources = Vec::new();
    for src in &config.sources {
        let mut pollers = Vec::new();
        for (name, produced) in meters.iter().filter(|_| with_pollers) {
            if !produced.iter().any(|m| src.meters.allows(m)) {
                continue;
            }
            let instance = format!("source {}, poller {name}", src.name);
            let p = registry
                .create_poller(
                    name,
                    &serde_json::json!({}),
                    context(name, instance.clone()),
                )
                .map_err(|error| WiringError {
                    context: instance,
                    error: error.into(),
                })?;
            pollers.push(PollerSlot {
                name: name.clone(),
                instance: Arc::new(Mutex::new(p)),
            });
        }
        sources.push(SourceRuntime {
            name: src.name.clone(),
            interval: src.interval,
            filter: src.meters.clone(),
            resources: src.resources.clone(),
            pollers,
            sinks: src
                .sinks
                .iter()
                .filter_map(|s| sinks.get(s).cloned())
                .collect(),
        });
    }
    Ok(Runtime {
        sources,
        sinks: all_sinks,
    })
}

impl Runtime {
    /// One line per source for the start-up message.
    pub fn describe(&self) -> Vec<String> {
        self.sources
            .iter()
            .map(|s| {
                let pollers: Vec<&str> = s.pollers.iter().map(|p| p.name.as_str()).collect();
                let sinks: Vec<String> = s
                    .sinks
                    .iter()
                    .map(|k| k.lock().map(|k| k.name.clone()).unwrap_or_default())
                    .collect();
                format!(
                    "source `{}` every {}s: pollers [{}] → sinks [{}]",
                    s.name,
                    s.interval.as_secs(),
                    pollers.join(", "),
                    sinks.join(", ")
                )
            })
            .collect()
    }
}
