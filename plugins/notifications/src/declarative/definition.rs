//! One meter definition of a `meters.yaml` (`metric:` entry), compiled, and how it
//! turns a notification into samples — Ceilometer's MeterDefinition.

use std::collections::BTreeMap;

use ceilo_plugin_api::{log_debug, parse_timestamp, Sample, SampleType};
use serde_json::{Map, Value};

use super::jsonpath::{self, Expr};

/// The sample attributes a definition may compute.
const ATTRIBUTES: [&str; 8] = [
    "name",
    "type",
    "volume",
    "unit",
    "timestamp",
    "user_id",
    "project_id",
    "resource_id",
];
const REQUIRED: [&str; 6] = [
    "name",
    "type",
    "event_type",
    "unit",
    "volume",
    "resource_id",
];

/// How one attribute is computed.
#[derive(Debug, Clone)]
enum Field {
    /// A constant (`volume: 1`, or text that is not a path).
    Literal(Value),
    /// A path; `literal` is the text itself, used when the path finds nothing
    /// (Ceilometer tries `name: image.size` as a path first).
    Path { expr: Expr, literal: Option<Value> },
    /// `{fields: [a, b], plugin: timedelta}`: seconds from a to b.
    TimeDelta(Expr, Expr),
}

/// A compiled definition.
#[derive(Debug)]
pub struct MeterDefinition {
    /// The configured name, for messages.
    pub name: String,
    event_types: Vec<fancy_regex::Regex>,
    /// `!pattern` entries: an event type matching one is never handled, whatever
    /// else matches (a list of exclusions only handles every other type).
    excluded_types: Vec<(String, fancy_regex::Regex)>,
    attributes: BTreeMap<&'static str, Field>,
    metadata: Vec<(String, Field)>,
    user_metadata: Option<Field>,
    lookup: Vec<String>,
    user_fallback: Expr,
    project_fallback: Expr,
}

impl MeterDefinition {
    /// Compiles a `metric:` entry; the error says what to fix.
    pub fn new(cfg: &Value) -> Result<MeterDefinition, String> {
        let map = cfg.as_object().ok_or("a definition must be a mapping")?;
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|f| map.get(*f).is_none_or(is_empty))
            .collect();
        if !missing.is_empty() {
            return Err(format!("required field(s) {} missing", missing.join(", ")));
        }
        let name = match &map["name"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let lookup: Vec<String> = match map.get("lookup") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(other) => return Err(format!("`lookup` must be a name or a list, found {other}")),
        };
        if !lookup.iter().any(|l| l == "type") {
            let t = map["type"].as_str().unwrap_or_default();
            if t.parse::<SampleType>().is_err() {
                return Err(format!("invalid type `{t}` (gauge, delta or cumulative)"));
            }
        }
        let event_types = match &map["event_type"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or("event_type entries must be text")
                })
                .collect::<Result<_, _>>()?,
            other => {
                return Err(format!(
                    "`event_type` must be a pattern or a list, found {other}"
                ))
            }
        };
        // Ceilometer applies each pattern with Python's re.match: anchored at the start.
        let compile = |p: &str| {
            fancy_regex::Regex::new(&format!("^(?:{p})"))
                .map_err(|e| format!("event_type `{p}`: {e}"))
        };
        let mut included = Vec::new();
        let mut excluded_types = Vec::new();
        for p in &event_types {
            match p.strip_prefix('!') {
                Some(x) => excluded_types.push((x.to_owned(), compile(x)?)),
                None => included.push(compile(p)?),
            }
        }
        if included.is_empty() && excluded_types.is_empty() {
            return Err("`event_type` lists no pattern".into());
        }
        let event_types = included;
        let mut attributes = BTreeMap::new();
        for attr in ATTRIBUTES {
            if let Some(v) = map.get(attr).filter(|v| !is_empty(v)) {
                let lenient = matches!(attr, "name" | "type" | "unit");
                attributes.insert(attr, field(attr, v, lenient)?);
            }
        }
        let mut metadata = Vec::new();
        if let Some(m) = map.get("metadata") {
            let m = m.as_object().ok_or("`metadata` must be a mapping")?;
            for (k, v) in m {
                metadata.push((k.clone(), field(&format!("metadata.{k}"), v, false)?));
            }
        }
        let user_metadata = match map.get("user_metadata") {
            Some(v) if !is_empty(v) => Some(field("user_metadata", v, false)?),
            _ => None,
        };
        let fallback =
            |p: &str| jsonpath::parse(p).map_err(|e| format!("built-in fallback {p}: {e}"));
        Ok(MeterDefinition {
            name,
            event_types,
            excluded_types,
            attributes,
            metadata,
            user_metadata,
            lookup,
            user_fallback: fallback("ctxt.user_id|ctxt.user|_context_user_id|_context_user")?,
            project_fallback: fallback(
                "ctxt.tenant_id|ctxt.tenant|ctxt.project_id|_context_tenant_id|_context_tenant|_context_project_id",
            )?,
        })
    }

    /// Whether the definition applies to this event type.
    pub fn matches(&self, event_type: &str) -> bool {
        let hit = |re: &fancy_regex::Regex| re.is_match(event_type).unwrap_or(false);
        if let Some((p, _)) = self.excluded_types.iter().find(|(_, re)| hit(re)) {
            log_debug!(
                "declarative: meter `{}` skips `{event_type}` (excluded by `!{p}`)",
                self.name
            );
            return false;
        }
        self.event_types.is_empty() || self.event_types.iter().any(hit)
    }

    /// The meter name, when it is fixed (not computed from the notification).
    pub fn fixed_name(&self) -> Option<String> {
        match self.attributes.get("name") {
            Some(Field::Path {
                literal: Some(Value::String(s)),
                ..
            })
            | Some(Field::Literal(Value::String(s))) => Some(s.clone()),
            _ => None,
        }
    }

    /// The samples for one notification; problems with a single sample are returned
    /// as messages alongside the samples that could be built.
    pub fn samples(&self, n: &Value) -> (Vec<Sample>, Vec<String>) {
        let mut problems = Vec::new();
        let mut metadata = Map::new();
        for (k, f) in &self.metadata {
            if let Some(v) = first(f, n).filter(truthy) {
                metadata.insert(k.clone(), v);
            }
        }
        if let Some(Value::Object(um)) = self.user_metadata.as_ref().and_then(|f| first(f, n)) {
            let user: Map<String, Value> = um
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("metering.")?.to_owned(), v.clone())))
                .collect();
            if !user.is_empty() {
                metadata.insert("user_metadata".into(), Value::Object(user));
            }
        }
        if metadata.is_empty() {
            // Ceilometer's default: the payload, plus event_type and host.
            if let Some(Value::Object(p)) = n.get("payload") {
                metadata = p.clone();
            }
            metadata.insert(
                "event_type".into(),
                n.get("event_type").cloned().unwrap_or(Value::Null),
            );
            metadata.insert(
                "host".into(),
                n.get("publisher_id").cloned().unwrap_or(Value::Null),
            );
        }

        // Each attribute as a list of values: one, or (with `lookup`) one per sample.
        let mut values: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        values.insert("user_id", self.user_fallback.first(n).into_iter().collect());
        values.insert(
            "project_id",
            self.project_fallback.first(n).into_iter().collect(),
        );
        for (attr, f) in &self.attributes {
            let in_lookup = self.lookup.iter().any(|l| l == attr);
            let found = if in_lookup || (!self.lookup.is_empty() && *attr == "name") {
                all(f, n)
            } else {
                first(f, n).into_iter().collect()
            };
            if !found.is_empty() || in_lookup {
                values.insert(attr, found);
            }
        }
        let count = if self.lookup.is_empty() {
            1
        } else {
            values.get("name").map_or(0, Vec::len)
        };
        let mut out = Vec::new();
        for i in 0..count {
            let get = |attr: &str| -> Option<Value> {
                let v = values.get(attr)?;
                if v.len() == count {
                    v.get(i).cloned()
                } else if v.len() == 1 && !self.lookup.iter().any(|l| l == attr) {
                    v.first().cloned()
                } else {
                    None
                }
            };
            if !self.lookup.is_empty() {
                if let Some(bad) = self
                    .lookup
                    .iter()
                    .find(|l| values.get(l.as_str()).is_some_and(|v| v.len() != count))
                {
                    problems.push(format!(
                        "meter `{}`: {} value(s) of `{bad}` for {count} meter(s)",
                        self.name,
                        values[bad.as_str()].len()
                    ));
                    return (Vec::new(), problems);
                }
            }
            match self.build(&get, n, &metadata) {
                Ok(s) => out.push(s),
                Err(e) => problems.push(format!("meter `{}`: {e}", self.name)),
            }
        }
        (out, problems)
    }

    fn build(
        &self,
        get: &dyn Fn(&str) -> Option<Value>,
        n: &Value,
        metadata: &Map<String, Value>,
    ) -> Result<Sample, String> {
        let text = |attr: &str| {
            get(attr).map(|v| match v {
                Value::String(s) => s,
                other => other.to_string(),
            })
        };
        let name = text("name").ok_or("no meter name")?;
        let sample_type: SampleType = text("type")
            .unwrap_or_default()
            .parse()
            .map_err(|e| format!("{e}"))?;
        let unit = text("unit").unwrap_or_default();
        let volume = get("volume")
            .as_ref()
            .and_then(|v| {
                v.as_f64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                    .or_else(|| v.as_bool().map(|b| if b { 1.0 } else { 0.0 }))
            })
            .ok_or_else(|| format!("volume {:?} is not a number", get("volume")))?;
        let resource_id = text("resource_id").ok_or("no resource_id")?;
        let mut s = Sample::new(name, sample_type, unit, volume, resource_id)
            .with_resource_metadata(Value::Object(metadata.clone()))
            .with_source("openstack");
        s.set_user_id(text("user_id"));
        s.set_project_id(text("project_id"));
        let ts = text("timestamp").or_else(|| {
            n.get("timestamp")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if let Some(t) = ts.and_then(|t| parse_timestamp(&t).ok()) {
            s.set_timestamp(t);
        }
        Ok(s)
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Python truthiness, as Ceilometer's `if value:`.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        other => !is_empty(other),
    }
}

fn field(what: &str, cfg: &Value, lenient: bool) -> Result<Field, String> {
    match cfg {
        Value::Number(_) | Value::Bool(_) => Ok(Field::Literal(cfg.clone())),
        // Only name, type and unit fall back to the text itself (Ceilometer's defaults).
        Value::String(s) => match jsonpath::parse(s) {
            Ok(expr) => Ok(Field::Path {
                expr,
                literal: lenient.then(|| cfg.clone()),
            }),
            Err(_) if lenient => Ok(Field::Literal(cfg.clone())),
            Err(e) => Err(format!("{what}: `{s}` does not parse ({e})")),
        },
        Value::Array(list) => {
            // A list of paths: the first that finds something.
            let joined = list
                .iter()
                .map(|p| format!("({})", p.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join("|");
            let expr = jsonpath::parse(&joined).map_err(|e| format!("{what}: {e}"))?;
            Ok(Field::Path {
                expr,
                literal: None,
            })
        }
        Value::Object(m) => {
            let fields = m
                .get("fields")
                .ok_or_else(|| format!("{what}: the field 'fields' is required"))?;
            let paths: Vec<&str> = match fields {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => return Err(format!("{what}: `fields` must be a path or a list")),
            };
            let plugin = m.get("plugin").map(|p| {
                p.get("name")
                    .unwrap_or(p)
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            });
            match (plugin.as_deref(), paths.as_slice()) {
                (None, _) => field(
                    what,
                    &Value::Array(paths.iter().map(|p| Value::from(*p)).collect()),
                    lenient,
                ),
                (Some("timedelta"), [a, b]) => Ok(Field::TimeDelta(
                    jsonpath::parse(a).map_err(|e| format!("{what}: {e}"))?,
                    jsonpath::parse(b).map_err(|e| format!("{what}: {e}"))?,
                )),
                (Some("timedelta"), _) => Err(format!(
                    "{what}: the timedelta plugin takes exactly two fields"
                )),
                (Some(other), _) => Err(format!(
                    "{what}: no plugin named `{other}` (available: timedelta)"
                )),
            }
        }
        Value::Null => Err(format!("{what}: empty")),
    }
}

fn first(f: &Field, n: &Value) -> Option<Value> {
    match f {
        Field::Literal(v) => Some(v.clone()),
        Field::Path { expr, literal } => expr.first(n).or_else(|| literal.clone()),
        Field::TimeDelta(a, b) => {
            let t = |e: &Expr| {
                e.first(n)
                    .and_then(|v| v.as_str().and_then(|s| parse_timestamp(s).ok()))
            };
            let (start, end) = (t(a)?, t(b)?);
            Some(Value::from((end - start).num_microseconds()? as f64 / 1e6))
        }
    }
}

fn all(f: &Field, n: &Value) -> Vec<Value> {
    match f {
        Field::Path { expr, .. } => expr.find(n),
        other => first(other, n).into_iter().collect(),
    }
}
