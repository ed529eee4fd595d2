//! `ceilo plugins`: what the plugin directory holds.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::loader::{PluginRegistry, ScanError};
use crate::plugin_dir;

/// How command output is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// One JSON document for programs.
    Json,
}

#[derive(Serialize)]
struct Listing<'a> {
    plugins: Vec<PluginRow<'a>>,
    rejected: Vec<RejectedRow<'a>>,
    failed: Vec<FailedRow>,
}

#[derive(Serialize)]
struct FailedRow {
    kind: &'static str,
    name: String,
    reason: String,
}

#[derive(Serialize)]
struct PluginRow<'a> {
    kind: &'static str,
    name: &'a str,
    version: &'a str,
    library: String,
    description: &'a str,
    abi: String,
    /// `worker` (its own process) or `in-process`.
    isolation: &'static str,
    /// `ok`, or `failed` (its create fails: see `failed`).
    status: &'static str,
}

#[derive(Serialize)]
struct RejectedRow<'a> {
    library: String,
    reason: &'a str,
}

/// Scans the plugin directory and prints what it found. Fails only when the
/// directory cannot be read.
///
/// Pollers are also created once each, as the agent creates them to learn their
/// meters, so that one whose `create` fails shows as failed.
pub fn plugins_command(
    given_dir: Option<&Path>,
    isolation: &super::IsolationArgs,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), PluginsCommandError> {
    let mut dir = plugin_dir::resolve(given_dir);
    dir.options.isolation = Some(isolation.policy());
    tracing::debug!(target: "ceilo::loader", dir = %dir.path.display(), origin = dir.origin, "scanning for plugins");
    let registry = PluginRegistry::scan(&dir.path, &dir.options)?;
    let discovery = crate::pipeline::discover_pollers(&registry, &Default::default());
    let failed = |kind: crate::loader::PluginKind, name: &str| {
        kind == crate::loader::PluginKind::Poller && discovery.failed.iter().any(|(n, _)| n == name)
    };
    let listing = Listing {
        failed: discovery
            .failed
            .iter()
            .map(|(name, reason)| FailedRow {
                kind: "poller",
                name: name.clone(),
                reason: reason.clone(),
            })
            .collect(),
        plugins: registry
            .plugins()
            .map(|p| PluginRow {
                isolation: if p.isolated { "worker" } else { "in-process" },
                status: if failed(p.kind, &p.name) {
                    "failed"
                } else {
                    "ok"
                },
                kind: p.kind.as_str(),
                name: &p.name,
                version: &p.version,
                library: p.library.display().to_string(),
                description: &p.description,
                abi: p.abi.to_string(),
            })
            .collect(),
        rejected: registry
            .rejected()
            .iter()
            .map(|r| RejectedRow {
                library: r.library.display().to_string(),
                reason: &r.reason,
            })
            .collect(),
    };
    match format {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut *out, &listing)?;
            writeln!(out)?;
        }
        OutputFormat::Table => write_table(&listing, registry.dir(), out)?,
    }
    Ok(())
}

fn write_table(l: &Listing<'_>, dir: &Path, out: &mut dyn Write) -> std::io::Result<()> {
    if l.plugins.is_empty() {
        writeln!(out, "No plugins found in {}.", dir.display())?;
    } else {
        let header = [
            "KIND",
            "NAME",
            "VERSION",
            "ABI",
            "LIBRARY",
            "RUNS",
            "STATUS",
            "DESCRIPTION",
        ];
        let rows: Vec<Vec<String>> = l
            .plugins
            .iter()
            .map(|p| {
                vec![
                    p.kind.to_owned(),
                    p.name.to_owned(),
                    p.version.to_owned(),
                    p.abi.clone(),
                    file_name(&p.library),
                    p.isolation.to_owned(),
                    p.status.to_owned(),
                    p.description.to_owned(),
                ]
            })
            .collect();
        super::table::write_table(out, &header, &rows)?;
        writeln!(out, "\n{} plugin(s) from {}", rows.len(), dir.display())?;
    }
    if !l.failed.is_empty() {
        writeln!(out, "\nFailed plugins (left out by the services):")?;
        for f in &l.failed {
            writeln!(out, "  {} {}: {}", f.kind, f.name, f.reason)?;
        }
    }
    if !l.rejected.is_empty() {
        writeln!(out, "\nRefused libraries:")?;
        for r in &l.rejected {
            writeln!(out, "  {}: {}", r.library, r.reason)?;
        }
    }
    Ok(())
}

/// The file name of a library path, for tables (the directory is said once).
fn file_name(library: &str) -> String {
    Path::new(library)
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| library.to_owned())
}

/// `ceilo plugins --api-url URL`: what a running service has loaded, refused and
/// failed, and its reloads (its `GET /v2/plugins`).
pub fn running_plugins_command(
    api_url: &str,
    token: Option<&str>,
    format: OutputFormat,
    out: &mut dyn Write,
) -> Result<(), PluginsCommandError> {
    let url = format!("{}/v2/plugins", api_url.trim_end_matches('/'));
    let body = super::query_cmds::fetch(&url, token)?;
    if format == OutputFormat::Json {
        serde_json::to_writer_pretty(&mut *out, &body)?;
        writeln!(out)?;
        return Ok(());
    }
    let view: crate::live::PluginsView = serde_json::from_value(body)?;
    let header = [
        "KIND", "NAME", "VERSION", "ABI", "LIBRARY", "GEN", "LOADED", "RUNS",
    ];
    let rows: Vec<Vec<String>> = view
        .plugins
        .iter()
        .map(|p| {
            vec![
                p.kind.clone(),
                p.name.clone(),
                p.version.clone(),
                p.abi.clone(),
                file_name(&p.library),
                p.generation.to_string(),
                p.loaded_at.clone(),
                p.isolation.clone(),
            ]
        })
        .collect();
    writeln!(
        out,
        "{} ({}), plugins from {}",
        view.service, api_url, view.plugin_dir
    )?;
    super::table::write_table(out, &header, &rows)?;
    if !view.failed.is_empty() {
        writeln!(out, "\nFailed plugins (left out):")?;
        for f in &view.failed {
            writeln!(out, "  {} {}: {}", f.kind, f.name, f.reason)?;
        }
    }
    if !view.rejected.is_empty() {
        writeln!(out, "\nRefused libraries:")?;
        for r in &view.rejected {
            writeln!(out, "  {} ({}): {}", r.library, r.at, r.reason)?;
        }
    }
    let r = &view.reloads;
    writeln!(
        out,
        "\nReloads: {} applied, {} refused{}",
        r.applied,
        r.failed,
        r.last_applied_at
            .as_deref()
            .map(|t| format!("; configuration in force since {t}"))
            .unwrap_or_default()
    )?;
    if let Some(e) = &r.last_error {
        writeln!(out, "Last reload refused:\n  {}", e.replace('\n', "\n  "))?;
    }
    Ok(())
}

/// Why `ceilo plugins` could not run.
#[derive(Debug, thiserror::Error)]
pub enum PluginsCommandError {
    /// The directory could not be read.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// Output could not be written.
    #[error("cannot write output")]
    Io(#[from] std::io::Error),
    /// JSON output failed, or the service's answer is not the plugins view.
    #[error("cannot write JSON output, or read the service's answer: {0}")]
    Json(#[from] serde_json::Error),
    /// The running service could not be asked.
    #[error(transparent)]
    Query(#[from] super::QueryError),
}
