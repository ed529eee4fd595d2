//! `ceilo collector` (RabbitMQ → store) and `ceilo run` (everything in one process on
//! embedded defaults).

use std::io::Write;
use std::path::PathBuf;

use super::pipeline_cmds::{
    load_with, new_runtime, notification_handlers, open_store, run_until_signal, settings,
    uses_direct, PipelineArgs, PipelineCommandError, StorageArgs,
};
use crate::pipeline::{self, OutputMode};
use crate::services::{collector, event_collector, notification, retention};

/// The pipeline `ceilo run` uses when `--pipeline` is left at its default and there is
/// no `pipeline.yaml` in the working directory: the repository's own.
pub const DEFAULT_PIPELINE: &str = include_str!("../../../pipeline.yaml");

/// How long `ceilo collector` may take to stop (it runs no plugins).
const DEFAULT_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(10);

/// Options of `ceilo collector`.
#[derive(Debug, Clone, clap::Args)]
pub struct CollectorArgs {
    /// The broker, e.g. amqp://user:pass@host:5672/%2f (the password is never shown).
    #[arg(long, env = "CEILO_AMQP_URL", hide_env_values = true)]
    pub amqp_url: String,
    /// The exchange samples are published to.
    #[arg(long, default_value = ceilo_plugin_api::topology::METERING_EXCHANGE)]
    pub exchange: String,
    /// The routing key binding the queue to the exchange.
    #[arg(long, default_value = ceilo_plugin_api::topology::METERING_ROUTING_KEY)]
    pub routing_key: String,
    /// The queue to consume (shared by every collector: they split the load).
    #[arg(long, default_value = ceilo_plugin_api::topology::METERING_QUEUE)]
    pub queue: String,
    /// Messages in flight per collector (unacked until stored); a batch holds up to half.
    #[arg(long, default_value_t = 256)]
    pub prefetch: u16,
    /// Secret the samples are signed with (empty: signatures are not checked).
    #[arg(
        long,
        env = "CEILO_TELEMETRY_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    pub telemetry_secret: String,
    /// Where the embedded store lives (when --storage is not given).
    #[arg(long, env = "CEILO_DATA_DIR", default_value = "ceilo-data")]
    pub data_dir: PathBuf,
    /// The queue events arrive on (bound to exchange `ceilometer` with this routing
    /// key, as Ceilometer's event notifier sends them); `none` stores no events.
    #[arg(long, default_value = "event.sample")]
    pub event_queue: String,
    #[command(flatten)]
    pub storage: StorageArgs,
}

/// `ceilo collector`: stores what arrives on `metering.sample` until SIGINT/SIGTERM.
pub fn collector_command(args: &CollectorArgs) -> Result<(), PipelineCommandError> {
    let rt = new_runtime()?;
    let handle = open_store(&rt, &args.storage, &args.data_dir)?;
    let store = handle.store;
    let settings = collector::CollectorSettings {
        amqp_url: args.amqp_url.clone(),
        prefetch: args.prefetch.max(1),
        telemetry_secret: args.telemetry_secret.clone(),
        exchange: args.exchange.clone(),
        routing_key: args.routing_key.clone(),
        queue: args.queue.clone(),
    };
    let events = (args.event_queue != "none").then(|| event_collector::EventCollectorSettings {
        amqp_url: args.amqp_url.clone(),
        prefetch: args.prefetch.max(1),
        telemetry_secret: args.telemetry_secret.clone(),
        queue: args.event_queue.clone(),
    });
    run_until_signal(rt, DEFAULT_SHUTDOWN, move |stop| async move {
        let sweeper = tokio::spawn(retention::run(store.clone(), stop.clone()));
        let event_side =
            events.map(|e| tokio::spawn(event_collector::run(e, store.clone(), stop.clone())));
        collector::run(settings, store, stop).await;
        if let Some(e) = event_side {
            let _ = e.await;
        }
        let _ = sweeper.await;
    });
    Ok(())
}

/// Options of `ceilo run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Also consume OpenStack notifications from this broker (off when not given).
    #[arg(long, env = "CEILO_AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,
    /// Events of the notifications consumed (with --amqp-url).
    #[command(flatten)]
    pub events: super::EventArgs,
    #[command(flatten)]
    pub api: super::ApiArgs,
}

/// `ceilo run`: the polling agent, the notification agent (with `--amqp-url`) and the
/// store, in one process, until SIGINT/SIGTERM.
pub fn run_command(args: &RunArgs, out: &mut dyn Write) -> Result<(), PipelineCommandError> {
    let p = &args.pipeline;
    let builtin = !p.pipeline.exists();
    let l = load_with(p, Some(DEFAULT_PIPELINE))?;
    let (auth, auth_text) = args.api.auth(true)?;
    let rt = new_runtime()?;
    let mut host = settings(p);
    let handle = open_store(&rt, &p.storage, &p.data_dir)?;
    let server_options = args.api.server_options()?;
    let listener = super::api_cmds::bind(&rt, args.api.listen)?;
    let exporter = p
        .live
        .prometheus_listen
        .map(|addr| super::api_cmds::bind(&rt, addr))
        .transpose()?;

    host.storage = Some(handle.clone());
    let agent = pipeline::wire(
        &l.config,
        &l.registry,
        &l.meters,
        OutputMode::Publishers,
        &host,
        true,
    )?;
    // POSTed samples go through the agent's own sinks (the same transformer state
    // and publisher instances, never a second writer on the same files).
    let ingress = std::sync::Arc::new(std::sync::Mutex::new(agent.sharing_sinks()));
    let auth = std::sync::Arc::new(crate::api::SharedAuth::new(auth));
    let tokens = args.api.tokens_reload(p, auth.clone());
    let api_state = crate::api::ApiState {
        store: handle.store.clone(),
        auth,
        pipeline: Some(ingress.clone()),
        deployment: args.api.deployment(),
    };
    let event_config = args.events.pipeline_config()?;
    if event_config.is_some() && args.amqp_url.is_none() {
        return Err(PipelineCommandError::Api(
            "--event-pipeline makes events of notifications: give --amqp-url (or CEILO_AMQP_URL) to consume them".into(),
        ));
    }
    let events = args.events.event_work(
        event_config.as_ref(),
        &l.registry,
        &crate::events::EventHost {
            data_dir: p.data_dir.clone(),
            store: host.storage.clone(),
            runtime: rt.handle().clone(),
            amqp_url: args.amqp_url.clone(),
            telemetry_secret: p.telemetry_secret.clone(),
        },
    )?;
    let notifications = match &args.amqp_url {
        Some(url) => {
            let handlers = notification_handlers(&l, &host);
            let runtime = pipeline::wire(
                &l.config,
                &l.registry,
                &l.meters,
                OutputMode::Publishers,
                &host,
                false,
            )?;
            let settings = notification::NotificationSettings {
                amqp_url: url.clone(),
                exchanges: "nova,glance,neutron,cinder,heat,keystone,swift,ironic,openstack"
                    .split(',')
                    .map(str::to_owned)
                    .collect(),
                topic: "notifications.info".into(),
                prefetch: 64,
            };
            Some((settings, handlers, runtime))
        }
        None => None,
    };

    writeln!(out, "ceilo {} running", env!("CARGO_PKG_VERSION"))?;
    writeln!(
        out,
        "  plugins:       {} from {}",
        l.registry.plugins().count(),
        l.registry.dir().display()
    )?;
    writeln!(
        out,
        "  pipeline:      {}",
        if builtin {
            format!("built-in default ({} not found)", p.pipeline.display())
        } else {
            p.pipeline.display().to_string()
        }
    )?;
    for line in agent.describe() {
        writeln!(out, "    {line}")?;
    }
    writeln!(out, "  samples go to: {}", handle.store.describe())?;
    if !uses_direct(&l.config) {
        writeln!(
            out,
            "                 (no sink publishes direct://, so nothing is stored by this process)"
        )?;
    }
    writeln!(out, "  files under:   {}", host.data_dir.display())?;
    writeln!(
        out,
        "  HTTP API:      {}://{} (authentication: {auth_text})",
        args.api.scheme(),
        args.api.listen
    )?;
    if let Some(addr) = p.live.prometheus_listen {
        writeln!(
            out,
            "  Prometheus:    http://{addr}/metrics (polled meters and ceilo's own)"
        )?;
    }
    writeln!(
        out,
        "  notifications: {}",
        match &notifications {
            Some((s, h, _)) => format!(
                "{} handler(s) on {}",
                h.len(),
                crate::redact::mask_url(&s.amqp_url)
            ),
            None =>
                "off (give --amqp-url or CEILO_AMQP_URL to consume OpenStack notifications)".into(),
        }
    )?;
    writeln!(
        out,
        "  events:        {}",
        match &event_config {
            Some(c) => format!("by {}", c.file.display()),
            None => "off (give --event-pipeline to make events of notifications)".into(),
        }
    )?;
    out.flush()?;

    let store = handle.store;
    let agent_settings = p.bounds.agent();
    let live = super::reload::Live::new(
        p,
        Some(DEFAULT_PIPELINE),
        &host,
        "run",
        &l.registry,
        Some(&agent),
        notifications.as_ref().map(|(_, _, r)| r),
    );
    let (settle, watch_files) = (p.live.settle(), !p.live.no_watch);
    run_until_signal(rt, p.bounds.shutdown(), move |stop| async move {
        let mut tasks = tokio::task::JoinSet::new();
        let (agent_swaps, agent_swapped) = tokio::sync::mpsc::channel(1);
        let (notification_swaps, notification_swapped) = tokio::sync::mpsc::channel(1);
        let targets = super::reload::Targets {
            agent: Some(agent_swaps),
            ingress: Some(ingress),
            notification: notifications.as_ref().map(|_| notification_swaps),
        };
        tasks.spawn(super::reload::reload_service(
            live,
            targets,
            settle,
            watch_files,
            stop.clone(),
        ));
        if let Some(t) = tokens {
            tasks.spawn(t.run(stop.clone()));
        }
        tasks.spawn(retention::run(store, stop.clone()));
        tasks.spawn(crate::services::agent::run_live(
            agent,
            agent_settings,
            stop.clone(),
            Some(agent_swapped),
        ));
        if let Some(l) = exporter {
            tasks.spawn(crate::api::serve_exporter(l, stop.clone()));
        }
        let api_stop = stop.clone();
        tasks.spawn(async move {
            if let Err(e) = crate::api::serve(listener, api_state, server_options, api_stop).await {
                tracing::error!(target: "ceilo::api", "the API stopped: {e}");
            }
        });
        if let Some((settings, handlers, runtime)) = notifications {
            tasks.spawn(notification::run(
                settings,
                handlers,
                runtime,
                events,
                stop.clone(),
                Some(notification_swapped),
            ));
        }
        while tasks.join_next().await.is_some() {}
    });
    Ok(())
}
