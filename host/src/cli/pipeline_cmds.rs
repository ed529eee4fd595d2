//! `ceilo validate`, `ceilo poll --once` and `ceilo agent`.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::loader::PluginRegistry;
use crate::pipeline::{
    self, Catalog, ConfigErrors, HostSettings, OutputMode, PipelineConfig, Runtime,
};
use crate::plugin_dir;
use crate::storage::{Retention, StorageError};

/// Options shared by the commands that run a pipeline.
#[derive(Debug, Clone, clap::Args)]
pub struct PipelineArgs {
    /// The pipeline definition.
    #[arg(long, env = "CEILO_PIPELINE", default_value = "pipeline.yaml")]
    pub pipeline: PathBuf,
    /// What to poll, how often and for which resources, in Ceilometer's polling.yaml
    /// format; the pipeline's sources then only route (default: the pipeline's sources
    /// poll, as in Ceilometer before Pike).
    #[arg(long, env = "CEILO_POLLING")]
    pub polling: Option<PathBuf>,
    /// Directory to scan for plugin libraries (*.so).
    #[arg(long, env = "CEILO_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,
    /// Where plugins keep their files (relative `file:` publisher paths land here).
    #[arg(long, env = "CEILO_DATA_DIR", default_value = "ceilo-data")]
    pub data_dir: PathBuf,
    /// Parameters of pollers and notification handlers: a YAML file with sections
    /// `pollers:` and `notification_handlers:`, each mapping plugin names to their
    /// parameters (e.g. `pollers: {http: {urls: [http://localhost/]}}`).
    #[arg(long, env = "CEILO_PLUGIN_CONFIG")]
    pub plugin_config: Option<PathBuf>,
    /// Parameters for notification handlers alone, in the older flat form: handler
    /// name to its parameters (e.g. `declarative: {definitions_file: meters.yaml}`).
    /// Merged with --plugin-config.
    #[arg(long, env = "CEILO_HANDLER_CONFIG")]
    pub handler_config: Option<PathBuf>,
    /// Which notification handlers run, as a source's meters are chosen: names or
    /// patterns, comma-separated (`compute`, or `!declarative` for all but it; default:
    /// all that are loaded).
    #[arg(long, env = "CEILO_HANDLERS", value_delimiter = ',')]
    pub handlers: Vec<String>,
    /// Secret for signing published samples (empty: unsigned).
    #[arg(
        long,
        env = "CEILO_TELEMETRY_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub telemetry_secret: String,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub isolation: super::IsolationArgs,
    #[command(flatten)]
    pub bounds: super::BoundsArgs,
    #[command(flatten)]
    pub live: super::LiveArgs,
}

/// Where samples are stored (the collector, `direct://`, the API).
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// The store: mongodb://host:port/dbname, or sqlite:///path/file.db (default: the
    /// embedded store, <data-dir>/ceilo.db). The password is never shown.
    #[arg(long = "storage", env = "CEILO_STORAGE_URL", hide_env_values = true)]
    pub url: Option<String>,
    /// How long samples are kept, e.g. 30d, 12h (default: none, keep everything).
    /// Changing it takes effect at the next start.
    #[arg(long, env = "CEILO_RETENTION", default_value = "none", value_parser = parse_retention_arg)]
    pub retention: Retention,
}

fn parse_retention_arg(text: &str) -> Result<Retention, String> {
    crate::storage::parse_retention(text)
}

/// Why a pipeline command failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineCommandError {
    /// The plugin directory could not be read.
    #[error(transparent)]
    Scan(#[from] crate::loader::ScanError),
    /// The configuration is invalid.
    #[error("{0}")]
    Config(ConfigErrors),
    /// The handler configuration is invalid.
    #[error("{0}")]
    HandlerConfig(String),
    /// A plugin instance could not be created.
    #[error(transparent)]
    Wiring(#[from] pipeline::WiringError),
    /// Output failed.
    #[error("cannot write output: {0}")]
    Io(#[from] std::io::Error),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// The store could not be opened.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The API options are not usable.
    #[error("{0}")]
    Api(String),
    /// An event pipeline's output could not be opened.
    #[error(transparent)]
    EventWiring(#[from] crate::events::EventWiringError),
    /// An event definitions file holds definitions that cannot be used.
    #[error("{}", definition_errors(.0))]
    EventDefinitions(Vec<crate::events::DefinitionError>),
    /// Plugins could not be created (`ceilo validate`, or a service with `--strict`).
    #[error("{}", failed_list(.0))]
    PluginsFailed(Vec<(String, String)>),
}

fn definition_errors(errors: &[crate::events::DefinitionError]) -> String {
    let n = errors.len();
    let mut out = format!(
        "{n} event definition{} cannot be used:",
        if n == 1 { "" } else { "s" }
    );
    for e in errors {
        out.push_str(&format!("\n  {e}"));
    }
    out
}

/// `ceilo validate --event-definitions FILE`: loads the file, with the trait plugins
/// of `args`' plugin directory, and reports it.
pub fn validate_event_definitions(
    file: &std::path::Path,
    args: &PipelineArgs,
    out: &mut dyn Write,
) -> Result<(), PipelineCommandError> {
    let mut dir = plugin_dir::resolve(args.plugin_dir.as_deref());
    dir.options.isolation = Some(args.isolation.policy());
    let registry = PluginRegistry::scan(&dir.path, &dir.options)?;
    let loaded = crate::events::load_with_plugins(file, &registry)
        .map_err(|e| PipelineCommandError::EventDefinitions(vec![e]))?;
    if !loaded.errors.is_empty() {
        return Err(PipelineCommandError::EventDefinitions(loaded.errors));
    }
    writeln!(
        out,
        "{} is valid: {} event definition(s)",
        file.display(),
        loaded.definitions.len()
    )?;
    Ok(())
}

/// `ceilo validate --event-pipeline FILE`: loads the file and prints its routes.
pub fn validate_event_pipeline(
    file: &std::path::Path,
    out: &mut dyn Write,
) -> Result<(), PipelineCommandError> {
    let config =
        crate::pipeline::load_event_pipeline(file).map_err(PipelineCommandError::Config)?;
    writeln!(out, "{} is valid:", file.display())?;
    for s in &config.sources {
        writeln!(
            out,
            "  event source `{}` ({}) → {}",
            s.name,
            s.events.patterns().join(", "),
            s.sinks.join(", ")
        )?;
    }
    for s in &config.sinks {
        let urls: Vec<String> = s
            .publishers
            .iter()
            .map(|p| crate::redact::mask_url(&p.url))
            .collect();
        writeln!(out, "  event sink `{}` → {}", s.name, urls.join(", "))?;
    }
    Ok(())
}

fn failed_list(failed: &[(String, String)]) -> String {
    let lines: Vec<String> = failed
        .iter()
        .map(|(name, reason)| format!("  poller `{name}`: {reason}"))
        .collect();
    format!(
        "{} plugin(s) cannot be created; the services leave them out (with --strict they refuse to start):\n{}",
        failed.len(),
        lines.join("\n")
    )
}

pub(super) struct Loaded {
    pub(super) registry: PluginRegistry,
    pub(super) config: PipelineConfig,
    pub(super) meters: std::collections::BTreeMap<String, Vec<String>>,
    /// The notification handlers `--handlers` selects, by name.
    pub(super) handlers: Vec<String>,
    /// Pollers left out because they could not be created, with the reason.
    pub(super) failed_pollers: Vec<(String, String)>,
}

pub(super) fn load(args: &PipelineArgs) -> Result<Loaded, PipelineCommandError> {
    load_with(args, None)
}

/// Loads plugins and the pipeline; `builtin` is the text to use when the pipeline file
/// is the default one and does not exist (`ceilo run`).
pub(super) fn load_with(
    args: &PipelineArgs,
    builtin: Option<&str>,
) -> Result<Loaded, PipelineCommandError> {
    let mut dir = plugin_dir::resolve(args.plugin_dir.as_deref());
    dir.options.isolation = Some(args.isolation.policy());
    let registry = PluginRegistry::scan(&dir.path, &dir.options)?;
    load_from(args, registry, builtin)
}

/// Validates every configuration file against the plugins of `registry`: at start,
/// and for a reload (which applies only what passes).
pub(super) fn load_from(
    args: &PipelineArgs,
    registry: PluginRegistry,
    builtin: Option<&str>,
) -> Result<Loaded, PipelineCommandError> {
    let plugins = pipeline::load_plugin_params(
        args.plugin_config.as_deref(),
        args.handler_config.as_deref(),
        &registry,
    )
    .map_err(PipelineCommandError::Config)?;
    let discovery = pipeline::discover_pollers(&registry, &plugins);
    // A poller given parameters that it refuses is a mistake in that file.
    let refused: Vec<pipeline::ConfigError> = discovery
        .failed
        .iter()
        .filter(|(name, _)| plugins.configured(crate::loader::PluginKind::Poller, name))
        .map(|(name, reason)| {
            plugins.error(
                crate::loader::PluginKind::Poller,
                name,
                format!("cannot be created with these parameters: {reason}"),
            )
        })
        .collect();
    if !refused.is_empty() {
        return Err(PipelineCommandError::Config(pipeline::ConfigErrors(
            refused,
        )));
    }
    if args.bounds.strict && !discovery.failed.is_empty() {
        return Err(PipelineCommandError::PluginsFailed(discovery.failed));
    }
    let meters = discovery.meters;
    let handlers = selected_handlers(args, &registry)?;
    let mut handler_meters = pipeline::handler_meters(&registry, &plugins);
    handler_meters.retain(|name, _| handlers.contains(name));
    let catalog = Catalog {
        registry: &registry,
        poller_meters: &meters,
        handler_meters: &handler_meters,
        pollers_failed: !discovery.failed.is_empty(),
    };
    let parsed = match builtin {
        Some(text) if !args.pipeline.exists() => pipeline::parse(&args.pipeline, text, &catalog),
        _ => pipeline::load(&args.pipeline, &catalog),
    };
    let polling = args
        .polling
        .as_deref()
        .map(|file| pipeline::load_polling(file, &catalog))
        .transpose();
    // Both files' errors in one report.
    let (mut config, polling) = match (parsed, polling) {
        (Ok(c), Ok(p)) => (c, p),
        (c, p) => {
            let mut all = Vec::new();
            all.extend(c.err().map(|e| e.0).unwrap_or_default());
            all.extend(p.err().map(|e| e.0).unwrap_or_default());
            return Err(PipelineCommandError::Config(pipeline::ConfigErrors(all)));
        }
    };
    if let Some(p) = polling {
        config.warnings.extend(p.warnings.iter().cloned());
        config.polling = Some(p);
    }
    config.plugins = plugins;
    if args.bounds.strict && !config.warnings.is_empty() {
        return Err(PipelineCommandError::Config(pipeline::ConfigErrors(
            config.warnings,
        )));
    }
    for w in &config.warnings {
        tracing::warn!(target: "ceilo::pipeline", "{w}");
    }
    Ok(Loaded {
        registry,
        config,
        handlers,
        meters,
        failed_pollers: discovery.failed,
    })
}

/// The handlers `--handlers` selects (every loaded one when it is not given); a name
/// that matches no loaded handler is an error that lists them.
fn selected_handlers(
    args: &PipelineArgs,
    registry: &PluginRegistry,
) -> Result<Vec<String>, PipelineCommandError> {
    let loaded = registry.names(crate::loader::PluginKind::Notification);
    let patterns: Vec<String> = args
        .handlers
        .iter()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    if patterns.is_empty() {
        return Ok(loaded);
    }
    let bad = |m: String| PipelineCommandError::HandlerConfig(format!("--handlers: {m}"));
    let filter =
        pipeline::MeterFilter::new(&patterns).map_err(|e| bad(e.replace("meters", "handlers")))?;
    for name in filter.literal_meters() {
        if !loaded.iter().any(|l| l == name) {
            let guess = crate::loader::closest(name, &loaded)
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            return Err(bad(format!(
                "no notification handler named `{name}` is loaded ({guess}loaded: {})",
                loaded.join(", ")
            )));
        }
    }
    Ok(loaded.into_iter().filter(|n| filter.allows(n)).collect())
}

pub(super) fn settings(args: &PipelineArgs) -> HostSettings {
    HostSettings {
        data_dir: absolute(&args.data_dir),
        telemetry_secret: args.telemetry_secret.clone(),
        storage: None,
        strict: args.bounds.strict,
    }
}

/// Whether any sink publishes `direct://`.
pub(super) fn uses_direct(config: &PipelineConfig) -> bool {
    config.sinks.iter().any(|k| {
        k.publishers
            .iter()
            .any(|p| p.scheme == pipeline::DIRECT_SCHEME)
    })
}

/// A multi-threaded tokio runtime for a service.
pub(super) fn new_runtime() -> Result<tokio::runtime::Runtime, PipelineCommandError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(PipelineCommandError::Runtime)
}

/// Opens the store `args` name on `rt` (whose handle `direct://` then uses), as a
/// writer that owns the retention policy.
pub(super) fn open_store(
    rt: &tokio::runtime::Runtime,
    storage: &StorageArgs,
    data_dir: &Path,
) -> Result<pipeline::StoreHandle, PipelineCommandError> {
    let store = rt.block_on(crate::storage::open(
        storage.url.as_deref(),
        &absolute(data_dir),
        storage.retention,
    ))?;
    Ok(pipeline::StoreHandle {
        store,
        runtime: rt.handle().clone(),
    })
}

/// Opens the store as a reader (`ceilo api`): the retention policy is the writers'.
pub(super) fn open_store_reader(
    rt: &tokio::runtime::Runtime,
    storage: &StorageArgs,
    data_dir: &Path,
) -> Result<pipeline::StoreHandle, PipelineCommandError> {
    if storage.retention.0.is_some() {
        tracing::warn!(target: "ceilo::api", "--retention is ignored by `ceilo api`: the processes that write (collector, agent, run) apply it");
    }
    let store = rt.block_on(crate::storage::open_reader(
        storage.url.as_deref(),
        &absolute(data_dir),
    ))?;
    Ok(pipeline::StoreHandle {
        store,
        runtime: rt.handle().clone(),
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

/// `ceilo validate`: exit 0 with the wiring when valid, the errors otherwise.
pub fn validate_command(
    args: &PipelineArgs,
    out: &mut dyn Write,
) -> Result<(), PipelineCommandError> {
    let l = load(args)?;
    let c = &l.config;
    writeln!(
        out,
        "{} is valid: {} source(s), {} sink(s); plugins from {}{}",
        c.file.display(),
        c.sources.len(),
        c.sinks.len(),
        l.registry.dir().display(),
        match c.warnings.len() {
            0 => String::new(),
            n => format!(" ({n} warning(s), logged above; --strict makes them errors)"),
        }
    )?;
    let pollers_for = |filter: &pipeline::MeterFilter| -> String {
        let pollers: Vec<&str> = l
            .meters
            .iter()
            .filter(|(_, m)| m.iter().any(|m| filter.allows(m)))
            .map(|(p, _)| p.as_str())
            .collect();
        if pollers.is_empty() {
            "none".into()
        } else {
            pollers.join(", ")
        }
    };
    if let Some(p) = &c.polling {
        writeln!(
            out,
            "{} is valid: {} polling source(s); the pipeline's sources route what they poll",
            p.file.display(),
            p.sources.len()
        )?;
        for s in &p.sources {
            writeln!(
                out,
                "\npolling source {} (every {}s)",
                s.name,
                s.interval.as_secs()
            )?;
            writeln!(out, "  meters:  {}", s.meters.patterns().join(", "))?;
            writeln!(out, "  pollers: {}", pollers_for(&s.meters))?;
            if !s.resources.is_empty() {
                writeln!(out, "  resources: {}", s.resources.join(", "))?;
            }
        }
    }
    for s in &c.sources {
        if c.polling.is_some() {
            writeln!(out, "\nsource {} (routes)", s.name)?;
            writeln!(out, "  meters:  {}", s.meters.patterns().join(", "))?;
        } else {
            writeln!(out, "\nsource {} (every {}s)", s.name, s.interval.as_secs())?;
            writeln!(out, "  meters:  {}", s.meters.patterns().join(", "))?;
            writeln!(out, "  pollers: {}", pollers_for(&s.meters))?;
            if !s.resources.is_empty() {
                writeln!(out, "  resources: {}", s.resources.join(", "))?;
            }
        }
        for sink_name in &s.sinks {
            let Some(sink) = c.sinks.iter().find(|k| &k.name == sink_name) else {
                continue;
            };
            let ts: Vec<&str> = sink.transformers.iter().map(|t| t.name.as_str()).collect();
            let ps: Vec<String> = sink
                .publishers
                .iter()
                .map(|p| crate::redact::mask_url(&p.url))
                .collect();
            writeln!(
                out,
                "  → sink {}: {} → {}",
                sink.name,
                if ts.is_empty() {
                    "(no transformers)".into()
                } else {
                    ts.join(" → ")
                },
                ps.join(", ")
            )?;
        }
    }
    writeln!(out)?;
    let mut handler_errors = Vec::new();
    for name in l.registry.names(crate::loader::PluginKind::Notification) {
        if !l.handlers.contains(&name) {
            writeln!(
                out,
                "notification handler {name}: not selected (--handlers)"
            )?;
            continue;
        }
        let kind = crate::loader::PluginKind::Notification;
        let configured = c.plugins.configured(kind, &name);
        let ctx = ceilo_plugin_api::Context::new(name.as_str(), "validation").validating();
        let params = c.plugins.of(kind, &name);
        match l.registry.create_notification(&name, &params, ctx) {
            Ok(_) => writeln!(out, "notification handler {name}: ok")?,
            Err(e) if configured => {
                handler_errors.push(c.plugins.error(kind, &name, e.to_string()))
            }
            Err(e) => writeln!(
                out,
                "notification handler {name}: not usable without parameters ({e})"
            )?,
        }
    }
    if !l.failed_pollers.is_empty() {
        return Err(PipelineCommandError::PluginsFailed(l.failed_pollers));
    }
    if !handler_errors.is_empty() {
        return Err(PipelineCommandError::Config(pipeline::ConfigErrors(
            handler_errors,
        )));
    }
    let unused: Vec<&str> = c
        .sinks
        .iter()
        .filter(|k| !c.sources.iter().any(|s| s.sinks.contains(&k.name)))
        .map(|k| k.name.as_str())
        .collect();
    if !unused.is_empty() {
        writeln!(
            out,
            "\nwarning: no source sends to sink(s) {}",
            unused.join(", ")
        )?;
    }
    Ok(())
}

/// `ceilo poll --once`: one cycle, samples printed as JSON lines; poll errors are
/// reported on stderr and make the exit code non-zero.
pub fn poll_once_command(args: &PipelineArgs) -> Result<usize, PipelineCommandError> {
    let l = load(args)?;
    let runtime = pipeline::wire(
        &l.config,
        &l.registry,
        &l.meters,
        OutputMode::Stdout,
        &settings(args),
        true,
    )?;
    let errors = crate::services::agent::run_once(&runtime);
    for e in &errors {
        tracing::error!(target: "ceilo::agent", "{e}");
    }
    Ok(errors.len())
}

/// `ceilo agent`: polls until SIGINT or SIGTERM, then flushes and exits; reloads on
/// SIGHUP and when its files or plugin directory change.
pub fn agent_command(args: &PipelineArgs) -> Result<(), PipelineCommandError> {
    let l = load(args)?;
    let rt = new_runtime()?;
    let mut host = settings(args);
    if uses_direct(&l.config) {
        host.storage = Some(open_store(&rt, &args.storage, &args.data_dir)?);
    }
    if host.telemetry_secret.is_empty() {
        tracing::warn!(target: "ceilo::agent", "no telemetry secret: published samples are unsigned (set --telemetry-secret or CEILO_TELEMETRY_SECRET)");
    }
    let runtime: Runtime = pipeline::wire(
        &l.config,
        &l.registry,
        &l.meters,
        OutputMode::Publishers,
        &host,
        true,
    )?;
    tracing::info!(target: "ceilo::agent", "plugins from {}; data in {}", l.registry.dir().display(), host.data_dir.display());
    for line in runtime.describe() {
        tracing::info!(target: "ceilo::agent", "{line}");
    }
    let store = host.storage.clone().map(|h| h.store);
    let agent = args.bounds.agent();
    let live = super::reload::Live::new(
        args,
        None,
        &host,
        "agent",
        &l.registry,
        Some(&runtime),
        None,
    );
    run_reloadable(rt, args, live, store, |stop| {
        let (swaps, swapped) = tokio::sync::mpsc::channel(1);
        let targets = super::reload::Targets {
            agent: Some(swaps),
            ..Default::default()
        };
        let service = crate::services::agent::run_live(runtime, agent, stop, Some(swapped));
        (targets, service)
    })?;
    tracing::info!(target: "ceilo::agent", "stopped");
    Ok(())
}

/// Runs a service that reloads (`start` gives it the stop signal and says where
/// reloads go), beside its reload task, its status server (`--status-listen`) and
/// the retention sweeper of `store`, until SIGINT or SIGTERM.
fn run_reloadable<F>(
    rt: tokio::runtime::Runtime,
    args: &PipelineArgs,
    live: super::reload::Live,
    store: Option<std::sync::Arc<dyn crate::storage::Storage>>,
    start: impl FnOnce(tokio::sync::watch::Receiver<bool>) -> (super::reload::Targets, F),
) -> Result<(), PipelineCommandError>
where
    F: std::future::Future<Output = ()>,
{
    let status = args
        .live
        .status_listen
        .map(|addr| super::api_cmds::bind(&rt, addr))
        .transpose()?;
    let exporter = args
        .live
        .prometheus_listen
        .map(|addr| super::api_cmds::bind(&rt, addr))
        .transpose()?;
    let (settle, watch_files) = (args.live.settle(), !args.live.no_watch);
    run_until_signal(rt, args.bounds.shutdown(), |stop| async move {
        let (targets, service) = start(stop.clone());
        let reloads = tokio::spawn(super::reload::reload_service(
            live,
            targets,
            settle,
            watch_files,
            stop.clone(),
        ));
        let status = status.map(|l| tokio::spawn(crate::api::serve_status(l, stop.clone())));
        let exporter = exporter.map(|l| tokio::spawn(crate::api::serve_exporter(l, stop.clone())));
        with_retention(store, stop, service).await;
        let _ = reloads.await;
        for server in status.into_iter().chain(exporter) {
            let _ = server.await;
        }
    });
    Ok(())
}

/// Runs `service`, and beside it the retention sweeper of `store` when one is open
/// (for `direct://`).
async fn with_retention(
    store: Option<std::sync::Arc<dyn crate::storage::Storage>>,
    stop: tokio::sync::watch::Receiver<bool>,
    service: impl std::future::Future<Output = ()>,
) {
    let sweeper = store.map(|s| tokio::spawn(crate::services::retention::run(s, stop)));
    service.await;
    if let Some(s) = sweeper {
        let _ = s.await;
    }
}

/// Runs a service on `rt`; its receiver turns true on SIGINT/SIGTERM. From then the
/// service has `bound` to finish (flushing what it can); past it, or on a second
/// signal, the process stops anyway: plugin calls still running are abandoned and
/// plugin workers killed, so no plugin can keep the process alive.
pub(super) fn run_until_signal<F>(
    rt: tokio::runtime::Runtime,
    bound: std::time::Duration,
    service: impl FnOnce(tokio::sync::watch::Receiver<bool>) -> F,
) where
    F: std::future::Future<Output = ()>,
{
    // Everything is wired by now: the code that did it is not needed again.
    crate::loader::release_start_up_pages();
    rt.block_on(async move {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let service = service(rx);
        tokio::pin!(service);
        tokio::select! {
            () = &mut service => return,
            () = wait_for_signal() => {}
        }
        let _ = tx.send(true);
        tokio::select! {
            () = &mut service => {}
            () = tokio::time::sleep(bound) => tracing::error!(
                target: "ceilo::agent",
                "shutdown did not finish within {:.1}s (a plugin call is still running; --shutdown-timeout): stopping anyway",
                bound.as_secs_f64()
            ),
            () = wait_for_signal() => tracing::warn!(target: "ceilo::agent", "second signal: stopping without waiting for the rest"),
        }
    });
    // Threads stuck in plugin calls are not waited for.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    crate::loader::kill_all_workers();
    crate::loader::remove_private_copies();
}

async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(target: "ceilo::agent", "cannot listen for SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!(target: "ceilo::agent", "SIGINT received"),
        _ = term => tracing::info!(target: "ceilo::agent", "SIGTERM received"),
    }
}

/// Options of `ceilo notification`.
#[derive(Debug, Clone, clap::Args)]
pub struct NotificationArgs {
    /// The broker, e.g. amqp://user:pass@host:5672/%2f (the password is never shown).
    #[arg(long, env = "CEILO_AMQP_URL", hide_env_values = true)]
    pub amqp_url: String,
    /// Control exchanges whose notifications to consume (comma-separated).
    #[arg(
        long = "exchange",
        value_delimiter = ',',
        default_value = "nova,glance,neutron,cinder,heat,keystone,swift,ironic,openstack"
    )]
    pub exchanges: Vec<String>,
    /// The notification topic (routing key).
    #[arg(long, default_value = "notifications.info")]
    pub topic: String,
    /// Messages in flight per agent.
    #[arg(long, default_value_t = 64)]
    pub prefetch: u16,
    #[command(flatten)]
    pub events: super::EventArgs,
}

/// `ceilo notification`: consumes notifications until SIGINT or SIGTERM.
pub fn notification_command(
    args: &PipelineArgs,
    n: &NotificationArgs,
) -> Result<(), PipelineCommandError> {
    use crate::services::notification::{self, NotificationSettings};
    if args.live.prometheus_listen.is_some() {
        return Err(PipelineCommandError::Api(
            "--prometheus-listen exports polled meters: give it to `ceilo agent` or `ceilo run` (this process polls nothing)".into(),
        ));
    }
    let l = load(args)?;
    let rt = new_runtime()?;
    let mut host = settings(args);
    let event_config = n.events.pipeline_config()?;
    if uses_direct(&l.config) || event_config.as_ref().is_some_and(|c| c.uses_direct()) {
        host.storage = Some(open_store(&rt, &args.storage, &args.data_dir)?);
    }
    let runtime = pipeline::wire(
        &l.config,
        &l.registry,
        &l.meters,
        OutputMode::Publishers,
        &host,
        false,
    )?;
    let events = n.events.event_work(
        event_config.as_ref(),
        &l.registry,
        &crate::events::EventHost {
            data_dir: args.data_dir.clone(),
            store: host.storage.clone(),
            runtime: rt.handle().clone(),
            amqp_url: Some(n.amqp_url.clone()),
            telemetry_secret: args.telemetry_secret.clone(),
        },
    )?;
    let handlers = notification_handlers(&l, &host);
    tracing::info!(
        target: "ceilo::notification",
        "{} notification handler(s); plugins from {}",
        handlers.len(),
        l.registry.dir().display()
    );
    let settings = NotificationSettings {
        amqp_url: n.amqp_url.clone(),
        exchanges: n.exchanges.clone(),
        topic: n.topic.clone(),
        prefetch: n.prefetch.max(1),
    };
    let store = host.storage.clone().map(|h| h.store);
    let live = super::reload::Live::new(
        args,
        None,
        &host,
        "notification",
        &l.registry,
        None,
        Some(&runtime),
    );
    run_reloadable(rt, args, live, store, |stop| {
        let (swaps, swapped) = tokio::sync::mpsc::channel(1);
        let targets = super::reload::Targets {
            notification: Some(swaps),
            ..Default::default()
        };
        let service = notification::run(settings, handlers, runtime, events, stop, Some(swapped));
        (targets, service)
    })?;
    tracing::info!(target: "ceilo::notification", "stopped");
    Ok(())
}

/// Every loaded notification handler that can be created with its parameters (the
/// others are logged and left out).
pub(super) fn notification_handlers(
    l: &Loaded,
    host: &HostSettings,
) -> Vec<crate::services::notification::Handler> {
    use crate::services::notification::Handler;
    let mut handlers = Vec::new();
    for name in &l.handlers {
        let ctx = ceilo_plugin_api::Context::new(name.as_str(), "notification agent")
            .with_data_dir(host.data_dir.clone());
        let created = l
            .registry
            .create_notification(
                name,
                &l.config
                    .plugins
                    .of(crate::loader::PluginKind::Notification, name),
                ctx,
            )
            .map_err(|e| e.to_string())
            .and_then(Handler::new);
        match created {
            Ok(h) => handlers.push(h),
            Err(e) => {
                tracing::warn!(target: "ceilo::notification", "handler `{name}` left out: {e}")
            }
        }
    }
    handlers
}
