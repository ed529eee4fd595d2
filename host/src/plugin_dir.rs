//! Where plugins are looked for when no directory is given.

use std::path::{Path, PathBuf};

use crate::loader::ScanOptions;

/// The plugin directory to scan, and how it was chosen.
#[derive(Debug, Clone)]
pub struct PluginDir {
    /// The directory.
    pub path: PathBuf,
    /// Which files in it count.
    pub options: ScanOptions,
    /// How it was chosen, for the start-up message.
    pub origin: &'static str,
}

/// The file-name prefix cargo gives the built-in plugins (`libceilo_plugin_*.so`).
pub const BUILT_IN_PREFIX: &str = "libceilo_plugin_";

/// Resolves the plugin directory: the one given (`--plugin-dir` / `CEILO_PLUGIN_DIR`)
/// as is; else `plugins/` next to the `ceilo` executable (an installed layout); else the
/// executable's own directory when it is a cargo output directory, where
/// `cargo build --release` puts the built-in plugins next to `ceilo` (only
/// `libceilo_plugin_*.so` there, so test fixtures built beside them are ignored).
pub fn resolve(given: Option<&Path>) -> PluginDir {
    if let Some(p) = given {
        return PluginDir {
            path: p.to_owned(),
            options: ScanOptions::default(),
            origin: "--plugin-dir / CEILO_PLUGIN_DIR",
        };
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_owned));
    match exe_dir {
        Some(dir) if dir.join("plugins").is_dir() => PluginDir {
            path: dir.join("plugins"),
            options: ScanOptions::default(),
            origin: "plugins/ next to the ceilo executable",
        },
        Some(dir) => PluginDir {
            path: dir,
            options: ScanOptions {
                file_prefix: Some(BUILT_IN_PREFIX.to_owned()),
                ..ScanOptions::default()
            },
            origin: "the ceilo executable's directory (built-in plugins from cargo build)",
        },
        None => PluginDir {
            path: PathBuf::from("plugins"),
            options: ScanOptions::default(),
            origin: "./plugins (the executable's location is unknown)",
        },
    }
}
