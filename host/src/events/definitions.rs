//! `event_definitions.yaml`: which notifications become which events, with which
//! traits — Ceilometer's format, read unchanged (as PyYAML reads it: anchors, `<<`
//! merges, a repeated key's last value).
//!
//! A definition names its event types (shell globs; `!glob` excludes; exclusions
//! alone mean "everything else") and its traits: `name: {type, fields}` or
//! `name: fields`, where `fields` is one JSONPath (Ceilometer's dialect) or a list
//! of them tried in order, the first non-null match winning. Every definition also
//! gets the default traits (`service`, `request_id`, `project_id`, `user_id`,
//! `tenant_id`), which its own traits of the same name replace.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ceilo_jsonpath::{self as jsonpath, Expr};
use ceilo_plugin_api::TraitMatch;
use serde_json::{Map, Value};

use super::model::{Event, Trait, TraitType};
use crate::loader::{CreateError, PluginKind, PluginRegistry, TraitPluginInstance};
use crate::pipeline::{Pos, Positions};

/// Where trait definitions get the plugins their `plugin:` names.
pub trait TraitPluginSource {
    /// A new instance of trait plugin `name` with `parameters`; the error says why
    /// there is none.
    fn create_trait_plugin(
        &self,
        name: &str,
        parameters: &Value,
    ) -> Result<TraitPluginInstance, String>;
}

/// No trait plugins (a definition naming one is refused).
pub struct NoTraitPlugins;

impl TraitPluginSource for NoTraitPlugins {
    fn create_trait_plugin(&self, name: &str, _: &Value) -> Result<TraitPluginInstance, String> {
        Err(format!(
            "no trait plugin named `{}` is loaded (no plugin directory was given)",
            crate::redact::shorten(name, 80)
        ))
    }
}

impl TraitPluginSource for PluginRegistry {
    fn create_trait_plugin(
        &self,
        name: &str,
        parameters: &Value,
    ) -> Result<TraitPluginInstance, String> {
        let ctx = ceilo_plugin_api::Context::new(name, "event definitions");
        PluginRegistry::create_trait_plugin(self, name, parameters, ctx).map_err(|e| match e {
            CreateError::Unknown { .. } => {
                let known = self.names(PluginKind::Trait);
                format!(
                    "no trait plugin named `{}` is loaded (loaded trait plugins: {})",
                    crate::redact::shorten(name, 80),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )
            }
            CreateError::Plugin(e) => {
                format!("bad parameters for trait plugin: {}", e.error.message())
            }
        })
    }
}

/// A trait plugin instance a definition holds (conversions call it in turn).
#[derive(Debug, Clone)]
struct SharedPlugin(Arc<Mutex<TraitPluginInstance>>);

/// The traits every event has, as Ceilometer defines them: (name, fields).
const DEFAULT_TRAITS: [(&str, &[&str]); 5] = [
    ("service", &["publisher_id"]),
    ("request_id", &["ctxt.request_id"]),
    ("project_id", &["payload.tenant_id", "ctxt.project_id"]),
    ("user_id", &["payload.user_id", "ctxt.user_id"]),
    ("tenant_id", &["payload.tenant_id", "ctxt.project_id"]),
];

/// How a trait's value is found.
#[derive(Debug, Clone)]
enum Getter {
    /// `fields:` one path, or several joined as a union.
    Path(Expr),
    /// `fields: 42`: a constant (Ceilometer takes an integer as the value itself).
    Constant(Value),
}

/// One trait of a definition, compiled.
#[derive(Debug, Clone)]
pub struct TraitDefinition {
    name: String,
    trait_type: TraitType,
    getter: Getter,
    plugin: Option<SharedPlugin>,
}

impl TraitDefinition {
    /// Compiles `name: cfg` (a mapping with `fields` and an optional `type`, or the
    /// fields alone); a definition naming a plugin is refused.
    pub fn new(name: &str, cfg: &Value) -> Result<TraitDefinition, String> {
        TraitDefinition::with_plugins(name, cfg, &NoTraitPlugins)
    }

    /// Compiles `name: cfg`, creating the trait plugin its `plugin:` names (`NAME`,
    /// or `{name: NAME, parameters: {…}}`) from `plugins`.
    pub fn with_plugins(
        name: &str,
        cfg: &Value,
        plugins: &dyn TraitPluginSource,
    ) -> Result<TraitDefinition, String> {
        let mut plugin = None;
        let (fields, type_name) = match cfg {
            Value::Object(m) => {
                let fields = m
                    .get("fields")
                    .ok_or_else(|| format!("trait `{name}`: `fields` is required"))?;
                if let Some(p) = m.get("plugin") {
                    let (plugin_name, params) = plugin_config(name, p)?;
                    let instance = plugins
                        .create_trait_plugin(plugin_name, &params)
                        .map_err(|e| format!("trait `{name}`: {e}"))?;
                    plugin = Some(SharedPlugin(Arc::new(Mutex::new(instance))));
                }
                let t = match m.get("type") {
                    None | Some(Value::Null) => "text".to_owned(),
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                };
                (fields, t)
            }
            other => (other, "text".to_owned()),
        };
        let trait_type = TraitType::from_name(&type_name).ok_or_else(|| {
            format!(
                "trait `{name}`: invalid type `{}`: use text, int, float or datetime",
                crate::redact::shorten(&type_name, 80)
            )
        })?;
        let getter = match fields {
            Value::Number(n) if n.is_i64() || n.is_u64() => Getter::Constant(fields.clone()),
            Value::String(path) => Getter::Path(parse_path(name, path)?),
            Value::Array(paths) => {
                let texts = paths
                    .iter()
                    .map(|p| match p {
                        Value::String(s) => Ok(s.as_str()),
                        other => Err(format!(
                            "trait `{name}`: each of `fields` must be a path, not `{}`",
                            crate::redact::shorten(&other.to_string(), 80)
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                match texts.as_slice() {
                    [] => return Err(format!("trait `{name}`: `fields` is an empty list")),
                    [one] => Getter::Path(parse_path(name, one)?),
                    many => {
                        let joined: Vec<String> = many.iter().map(|p| format!("({p})")).collect();
                        Getter::Path(parse_path(name, &joined.join("|"))?)
                    }
                }
            }
            other => {
                return Err(format!(
                    "trait `{name}`: `fields` must be a path or a list of paths, not `{}`",
                    crate::redact::shorten(&other.to_string(), 80)
                ))
            }
        };
        Ok(TraitDefinition {
            name: name.to_owned(),
            trait_type,
            getter,
            plugin,
        })
    }

    /// The trait's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The trait's type.
    pub fn trait_type(&self) -> TraitType {
        self.trait_type
    }

    /// The trait of `body`: none when no field matches with a non-null value (or,
    /// for a type other than text, matches `""`, which some services send for
    /// "unset"); an error when the value does not convert to the type.
    pub fn to_trait(&self, body: &Value) -> Result<Option<Trait>, String> {
        let value = match (&self.getter, &self.plugin) {
            (Getter::Constant(v), _) => v.clone(),
            (Getter::Path(expr), None) => match expr.first(body) {
                Some(v) => v,
                None => return Ok(None),
            },
            // The plugin gets every non-null match (even none) and the first
            // non-null value it gives back is the trait's, as in Ceilometer.
            (Getter::Path(expr), Some(SharedPlugin(p))) => {
                let matches: Vec<TraitMatch> = expr
                    .find_with_paths(body)
                    .into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(path, value)| TraitMatch { path, value })
                    .collect();
                let mut plugin = p.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let values = plugin
                    .trait_values(&matches)
                    .map_err(|e| format!("trait `{}`: {e}", self.name))?;
                match values.into_iter().find(|v| !v.is_null()) {
                    Some(v) => v,
                    None => return Ok(None),
                }
            }
        };
        if self.trait_type != TraitType::Text && value == Value::String(String::new()) {
            return Ok(None);
        }
        let value = self
            .trait_type
            .convert(&value)
            .map_err(|e| format!("trait `{}`: {e}", self.name))?;
        Ok(Some(Trait {
            name: self.name.clone(),
            value,
        }))
    }
}

fn parse_path(name: &str, path: &str) -> Result<Expr, String> {
    jsonpath::parse(path).map_err(|e| {
        format!(
            "trait `{name}`: JSONPath `{}` does not parse, {e}",
            crate::redact::shorten(path, 80)
        )
    })
}

/// A trait's `plugin:`: `NAME` or `{name: NAME, parameters: {…}}`.
fn plugin_config<'a>(name: &str, plugin: &'a Value) -> Result<(&'a str, Value), String> {
    let missing = || format!("trait `{name}`: `plugin` is given without a plugin `name`");
    match plugin {
        Value::String(s) => Ok((s.as_str(), Value::Object(Map::new()))),
        Value::Object(m) => {
            let plugin_name = m.get("name").and_then(Value::as_str).ok_or_else(missing)?;
            let params = match m.get("parameters") {
                None | Some(Value::Null) => Value::Object(Map::new()),
                Some(p @ Value::Object(_)) => p.clone(),
                Some(other) => {
                    return Err(format!(
                        "trait `{name}`: plugin `parameters` must be a mapping, not `{}`",
                        crate::redact::shorten(&other.to_string(), 80)
                    ))
                }
            };
            Ok((plugin_name, params))
        }
        _ => Err(missing()),
    }
}

/// A glob of event types, as Python's `fnmatch` (case-sensitive).
#[derive(Debug, Clone)]
struct TypePattern {
    text: String,
    glob: glob::Pattern,
}

impl TypePattern {
    fn new(text: &str) -> Result<TypePattern, String> {
        let glob = glob::Pattern::new(text).map_err(|e| {
            format!(
                "event type pattern `{}`: {e}",
                crate::redact::shorten(text, 80)
            )
        })?;
        Ok(TypePattern {
            text: text.to_owned(),
            glob,
        })
    }

    fn matches(&self, event_type: &str) -> bool {
        self.glob.matches(event_type)
    }
}

/// One definition of `event_definitions.yaml`, compiled.
#[derive(Debug, Clone)]
pub struct EventDefinition {
    included: Vec<TypePattern>,
    excluded: Vec<TypePattern>,
    traits: Vec<TraitDefinition>,
}

impl EventDefinition {
    /// Compiles one definition (`event_type` and `traits` are required); a trait
    /// naming a plugin is refused.
    pub fn new(cfg: &Value) -> Result<EventDefinition, String> {
        EventDefinition::with_plugins(cfg, &NoTraitPlugins)
    }

    /// Compiles one definition, its traits' plugins from `plugins`.
    pub fn with_plugins(
        cfg: &Value,
        plugins: &dyn TraitPluginSource,
    ) -> Result<EventDefinition, String> {
        let map = cfg
            .as_object()
            .ok_or("a definition must be a mapping with `event_type` and `traits`")?;
        let event_type = map.get("event_type").ok_or("`event_type` is required")?;
        let traits = map.get("traits").ok_or("`traits` is required")?;
        let types: Vec<&str> = match event_type {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a
                .iter()
                .map(|t| {
                    t.as_str()
                        .ok_or("`event_type` must be a pattern or a list of patterns")
                })
                .collect::<Result<_, _>>()?,
            _ => return Err("`event_type` must be a pattern or a list of patterns".into()),
        };
        let mut included = Vec::new();
        let mut excluded = Vec::new();
        for t in types {
            match t.strip_prefix('!') {
                Some(rest) => excluded.push(TypePattern::new(rest)?),
                None => included.push(TypePattern::new(t)?),
            }
        }
        if included.is_empty() && !excluded.is_empty() {
            included.push(TypePattern::new("*")?);
        }
        let mut defs: Vec<TraitDefinition> = DEFAULT_TRAITS
            .iter()
            .map(|(name, fields)| {
                let fields = Value::Array(fields.iter().map(|f| Value::from(*f)).collect());
                TraitDefinition::new(name, &fields)
            })
            .collect::<Result<_, _>>()?;
        let own: &Map<String, Value> = match traits {
            Value::Object(m) => m,
            Value::Null => &Map::new(),
            _ => return Err("`traits` must be a mapping of trait names to definitions".into()),
        };
        for (name, tcfg) in own {
            let def = TraitDefinition::with_plugins(name, tcfg, plugins)?;
            // Replaces a default trait in its place (as a Python dict assignment).
            match defs.iter_mut().find(|d| d.name == *name) {
                Some(slot) => *slot = def,
                None => defs.push(def),
            }
        }
        Ok(EventDefinition {
            included,
            excluded,
            traits: defs,
        })
    }

    /// The catch-all Ceilometer adds when no definition matches everything: `*`
    /// with the default traits alone.
    pub fn catch_all() -> EventDefinition {
        let cfg = serde_json::json!({"event_type": "*", "traits": {}});
        match EventDefinition::new(&cfg) {
            Ok(d) => d,
            // The default traits are constants that parse (a unit test checks it).
            Err(e) => unreachable!("the catch-all definition is valid: {e}"),
        }
    }

    /// Whether this definition handles `event_type`.
    pub fn match_type(&self, event_type: &str) -> bool {
        self.included.iter().any(|p| p.matches(event_type))
            && !self.excluded.iter().any(|p| p.matches(event_type))
    }

    /// Whether it matches every event type (`*` included, nothing excluded).
    pub fn is_catch_all(&self) -> bool {
        self.excluded.is_empty() && self.included.iter().any(|p| p.text == "*")
    }

    /// Its traits, the default ones first.
    pub fn traits(&self) -> &[TraitDefinition] {
        &self.traits
    }

    /// The event of a notification in Ceilometer's shape (`event_type`,
    /// `metadata.message_id`, `metadata.timestamp`, `payload`, `ctxt`,
    /// `publisher_id`), with its raw body when `keep_raw`. Traits whose value does
    /// not convert are left out and reported in the second element.
    pub fn to_event(&self, body: &Value, keep_raw: bool) -> Result<(Event, Vec<String>), String> {
        let event_type = body
            .get("event_type")
            .and_then(Value::as_str)
            .ok_or("no `event_type`")?;
        let metadata = body.get("metadata").ok_or("no `metadata`")?;
        let message_id = match metadata.get("message_id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => return Err("no `metadata.message_id`".into()),
            Some(other) => other.to_string(),
        };
        let when = metadata
            .get("timestamp")
            .and_then(Value::as_str)
            .ok_or("no `metadata.timestamp`")?;
        let generated = ceilo_plugin_api::parse_timestamp(when).map_err(|_| {
            format!(
                "`metadata.timestamp` `{}` is not an ISO 8601 time",
                crate::redact::shorten(when, 80)
            )
        })?;
        let mut traits = Vec::new();
        let mut problems = Vec::new();
        for d in &self.traits {
            match d.to_trait(body) {
                Ok(Some(t)) => traits.push(t),
                Ok(None) => {}
                Err(e) => problems.push(e),
            }
        }
        Ok((
            Event {
                message_id,
                event_type: event_type.to_owned(),
                generated,
                traits,
                raw: if keep_raw {
                    body.clone()
                } else {
                    Value::Object(Map::new())
                },
            },
            problems,
        ))
    }
}

/// A definition the file holds that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefinitionError {
    /// The file.
    pub file: PathBuf,
    /// Where, when the YAML says.
    pub pos: Option<Pos>,
    /// `definition 3`, when one definition is at fault.
    pub context: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.pos {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        if let Some(c) = &self.context {
            write!(f, ": {c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// What a definitions file yields: the definitions that compiled, in file order,
/// and one error per definition that did not (Ceilometer refuses such a file; ceilo
/// reports every bad definition at once, and `ceilo validate` fails on any).
#[derive(Debug)]
pub struct LoadedDefinitions {
    /// The usable definitions, in file order.
    pub definitions: Vec<EventDefinition>,
    /// The refused ones.
    pub errors: Vec<DefinitionError>,
}

/// Reads and compiles `path`. A file that is not YAML, or not a list, is one error.
/// No trait plugins: see [`load_with_plugins`].
pub fn load(path: &Path) -> Result<LoadedDefinitions, DefinitionError> {
    load_with_plugins(path, &NoTraitPlugins)
}

/// Reads and compiles `path`, with trait plugins from `plugins`.
pub fn load_with_plugins(
    path: &Path,
    plugins: &dyn TraitPluginSource,
) -> Result<LoadedDefinitions, DefinitionError> {
    let text = std::fs::read_to_string(path).map_err(|e| DefinitionError {
        file: path.to_owned(),
        pos: None,
        context: None,
        message: format!("cannot read it: {e}"),
    })?;
    parse_with_plugins(path, &text, plugins)
}

/// Compiles the text of a definitions file (`path` names it in errors), without
/// trait plugins.
pub fn parse(path: &Path, text: &str) -> Result<LoadedDefinitions, DefinitionError> {
    parse_with_plugins(path, text, &NoTraitPlugins)
}

/// Compiles the text of a definitions file, with trait plugins from `plugins`.
pub fn parse_with_plugins(
    path: &Path,
    text: &str,
    plugins: &dyn TraitPluginSource,
) -> Result<LoadedDefinitions, DefinitionError> {
    let whole = |pos: Option<Pos>, message: String| DefinitionError {
        file: path.to_owned(),
        pos,
        context: None,
        message,
    };
    let value = super::yaml::load(text)
        .map_err(|e| whole(e.pos, format!("not valid YAML: {}", e.message)))?;
    let list = match value {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        _ => {
            return Err(whole(
                Some(Pos { line: 1, column: 1 }),
                "must be a list of definitions (`- event_type: …` entries)".into(),
            ))
        }
    };
    let positions = Positions::index(text);
    let mut out = LoadedDefinitions {
        definitions: Vec::new(),
        errors: Vec::new(),
    };
    for (i, cfg) in list.iter().enumerate() {
        match EventDefinition::with_plugins(cfg, plugins) {
            Ok(d) => out.definitions.push(d),
            Err(message) => {
                // Point at the trait when the message names one.
                let trait_path = message
                    .strip_prefix("trait `")
                    .and_then(|r| r.split_once('`'))
                    .map(|(name, _)| format!("[{i}].traits.{name}"));
                let pos = trait_path
                    .and_then(|p| positions.key(&p))
                    .or_else(|| positions.get(&format!("[{i}]")));
                let types = cfg
                    .get("event_type")
                    .map(|t| crate::redact::shorten(&t.to_string(), 80))
                    .unwrap_or_default();
                out.errors.push(DefinitionError {
                    file: path.to_owned(),
                    pos,
                    context: Some(if types.is_empty() {
                        format!("definition {}", i + 1)
                    } else {
                        format!("definition {} (event_type {types})", i + 1)
                    }),
                    message,
                });
            }
        }
    }
    Ok(out)
}
