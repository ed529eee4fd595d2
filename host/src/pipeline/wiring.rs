//! Turns a validated `pipeline.yaml` into running parts: per source, its pollers (one
//! instance per source and poller, selected by the meters each poller declares); per
//! sink, its own transformer instances and outputs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ceilo_plugin_api::{Context, SampleBatch};

use super::config::{PipelineConfig, SourceConfig, DIRECT_SCHEME};
use super::direct::{DirectOutput, StoreHandle};
use super::meters::MeterFilter;
use super::output::{Output, PluginOutput, SharedOutput, StdoutOutput};
use super::plugin_config::PluginParams;
use super::polling::PollingSource;
use super::sink::Sink;
use crate::loader::{CreateError, PluginKind, PluginRegistry, PluginStamp, PollerInstance};

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
    /// Refuse to start when a plugin cannot be created (otherwise it is left out).
    pub strict: bool,
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
    /// Its sinks (with `routes`: every sink a route may send to, for flushing).
    pub sinks: Vec<Arc<Mutex<Sink>>>,
    /// A polling.yaml source: its samples go to the pipeline sources that allow them
    /// (none: all go to `sinks`).
    pub routes: Option<Arc<Vec<Route>>>,
}

/// A pipeline source as a route, when polling.yaml decides what is polled: the meters
/// it lets through and the sinks it sends them to.
pub struct Route {
    /// The pipeline source's name.
    pub source: String,
    /// Its meter filter.
    pub filter: MeterFilter,
    /// Its sinks.
    pub sinks: Vec<Arc<Mutex<Sink>>>,
}

impl SourceRuntime {
    /// Hands a batch (already through this source's filter) to its sinks, or along its
    /// routes: each route gets the samples its filter allows.
    pub fn deliver(
        sinks: &[Arc<Mutex<Sink>>],
        routes: Option<&[Route]>,
        batch: SampleBatch,
        process: impl Fn(&[Arc<Mutex<Sink>>], SampleBatch),
    ) {
        let Some(routes) = routes else {
            return process(sinks, batch);
        };
        for route in routes {
            let selected: SampleBatch = batch
                .iter()
                .filter({
                    let mut allowed = route.filter.sample_predicate();
                    move |s| allowed(s)
                })
                .cloned()
                .collect();
            if !selected.is_empty() {
                process(&route.sinks, selected);
            }
        }
    }
}

/// Everything that runs.
pub struct Runtime {
    /// Sources, in file order (polling.yaml's when it is given).
    pub sources: Vec<SourceRuntime>,
    /// Every sink (shared with the sources that use them).
    pub sinks: Vec<Arc<Mutex<Sink>>>,
    /// With polling.yaml: the pipeline's sources, which route what is polled.
    pub routes: Option<Arc<Vec<Route>>>,
    /// Its parts by definition, for a reload to take over what did not change.
    pub reusable: Reusable,
}

/// What a sink is made of: equal keys are the same definition over the same plugin
/// code, so the running sink (with its transformer state) can stand for the new one.
#[derive(Debug, Clone, PartialEq)]
struct SinkKey {
    config: super::SinkConfig,
    stamps: Vec<Option<PluginStamp>>,
    stdout: bool,
}

/// A publisher in a sink, by URL and plugin code.
#[derive(Debug, Clone, PartialEq)]
struct OutputKey {
    sink: String,
    url: String,
    stamp: Option<PluginStamp>,
}

/// A poller in a polled source, by what it is given and its code.
#[derive(Debug, Clone, PartialEq)]
struct PollerKey {
    source: String,
    resources: Vec<String>,
    params: serde_json::Value,
    stamp: Option<PluginStamp>,
}

/// The parts of a running pipeline a new wiring may take over: sinks whose
/// definition did not change (whole, with their transformers' state), publishers of
/// changed sinks whose URL and plugin did not change (with their connections and
/// buffers), and pollers given the same as before.
#[derive(Clone, Default)]
pub struct Reusable {
    sinks: Vec<(SinkKey, Arc<Mutex<Sink>>)>,
    outputs: Vec<(OutputKey, SharedOutput)>,
    pollers: Vec<(PollerKey, Arc<Mutex<PollerInstance>>)>,
}

/// What a wiring took over from the one before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reused {
    /// Sinks kept whole.
    pub sinks: usize,
    /// Sinks built anew.
    pub new_sinks: usize,
    /// Publishers handed on to a changed sink.
    pub outputs: usize,
    /// Pollers kept.
    pub pollers: usize,
}

impl Reusable {
    fn take<K: PartialEq, V: Clone>(pool: &mut Vec<(K, V)>, key: &K) -> Option<V> {
        let i = pool.iter().position(|(k, _)| k == key)?;
        Some(pool.remove(i).1)
    }
}

impl Runtime {
    /// A runtime with the same sources (filters) and the same sink instances, but no
    /// pollers: for samples that arrive from elsewhere (the API's POST).
    pub fn sharing_sinks(&self) -> Runtime {
        let sources = match &self.routes {
            // The pipeline's own sources, not polling.yaml's.
            Some(routes) => routes
                .iter()
                .map(|r| SourceRuntime {
                    name: r.source.clone(),
                    interval: Duration::from_secs(super::DEFAULT_INTERVAL_SECS),
                    filter: r.filter.clone(),
                    resources: Vec::new(),
                    pollers: Vec::new(),
                    sinks: r.sinks.clone(),
                    routes: None,
                })
                .collect(),
            None => self
                .sources
                .iter()
                .map(|s| SourceRuntime {
                    name: s.name.clone(),
                    interval: s.interval,
                    filter: s.filter.clone(),
                    resources: s.resources.clone(),
                    pollers: Vec::new(),
                    sinks: s.sinks.clone(),
                    routes: None,
                })
                .collect(),
        };
        Runtime {
            sources,
            sinks: self.sinks.clone(),
            routes: None,
            reusable: Reusable::default(),
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

/// What asking every loaded poller for its meters found.
#[derive(Debug, Default)]
pub struct PollerDiscovery {
    /// The meters of each poller that could be created.
    pub meters: BTreeMap<String, Vec<String>>,
    /// Pollers whose `create` (or `meters`) failed, with the reason (naming the library).
    pub failed: Vec<(String, String)>,
}

/// Creates one instance of each loaded poller, with its parameters, and asks it for its
/// meters. A poller that fails (an error, a panic, or a crash of its worker) is left
/// out with one error line and recorded as failed (`ceilo plugins`, `/metrics`).
pub fn discover_pollers(registry: &PluginRegistry, params: &PluginParams) -> PollerDiscovery {
    let mut out = PollerDiscovery::default();
    for name in registry.names(PluginKind::Poller) {
        let meters = registry
            .create_poller(
                &name,
                &params.of(PluginKind::Poller, &name),
                Context::new(name.as_str(), "meter discovery"),
            )
            .map_err(|e| e.to_string())
            .and_then(|mut p| p.meters().map_err(|e| e.to_string()));
        match meters {
            Ok(m) => {
                out.meters.insert(name, m);
            }
            Err(e) => {
                let reason = crate::redact::shorten(&e, 500);
                // One given parameters is an error in that file, which the caller
                // reports; the others are left out here.
                if !params.configured(PluginKind::Poller, &name) {
                    tracing::error!(target: "ceilo::pipeline", plugin = %name, "poller `{name}` left out: {reason}");
                    crate::metrics::global().plugin_failed("poller", &name, &reason);
                }
                out.failed.push((name, reason));
            }
        }
    }
    out
}

/// The meters each loaded poller produces, with no parameters; see [`discover_pollers`].
pub fn poller_meters(registry: &PluginRegistry) -> BTreeMap<String, Vec<String>> {
    discover_pollers(registry, &PluginParams::default()).meters
}

/// The meters each usable notification handler declares (empty: not known).
pub fn handler_meters(
    registry: &PluginRegistry,
    params: &PluginParams,
) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    for name in registry.names(PluginKind::Notification) {
        let meters = registry
            .create_notification(
                &name,
                &params.of(PluginKind::Notification, &name),
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
    wire_reusing(
        config,
        registry,
        meters,
        mode,
        host,
        with_pollers,
        &Reusable::default(),
    )
    .map(|(runtime, _)| runtime)
}

/// As [`wire`], taking over from `previous` every part whose definition and plugin
/// code did not change (see [`Reusable`]).
pub fn wire_reusing(
    config: &PipelineConfig,
    registry: &PluginRegistry,
    meters: &BTreeMap<String, Vec<String>>,
    mode: OutputMode,
    host: &HostSettings,
    with_pollers: bool,
    previous: &Reusable,
) -> Result<(Runtime, Reused), WiringError> {
    let context = |plugin: &str, instance: String| {
        Context::new(plugin, instance)
            .with_data_dir(host.data_dir.clone())
            .with_telemetry_secret(host.telemetry_secret.clone())
    };
    let mut previous = previous.clone();
    let mut reusable = Reusable::default();
    let mut reused = Reused::default();
    let mut sinks: BTreeMap<String, Arc<Mutex<Sink>>> = BTreeMap::new();
    let mut all_sinks = Vec::new();
    for sc in &config.sinks {
        let key = SinkKey {
            config: sc.clone(),
            stamps: sc
                .transformers
                .iter()
                .map(|t| registry.stamp(PluginKind::Transformer, &t.name))
                .chain(
                    sc.publishers
                        .iter()
                        .map(|p| registry.stamp(PluginKind::Publisher, &p.scheme)),
                )
                .collect(),
            stdout: mode == OutputMode::Stdout,
        };
        if let Some(sink) = Reusable::take(&mut previous.sinks, &key) {
            reused.sinks += 1;
            // Handed on by position only when none was left out at its creation.
            if let Ok(s) = sink.lock().map(|s| s.outputs().to_vec()) {
                let aligned = s.len() == sc.publishers.len();
                for (o, p) in s.iter().zip(&sc.publishers).filter(|_| aligned) {
                    reusable.outputs.push((
                        OutputKey {
                            sink: sc.name.clone(),
                            url: p.url.clone(),
                            stamp: registry.stamp(PluginKind::Publisher, &p.scheme),
                        },
                        o.clone(),
                    ));
                }
            }
            reusable.sinks.push((key, sink.clone()));
            sinks.insert(sc.name.clone(), sink.clone());
            all_sinks.push(sink);
            continue;
        }
        let mut transformers = Vec::new();
        let mut broken_sink = false;
        for (i, t) in sc.transformers.iter().enumerate() {
            let instance = format!("sink {}, transformer {} ({})", sc.name, i + 1, t.name);
            match registry.create_transformer(
                &t.name,
                &t.parameters,
                context(&t.name, instance.clone()),
            ) {
                Ok(tr) => transformers.push(tr),
                Err(error) => {
                    // A sink without one of its transformers would publish the wrong
                    // data: the whole sink is left out.
                    let e = WiringError {
                        context: instance,
                        error: error.into(),
                    };
                    left_out(host, PluginKind::Transformer, &t.name, &e)?;
                    broken_sink = true;
                    break;
                }
            }
        }
        if broken_sink {
            tracing::error!(target: "ceilo::pipeline", sink = %sc.name, "sink `{}` is left out: one of its transformers could not be created", sc.name);
            continue;
        }
        reused.new_sinks += 1;
        let mut outputs: Vec<SharedOutput> = Vec::new();
        match mode {
            OutputMode::Stdout => outputs.push(SharedOutput::new(Box::new(StdoutOutput))),
            OutputMode::Publishers => {
                for (i, p) in sc.publishers.iter().enumerate() {
                    let output_key = OutputKey {
                        sink: sc.name.clone(),
                        url: p.url.clone(),
                        stamp: registry.stamp(PluginKind::Publisher, &p.scheme),
                    };
                    if let Some(o) = Reusable::take(&mut previous.outputs, &output_key) {
                        reused.outputs += 1;
                        reusable.outputs.push((output_key, o.clone()));
                        outputs.push(o);
                        continue;
                    }
                    let instance = format!(
                        "sink {}, publisher {} ({})",
                        sc.name,
                        i + 1,
                        crate::redact::mask_url(&p.url)
                    );
                    let created: Box<dyn Output> = if p.scheme == DIRECT_SCHEME {
                        let Some(store) = host.storage.clone() else {
                            return Err(WiringError {
                                context: instance,
                                error: WiringCause::Host(
                                    "direct:// writes to the host's store, and none is open in this command (use `ceilo run`, or give `ceilo agent` --storage)".into(),
                                ),
                            });
                        };
                        Box::new(DirectOutput::new(store))
                    } else {
                        match registry.create_publisher(
                            &p.scheme,
                            &serde_json::json!({ "url": p.url }),
                            context(&p.scheme, instance.clone()),
                        ) {
                            Ok(publisher) => Box::new(PluginOutput {
                                url: p.url.clone(),
                                publisher,
                            }),
                            Err(error) => {
                                let e = WiringError {
                                    context: instance,
                                    error: error.into(),
                                };
                                left_out(host, PluginKind::Publisher, &p.scheme, &e)?;
                                continue;
                            }
                        }
                    };
                    let shared = SharedOutput::new(created);
                    reusable.outputs.push((output_key, shared.clone()));
                    outputs.push(shared);
                }
            }
        }
        let sink = Arc::new(Mutex::new(Sink::new(
            sc.name.clone(),
            transformers,
            outputs,
        )));
        if mode == OutputMode::Publishers {
            reusable.sinks.push((key, sink.clone()));
        }
        sinks.insert(sc.name.clone(), sink.clone());
        all_sinks.push(sink);
    }

    let sinks_of = |names: &[String]| -> Vec<Arc<Mutex<Sink>>> {
        names.iter().filter_map(|s| sinks.get(s).cloned()).collect()
    };
    let polling = config.polling.as_ref().filter(|_| with_pollers);
    let routes = polling.map(|_| {
        Arc::new(
            config
                .sources
                .iter()
                .map(|src| Route {
                    source: src.name.clone(),
                    filter: src.meters.clone(),
                    sinks: sinks_of(&src.sinks),
                })
                .collect::<Vec<_>>(),
        )
    });
    // What is polled: polling.yaml's sources when given, else the pipeline's.
    let polled: Vec<PollingSource> = match polling {
        Some(p) => p.sources.clone(),
        None => config.sources.iter().map(SourceConfig::polling).collect(),
    };
    let mut sources = Vec::new();
    for (i, polled) in polled.into_iter().enumerate() {
        let (name, filter) = (polled.name.as_str(), &polled.meters);
        let mut pollers = Vec::new();
        let mut produced_here: Vec<&str> = Vec::new();
        for (poller, produced) in meters.iter().filter(|_| with_pollers) {
            if !produced.iter().any(|m| filter.allows(m)) {
                continue;
            }
            produced_here.extend(
                produced
                    .iter()
                    .map(String::as_str)
                    .filter(|m| filter.allows(m)),
            );
            let params = config.plugins.of(PluginKind::Poller, poller);
            let poller_key = PollerKey {
                source: name.to_owned(),
                resources: polled.resources.clone(),
                params: params.clone(),
                stamp: registry.stamp(PluginKind::Poller, poller),
            };
            if let Some(instance) = Reusable::take(&mut previous.pollers, &poller_key) {
                reused.pollers += 1;
                reusable.pollers.push((poller_key, instance.clone()));
                pollers.push(PollerSlot {
                    name: poller.clone(),
                    instance,
                });
                continue;
            }
            let instance = format!("source {name}, poller {poller}");
            let p = match registry.create_poller(poller, &params, context(poller, instance.clone()))
            {
                Ok(p) => p,
                Err(error) => {
                    let e = WiringError {
                        context: instance,
                        error: error.into(),
                    };
                    left_out(host, PluginKind::Poller, poller, &e)?;
                    continue;
                }
            };
            let instance = Arc::new(Mutex::new(p));
            reusable.pollers.push((poller_key, instance.clone()));
            pollers.push(PollerSlot {
                name: poller.clone(),
                instance,
            });
        }
        let (source_sinks, source_routes) = match &routes {
            None => (sinks_of(&config.sources[i].sinks), None),
            Some(all) => {
                // Only the routes this source's meters can take: each cycle flushes
                // just the sinks its samples may have reached.
                let mine: Vec<Route> = all
                    .iter()
                    .filter(|r| produced_here.iter().any(|m| r.filter.allows(m)))
                    .map(|r| Route {
                        source: r.source.clone(),
                        filter: r.filter.clone(),
                        sinks: r.sinks.clone(),
                    })
                    .collect();
                let mut union: Vec<Arc<Mutex<Sink>>> = Vec::new();
                for sink in mine.iter().flat_map(|r| &r.sinks) {
                    if !union.iter().any(|s| Arc::ptr_eq(s, sink)) {
                        union.push(sink.clone());
                    }
                }
                (union, Some(Arc::new(mine)))
            }
        };
        sources.push(SourceRuntime {
            name: polled.name.clone(),
            interval: polled.interval,
            filter: polled.meters.clone(),
            resources: polled.resources,
            pollers,
            sinks: source_sinks,
            routes: source_routes,
        });
    }
    Ok((
        Runtime {
            sources,
            sinks: all_sinks,
            routes,
            reusable,
        },
        reused,
    ))
}

/// A plugin that could not be created: an error in strict mode; otherwise one error
/// line, recorded as failed, and the rest goes on.
fn left_out(
    host: &HostSettings,
    kind: PluginKind,
    name: &str,
    e: &WiringError,
) -> Result<(), WiringError> {
    if host.strict {
        return Err(WiringError {
            context: e.context.clone(),
            error: WiringCause::Host(format!(
                "{} (--strict: refusing to start)",
                crate::redact::shorten(&e.error.to_string(), 500)
            )),
        });
    }
    let reason = crate::redact::shorten(&e.to_string(), 500);
    tracing::error!(target: "ceilo::pipeline", plugin = %name, "{kind} `{name}` left out: {reason}");
    crate::metrics::global().plugin_failed(kind.as_str(), name, &reason);
    Ok(())
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
