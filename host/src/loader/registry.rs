//! The registry: every plugin found in the plugin directory, by (kind, name), and every
//! library that was refused with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ceilo_plugin_api::abi::AbiVersion;
use ceilo_plugin_api::Context;
use serde::Serialize;

use super::abi_adapters::{self, Factory};
use super::instance::Identity;
use super::isolation::{IsolationPolicy, WorkerSettings};
use super::worker::{
    Isolated, IsolatedNotification, IsolatedPoller, IsolatedPublisher, IsolatedTransformer, Request,
};
use super::{
    load_library, CreateError, NotificationInstance, PluginCallError, PluginKind, PollerInstance,
    PublisherInstance, ScanError, TransformerInstance,
};

/// A plugin the host can instantiate.
#[derive(Clone)]
pub struct RegisteredPlugin {
    /// Kind.
    pub kind: PluginKind,
    /// Name, unique per kind.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// One line.
    pub description: String,
    /// The library it came from.
    pub library: PathBuf,
    /// The plugin ABI the library was built for.
    pub abi: AbiVersion,
    /// Whether its instances run in worker processes.
    pub isolated: bool,
    factory: Factory,
}

/// A library the loader refused, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    /// The file.
    pub library: PathBuf,
    /// Why, in one line.
    pub reason: String,
}

/// Which files in the directory are considered.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// Only files whose name starts with this (used for cargo's output directory,
    /// where test fixtures and other libraries sit next to the plugins).
    pub file_prefix: Option<String>,
    /// Which libraries run in worker processes (none: every library in process).
    pub isolation: Option<IsolationPolicy>,
}

/// All plugins found in one directory.
#[derive(Default)]
pub struct PluginRegistry {
    dir: PathBuf,
    isolation: Option<IsolationPolicy>,
    worker: Option<Arc<WorkerSettings>>,
    plugins: BTreeMap<(PluginKind, String), RegisteredPlugin>,
    rejected: Vec<Rejection>,
}

impl PluginRegistry {
    /// Scans `dir` for `*.so` files (in name order, so "the later one" of two
    /// duplicates is well defined), loading each that passes every check. Only an
    /// unreadable directory is an error; each refused library is recorded, logged on
    /// one line, and the scan goes on.
    pub fn scan(dir: &Path, options: &ScanOptions) -> Result<Self, ScanError> {
        let scan_error = |error| ScanError {
            dir: dir.to_owned(),
            error,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(scan_error)? {
            let path = entry.map_err(scan_error)?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let wanted_prefix = options
                .file_prefix
                .as_deref()
                .is_none_or(|p| name.starts_with(p));
            if path.extension().is_some_and(|e| e == "so") && wanted_prefix && !path.is_dir() {
                files.push(path);
            }
        }
        files.sort();

        let mut registry = PluginRegistry {
            dir: dir.to_owned(),
            worker: options
                .isolation
                .as_ref()
                .map(|p| Arc::new(p.worker.clone())),
            isolation: options.isolation.clone(),
            ..PluginRegistry::default()
        };
        for path in files {
            match load_library(&path) {
                Ok(lib) => registry.add_library(lib),
                Err(reason) => registry.reject(path, reason),
            }
        }
        Ok(registry)
    }

    fn reject(&mut self, library: PathBuf, reason: String) {
        tracing::warn!(target: "ceilo::loader", library = %library.display(), "plugin library refused: {reason}");
        self.rejected.push(Rejection { library, reason });
    }

    fn add_library(&mut self, lib: super::LoadedLibrary) {
        let mut conflicts = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for e in &lib.entries {
            let key = (e.kind, e.name.clone());
            if let Some(existing) = self.plugins.get(&key) {
                conflicts.push(format!(
                    "{} `{}` is already provided by {}",
                    e.kind,
                    e.name,
                    existing.library.display()
                ));
            } else if !seen.insert(key) {
                conflicts.push(format!(
                    "{} `{}` is listed twice in this library",
                    e.kind, e.name
                ));
            }
        }
        if !conflicts.is_empty() {
            let reason = format!(
                "duplicate plugin name: {}; remove one of the libraries from the plugin directory",
                conflicts.join("; ")
            );
            return self.reject(lib.path, reason);
        }
        let isolated = self
            .isolation
            .as_ref()
            .is_some_and(|p| p.isolates(&lib.path));
        tracing::debug!(target: "ceilo::loader", library = %lib.path.display(), abi = %lib.abi, plugins = lib.entries.len(), isolated, "plugin library loaded");
        for e in lib.entries {
            let plugin = RegisteredPlugin {
                kind: e.kind,
                name: e.name.clone(),
                version: e.version,
                description: e.description,
                library: lib.path.clone(),
                abi: lib.abi,
                isolated,
                factory: e.factory,
            };
            self.plugins.insert((e.kind, e.name), plugin);
        }
    }

    /// The scanned directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every plugin, ordered by kind then name.
    pub fn plugins(&self) -> impl Iterator<Item = &RegisteredPlugin> {
        self.plugins.values()
    }

    /// Every refused library, in scan order.
    pub fn rejected(&self) -> &[Rejection] {
        &self.rejected
    }

    /// One plugin.
    pub fn get(&self, kind: PluginKind, name: &str) -> Option<&RegisteredPlugin> {
        self.plugins.get(&(kind, name.to_owned()))
    }

    /// The names of the loaded plugins of one kind.
    pub fn names(&self, kind: PluginKind) -> Vec<String> {
        self.plugins
            .values()
            .filter(|p| p.kind == kind)
            .map(|p| p.name.clone())
            .collect()
    }

    fn find(&self, kind: PluginKind, name: &str) -> Result<&RegisteredPlugin, CreateError> {
        self.get(kind, name).ok_or_else(|| CreateError::Unknown {
            kind,
            name: name.to_owned(),
            available: self.names(kind),
        })
    }

    /// Creates a poller instance. `parameters` is the plugin's `parameters` mapping.
    pub fn create_poller(
        &self,
        name: &str,
        parameters: &serde_json::Value,
        context: Context,
    ) -> Result<PollerInstance, CreateError> {
        let p = self.find(PluginKind::Poller, name)?;
        let (params, ctx) = p.inputs(parameters, context);
        let inner = match self.start_worker(p, params.clone(), ctx.clone())? {
            Some(w) => Box::new(IsolatedPoller(w)),
            None => {
                abi_adapters::create_poller(p.factory, &params, &ctx).map_err(|e| p.error(e))?
            }
        };
        Ok(PollerInstance {
            id: p.identity(),
            inner,
        })
    }

    /// Creates a notification handler instance.
    pub fn create_notification(
        &self,
        name: &str,
        parameters: &serde_json::Value,
        context: Context,
    ) -> Result<NotificationInstance, CreateError> {
        let p = self.find(PluginKind::Notification, name)?;
        let (params, ctx) = p.inputs(parameters, context);
        let inner = match self.start_worker(p, params.clone(), ctx.clone())? {
            Some(w) => Box::new(IsolatedNotification(w)),
            None => abi_adapters::create_notification(p.factory, &params, &ctx)
                .map_err(|e| p.error(e))?,
        };
        Ok(NotificationInstance {
            id: p.identity(),
            inner,
        })
    }

    /// Creates a transformer instance.
    pub fn create_transformer(
        &self,
        name: &str,
        parameters: &serde_json::Value,
        context: Context,
    ) -> Result<TransformerInstance, CreateError> {
        let p = self.find(PluginKind::Transformer, name)?;
        let (params, ctx) = p.inputs(parameters, context);
        let inner = match self.start_worker(p, params.clone(), ctx.clone())? {
            Some(w) => Box::new(IsolatedTransformer(w)),
            None => abi_adapters::create_transformer(p.factory, &params, &ctx)
                .map_err(|e| p.error(e))?,
        };
        Ok(TransformerInstance {
            id: p.identity(),
            inner,
        })
    }

    /// Creates a publisher instance; `parameters` carries the publisher URL as `url`.
    pub fn create_publisher(
        &self,
        name: &str,
        parameters: &serde_json::Value,
        context: Context,
    ) -> Result<PublisherInstance, CreateError> {
        let p = self.find(PluginKind::Publisher, name)?;
        let (params, ctx) = p.inputs(parameters, context);
        let inner = match self.start_worker(p, params.clone(), ctx.clone())? {
            Some(w) => Box::new(IsolatedPublisher(w)),
            None => {
                abi_adapters::create_publisher(p.factory, &params, &ctx).map_err(|e| p.error(e))?
            }
        };
        Ok(PublisherInstance {
            id: p.identity(),
            inner,
        })
    }
}

impl PluginRegistry {
    /// A worker holding a new instance of `p`, when `p`'s library is isolated.
    fn start_worker(
        &self,
        p: &RegisteredPlugin,
        params: String,
        ctx: String,
    ) -> Result<Option<Isolated>, CreateError> {
        let Some(settings) = self.worker.as_ref().filter(|_| p.isolated) else {
            return Ok(None);
        };
        let file = p
            .library
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let who = format!("{} `{}` ({file})", p.kind, p.name);
        let create = Request::Create {
            kind: p.kind,
            name: p.name.clone(),
            params,
            ctx,
        };
        Isolated::start(
            settings.clone(),
            Arc::from(p.library.as_path()),
            who,
            create,
        )
        .map(Some)
        .map_err(|e| p.error(e).into())
    }
}

impl RegisteredPlugin {
    fn inputs(&self, parameters: &serde_json::Value, context: Context) -> (String, String) {
        let ctx = context
            .with_host_version(env!("CARGO_PKG_VERSION"))
            .with_abi_version(self.abi.to_string());
        (parameters.to_string(), ctx.to_json())
    }

    fn identity(&self) -> Identity {
        Identity {
            kind: self.kind,
            name: Arc::from(self.name.as_str()),
            library: Arc::from(self.library.as_path()),
            isolated: self.isolated,
        }
    }

    fn error(&self, error: ceilo_plugin_api::PluginError) -> PluginCallError {
        PluginCallError {
            kind: self.kind,
            name: self.name.clone(),
            library: self.library.clone(),
            error,
        }
    }
}

impl std::fmt::Debug for RegisteredPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisteredPlugin")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("version", &self.version)
            .field("library", &self.library)
            .field("abi", &self.abi)
            .finish()
    }
}
