//! `aggregator` (Ceilometer's AggregatorTransformer): merges samples per (name,
//! resource, and each of project_id/user_id that has no policy) and releases the
//! aggregates at flush once `size` samples were taken or the oldest is
//! `retention_time` seconds old. Delta and gauge volumes are summed (gauges then
//! averaged), cumulative keeps the last; `project_id`, `user_id` and
//! `resource_metadata` keep the `first` or `last` value (metadata may be `drop`ped).

use std::collections::HashMap;

use ceilo_plugin_api::{
    Context, Parameters, Plugin, PluginError, Sample, SampleBatch, SampleType, Transformer,
};
use chrono::Utc;
use serde::Deserialize;
use serde_json::Map;

use crate::conversion::{Conversion, Scale, SourceParams, TargetParams};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Policy {
    First,
    Last,
    Drop,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default, deserialize_with = "crate::lenient::opt_count")]
    size: Option<u64>,
    #[serde(default, deserialize_with = "crate::lenient::opt_float")]
    retention_time: Option<f64>,
    project_id: Option<Policy>,
    user_id: Option<Policy>,
    #[serde(default = "last")]
    resource_metadata: Policy,
    #[serde(default = "first")]
    timestamp: Policy,
    #[serde(default)]
    source: SourceParams,
    #[serde(default)]
    target: TargetParams,
}

fn last() -> Policy {
    Policy::Last
}
fn first() -> Policy {
    Policy::First
}

/// Aggregates samples.
pub struct Aggregator {
    conversion: Conversion,
    size: Option<u64>,
    retention_us: Option<i64>,
    project_id: Option<Policy>,
    user_id: Option<Policy>,
    resource_metadata: Policy,
    last_timestamp: bool,
    groups: HashMap<String, (Sample, u64)>,
    /// Keys in arrival order, so output order is stable.
    order: Vec<String>,
    taken: u64,
    oldest_us: Option<i64>,
}

impl Plugin for Aggregator {
    const NAME: &'static str = "aggregator";
    const DESCRIPTION: &'static str =
        "merges samples per resource until `size` or `retention_time` is reached";

    fn create(parameters: &Parameters, _context: &Context) -> Result<Self, PluginError> {
        let c: Config = parameters.parse()?;
        for (field, p) in [
            ("project_id", c.project_id),
            ("user_id", c.user_id),
            ("timestamp", Some(c.timestamp)),
        ] {
            if p == Some(Policy::Drop) {
                return Err(PluginError::invalid_parameters(format!(
                    "`{field}` takes first or last, not drop"
                )));
            }
        }
        let size = match (c.size, c.retention_time) {
            (Some(0), _) => {
                return Err(PluginError::invalid_parameters("`size` must be at least 1"))
            }
            (None, None) => Some(1),
            (s, _) => s,
        };
        let retention_us = match c.retention_time {
            Some(r) if r.is_finite() && r > 0.0 => Some((r * 1e6) as i64),
            Some(r) => {
                return Err(PluginError::invalid_parameters(format!(
                    "`retention_time` must be positive seconds, found {r}"
                )))
            }
            None => None,
        };
        Ok(Aggregator {
            conversion: Conversion::new(c.source, c.target, Scale::None)?,
            size,
            retention_us,
            project_id: c.project_id,
            user_id: c.user_id,
            resource_metadata: c.resource_metadata,
            last_timestamp: c.timestamp == Policy::Last,
            groups: HashMap::new(),
            order: Vec::new(),
            taken: 0,
            oldest_us: None,
        })
    }
}

impl Aggregator {
    fn key(&self, s: &Sample) -> String {
        let mut key = format!("{}-{}", s.name(), s.resource_id());
        // Attributes without a merge policy are part of the grouping key.
        if self.project_id.is_none() {
            key.push('-');
            key.push_str(s.project_id().unwrap_or("<undefined>"));
        }
        if self.user_id.is_none() {
            key.push('-');
            key.push_str(s.user_id().unwrap_or("<undefined>"));
        }
        key
    }
}

impl Transformer for Aggregator {
    fn handle(&mut self, s: Sample, _out: &mut SampleBatch) -> Result<(), PluginError> {
        let scaled = self.conversion.scaled(&s)?;
        self.oldest_us.get_or_insert(s.timestamp_micros());
        self.taken += 1;
        let key = self.key(&s);
        match self.groups.get_mut(&key) {
            None => {
                let mut first = s;
                self.conversion.convert_in_place(&mut first, 1.0)?;
                if self.resource_metadata == Policy::Drop {
                    first.set_resource_metadata(Map::new());
                }
                self.order.push(key.clone());
                self.groups.insert(key, (first, 1));
            }
            Some((agg, count)) => {
                *count += 1;
                if self.last_timestamp {
                    agg.set_timestamp(s.timestamp());
                }
                if s.sample_type() == SampleType::Cumulative {
                    agg.set_volume(scaled);
                } else {
                    agg.set_volume(agg.volume() + scaled);
                }
                if self.project_id == Some(Policy::Last) {
                    agg.set_project_id(s.project_id().map(str::to_owned));
                }
                if self.user_id == Some(Policy::Last) {
                    agg.set_user_id(s.user_id().map(str::to_owned));
                }
                if self.resource_metadata == Policy::Last {
                    agg.set_resource_metadata(s.resource_metadata());
                }
            }
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut SampleBatch) -> Result<(), PluginError> {
        let Some(oldest) = self.oldest_us else {
            return Ok(());
        };
        let full = self.size.is_some_and(|n| self.taken >= n);
        let expired = self
            .retention_us
            .is_some_and(|r| Utc::now().timestamp_micros() - oldest > r);
        if !(full || expired) {
            return Ok(());
        }
        for key in self.order.drain(..) {
            if let Some((mut s, count)) = self.groups.remove(&key) {
                if s.sample_type() == SampleType::Gauge {
                    s.set_volume(s.volume() / count as f64);
                }
                out.push(s);
            }
        }
        self.taken = 0;
        self.oldest_us = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use serde_json::json;

    fn agg(p: serde_json::Value) -> Aggregator {
        Aggregator::create(
            &Parameters::from_json(&p.to_string()).unwrap(),
            &Context::default(),
        )
        .unwrap()
    }

    fn s(name: &str, t: SampleType, v: f64, project: &str, secs: i64) -> Sample {
        let ts = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(secs);
        Sample::new(name, t, "u", v, "r")
            .with_project_id(project)
            .with_timestamp(ts)
            .with_resource_metadata(json!({"seq": secs}))
    }

    fn run(a: &mut Aggregator, samples: Vec<Sample>) -> SampleBatch {
        let mut out = SampleBatch::new();
        for x in samples {
            a.handle(x, &mut out).unwrap();
        }
        assert!(out.is_empty(), "nothing is released before flush");
        a.flush(&mut out).unwrap();
        out
    }

    #[test]
    fn sums_deltas_averages_gauges_keeps_last_cumulative() {
        let mut a = agg(json!({"size": 6, "project_id": "last"}));
        let out = run(
            &mut a,
            vec![
                s("d", SampleType::Delta, 1.0, "p1", 0),
                s("d", SampleType::Delta, 2.0, "p2", 1),
                s("g", SampleType::Gauge, 10.0, "p1", 0),
                s("g", SampleType::Gauge, 20.0, "p1", 1),
                s("c", SampleType::Cumulative, 5.0, "p1", 0),
                s("c", SampleType::Cumulative, 7.0, "p1", 1),
            ],
        );
        let got: Vec<(&str, f64)> = out.iter().map(|x| (x.name(), x.volume())).collect();
        assert_eq!(got, [("d", 3.0), ("g", 15.0), ("c", 7.0)]);
        assert_eq!(out[0].project_id(), Some("p2"), "project_id: last");
        assert_eq!(
            out[0].metadata_value("seq"),
            Some(json!(1)),
            "metadata: last by default"
        );
        assert_eq!(
            out[0].timestamp().timestamp() % 60,
            0,
            "timestamp: first by default"
        );
    }

    #[test]
    fn size_is_checked_at_flush_and_unpolicied_attributes_split_groups() {
        let mut a = agg(json!({"size": 3, "resource_metadata": "drop", "timestamp": "last"}));
        let mut out = SampleBatch::new();
        a.handle(s("d", SampleType::Delta, 1.0, "p1", 0), &mut out)
            .unwrap();
        a.handle(s("d", SampleType::Delta, 1.0, "p2", 1), &mut out)
            .unwrap();
        a.flush(&mut out).unwrap();
        assert!(out.is_empty(), "2 of 3");
        a.handle(s("d", SampleType::Delta, 1.0, "p1", 2), &mut out)
            .unwrap();
        a.flush(&mut out).unwrap();
        let got: Vec<(Option<&str>, f64)> =
            out.iter().map(|x| (x.project_id(), x.volume())).collect();
        assert_eq!(
            got,
            [(Some("p1"), 2.0), (Some("p2"), 1.0)],
            "no project policy: grouped by project"
        );
        assert_eq!(out[0].resource_metadata_json(), "{}");
        assert_eq!(out[0].timestamp().timestamp() % 60, 2);
    }

    #[test]
    fn retention_time_releases_old_aggregates() {
        let mut a = agg(json!({"retention_time": 60}));
        // Timestamps in 2026-01-01 are long past: expired at the first flush.
        let out = run(&mut a, vec![s("d", SampleType::Delta, 1.0, "p", 0)]);
        assert_eq!(out.len(), 1);
        let mut fresh = agg(json!({"retention_time": 3600}));
        let mut out = SampleBatch::new();
        fresh
            .handle(Sample::new("d", SampleType::Delta, "u", 1.0, "r"), &mut out)
            .unwrap();
        fresh.flush(&mut out).unwrap();
        assert!(out.is_empty(), "a sample taken now is not an hour old");
    }

    #[test]
    fn bad_policies_are_parameter_errors() {
        let e = Aggregator::create(
            &Parameters::from_json(r#"{"user_id": "drop"}"#).unwrap(),
            &Context::default(),
        )
        .err()
        .unwrap();
        assert!(e.message().contains("`user_id` takes first or last"), "{e}");
        let e = Aggregator::create(
            &Parameters::from_json(r#"{"timestamp": "middle"}"#).unwrap(),
            &Context::default(),
        )
        .err()
        .unwrap();
        assert!(e.message().contains("unknown variant `middle`"), "{e}");
    }
}
