//! The registry: every plugin found in the plugin directory, by (kind, name), and every
//! library that was refused with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use ceilo_plugin_api::abi::AbiVersion;
use ceilo_plugin_api::Context;
use serde::Serialize;

use super::abi_adapters::{self, Factory};
use super::instance::Identity;
use super::isolation::{IsolationPolicy, WorkerSettings};
use super::worker::{
    Isolated, IsolatedNotification, IsolatedPoller, IsolatedPublisher, IsolatedTrait,
    IsolatedTransformer, Request,
};
use super::{
    load_library, CreateError, NotificationInstance, PluginCallError, PluginKind, PollerInstance,
    PublisherInstance, ScanError, TraitPluginInstance, TransformerInstance,
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
    /// How many times a file at `library` has been loaded by this process: 1 at
    /// start, one more for each replacement picked up live.
    pub generation: u32,
    /// When this generation was loaded.
    pub loaded_at: SystemTime,
    /// The file actually mapped (and given to workers): `library` itself for the
    /// first generation, a private copy for later ones (see [`PluginRegistry::rescan`]).
    pub mapped: PathBuf,
    factory: Factory,
}

/// What identifies the code of a plugin: its kind, name, library and generation. Two
/// equal stamps are the same loaded code, so an instance of one can stand for the
/// other across a reload.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PluginStamp {
    /// Kind.
    pub kind: PluginKind,
    /// Name.
    pub name: String,
    /// The library in the plugin directory.
    pub library: PathBuf,
    /// Its generation.
    pub generation: u32,
}

/// A library the loader refused, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    /// The file.
    pub library: PathBuf,
    /// Why, in one line.
    pub reason: String,
    /// When it was refused.
    #[serde(skip)]
    pub at: SystemTime,
}

/// What a file in the plugin directory looked like when it was last read: a file
/// whose stamp is unchanged is not read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

impl FileStamp {
    fn of(path: &Path) -> Option<FileStamp> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(FileStamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
        })
    }
}

/// One file of the plugin directory as last read.
#[derive(Clone)]
struct LibraryFile {
    stamp: Option<FileStamp>,
    generation: u32,
    loaded_at: SystemTime,
    mapped: PathBuf,
    /// The library, or why it was refused before its plugins were looked at.
    outcome: Result<super::LoadedLibrary, String>,
}

/// What a rescan changed, for the log and the status view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanChanges {
    /// Libraries loaded for the first time.
    pub added: Vec<PathBuf>,
    /// Libraries loaded again as a new generation (the file was replaced).
    pub replaced: Vec<PathBuf>,
    /// Libraries gone from the directory (their plugins are no longer offered).
    pub removed: Vec<PathBuf>,
    /// Files refused (new ones, or replaced ones that fail now).
    pub refused: Vec<PathBuf>,
}

impl ScanChanges {
    /// Whether anything changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.replaced.is_empty()
            && self.removed.is_empty()
            && self.refused.is_empty()
    }
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
#[derive(Clone, Default)]
pub struct PluginRegistry {
    dir: PathBuf,
    options: ScanOptions,
    worker: Option<Arc<WorkerSettings>>,
    plugins: BTreeMap<(PluginKind, String), RegisteredPlugin>,
    rejected: Vec<Rejection>,
    files: BTreeMap<PathBuf, LibraryFile>,
}

impl PluginRegistry {
    /// Scans `dir` for `*.so` files (in name order, so "the later one" of two
    /// duplicates is well defined), loading each that passes every check. Only an
    /// unreadable directory is an error; each refused library is recorded, logged on
    /// one line, and the scan goes on.
    pub fn scan(dir: &Path, options: &ScanOptions) -> Result<Self, ScanError> {
        let empty = PluginRegistry {
            dir: dir.to_owned(),
            options: options.clone(),
            worker: options
                .isolation
                .as_ref()
                .map(|p| Arc::new(p.worker.clone())),
            ..PluginRegistry::default()
        };
        Ok(empty.rescan()?.0)
    }

    /// The directory read again: files whose stamp (inode, size, mtime) did not change
    /// keep what they had (their plugins, or their refusal, not logged again); new
    /// files are loaded; a replaced file is loaded as a new generation, from a private
    /// copy (the dynamic linker would hand back the old mapping for the same path),
    /// and the old generation stays mapped for the instances still using it —
    /// libraries are never unloaded; a removed file's plugins are no longer offered.
    /// `self` is left as it was: what runs keeps running until the caller swaps.
    pub fn rescan(&self) -> Result<(PluginRegistry, ScanChanges), ScanError> {
        let dir = &self.dir;
        let scan_error = |error| ScanError {
            dir: dir.to_owned(),
            error,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(scan_error)? {
            let path = entry.map_err(scan_error)?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let wanted_prefix = self
                .options
                .file_prefix
                .as_deref()
                .is_none_or(|p| name.starts_with(p));
            // Hidden files are copies in progress (`cp x .x.tmp && mv .x.tmp x`).
            let hidden = name.starts_with('.');
            if path.extension().is_some_and(|e| e == "so")
                && wanted_prefix
                && !hidden
                && !path.is_dir()
            {
                paths.push(path);
            }
        }
        paths.sort();

        let mut changes = ScanChanges::default();
        let mut files = BTreeMap::new();
        for path in paths {
            let stamp = FileStamp::of(&path);
            let before = self.files.get(&path);
            if let Some(old) = before.filter(|f| f.stamp.is_some() && f.stamp == stamp) {
                files.insert(path, old.clone());
                continue;
            }
            let generation = before.map_or(1, |f| f.generation + 1);
            let mapped = if generation == 1 {
                Ok(path.clone())
            } else {
                private_copy(&path, generation)
            };
            let outcome = mapped
                .clone()
                .and_then(|m| load_library(&m))
                .map(|mut lib| {
                    lib.path = path.clone();
                    lib
                });
            if outcome.is_ok() {
                if let Ok(m) = &mapped {
                    super::residency::loaded(m);
                }
            }
            match (&outcome, before) {
                (Err(_), _) => changes.refused.push(path.clone()),
                (Ok(_), Some(_)) => changes.replaced.push(path.clone()),
                (Ok(_), None) => changes.added.push(path.clone()),
            }
            files.insert(
                path.clone(),
                LibraryFile {
                    stamp,
                    generation,
                    loaded_at: SystemTime::now(),
                    mapped: mapped.unwrap_or_else(|_| path.clone()),
                    outcome,
                },
            );
        }
        changes.removed = self
            .files
            .iter()
            .filter(|(p, f)| !files.contains_key(*p) && f.outcome.is_ok())
            .map(|(p, _)| p.clone())
            .collect();

        let mut registry = PluginRegistry {
            dir: self.dir.clone(),
            options: self.options.clone(),
            worker: self.worker.clone(),
            plugins: BTreeMap::new(),
            rejected: Vec::new(),
            files: BTreeMap::new(),
        };
        for (path, file) in &files {
            // Only what this pass read is logged; the rest was logged when first read.
            let fresh = changes.added.contains(path)
                || changes.replaced.contains(path)
                || changes.refused.contains(path);
            match &file.outcome {
                Ok(lib) => registry.add_library(lib.clone(), file, fresh),
                Err(reason) => registry.reject(path.clone(), reason.clone(), file.loaded_at, fresh),
            }
        }
        registry.files = files;
        Ok((registry, changes))
    }

    fn reject(&mut self, library: PathBuf, reason: String, at: SystemTime, log: bool) {
        if log {
            tracing::warn!(target: "ceilo::loader", library = %library.display(), "plugin library refused: {reason}");
        }
        self.rejected.push(Rejection {
            library,
            reason,
            at,
        });
    }

    fn add_library(&mut self, lib: super::LoadedLibrary, file: &LibraryFile, log: bool) {
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
            return self.reject(lib.path, reason, file.loaded_at, log);
        }
        let isolated = self
            .options
            .isolation
            .as_ref()
            .is_some_and(|p| p.isolates(&lib.path));
        if log {
            tracing::debug!(target: "ceilo::loader", library = %lib.path.display(), abi = %lib.abi, plugins = lib.entries.len(), isolated, generation = file.generation, "plugin library loaded");
        }
        for e in lib.entries {
            let plugin = RegisteredPlugin {
                kind: e.kind,
                name: e.name.clone(),
                version: e.version,
                description: e.description,
                library: lib.path.clone(),
                abi: lib.abi,
                isolated,
                generation: file.generation,
                loaded_at: file.loaded_at,
                mapped: file.mapped.clone(),
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

    /// The stamp of a loaded plugin (none: not loaded).
    pub fn stamp(&self, kind: PluginKind, name: &str) -> Option<PluginStamp> {
        self.get(kind, name).map(RegisteredPlugin::stamp)
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
    /// Creates a trait plugin instance with a trait definition's `parameters`.
    pub fn create_trait_plugin(
        &self,
        name: &str,
        parameters: &serde_json::Value,
        context: Context,
    ) -> Result<TraitPluginInstance, CreateError> {
        let p = self.find(PluginKind::Trait, name)?;
        let (params, ctx) = p.inputs(parameters, context);
        let inner = match self.start_worker(p, params.clone(), ctx.clone())? {
            Some(w) => Box::new(IsolatedTrait(w)),
            None => abi_adapters::create_trait(p.factory, &params, &ctx).map_err(|e| p.error(e))?,
        };
        Ok(TraitPluginInstance {
            id: p.identity(),
            inner,
        })
    }

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
        Isolated::start(settings.clone(), Arc::from(p.mapped.as_path()), who, create)
            .map(Some)
            .map_err(|e| p.error(e).into())
    }
}

impl RegisteredPlugin {
    /// What identifies this plugin's code.
    pub fn stamp(&self) -> PluginStamp {
        PluginStamp {
            kind: self.kind,
            name: self.name.clone(),
            library: self.library.clone(),
            generation: self.generation,
        }
    }

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
            .field("generation", &self.generation)
            .finish()
    }
}

/// A copy of `path` for its generation `generation`, in a directory private to this
/// process: the dynamic linker identifies a library by its path, so a replaced file
/// must be mapped under a new one. The copy is kept (workers restarted later map it
/// too) and removed with the directory when the process ends normally.
fn private_copy(path: &Path, generation: u32) -> Result<PathBuf, String> {
    let dir =
        generations_dir().map_err(|e| format!("cannot make a private copy to load it: {e}"))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin.so".into());
    let copy = dir.join(format!("{generation}-{name}"));
    std::fs::copy(path, &copy).map_err(|e| {
        format!(
            "cannot make a private copy in {} to load it: {e}",
            dir.display()
        )
    })?;
    Ok(copy)
}

/// `$TMPDIR/ceilo-<pid>-libraries`, created on first use.
fn generations_dir() -> std::io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("ceilo-{}-libraries", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Removes the private copies of replaced libraries (at exit: nothing maps them then).
pub fn remove_private_copies() {
    let dir = std::env::temp_dir().join(format!("ceilo-{}-libraries", std::process::id()));
    let _ = std::fs::remove_dir_all(dir);
}
