//! Reloads of a running service (agent, notification agent, `ceilo run`): on SIGHUP or a settled change of its files or plugin
//! directory, the plugin directory is read again and every file validated in full as
//! at start; what fails is logged with file and line and counted, and the running
//! pipeline stays; what passes is wired — taking over every sink, publisher and
//! poller whose definition and plugin code did not change — and handed to the
//! service, which swaps at a cycle boundary (between two batches for notifications).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::pipeline_cmds::{load_from, notification_handlers, PipelineArgs};
use crate::live::{status, ReloadOutcome, Trigger, WatchSet, Watcher};
use crate::loader::{PluginRegistry, ScanChanges};
use crate::pipeline::{self, HostSettings, OutputMode, Reusable, Runtime};
use crate::services::{agent, notification};

/// What a reload needs: how the service was started, and what runs now.
pub(super) struct Live {
    args: PipelineArgs,
    builtin: Option<&'static str>,
    host: HostSettings,
    service: &'static str,
    registry: PluginRegistry,
    /// The polling agent's parts (none: this service polls nothing).
    agent: Option<Reusable>,
    /// The notification agent's parts (none: it consumes no notifications).
    notification: Option<Reusable>,
}

/// What a valid reload built.
struct Prepared {
    agent: Option<Runtime>,
    notification: Option<(Runtime, Vec<notification::Handler>)>,
}

/// Where a reload goes.
#[derive(Default)]
pub(super) struct Targets {
    /// The polling agent.
    pub(super) agent: Option<mpsc::Sender<agent::Swap>>,
    /// The API's POST pipeline, which shares the agent's sinks (`ceilo run`).
    pub(super) ingress: Option<Arc<Mutex<Runtime>>>,
    /// The notification agent.
    pub(super) notification: Option<mpsc::Sender<notification::Swap>>,
}

impl Live {
    /// The live state of `service`, started with `args` from `registry`, running
    /// `agent` and/or `notification`.
    pub(super) fn new(
        args: &PipelineArgs,
        builtin: Option<&'static str>,
        host: &HostSettings,
        service: &'static str,
        registry: &PluginRegistry,
        agent: Option<&Runtime>,
        notification: Option<&Runtime>,
    ) -> Live {
        status::publish(service, registry);
        Live {
            args: args.clone(),
            builtin,
            host: host.clone(),
            service,
            registry: registry.clone(),
            agent: agent.map(|r| r.reusable.clone()),
            notification: notification.map(|r| r.reusable.clone()),
        }
    }

    /// What to watch: the files given, and the plugin directory.
    fn watch_set(&self) -> WatchSet {
        let a = &self.args;
        let files: Vec<PathBuf> = [
            Some(a.pipeline.clone()),
            a.polling.clone(),
            a.plugin_config.clone(),
            a.handler_config.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        WatchSet {
            files,
            plugin_dir: Some(self.registry.dir().to_owned()),
        }
    }

    /// The new runtime, or why the configuration is refused (one line per error). The
    /// registry read here is kept either way (a library loaded stays loaded; it is
    /// used once a configuration that validates is applied).
    fn prepare(&mut self) -> Result<Prepared, Vec<String>> {
        let metrics = crate::metrics::global();
        let failed_before = metrics.take_failed_plugins();
        let (registry, changes) = match self.registry.rescan() {
            Ok(r) => r,
            Err(e) => {
                metrics.restore_failed_plugins(failed_before);
                return Err(vec![e.to_string()]);
            }
        };
        log_changes(&changes);
        // Kept whether or not the configuration passes: a library loaded stays loaded.
        self.registry = registry.clone();
        let loaded = match load_from(&self.args, registry, self.builtin) {
            Ok(l) => l,
            Err(e) => {
                metrics.restore_failed_plugins(failed_before);
                return Err(errors_of(e));
            }
        };
        let wire = |previous: &Reusable, with_pollers: bool| {
            pipeline::wire_reusing(
                &loaded.config,
                &loaded.registry,
                &loaded.meters,
                OutputMode::Publishers,
                &self.host,
                with_pollers,
                previous,
            )
            .map_err(|e| vec![e.to_string()])
        };
        let built = (|| {
            let agent = self.agent.as_ref().map(|r| wire(r, true)).transpose()?;
            let notification = self
                .notification
                .as_ref()
                .map(|r| wire(r, false))
                .transpose()?;
            Ok::<_, Vec<String>>((agent, notification))
        })();
        let (agent, notification) = match built {
            Ok(b) => b,
            Err(e) => {
                metrics.restore_failed_plugins(failed_before);
                return Err(e);
            }
        };
        for (runtime, reused) in agent.iter().chain(notification.iter()) {
            self.log_reused(reused);
            let _ = runtime;
        }
        if let Some((runtime, _)) = &agent {
            self.agent = Some(runtime.reusable.clone());
        }
        if let Some((runtime, _)) = &notification {
            self.notification = Some(runtime.reusable.clone());
        }
        let handlers = notification
            .is_some()
            .then(|| notification_handlers(&loaded, &self.host));
        Ok(Prepared {
            agent: agent.map(|(r, _)| r),
            notification: notification.map(|(r, _)| r).zip(handlers),
        })
    }

    fn log_reused(&self, reused: &pipeline::Reused) {
        tracing::info!(
            target: "ceilo::reload",
            service = self.service,
            "new configuration valid: {} sink(s) kept with their state, {} built anew, {} publisher(s) handed on, {} poller(s) kept",
            reused.sinks,
            reused.new_sinks,
            reused.outputs,
            reused.pollers
        );
    }
}

/// One line per error (a configuration error each with its file and line).
fn errors_of(e: super::PipelineCommandError) -> Vec<String> {
    match e {
        super::PipelineCommandError::Config(errors) => {
            errors.0.iter().map(ToString::to_string).collect()
        }
        other => vec![other.to_string()],
    }
}

fn log_changes(c: &ScanChanges) {
    for p in &c.added {
        tracing::info!(target: "ceilo::reload", library = %p.display(), "new plugin library loaded");
    }
    for p in &c.replaced {
        tracing::info!(target: "ceilo::reload", library = %p.display(), "plugin library replaced: loaded as a new generation (the old one stays mapped until exit)");
    }
    for p in &c.removed {
        tracing::info!(target: "ceilo::reload", library = %p.display(), "plugin library removed: its plugins are no longer offered");
    }
}

/// Reloads `live` on each trigger until `stop`, handing what it builds to `targets`.
pub(super) async fn reload_service(
    mut live: Live,
    targets: Targets,
    settle: Duration,
    watch_files: bool,
    mut stop: watch::Receiver<bool>,
) {
    let set = if watch_files {
        live.watch_set()
    } else {
        WatchSet::default()
    };
    let (_watcher, mut triggers) = Watcher::start(&set, settle);
    loop {
        let trigger: Option<Trigger> = tokio::select! {
            t = triggers.recv() => t,
            _ = stop.wait_for(|s| *s) => None,
        };
        let Some(trigger) = trigger else { return };
        tracing::info!(target: "ceilo::reload", "reloading ({trigger})");
        let prepared = tokio::task::spawn_blocking(move || {
            let r = live.prepare();
            // What the reload ran once (the scan, the wiring) goes as at start.
            crate::loader::release_start_up_pages();
            (live, r)
        })
        .await;
        let (back, result) = match prepared {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(target: "ceilo::reload", "the reload failed: {e}; live reload is off");
                return;
            }
        };
        live = back;
        match result {
            Err(errors) => {
                for e in &errors {
                    tracing::error!(target: "ceilo::reload", "reload refused: {e}");
                }
                tracing::error!(target: "ceilo::reload", "{} error(s): the running configuration stays (fix and save, or send SIGHUP)", errors.len());
                status::reloaded(&ReloadOutcome::Failed(errors.join("\n")));
            }
            Ok(prepared) => {
                if !apply(prepared, &targets).await {
                    return; // the service stopped first
                }
                status::publish(live.service, &live.registry);
                status::reloaded(&ReloadOutcome::Applied);
                tracing::info!(target: "ceilo::reload", "reload applied");
            }
        }
    }
}

/// Hands each part to its service and waits until each runs it; false when a
/// service is gone.
async fn apply(prepared: Prepared, targets: &Targets) -> bool {
    if let (Some(runtime), Some(tx)) = (prepared.agent, &targets.agent) {
        let shared = targets.ingress.as_ref().map(|_| runtime.sharing_sinks());
        let (applied, done) = oneshot::channel();
        if tx.send(agent::Swap { runtime, applied }).await.is_err() || done.await.is_err() {
            return false;
        }
        if let (Some(ingress), Some(shared)) = (&targets.ingress, shared) {
            if let Ok(mut i) = ingress.lock() {
                *i = shared;
            }
        }
    }
    if let (Some((runtime, handlers)), Some(tx)) = (prepared.notification, &targets.notification) {
        let (applied, done) = oneshot::channel();
        let swap = notification::Swap {
            runtime,
            handlers,
            applied,
        };
        if tx.send(swap).await.is_err() || done.await.is_err() {
            return false;
        }
    }
    true
}
