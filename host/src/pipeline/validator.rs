//! What validating any of ceilo's YAML files shares: the document read with its
//! limits, errors and warnings located by path, and the checks every file makes the
//! same way (names, lists, unknown keys, intervals, meter lists).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::config::Catalog;
use super::error::{ConfigError, ConfigErrors};
use super::legacy;
use super::meters::MeterFilter;
use super::positions::{Limits, Lines, Pos, Positions};
use crate::loader::closest;

/// What a configuration file may hold: nesting 64 deep (a real one has under ten;
/// plugin parameters get the rest), and 100 000 values with aliases expanded.
const LIMITS: Limits = Limits {
    depth: 64,
    expanded_nodes: 100_000,
};

/// Collects the located errors and warnings of one file.
pub(super) struct Validator {
    pub(super) file: PathBuf,
    positions: Positions,
    pub(super) errors: Vec<ConfigError>,
    pub(super) warnings: Vec<ConfigError>,
    /// The file is in the original format: `sources[i]`/`sinks[i]` are its `[i]`.
    pub(super) legacy: bool,
}

/// Reads a configuration file as UTF-8 text; `hint` says how to give another.
pub(super) fn read_text(file: &Path, what: &str, hint: &str) -> Result<String, ConfigErrors> {
    let bytes = std::fs::read(file).map_err(|e| {
        ConfigErrors(vec![ConfigError {
            file: file.to_owned(),
            pos: None,
            context: None,
            message: format!("cannot read the {what}: {e} ({hint})"),
        }])
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&good[line_start..]).chars().count() + 1;
        let byte = e.as_bytes()[good.len()];
        ConfigErrors(vec![ConfigError {
            file: file.to_owned(),
            pos: Some(Pos { line, column }),
            context: None,
            message: format!("not UTF-8 text (byte 0x{byte:02x}): save the file as UTF-8"),
        }])
    })
}

impl Validator {
    /// Parses `text` (within [`LIMITS`]) and returns the validator with the document.
    pub(super) fn open(file: &Path, text: &str) -> Result<(Validator, Value), ConfigErrors> {
        let one = |pos, message| {
            ConfigErrors(vec![ConfigError {
                file: file.to_owned(),
                pos,
                context: None,
                message,
            }])
        };
        if let Some((pos, message)) = super::positions::prescan(text, LIMITS) {
            return Err(one(Some(pos), message));
        }
        let root: Value = serde_yaml::from_str(text).map_err(|e| {
            let pos = e.location().map(|l| Lines::new(text).at_byte(l.index()));
            let msg = e.to_string();
            let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            one(pos, format!("not valid YAML: {msg}"))
        })?;
        let v = Validator {
            file: file.to_owned(),
            positions: Positions::index(text),
            errors: Vec::new(),
            warnings: Vec::new(),
            legacy: false,
        };
        Ok((v, root))
    }

    /// The warnings, in file order, when there is no error; otherwise every error with
    /// the warnings among them (marked), so that one run reports everything.
    pub(super) fn finish(mut self) -> Result<Vec<ConfigError>, ConfigErrors> {
        let by_place = |e: &ConfigError| e.pos.map(|p| (p.line, p.column));
        self.warnings.sort_by_key(by_place);
        if self.errors.is_empty() {
            return Ok(self.warnings);
        }
        self.errors.extend(self.warnings);
        self.errors.sort_by_key(by_place);
        Err(ConfigErrors(self.errors))
    }

    pub(super) fn warn(&mut self, path: &str, context: Option<&str>, message: impl Into<String>) {
        let w = self.located(path, context, format!("warning: {}", message.into()));
        self.warnings.push(w);
    }

    pub(super) fn err(&mut self, path: &str, context: Option<&str>, message: impl Into<String>) {
        let e = self.located(path, context, message.into());
        self.errors.push(e);
    }

    /// An error placed at the key of `path` (the line that names it) rather than at
    /// its value.
    pub(super) fn err_key(&mut self, path: &str, message: impl Into<String>) {
        let mut e = self.located(path, None, message.into());
        if let Some(pos) = self.positions.key(path) {
            e.pos = Some(pos);
        }
        self.errors.push(e);
    }

    /// Where the key of `path` is.
    pub(super) fn key_pos(&self, path: &str) -> Option<Pos> {
        self.positions.key(path)
    }

    pub(super) fn located(
        &self,
        path: &str,
        context: Option<&str>,
        message: String,
    ) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            // A document with no nodes at all (empty, comments only) is wrong from
            // its first line.
            pos: Some(
                self.positions
                    .get(&legacy::original_path(path, self.legacy))
                    .unwrap_or(super::positions::Pos { line: 1, column: 1 }),
            ),
            context: context.map(str::to_owned),
            message,
        }
    }

    /// Reports names used twice in a list; returns the set of names.
    pub(super) fn duplicates(
        &mut self,
        items: &[Value],
        list: &str,
        what: &str,
    ) -> HashSet<String> {
        let mut seen = HashSet::new();
        for (i, item) in items.iter().enumerate() {
            let Some(name) = item.get("name").and_then(Value::as_str) else {
                continue;
            };
            if !seen.insert(name.to_owned()) {
                self.err(
                    &format!("{list}[{i}].name"),
                    None,
                    format!("duplicate {what} name `{name}`: {what} names must be unique"),
                );
            }
        }
        seen
    }

    /// A list under `key`; missing or empty is an error when `required`.
    pub(super) fn list(
        &mut self,
        map: &Mapping,
        key: &str,
        parent: &str,
        ctx: Option<&str>,
        required: bool,
    ) -> Vec<Value> {
        let path = join(parent, key);
        match map.get(key) {
            None | Some(Value::Null) if required => {
                self.err(parent, ctx, format!("required field `{key}` is missing"));
                Vec::new()
            }
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => items.clone(),
            Some(other) => {
                self.err(
                    &path,
                    ctx,
                    format!("`{key}` must be a list, found {}", kind(other)),
                );
                Vec::new()
            }
        }
    }

    pub(super) fn strings(
        &mut self,
        items: &[Value],
        path: &str,
        ctx: Option<&str>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match item {
                Value::String(s) => out.push(s.clone()),
                other => self.err(
                    &format!("{path}[{i}]"),
                    ctx,
                    format!("expected a string, found {}", kind(other)),
                ),
            }
        }
        out
    }

    /// A source's `sinks` (required, non-empty), each of which must be one of `sinks`.
    pub(super) fn sink_refs(
        &mut self,
        map: &Mapping,
        path: &str,
        ctx: Option<&str>,
        sinks: &HashSet<String>,
    ) -> Vec<String> {
        let raw = self.list(map, "sinks", path, ctx, false);
        let names = self.strings(&raw, &join(path, "sinks"), ctx);
        if raw.is_empty() {
            self.err(
                path,
                ctx,
                "no sinks: list the sinks this source sends to under `sinks`",
            );
        }
        for (i, s) in names.iter().enumerate() {
            if !sinks.contains(s) {
                let known: Vec<String> = sinks.iter().cloned().collect();
                let guess = closest(s, &known)
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                self.err(
                    &format!("{path}.sinks[{i}]"),
                    ctx,
                    format!("sink `{s}` is not defined ({guess}define it under `sinks`)"),
                );
            }
        }
        names
    }

    pub(super) fn name(&mut self, map: &Mapping, path: &str, what: &str) -> Option<String> {
        match map.get("name") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
            None | Some(Value::Null) => {
                self.err(path, Some(what), "required field `name` is missing");
                None
            }
            Some(other) => {
                self.err(
                    &join(path, "name"),
                    Some(what),
                    format!("`name` must be a non-empty string, found {}", kind(other)),
                );
                None
            }
        }
    }

    pub(super) fn unknown_keys(
        &mut self,
        map: &Mapping,
        path: &str,
        ctx: Option<&str>,
        known: &[&str],
    ) {
        for key in map.keys() {
            let k = key.as_str().unwrap_or("?");
            if !known.contains(&k) {
                let list: Vec<String> = known.iter().map(|s| s.to_string()).collect();
                let guess = closest(k, &list)
                    .map(|c| format!("did you mean `{c}`? "))
                    .unwrap_or_default();
                self.err(
                    &join(path, k),
                    ctx,
                    format!("unknown field `{k}` ({guess}known: {})", known.join(", ")),
                );
            }
        }
    }

    /// A source's `interval`: a positive whole number of seconds, written as a number
    /// or as text (Ceilometer reads it with `int()`); `default` when it is missing
    /// (none: required).
    pub(super) fn interval(
        &mut self,
        map: &Mapping,
        path: &str,
        ctx: Option<&str>,
        default: Option<u64>,
    ) -> Option<u64> {
        let found = match map.get("interval") {
            None | Some(Value::Null) => {
                if default.is_none() {
                    self.err(
                        path,
                        ctx,
                        "required field `interval` is missing (seconds between polls, e.g. 300)",
                    );
                }
                return default;
            }
            Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v > 0) => return n.as_u64(),
            Some(Value::String(s)) => match s.trim().parse::<u64>() {
                Ok(v) if v > 0 => return Some(v),
                _ => format!("\"{s}\""),
            },
            Some(Value::Number(n)) => n.to_string(),
            Some(v) => kind(v).to_owned(),
        };
        self.err(
            &join(path, "interval"),
            ctx,
            format!("interval must be a positive integer (seconds), found {found}"),
        );
        None
    }

    /// A source's `meters` (required, Ceilometer's filter rules), with a warning for each
    /// meter named literally that nothing loaded produces (`polled`: only pollers count,
    /// as in polling.yaml; otherwise notification handlers too).
    pub(super) fn meters(
        &mut self,
        map: &Mapping,
        path: &str,
        ctx: Option<&str>,
        catalog: &Catalog<'_>,
        polled: bool,
    ) -> Option<MeterFilter> {
        let meters_raw = self.list(map, "meters", path, ctx, false);
        let meters_list = self.strings(&meters_raw, &join(path, "meters"), ctx);
        let meters = match MeterFilter::new(&meters_list) {
            Ok(f) => Some(f),
            Err(e) => {
                self.err(&join(path, "meters"), ctx, e);
                None
            }
        };
        // A handler that cannot say what it produces makes any meter possible.
        let all_known = !catalog.pollers_failed
            && (polled || catalog.handler_meters.values().all(|m| !m.is_empty()));
        let Some(f) = meters.as_ref().filter(|_| all_known) else {
            return meters;
        };
        let handlers = if polled {
            &BTreeMap::new()
        } else {
            catalog.handler_meters
        };
        let produced: Vec<String> = catalog
            .poller_meters
            .values()
            .chain(handlers.values())
            .flatten()
            .cloned()
            .collect();
        let names = |m: &BTreeMap<String, Vec<String>>| {
            let v: Vec<&str> = m.keys().map(String::as_str).collect();
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(", ")
            }
        };
        for (i, m) in meters_list.iter().enumerate() {
            if !f.literal_meters().any(|l| l == m) || produced.iter().any(|p| p == m) {
                continue;
            }
            let guess = closest(m, &produced)
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            // As Ceilometer: polled for nothing, the rest runs (a file names meters
            // of plugins a node may not have).
            let message = if polled {
                format!(
                    "no loaded poller produces meter `{m}` ({guess}pollers: {}; `ceilo plugins` lists them)",
                    names(catalog.poller_meters)
                )
            } else {
                format!(
                    "no loaded poller or notification handler produces meter `{m}` ({guess}pollers: {}; \
                     notification handlers: {}; `ceilo plugins` lists them)",
                    names(catalog.poller_meters),
                    names(catalog.handler_meters)
                )
            };
            self.warn(&format!("{path}.meters[{i}]"), ctx, message);
        }
        meters
    }
}

pub(super) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}
