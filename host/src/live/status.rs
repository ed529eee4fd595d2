//! What a running service has loaded, refused and failed, and how its reloads went:
//! `GET /v2/plugins` (the API, and `--status-listen` of the agent and the
//! notification agent), the dashboard's plugin panel, `ceilo plugins --api-url`.

use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::loader::PluginRegistry;

/// One loaded plugin.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoadedPlugin {
    /// `poller`, `notification`, `transformer`, `publisher`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// The library in the plugin directory.
    pub library: String,
    /// The plugin ABI it was built for.
    pub abi: String,
    /// `worker` or `in-process`.
    pub isolation: String,
    /// 1 at start, one more each time its library was replaced live.
    pub generation: u32,
    /// When this generation was loaded (RFC 3339).
    pub loaded_at: String,
}

/// A library refused.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RefusedLibrary {
    /// The file.
    pub library: String,
    /// Why.
    pub reason: String,
    /// When (RFC 3339).
    pub at: String,
}

/// A plugin left out because it could not be created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FailedPlugin {
    /// Its kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// How the service's reloads went.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ReloadStats {
    /// Reloads applied.
    pub applied: u64,
    /// Reloads refused (the configuration in force stayed).
    pub failed: u64,
    /// The last refusal's reason, until a reload is applied.
    pub last_error: Option<String>,
    /// When the configuration in force was applied (RFC 3339).
    pub last_applied_at: Option<String>,
}

/// The whole view.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct PluginsView {
    /// `agent`, `notification`, `run`…
    pub service: String,
    /// The plugin directory.
    pub plugin_dir: String,
    /// Loaded plugins, by kind then name.
    pub plugins: Vec<LoadedPlugin>,
    /// Refused libraries.
    pub rejected: Vec<RefusedLibrary>,
    /// Plugins left out.
    pub failed: Vec<FailedPlugin>,
    /// Reloads.
    pub reloads: ReloadStats,
}

/// How a reload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// Applied.
    Applied,
    /// Refused, with why.
    Failed(String),
}

fn state() -> &'static Mutex<Option<PluginsView>> {
    static S: OnceLock<Mutex<Option<PluginsView>>> = OnceLock::new();
    S.get_or_init(|| Mutex::new(None))
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Records what `service` runs from `registry` (at start, and after each applied
/// reload).
pub fn publish(service: &str, registry: &PluginRegistry) {
    let plugins = registry
        .plugins()
        .map(|p| LoadedPlugin {
            kind: p.kind.as_str().to_owned(),
            name: p.name.clone(),
            version: p.version.clone(),
            library: p.library.display().to_string(),
            abi: p.abi.to_string(),
            isolation: if p.isolated { "worker" } else { "in-process" }.to_owned(),
            generation: p.generation,
            loaded_at: rfc3339(p.loaded_at),
        })
        .collect();
    let rejected = registry
        .rejected()
        .iter()
        .map(|r| RefusedLibrary {
            library: r.library.display().to_string(),
            reason: r.reason.clone(),
            at: rfc3339(r.at),
        })
        .collect();
    let failed = crate::metrics::global()
        .failed_plugins()
        .into_iter()
        .map(|f| FailedPlugin {
            kind: f.kind,
            name: f.name,
            reason: f.reason,
        })
        .collect();
    if let Ok(mut s) = state().lock() {
        let reloads = s.take().map(|v| v.reloads).unwrap_or_default();
        *s = Some(PluginsView {
            service: service.to_owned(),
            plugin_dir: registry.dir().display().to_string(),
            plugins,
            rejected,
            failed,
            reloads,
        });
    }
}

/// Counts a reload (also on `/metrics`).
pub fn reloaded(outcome: &ReloadOutcome) {
    crate::metrics::global().reload(matches!(outcome, ReloadOutcome::Applied));
    if let Ok(mut s) = state().lock() {
        let view = s.get_or_insert_with(PluginsView::default);
        match outcome {
            ReloadOutcome::Applied => {
                view.reloads.applied += 1;
                view.reloads.last_error = None;
                view.reloads.last_applied_at = Some(rfc3339(SystemTime::now()));
            }
            ReloadOutcome::Failed(e) => {
                view.reloads.failed += 1;
                view.reloads.last_error = Some(crate::redact::shorten(e, 2000));
            }
        }
    }
}

/// The view (none: this process loads no plugins, e.g. `ceilo api`).
pub fn view() -> Option<PluginsView> {
    state().lock().ok().and_then(|s| s.clone())
}
