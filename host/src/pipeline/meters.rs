//! A source's `meters` filter, with Ceilometer's rules: fnmatch patterns; `!pattern`
//! excludes; a meter is denied if any exclusion matches, else allowed if any other
//! pattern matches; a list of only exclusions allows everything else. Mixing included
//! meters with exclusions, or `*` with included meters, is an error.

use ceilo_plugin_api::{Sample, Text};
use glob::Pattern;

/// A compiled `meters` list.
#[derive(Debug, Clone)]
pub struct MeterFilter {
    include: Vec<Pattern>,
    exclude: Vec<Pattern>,
    source: Vec<String>,
}

impl MeterFilter {
    /// Compiles a `meters` list; the error says which rule it breaks.
    pub fn new(meters: &[String]) -> Result<Self, String> {
        Self::of("meter", meters)
    }

    /// Compiles a list of `what` names (`meter`, `event`: an event pipeline's
    /// `events` follow the same rules); errors are worded for `what`.
    pub fn of(what: &str, meters: &[String]) -> Result<Self, String> {
        if meters.is_empty() {
            return Err(format!(
                "no {what}s: list at least one {what} pattern (\"*\" for all)"
            ));
        }
        let included: Vec<&String> = meters
            .iter()
            .filter(|m| !m.starts_with('!') && !m.starts_with('*'))
            .collect();
        let excluded = meters.iter().any(|m| m.starts_with('!'));
        if !included.is_empty() && excluded {
            return Err(format!("both included and excluded {what}s: list either {what}s to take or `!{what}s` to leave out, not both"));
        }
        if meters.iter().any(|m| m == "*") && !included.is_empty() {
            return Err(format!(
                "included {what}s with the wildcard `*`: `*` already takes every {what}"
            ));
        }
        let compile =
            |p: &str| Pattern::new(p).map_err(|e| format!("`{p}` is not a valid pattern: {e}"));
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        for m in meters {
            match m.strip_prefix('!') {
                Some(rest) => exclude.push(compile(rest)?),
                None => include.push(compile(m)?),
            }
        }
        Ok(MeterFilter {
            include,
            exclude,
            source: meters.to_vec(),
        })
    }

    /// Whether the meter passes.
    pub fn allows(&self, meter: &str) -> bool {
        if self.exclude.iter().any(|p| p.matches(meter)) {
            return false;
        }
        if self.include.iter().any(|p| p.matches(meter)) {
            return true;
        }
        self.include.is_empty()
    }

    /// [`allows`](Self::allows) for the samples of one batch: a batch holds runs of
    /// one meter, so the last meter's answer is kept instead of matching the patterns
    /// again for every sample.
    pub fn sample_predicate(&self) -> impl FnMut(&Sample) -> bool + '_ {
        let mut last: Option<(Text, bool)> = None;
        move |s| {
            if let Some((name, allowed)) = &last {
                // The same shared text (one poller's meter) compares by address.
                if name == s.name_text() {
                    return *allowed;
                }
            }
            let allowed = self.allows(s.name());
            last = Some((s.name_text().clone(), allowed));
            allowed
        }
    }

    /// The patterns as written.
    pub fn patterns(&self) -> &[String] {
        &self.source
    }

    /// The literal meter names (no wildcard, not excluded).
    pub fn literal_meters(&self) -> impl Iterator<Item = &str> {
        self.source
            .iter()
            .filter(|m| !m.starts_with('!') && !m.contains(['*', '?', '[']))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(m: &[&str]) -> Result<MeterFilter, String> {
        MeterFilter::new(&m.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn ceilometer_rules() {
        let all = f(&["*"]).unwrap();
        assert!(all.allows("cpu") && all.allows("disk.read.bytes"));
        let some = f(&["cpu", "disk.*"]).unwrap();
        assert!(some.allows("cpu") && some.allows("disk.read.bytes") && !some.allows("memory"));
        let not = f(&["!disk.*", "!cpu"]).unwrap();
        assert!(!not.allows("cpu") && !not.allows("disk.read.bytes") && not.allows("memory"));
        let wild_not = f(&["*", "!cpu"]).unwrap();
        assert!(!wild_not.allows("cpu") && wild_not.allows("memory"));
        assert_eq!(some.literal_meters().collect::<Vec<_>>(), ["cpu"]);
    }

    #[test]
    fn invalid_lists() {
        assert!(f(&[]).unwrap_err().contains("no meters"));
        assert!(f(&["cpu", "!disk"])
            .unwrap_err()
            .contains("both included and excluded"));
        assert!(f(&["*", "cpu"]).unwrap_err().contains("wildcard"));
    }
}
