//! `timedelta`: the seconds between two matched times (absolute), as Ceilometer's.

use ceilo_plugin_api::*;
use serde_json::Value;

/// Seconds between the two times a trait's two fields matched.
#[derive(Debug)]
pub struct Timedelta;

impl Plugin for Timedelta {
    const NAME: &'static str = "timedelta";
    const DESCRIPTION: &'static str = "seconds between the times two fields hold";

    fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> {
        Ok(Timedelta)
    }
}

impl TraitPlugin for Timedelta {
    fn trait_values(&mut self, matches: &[TraitMatch]) -> Result<Vec<Value>, PluginError> {
        let [start, end] = matches else {
            log_warn!(
                "timedelta needs exactly two time fields, {} matched: no value",
                matches.len()
            );
            return Ok(vec![Value::Null]);
        };
        let time = |m: &TraitMatch| m.value.as_str().and_then(|t| parse_timestamp(t).ok());
        let (Some(a), Some(b)) = (time(start), time(end)) else {
            log_warn!(
                "timedelta: both {} and {} must be times: no value",
                start.path,
                end.path
            );
            return Ok(vec![Value::Null]);
        };
        let micros = (b - a)
            .num_microseconds()
            .unwrap_or(i64::MAX)
            .unsigned_abs();
        Ok(vec![Value::from(micros as f64 / 1e6)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Ceilometer's timedelta semantics: two times, absolute seconds; else nothing.
    #[test]
    fn seconds_between_two_times() {
        let m = |p: &str, v: &str| TraitMatch::new(p, json!(v));
        let mut t = Timedelta;
        let two = [
            m("payload.created_at", "2013-08-08 21:06:37.803826"),
            m("payload.launched_at", "2013-08-08 21:06:47.803826"),
        ];
        assert_eq!(t.trait_values(&two).unwrap(), [json!(10.0)]);
        let reversed = [two[1].clone(), two[0].clone()];
        assert_eq!(t.trait_values(&reversed).unwrap(), [json!(10.0)]);
        assert_eq!(t.trait_values(&two[..1]).unwrap(), [Value::Null]);
        let bad = [m("a", "2013-08-08 21:06:37"), m("b", "yesterday")];
        assert_eq!(t.trait_values(&bad).unwrap(), [Value::Null]);
    }
}
