//! `--plugin-config`: one file for the parameters of every plugin that `pipeline.yaml`
//! has no place for — pollers and notification handlers — by kind, then plugin name.
//! Transformers take theirs from the sink's `parameters`, publishers from their URL.
//! The older `--handler-config` (a flat mapping of handler name to parameters) still
//! works and is merged in.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::error::{ConfigError, ConfigErrors};
use super::positions::Pos;
use super::validator::{join, kind, read_text, Validator};
use crate::loader::{closest, PluginKind, PluginRegistry};

/// The sections a plugin configuration file may have.
const SECTIONS: [&str; 2] = ["pollers", "notification_handlers"];

/// Parameters by plugin, with where each was written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginParams {
    /// Poller name → parameters.
    pub pollers: BTreeMap<String, serde_json::Value>,
    /// Notification handler name → parameters.
    pub handlers: BTreeMap<String, serde_json::Value>,
    /// Where each plugin's parameters were written, for errors found later (a create
    /// that fails): (kind, name) → file and position.
    places: BTreeMap<(PluginKind, String), (PathBuf, Option<Pos>)>,
}

impl PluginParams {
    /// The parameters of `name` (`{}` when none are configured).
    pub fn of(&self, kind: PluginKind, name: &str) -> serde_json::Value {
        let map = match kind {
            PluginKind::Poller => &self.pollers,
            PluginKind::Notification => &self.handlers,
            _ => return serde_json::json!({}),
        };
        map.get(name)
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}))
    }

    /// Whether `name` has parameters configured.
    pub fn configured(&self, kind: PluginKind, name: &str) -> bool {
        self.places.contains_key(&(kind, name.to_owned()))
    }

    /// An error about `name`'s parameters, located where they were written.
    pub fn error(&self, kind: PluginKind, name: &str, message: String) -> ConfigError {
        let (file, pos) = self
            .places
            .get(&(kind, name.to_owned()))
            .cloned()
            .unwrap_or_default();
        ConfigError {
            file,
            pos,
            context: Some(format!("{} `{name}`", what(kind))),
            message,
        }
    }
}

/// Reads `--plugin-config` and `--handler-config` (either may be absent); every name
/// must be a loaded plugin of its kind. All errors of both files come in one report.
pub fn load_plugin_params(
    plugin_config: Option<&Path>,
    handler_config: Option<&Path>,
    registry: &PluginRegistry,
) -> Result<PluginParams, ConfigErrors> {
    let mut out = PluginParams::default();
    let mut errors = Vec::new();
    if let Some(file) = plugin_config {
        match parse_file(file, registry, &mut out, false) {
            Ok(()) => {}
            Err(e) => errors.extend(e.0),
        }
    }
    if let Some(file) = handler_config {
        match parse_file(file, registry, &mut out, true) {
            Ok(()) => {}
            Err(e) => errors.extend(e.0),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// One file: sectioned (`--plugin-config`) or the flat handler mapping (`flat`).
fn parse_file(
    file: &Path,
    registry: &PluginRegistry,
    out: &mut PluginParams,
    flat: bool,
) -> Result<(), ConfigErrors> {
    let (what, hint) = if flat {
        (
            "handler configuration",
            "give another with --handler-config",
        )
    } else {
        ("plugin configuration", "give another with --plugin-config")
    };
    let text = read_text(file, what, hint)?;
    let (mut v, mut root) = Validator::open(file, &text)?;
    if let Err(e) = root.apply_merge() {
        v.err("", None, format!("a `<<` merge cannot be applied: {e}"));
        return v.finish().map(|_| ());
    }
    let root = match root {
        Value::Null => return v.finish().map(|_| ()),
        Value::Mapping(m) => m,
        other => {
            v.err(
                "",
                None,
                format!("expected a mapping, found {}", kind(&other)),
            );
            return v.finish().map(|_| ());
        }
    };
    if flat {
        section(&mut v, out, registry, PluginKind::Notification, "", &root);
        return v.finish().map(|_| ());
    }
    for (key, value) in &root {
        let k = key.as_str().unwrap_or("?");
        let plugin_kind = match k {
            "pollers" => PluginKind::Poller,
            "notification_handlers" | "handlers" => PluginKind::Notification,
            "transformers" => {
                v.err_key(k, "transformer parameters are written in pipeline.yaml, in the sink's transformer entry (`parameters:`), not here");
                continue;
            }
            "publishers" => {
                v.err_key(k, "publisher options are written in the publisher's URL in pipeline.yaml (`amqp://host/?policy=queue`), not here");
                continue;
            }
            _ => {
                let known: Vec<String> = SECTIONS.iter().map(|s| s.to_string()).collect();
                let guess = closest(k, &known)
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                v.err_key(
                    k,
                    format!(
                        "unknown section `{k}` ({guess}known: {}; each maps plugin names to their parameters)",
                        SECTIONS.join(", ")
                    ),
                );
                continue;
            }
        };
        match value {
            Value::Null => {}
            Value::Mapping(m) => section(&mut v, out, registry, plugin_kind, k, m),
            other => v.err(
                k,
                None,
                format!(
                    "`{k}` must map plugin names to their parameters, found {}",
                    kind(other)
                ),
            ),
        }
    }
    v.finish().map(|_| ())
}

/// One section: plugin name → parameters (a mapping, or nothing).
fn section(
    v: &mut Validator,
    out: &mut PluginParams,
    registry: &PluginRegistry,
    plugin_kind: PluginKind,
    path: &str,
    map: &serde_yaml::Mapping,
) {
    let loaded = registry.names(plugin_kind);
    let plugin_kind_name = what(plugin_kind);
    for (key, value) in map {
        let name = key.as_str().unwrap_or("?").to_owned();
        let at = join(path, &name);
        if !loaded.contains(&name) {
            let guess = closest(&name, &loaded)
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            v.err_key(
                &at,
                format!(
                    "no {plugin_kind_name} named `{name}` is loaded ({guess}loaded: {})",
                    if loaded.is_empty() {
                        "none".to_owned()
                    } else {
                        loaded.join(", ")
                    }
                ),
            );
            continue;
        }
        let params = match value {
            Value::Null => serde_json::json!({}),
            Value::Mapping(_) => match serde_json::to_value(value) {
                Ok(p) => p,
                Err(e) => {
                    v.err(&at, None, format!("parameters not representable: {e}"));
                    continue;
                }
            },
            other => {
                v.err(
                    &at,
                    None,
                    format!(
                        "the parameters of {plugin_kind_name} `{name}` must be a mapping, found {}",
                        kind(other)
                    ),
                );
                continue;
            }
        };
        let place_key = (plugin_kind, name.clone());
        if out.places.contains_key(&place_key) {
            v.err_key(
                &at,
                format!("the parameters of {plugin_kind_name} `{name}` are given twice (--plugin-config and --handler-config): keep one"),
            );
            continue;
        }
        let pos = v.key_pos(&at);
        out.places.insert(place_key, (v.file.clone(), pos));
        match plugin_kind {
            PluginKind::Poller => out.pollers.insert(name, params),
            _ => out.handlers.insert(name, params),
        };
    }
}

/// A kind as the operator reads it in these errors.
fn what(kind: PluginKind) -> &'static str {
    match kind {
        PluginKind::Notification => "notification handler",
        other => other.as_str(),
    }
}
