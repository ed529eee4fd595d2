//! What `unit_conversion`, `rate_of_change`, `delta` and `aggregator` share, after
//! Ceilometer's conversion transformers: the `source`/`target` parameters, the
//! `map_from`/`map_to` regex renames and the `scale` (a number or an expression).

use std::cell::RefCell;

use ceilo_plugin_api::{MetadataMemo, PluginError, Sample, SampleBatch, SampleType, Text};
use regex::Regex;
use serde::Deserialize;

use crate::expr::{self, json_number, Expr, Scope};

/// `source:` — which samples to convert, and rename patterns.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceParams {
    /// Only samples in this unit are converted (others pass unchanged).
    pub unit: Option<String>,
    /// Regexes over the name and the unit, used with `target.map_to`.
    pub map_from: Option<MapParams>,
}

/// `target:` — what converted samples become.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetParams {
    /// New name.
    pub name: Option<String>,
    /// New unit.
    pub unit: Option<String>,
    /// New type.
    #[serde(rename = "type")]
    pub sample_type: Option<SampleType>,
    /// A factor or an expression.
    pub scale: Option<ScaleParam>,
    /// Cap on the volume (ignored when 0).
    #[serde(default, deserialize_with = "crate::lenient::opt_float")]
    pub max: Option<f64>,
    /// Replacements for `source.map_from` (Python `\1` back-references allowed).
    pub map_to: Option<MapParams>,
}

/// `{name, unit}` regexes or replacements.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapParams {
    /// For the meter name.
    pub name: Option<String>,
    /// For the unit.
    pub unit: Option<String>,
}

/// The parameters of `unit_conversion` and `rate_of_change`: `source` and `target`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceTarget {
    /// `source:`
    #[serde(default)]
    pub source: SourceParams,
    /// `target:`
    #[serde(default)]
    pub target: TargetParams,
}

/// `scale:` is a number or an expression.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ScaleParam {
    /// Multiplies the volume.
    Factor(f64),
    /// Evaluated over the sample.
    Expression(String),
}

/// A compiled rename rule.
#[derive(Debug)]
struct Rename {
    from: Regex,
    to: String,
}

/// The compiled `source`/`target` of a conversion transformer.
#[derive(Debug)]
pub struct Conversion {
    source_unit: Option<String>,
    // Shared text: every converted sample gets a clone, not a copy.
    name: Option<Text>,
    unit: Option<Text>,
    sample_type: Option<SampleType>,
    scale: Scale,
    max: Option<f64>,
    rename_name: Option<Rename>,
    rename_unit: Option<Rename>,
    /// The metadata numbers the scale reads, found once for the samples sharing
    /// metadata.
    metadata: RefCell<Vec<MetadataNumber>>,
}

/// One `resource_metadata.…` number an expression reads, by shared metadata text.
#[derive(Debug)]
pub struct MetadataNumber {
    /// The keys after `resource_metadata`.
    keys: Vec<String>,
    numbers: MetadataMemo<Option<f64>>,
}

impl MetadataNumber {
    /// One for each metadata field `expr` reads.
    pub fn all_in(expr: &Expr) -> Vec<MetadataNumber> {
        expr.fields()
            .into_iter()
            .filter(|p| p.first().is_some_and(|root| root == "resource_metadata"))
            .map(|p| MetadataNumber {
                keys: p[1..].to_vec(),
                numbers: MetadataMemo::default(),
            })
            .collect()
    }
}

/// A compiled scale.
#[derive(Debug)]
pub enum Scale {
    /// No scale: the volume as is.
    None,
    /// volume × factor.
    Factor(f64),
    /// An expression without fields (`1`, `10**9`): its finite value, computed once.
    Constant(f64),
    /// An expression over the sample.
    Expr(Expr),
}

impl Conversion {
    /// Compiles `source` and `target`; `default_scale` applies when `target.scale` is
    /// absent (rate_of_change uses the expression `1`).
    pub fn new(
        source: SourceParams,
        target: TargetParams,
        default_scale: Scale,
    ) -> Result<Self, PluginError> {
        let scale = match target.scale {
            None => default_scale,
            Some(ScaleParam::Factor(0.0)) => Scale::None, // Python: `if scale` is false
            Some(ScaleParam::Factor(f)) => Scale::Factor(f),
            Some(ScaleParam::Expression(text)) => Scale::Expr(
                expr::parse(&text, false)
                    .map_err(|e| PluginError::invalid_parameters(format!("target.scale: {e}")))?,
            ),
        };
        // A field-free expression is its value: rate_of_change's default `1` was an
        // evaluation per sample.
        let scale = match scale {
            Scale::Expr(Expr::Num(n)) if n.is_finite() => Scale::Constant(n),
            other => other,
        };
        let metadata = match &scale {
            Scale::Expr(e) => MetadataNumber::all_in(e),
            _ => Vec::new(),
        };
        let from = source.map_from.unwrap_or_default();
        let to = target.map_to.unwrap_or_default();
        Ok(Conversion {
            source_unit: source.unit,
            // Put on every sample: interned, so they cost no atomic count per sample.
            name: target.name.as_deref().map(Text::interned),
            unit: target.unit.as_deref().map(Text::interned),
            sample_type: target.sample_type,
            scale,
            max: target.max.filter(|m| *m != 0.0),
            rename_name: rename(from.name, to.name, "name")?,
            rename_unit: rename(from.unit, to.unit, "unit")?,
            metadata: RefCell::new(metadata),
        })
    }

    /// Whether the sample is in the `source.unit` (when one is given).
    pub fn applies_to(&self, s: &Sample) -> bool {
        self.source_unit.as_deref().is_none_or(|u| u == s.unit())
    }

    /// The scale applied to `s` (its volume when there is none).
    // Inlined, the three plain kinds are a few instructions; out of line, the call
    // and its large `Result` cost more than they do, twice per sample in a chain.
    #[inline]
    pub fn scaled(&self, s: &Sample) -> Result<f64, PluginError> {
        match &self.scale {
            Scale::None => Ok(s.volume()),
            Scale::Factor(f) => Ok(s.volume() * f),
            Scale::Constant(c) => Ok(*c),
            Scale::Expr(e) => self.evaluated(e, s),
        }
    }

    #[inline(never)]
    fn evaluated(&self, e: &Expr, s: &Sample) -> Result<f64, PluginError> {
        e.eval(&SampleScope(s, Some(&self.metadata)))
            .map_err(|err| {
                PluginError::invalid_input(format!(
                    "scale for {} of {}: {err}",
                    s.name(),
                    s.resource_id()
                ))
            })
    }

    /// Ceilometer's `_convert`: renames, retypes, and sets the volume to
    /// `scale(s) × growth`, capped by `max`, then pushes the result to `out`.
    pub fn convert(
        &self,
        mut s: Sample,
        growth: f64,
        out: &mut SampleBatch,
    ) -> Result<(), PluginError> {
        self.convert_in_place(&mut s, growth)?;
        out.push(s);
        Ok(())
    }

    /// [`convert`](Self::convert) on a sample the caller keeps (no move of the
    /// sample in and out).
    pub fn convert_in_place(&self, s: &mut Sample, growth: f64) -> Result<(), PluginError> {
        let volume = self.scaled(s)? * growth;
        let volume = match self.max {
            Some(max) => volume.min(max),
            None => volume,
        };
        if let Some(n) = self.mapped_name(s) {
            s.set_name(n);
        }
        let unit = map(&self.rename_unit, s.unit())
            .map(Text::from)
            .or_else(|| self.unit.clone());
        if let Some(u) = unit {
            s.set_unit(u);
        }
        if let Some(t) = self.sample_type {
            s.set_sample_type(t);
        }
        s.set_volume(volume);
        s.renew_message_id();
        Ok(())
    }

    /// The new name, if the sample is renamed.
    pub fn mapped_name(&self, s: &Sample) -> Option<Text> {
        map(&self.rename_name, s.name())
            .map(Text::from)
            .or_else(|| self.name.clone())
    }
}

fn rename(
    from: Option<String>,
    to: Option<String>,
    what: &str,
) -> Result<Option<Rename>, PluginError> {
    let (Some(from), Some(to)) = (from, to) else {
        return Ok(None);
    };
    let re = Regex::new(&from).map_err(|e| {
        PluginError::invalid_parameters(format!(
            "source.map_from.{what}: `{from}` is not a valid regex: {e}"
        ))
    })?;
    Ok(Some(Rename {
        from: re,
        to: ceilo_plugin_api::compat::python_replacement(&to),
    }))
}

/// Python's `re.sub` over every match; an empty result keeps the configured name.
/// Inline: most conversions have no rule, and this is asked twice per sample.
#[inline]
fn map(rule: &Option<Rename>, value: &str) -> Option<String> {
    rule.as_ref().and_then(|r| r.apply(value))
}

impl Rename {
    fn apply(&self, value: &str) -> Option<String> {
        let out = self.from.replace_all(value, self.to.as_str()).into_owned();
        (!out.is_empty()).then_some(out)
    }
}

/// A sample seen by an expression.
pub struct SampleScope<'a>(pub &'a Sample, pub Option<&'a RefCell<Vec<MetadataNumber>>>);

impl Scope for SampleScope<'_> {
    fn field(&self, path: &[String]) -> Option<f64> {
        field_of(self.0, path, self.1)
    }
}

/// A numeric field of a sample by expression path, a metadata number read through
/// `cache` when it holds that path.
pub fn field_of(
    s: &Sample,
    path: &[String],
    cache: Option<&RefCell<Vec<MetadataNumber>>>,
) -> Option<f64> {
    match path.first().map(String::as_str) {
        Some("volume") => Some(s.volume()),
        Some("monotonic_time") => s.monotonic_time(),
        Some("resource_metadata") => {
            let keys = &path[1..];
            let cached = cache
                .and_then(|c| c.try_borrow_mut().ok())
                .and_then(|mut numbers| {
                    let n = numbers.iter_mut().find(|n| n.keys == keys)?;
                    Some(*n.numbers.get_or_derive(s, |m| number_at(&m, keys)))
                });
            match cached {
                Some(number) => number,
                None => s
                    .metadata_value(&keys.join("."))
                    .as_ref()
                    .and_then(json_number),
            }
        }
        _ => None,
    }
}

fn number_at(metadata: &serde_json::Value, keys: &[String]) -> Option<f64> {
    keys.iter()
        .try_fold(metadata, |v, key| v.get(key))
        .and_then(json_number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_replacements() {
        assert_eq!(
            ceilo_plugin_api::compat::python_replacement(r"disk.\1.bytes"),
            "disk.${1}.bytes"
        );
        assert_eq!(
            ceilo_plugin_api::compat::python_replacement(r"\g<dev>_x"),
            "${dev}_x"
        );
        assert_eq!(
            ceilo_plugin_api::compat::python_replacement("cost$"),
            "cost$$"
        );
        let rule = rename(
            Some(r"disk\.(read|write)\.bytes".into()),
            Some(r"disk.\1.kilobytes".into()),
            "name",
        )
        .unwrap();
        assert_eq!(
            map(&rule, "disk.read.bytes").as_deref(),
            Some("disk.read.kilobytes")
        );
    }

    #[test]
    fn bad_regex_is_a_parameter_error() {
        let err = rename(Some("(".into()), Some("x".into()), "name").unwrap_err();
        assert!(err.message().contains("source.map_from.name"), "{err}");
    }
}
