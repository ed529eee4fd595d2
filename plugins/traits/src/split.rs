//! `split`: a piece of a text value, as Python's `str.split(separator, max_split)`
//! then `[segment]` (negative segments count from the end).

use ceilo_plugin_api::*;
use serde_json::Value;

/// Splits each matched value and keeps one segment.
#[derive(Debug)]
pub struct Split {
    separator: String,
    segment: i64,
    max_split: Option<usize>,
}

impl Plugin for Split {
    const NAME: &'static str = "split";
    const DESCRIPTION: &'static str =
        "a segment of a text value: parameters separator (\".\"), segment (0), max_split";

    fn create(p: &Parameters, _: &Context) -> Result<Self, PluginError> {
        let separator: String = p.get("separator")?.unwrap_or_else(|| ".".into());
        if separator.is_empty() {
            return Err(PluginError::invalid_parameters(
                "`separator` is empty: give the text to split on (default \".\")",
            ));
        }
        Ok(Split {
            separator,
            segment: p.get("segment")?.unwrap_or(0),
            // Python's str.split: a negative max_split is no limit.
            max_split: p
                .get::<i64>("max_split")?
                .and_then(|n| usize::try_from(n).ok()),
        })
    }
}

impl TraitPlugin for Split {
    fn trait_values(&mut self, matches: &[TraitMatch]) -> Result<Vec<Value>, PluginError> {
        Ok(matches.iter().map(|m| self.one(&m.value)).collect())
    }
}

impl Split {
    fn one(&self, value: &Value) -> Value {
        let text = crate::python_str(value);
        let parts: Vec<&str> = match self.max_split {
            Some(n) => text.splitn(n + 1, self.separator.as_str()).collect(),
            None => text.split(self.separator.as_str()).collect(),
        };
        let at = if self.segment < 0 {
            parts.len() as i64 + self.segment
        } else {
            self.segment
        };
        usize::try_from(at)
            .ok()
            .and_then(|i| parts.get(i))
            .map_or(Value::Null, |s| Value::from(*s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn split(params: Value, value: &str) -> Value {
        let p = Parameters::from_json(&params.to_string()).unwrap();
        let mut s = Split::create(&p, &Context::default()).unwrap();
        s.trait_values(&[TraitMatch::new("test.thing", json!(value))])
            .unwrap()
            .remove(0)
    }

    // Ceilometer's test_trait_plugins.TestSplitterPlugin, restated.
    #[test]
    fn splits_as_ceilometer() {
        let v = "test-foobar-baz";
        assert_eq!(split(json!({"separator": "-", "segment": 0}), v), "test");
        assert_eq!(split(json!({"separator": "-", "segment": 1}), v), "foobar");
        assert_eq!(
            split(json!({"separator": "-", "segment": 1, "max_split": 1}), v),
            "foobar-baz"
        );
        assert_eq!(
            split(json!({"separator": "-", "segment": 0}), "test.foobar.baz"),
            "test.foobar.baz"
        );
        assert_eq!(
            split(json!({"separator": "-", "segment": 5}), v),
            Value::Null
        );
        assert_eq!(split(json!({"segment": -1}), "compute.h1.x"), "x");
        assert_eq!(
            split(json!({"separator": "-", "segment": 2, "max_split": -1}), v),
            "baz",
            "a negative max_split is no limit"
        );
        let p = Parameters::from_json(r#"{"separator": "-"}"#).unwrap();
        let mut s = Split::create(&p, &Context::default()).unwrap();
        assert!(
            s.trait_values(&[]).unwrap().is_empty(),
            "no match, no values"
        );
    }
}
