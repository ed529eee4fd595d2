//! `polling.yaml` (Ceilometer Pike and later, `--polling FILE`): what is polled, how
//! often and for which resources. With it, the pipeline's sources only route: every
//! polled sample goes to each pipeline source whose meters allow it, and on to that
//! source's sinks; their `interval` and `resources` are not used.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml::Value;

use super::config::Catalog;
use super::error::{ConfigError, ConfigErrors};
use super::meters::MeterFilter;
use super::validator::{join, kind, read_text, Validator};

/// A validated polling definition.
#[derive(Debug, Clone)]
pub struct PollingConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// Sources, in file order.
    pub sources: Vec<PollingSource>,
    /// What works but is probably a mistake, in file order.
    pub warnings: Vec<ConfigError>,
}

/// One polling source: which meters, how often, for which resources.
#[derive(Debug, Clone)]
pub struct PollingSource {
    /// Unique name.
    pub name: String,
    /// Polling period (required, as in Ceilometer).
    pub interval: Duration,
    /// Which meters are polled.
    pub meters: MeterFilter,
    /// Handed to the pollers.
    pub resources: Vec<String>,
}

/// Reads and validates a polling file.
pub fn load_polling(file: &Path, catalog: &Catalog<'_>) -> Result<PollingConfig, ConfigErrors> {
    let text = read_text(
        file,
        "polling file",
        "give another with --polling or CEILO_POLLING",
    )?;
    parse_polling(file, &text, catalog)
}

/// Validates polling text (`file` is used in messages).
pub fn parse_polling(
    file: &Path,
    text: &str,
    catalog: &Catalog<'_>,
) -> Result<PollingConfig, ConfigErrors> {
    let (mut v, root) = Validator::open(file, text)?;
    let mut sources = Vec::new();
    match root.as_mapping() {
        None => v.err(
            "",
            None,
            "the polling file must be a mapping with a `sources` list",
        ),
        Some(map) => {
            v.unknown_keys(map, "", None, &["sources"]);
            let items = v.list(map, "sources", "", None, true);
            v.duplicates(&items, "sources", "polling source");
            for (i, item) in items.iter().enumerate() {
                if let Some(s) = source(&mut v, item, &format!("sources[{i}]"), catalog) {
                    sources.push(s);
                }
            }
        }
    }
    let warnings = v.finish()?;
    Ok(PollingConfig {
        file: file.to_owned(),
        sources,
        warnings,
    })
}

fn source(
    v: &mut Validator,
    item: &Value,
    path: &str,
    catalog: &Catalog<'_>,
) -> Option<PollingSource> {
    let Some(map) = item.as_mapping() else {
        v.err(
            path,
            None,
            format!("a polling source must be a mapping, found {}", kind(item)),
        );
        return None;
    };
    let name = v.name(map, path, "polling source");
    let ctx = name.as_ref().map(|n| format!("polling source `{n}`"));
    let ctx = ctx.as_deref();
    if map.contains_key("sinks") {
        v.err(
            &join(path, "sinks"),
            ctx,
            "polling sources have no sinks: routing to sinks is pipeline.yaml's (give this file with --polling, the pipeline with --pipeline)",
        );
    }
    v.unknown_keys(
        map,
        path,
        ctx,
        &[
            "name",
            "interval",
            "meters",
            "resources",
            "discovery",
            "sinks",
        ],
    );
    let interval = v.interval(map, path, ctx, None);
    let meters = v.meters(map, path, ctx, catalog, true);
    let resources_raw = v.list(map, "resources", path, ctx, false);
    let resources = v.strings(&resources_raw, &join(path, "resources"), ctx);
    let discovery = v.list(map, "discovery", path, ctx, false);
    if !discovery.is_empty() {
        // Ceilometer's discovery plugins ask OpenStack services for resources; ceilo's
        // pollers find their own, or take `resources`.
        v.warn(
            &join(path, "discovery"),
            ctx,
            "`discovery` is ignored: ceilo has no discovery plugins (pollers find their own resources, or list them under `resources`)",
        );
    }
    Some(PollingSource {
        name: name?,
        interval: Duration::from_secs(interval?),
        meters: meters?,
        resources,
    })
}
