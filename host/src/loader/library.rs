//! Loading one library: is it a shared object, is it a ceilo plugin, which plugin ABI
//! was it built for, does its layout match that ABI, and what plugins does it list.

use std::io::Read;
use std::path::{Path, PathBuf};

use abi_stable::library::{lib_header_from_path, LibHeader, LibraryError};
use ceilo_plugin_api::abi::{self, v1_0, v1_1, v1_2, v1_3, AbiVersion};

use super::abi_adapters::{entries_v1_0, entries_v1_1, entries_v1_2, entries_v1_3, Entry};

/// The commit at which plugin ABI 1.0 and 1.1 were declared released (frozen).
const RELEASE_COMMIT: &str = "6cbc86c";

/// A library that passed every check.
#[derive(Clone)]
pub struct LoadedLibrary {
    /// Its path.
    pub path: PathBuf,
    /// The plugin ABI it was built for.
    pub abi: AbiVersion,
    pub(crate) entries: Vec<Entry>,
}

impl LoadedLibrary {
    /// (kind, name) of each plugin it provides.
    pub fn plugins(&self) -> impl Iterator<Item = (super::PluginKind, &str)> {
        self.entries.iter().map(|e| (e.kind, e.name.as_str()))
    }
}

/// Loads and checks one library. The error is the one-line reason it was refused,
/// written for the operator (the caller adds the file name).
pub fn load_library(path: &Path) -> Result<LoadedLibrary, String> {
    check_elf(path)?;
    let header = lib_header_from_path(path).map_err(|e| open_error(&e))?;

    let base_name = header.root_mod_consts().base_name().as_str();
    if base_name != "ceilo_plugin" {
        return Err(format!(
            "an abi_stable library, but not a ceilo plugin (its root module is `{base_name}`)"
        ));
    }
    let declared = header.version_strings().version.as_str();
    let version = AbiVersion::parse(declared)
        .ok_or_else(|| format!("declares an unreadable plugin ABI version `{declared}`"))?;
    let supported = format!(
        "this host supports plugin ABI {}–{}",
        abi::OLDEST,
        abi::CURRENT
    );
    if version.major != abi::CURRENT.major {
        return Err(format!(
            "built for plugin ABI {version}, incompatible with this host's {} ({supported}): \
             rebuild it against ceilo-plugin-api {}.x",
            abi::CURRENT,
            abi::CURRENT.major
        ));
    }
    if version > abi::CURRENT {
        return Err(format!(
            "built for plugin ABI {version}, newer than this host's {} ({supported}): \
             upgrade ceilo, or use a build of the plugin for ABI {} or older",
            abi::CURRENT,
            abi::CURRENT
        ));
    }
    let entries = match version.minor {
        0 => {
            let module = init::<v1_0::PluginLibraryRef>(header, version)?;
            entries_v1_0(list(module.plugins())?)
        }
        1 => {
            let module = init::<v1_1::PluginLibraryRef>(header, version)?;
            (module.init())(super::plugin_log::host_logger());
            entries_v1_1(list(module.plugins())?)
        }
        2 => {
            let module = init::<v1_2::PluginLibraryRef>(header, version)?;
            (module.init())(super::plugin_log::host_logger());
            entries_v1_2(list(module.plugins())?)
        }
        _ => {
            let module = init::<v1_3::PluginLibraryRef>(header, version)?;
            (module.init())(super::plugin_log::host_logger());
            entries_v1_3(list(module.plugins())?, list(module.trait_plugins())?)
        }
    };
    if let Some(e) = entries.iter().find(|e| e.name.trim().is_empty()) {
        return Err(format!("lists a {} plugin with an empty name", e.kind));
    }
    Ok(LoadedLibrary {
        path: path.to_owned(),
        abi: version,
        entries,
    })
}

fn list<L>(
    f: extern "C" fn() -> abi_stable::std_types::RResult<L, ceilo_plugin_api::PluginError>,
) -> Result<L, String> {
    f().into_result()
        .map_err(|e| format!("failed to list its plugins: {e}"))
}

fn init<M: abi_stable::library::RootModule>(
    header: &'static LibHeader,
    version: AbiVersion,
) -> Result<M, String> {
    header.init_root_module::<M>().map_err(|e| match e {
        LibraryError::AbiInstability(details) => {
            let full = details.to_string();
            tracing::debug!(target: "ceilo::loader", "abi_stable's full layout report:\n{full}");
            format!(
                "declares plugin ABI {version}, but its types do not match ABI {version} as \
                 released ({}; this host supports plugin ABI {}–{}): it was built against a \
                 modified or pre-release ceilo-plugin-api (ABI 1.0 and 1.1 were released at \
                 commit {RELEASE_COMMIT}); rebuild it against the released ceilo-plugin-api {}.x \
                 (RUST_LOG=ceilo::loader=debug shows abi_stable's full report)",
                summarise_layout_error(&full),
                abi::OLDEST,
                abi::CURRENT,
                abi::CURRENT.major
            )
        }
        LibraryError::RootModule { err, .. } => {
            format!(
                "its root module failed to initialise: {}",
                one_line(&err.to_string())
            )
        }
        other => one_line(&other.to_string()),
    })
}

/// Boils abi_stable's multi-page layout report down to the type and the first
/// difference, e.g. "type `Sample`: unexpected field (expected `name`, found `unit`)".
fn summarise_layout_error(report: &str) -> String {
    let lines: Vec<&str> = report
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let Some(at) = lines.iter().position(|l| l.starts_with("Error:")) else {
        return truncate(
            &lines.iter().take(3).cloned().collect::<Vec<_>>().join(" "),
            300,
        );
    };
    let what = lines[at].trim_start_matches("Error:").trim();
    let type_name = lines[..at]
        .iter()
        .rposition(|l| *l == "Layout of expected type:")
        .and_then(|i| lines[i..at].iter().find_map(|l| l.strip_prefix("type:")))
        .unwrap_or("?");
    // The first line after "Expected:" / "Found:" says what differs.
    let after = |label: &str| {
        lines[at..]
            .iter()
            .position(|l| *l == label)
            .and_then(|i| lines.get(at + i + 1))
            .map(|l| l.trim_start_matches("field_name:").to_owned())
    };
    let detail = match (after("Expected:"), after("Found:")) {
        (Some(e), Some(f)) => format!(" (expected `{e}`, found `{f}`)"),
        _ => String::new(),
    };
    truncate(&format!("type `{}`: {what}{detail}", type_name.trim()), 300)
}

fn check_elf(path: &Path) -> Result<(), String> {
    let mut magic = [0u8; 4];
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    match file.read_exact(&mut magic) {
        Ok(()) if magic == *b"\x7fELF" => Ok(()),
        _ => Err("not a shared object (no ELF header): remove it from the plugin directory".into()),
    }
}

fn open_error(e: &LibraryError) -> String {
    match e {
        LibraryError::OpenError { err, .. } => format!(
            "the dynamic linker cannot load it: {} (a missing dependency, or built for another platform?)",
            one_line(&err.to_string())
        ),
        LibraryError::GetSymbolError { .. } => "a shared object, but not a ceilo plugin: it exports no plugin \
             root module (a plugin library calls `ceilo_plugin_api::export_plugins!`)"
            .into(),
        LibraryError::InvalidAbiHeader(found) => format!(
            "built with an incompatible abi_stable (its ABI header is {}.{}, this host uses abi_stable 0.11): \
             rebuild it against ceilo-plugin-api {}.x",
            found.abi_major,
            found.abi_minor,
            abi::CURRENT.major
        ),
        other => one_line(&other.to_string()),
    }
}

fn one_line(s: &str) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    truncate(&joined, 300)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let cut: String = s.chars().take(max).collect();
    format!("{cut}…")
}
