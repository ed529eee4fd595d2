//! `pipeline.yaml`: parsing (serde_yaml) and validation with every check Ceilometer
//! makes, each error located (file, line, column), naming the source or sink, and
//! saying what to do. All errors are collected, not just the first.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ceilo_plugin_api::Context;
use serde_yaml::Value;

use super::error::{ConfigError, ConfigErrors};
use super::legacy;
use super::meters::MeterFilter;
use super::validator::{join, kind, read_text, Validator};
use crate::loader::{closest, CreateError, PluginKind, PluginRegistry};
use crate::redact::mask_url;

/// A validated pipeline definition.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// Sources, in file order.
    pub sources: Vec<SourceConfig>,
    /// Sinks, in file order.
    pub sinks: Vec<SinkConfig>,
    /// What works but is probably a mistake (a meter nothing produces), in file
    /// order. Services log them and run; `--strict` makes them errors.
    pub warnings: Vec<ConfigError>,
    /// polling.yaml (`--polling`), when given: it then decides what is polled, how
    /// often and for which resources, and the sources above only route.
    pub polling: Option<super::PollingConfig>,
    /// Parameters of pollers and notification handlers (`--plugin-config`,
    /// `--handler-config`).
    pub plugins: super::PluginParams,
}

/// A source: which meters, how often, for which resources, to which sinks.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Unique name.
    pub name: String,
    /// Polling period.
    pub interval: Duration,
    /// Meter filter.
    pub meters: MeterFilter,
    /// Handed to pollers.
    pub resources: Vec<String>,
    /// Sink names.
    pub sinks: Vec<String>,
}

impl SourceConfig {
    /// What this source polls, when no polling.yaml is given.
    pub fn polling(&self) -> super::PollingSource {
        super::PollingSource {
            name: self.name.clone(),
            interval: self.interval,
            meters: self.meters.clone(),
            resources: self.resources.clone(),
        }
    }
}

/// A sink: transformers then publishers.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    /// Unique name.
    pub name: String,
    /// In order.
    pub transformers: Vec<TransformerConfig>,
    /// Each gets every sample leaving the transformers.
    pub publishers: Vec<PublisherConfig>,
}

/// A transformer entry.
#[derive(Debug, Clone, PartialEq)]
pub struct TransformerConfig {
    /// Plugin name.
    pub name: String,
    /// The YAML `parameters` mapping, as JSON.
    pub parameters: serde_json::Value,
}

/// A publisher entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PublisherConfig {
    /// As written.
    pub url: String,
    /// The URL scheme, which names the publisher plugin.
    pub scheme: String,
}

/// Ceilometer's default polling interval when a source gives none.
pub const DEFAULT_INTERVAL_SECS: u64 = 600;

/// What the validator knows of the loaded plugins.
pub struct Catalog<'a> {
    /// The registry (transformer and publisher names; transformer parameters are
    /// checked by creating an instance).
    pub registry: &'a PluginRegistry,
    /// Meters produced by each poller.
    pub poller_meters: &'a BTreeMap<String, Vec<String>>,
    /// Meters declared by each notification handler (empty: not known in advance).
    pub handler_meters: &'a BTreeMap<String, Vec<String>>,
    /// Some poller could not be asked for its meters (its `create` failed), so an
    /// unknown meter may be that poller's: not an error.
    pub pollers_failed: bool,
}

/// Reads and validates a pipeline file.
pub fn load(file: &Path, catalog: &Catalog<'_>) -> Result<PipelineConfig, ConfigErrors> {
    let text = read_text(
        file,
        "pipeline file",
        "give another with --pipeline or CEILO_PIPELINE",
    )?;
    parse(file, &text, catalog)
}

/// Validates pipeline text (`file` is used in messages).
pub fn parse(
    file: &Path,
    text: &str,
    catalog: &Catalog<'_>,
) -> Result<PipelineConfig, ConfigErrors> {
    let (mut v, root) = Validator::open(file, text)?;
    let root = match legacy::convert(&root) {
        Some(converted) => {
            // Ceilometer read this format for years, with a warning; so does ceilo.
            tracing::info!(target: "ceilo::pipeline", "{}: the original pipeline format (a list of pipelines, Ceilometer 2013): read as one source and one sink per pipeline, each with its name", file.display());
            v.legacy = true;
            converted
        }
        None => root,
    };
    let mut config = v.root(&root, catalog);
    config.warnings = v.finish()?;
    Ok(config)
}

impl Validator {
    fn root(&mut self, root: &Value, catalog: &Catalog<'_>) -> PipelineConfig {
        let mut config = PipelineConfig {
            file: self.file.clone(),
            sources: Vec::new(),
            sinks: Vec::new(),
            warnings: Vec::new(),
            polling: None,
            plugins: super::PluginParams::default(),
        };
        let Some(map) = root.as_mapping() else {
            self.err(
                "",
                None,
                "the file must be a mapping with `sources` and `sinks` lists",
            );
            return config;
        };
        self.unknown_keys(map, "", None, &["sources", "sinks"]);
        let sources = self.list(map, "sources", "", None, true);
        let sinks = self.list(map, "sinks", "", None, true);

        // Names first (even of invalid entries), so sources are checked against
        // every sink defined and each duplicate is reported once.
        self.duplicates(&sources, "sources", "source");
        let sink_names = self.duplicates(&sinks, "sinks", "sink");
        for (i, item) in sinks.iter().enumerate() {
            if let Some(sink) = self.sink(item, &format!("sinks[{i}]"), catalog) {
                config.sinks.push(sink);
            }
        }
        for (i, item) in sources.iter().enumerate() {
            let path = format!("sources[{i}]");
            if let Some(source) = self.source(item, &path, &sink_names, catalog) {
                config.sources.push(source);
            }
        }
        config
    }

    fn source(
        &mut self,
        item: &Value,
        path: &str,
        sinks: &HashSet<String>,
        catalog: &Catalog<'_>,
    ) -> Option<SourceConfig> {
        let Some(map) = item.as_mapping() else {
            self.err(
                path,
                None,
                format!("a source must be a mapping, found {}", kind(item)),
            );
            return None;
        };
        let name = self.name(map, path, "source");
        let ctx = name.as_ref().map(|n| format!("source `{n}`"));
        let ctx = ctx.as_deref();
        self.unknown_keys(
            map,
            path,
            ctx,
            &["name", "interval", "meters", "resources", "sinks"],
        );

        let interval = self.interval(map, path, ctx, Some(DEFAULT_INTERVAL_SECS));
        let meters = self.meters(map, path, ctx, catalog, false);

        let resources_raw = self.list(map, "resources", path, ctx, false);
        let resources = self.strings(&resources_raw, &join(path, "resources"), ctx);

        let sink_names = self.sink_refs(map, path, ctx, sinks);
        Some(SourceConfig {
            name: name?,
            interval: Duration::from_secs(interval?),
            meters: meters?,
            resources,
            sinks: sink_names,
        })
    }

    fn sink(&mut self, item: &Value, path: &str, catalog: &Catalog<'_>) -> Option<SinkConfig> {
        let Some(map) = item.as_mapping() else {
            self.err(
                path,
                None,
                format!("a sink must be a mapping, found {}", kind(item)),
            );
            return None;
        };
        let name = self.name(map, path, "sink");
        let ctx_owned = name.as_ref().map(|n| format!("sink `{n}`"));
        let ctx = ctx_owned.as_deref();
        self.unknown_keys(map, path, ctx, &["name", "transformers", "publishers"]);

        let mut transformers = Vec::new();
        let items = self.list(map, "transformers", path, ctx, false);
        for (i, t) in items.iter().enumerate() {
            let tpath = format!("{path}.transformers[{i}]");
            if let Some(tc) = self.transformer(t, &tpath, ctx, catalog) {
                transformers.push(tc);
            }
        }

        let mut publishers = Vec::new();
        let items = self.list(map, "publishers", path, ctx, false);
        if items.is_empty() {
            self.err(path, ctx, "no publishers: list at least one publisher URL under `publishers` (e.g. file:samples.json)");
        }
        let urls = self.strings(&items, &join(path, "publishers"), ctx);
        let mut known: Vec<String> = catalog.registry.names(PluginKind::Publisher);
        known.push(DIRECT_SCHEME.to_owned());
        for (i, url) in urls.iter().enumerate() {
            // Ceilometer 2013.1's name for its RPC publisher, which became notifier://.
            let url = if url == "meter_publisher" {
                "notifier://"
            } else {
                url.as_str()
            };
            let scheme = url.split(':').next().unwrap_or("").to_owned();
            if scheme.is_empty() || !url.contains(':') {
                self.err(&format!("{path}.publishers[{i}]"), ctx, format!("`{}` is not a publisher URL (scheme://…, e.g. file:///var/lib/ceilo/samples.json)", mask_url(url)));
                continue;
            }
            if scheme == DIRECT_SCHEME && url.trim_end_matches('/') != "direct:" {
                self.err(
                    &format!("{path}.publishers[{i}]"),
                    ctx,
                    format!("`{url}`: the direct publisher takes no path or options; write `direct://` (the store is chosen by --storage / CEILO_STORAGE_URL)"),
                );
                continue;
            }
            if !known.contains(&scheme) {
                let guess = closest(&scheme, &known)
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_else(|| ceilometer_publisher_hint(&scheme));
                self.err(
                    &format!("{path}.publishers[{i}]"),
                    ctx,
                    format!(
                        "unknown publisher `{scheme}` in `{}` ({guess}loaded publishers: {})",
                        mask_url(url),
                        known.join(", ")
                    ),
                );
                continue;
            }
            publishers.push(PublisherConfig {
                url: url.to_owned(),
                scheme,
            });
        }
        Some(SinkConfig {
            name: name?,
            transformers,
            publishers,
        })
    }

    fn transformer(
        &mut self,
        item: &Value,
        path: &str,
        ctx: Option<&str>,
        catalog: &Catalog<'_>,
    ) -> Option<TransformerConfig> {
        let Some(map) = item.as_mapping() else {
            self.err(
                path,
                ctx,
                format!(
                    "a transformer must be a mapping with `name` and `parameters`, found {}",
                    kind(item)
                ),
            );
            return None;
        };
        self.unknown_keys(map, path, ctx, &["name", "parameters"]);
        let name = self.name(map, path, ctx.unwrap_or("sink"))?;
        let parameters = match map.get("parameters") {
            None | Some(Value::Null) => serde_json::json!({}),
            Some(p @ Value::Mapping(_)) => match serde_json::to_value(p) {
                Ok(v) => v,
                Err(e) => {
                    self.err(
                        &join(path, "parameters"),
                        ctx,
                        format!("parameters cannot be read: {e}"),
                    );
                    return None;
                }
            },
            Some(other) => {
                self.err(
                    &join(path, "parameters"),
                    ctx,
                    format!("`parameters` must be a mapping, found {}", kind(other)),
                );
                return None;
            }
        };
        // Creating an instance checks the parameters with the plugin's own rules.
        match catalog.registry.create_transformer(
            &name,
            &parameters,
            Context::new(name.as_str(), "validation"),
        ) {
            Ok(_) => Some(TransformerConfig { name, parameters }),
            Err(CreateError::Unknown { .. }) => {
                let known = catalog.registry.names(PluginKind::Transformer);
                let guess = closest(&name, &known)
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                self.err(
                    &join(path, "name"),
                    ctx,
                    format!(
                        "unknown transformer `{name}` ({guess}loaded transformers: {})",
                        known.join(", ")
                    ),
                );
                None
            }
            Err(CreateError::Plugin(e)) => {
                self.err(
                    &join(path, "parameters"),
                    ctx,
                    format!(
                        "bad parameters for transformer `{name}`: {}",
                        e.error.message()
                    ),
                );
                None
            }
        }
    }
}

/// The host's own publisher: samples go straight to the configured store.
pub const DIRECT_SCHEME: &str = "direct";

/// What to use instead of a Ceilometer publisher ceilo does not have.
fn ceilometer_publisher_hint(scheme: &str) -> String {
    let what = match scheme {
        "rpc" | "notifier" => "Ceilometer's notifier publisher, which ceilo's amqp plugin library (libceilo_plugin_amqp.so) provides: put it in the plugin directory",
        "gnocchi" | "prometheus" | "http" | "https" | "opentelemetryhttp" | "tcp" => "a Ceilometer publisher that ceilo's remote publisher library (libceilo_plugin_remote.so) provides: put it in the plugin directory",
        "kafka" | "zaqar" => "a Ceilometer publisher ceilo has no plugin for (file:, udp://, amqp://, direct:// and the remote publishers of libceilo_plugin_remote.so are built in)",
        _ => return String::new(),
    };
    format!("{what}; ")
}
