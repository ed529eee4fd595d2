//! Reloads of a running agent: on SIGHUP or a settled change of its files or plugin
//! directory, the plugin directory is read again and every file validated in full as
//! at start; what fails is logged with file and line and counted, and the running
//! pipeline stays; what passes is wired — taking over every sink, publisher and
//! poller whose definition and plugin code did not change — and handed to the agent,
//! which swaps at a cycle boundary.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

use super::pipeline_cmds::{load_from, Loaded, PipelineArgs};
use crate::live::{status, ReloadOutcome, Trigger, WatchSet, Watcher};
use crate::loader::{PluginRegistry, ScanChanges};
use crate::pipeline::{self, HostSettings, OutputMode, Reusable, Runtime};
use crate::services::agent::Swap;

/// What a reload needs: how the service was started, and what runs now.
pub(super) struct Live {
    pub(super) args: PipelineArgs,
    pub(super) builtin: Option<&'static str>,
    pub(super) host: HostSettings,
    pub(super) service: &'static str,
    pub(super) with_pollers: bool,
    registry: PluginRegistry,
    reusable: Reusable,
}

impl Live {
    /// The live state of a service started from `loaded`, running `runtime`.
    pub(super) fn new(
        args: &PipelineArgs,
        builtin: Option<&'static str>,
        host: &HostSettings,
        service: &'static str,
        with_pollers: bool,
        loaded: Loaded,
        runtime: &Runtime,
    ) -> Live {
        status::publish(service, &loaded.registry);
        Live {
            args: args.clone(),
            builtin,
            host: host.clone(),
            service,
            with_pollers,
            registry: loaded.registry,
            reusable: runtime.reusable.clone(),
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
    fn prepare(&mut self) -> Result<Runtime, Vec<String>> {
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
        let wired = pipeline::wire_reusing(
            &loaded.config,
            &loaded.registry,
            &loaded.meters,
            OutputMode::Publishers,
            &self.host,
            self.with_pollers,
            &self.reusable,
        );
        match wired {
            Ok((runtime, reused)) => {
                tracing::info!(
                    target: "ceilo::reload",
                    "new configuration valid: {} sink(s) kept with their state, {} built anew, {} publisher(s) handed on, {} poller(s) kept",
                    reused.sinks,
                    reused.new_sinks,
                    reused.outputs,
                    reused.pollers
                );
                self.reusable = runtime.reusable.clone();
                Ok(runtime)
            }
            Err(e) => {
                metrics.restore_failed_plugins(failed_before);
                Err(vec![e.to_string()])
            }
        }
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

/// Reloads `live` on each trigger until `stop`, handing new runtimes to the agent.
pub(super) async fn reload_agent(
    mut live: Live,
    swaps: mpsc::Sender<Swap>,
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
            Ok(runtime) => {
                let (applied, done) = oneshot::channel();
                if swaps.send(Swap { runtime, applied }).await.is_err() {
                    return;
                }
                if done.await.is_err() {
                    return; // the agent stopped first
                }
                status::publish(live.service, &live.registry);
                status::reloaded(&ReloadOutcome::Applied);
                tracing::info!(target: "ceilo::reload", "reload applied");
            }
        }
    }
}
