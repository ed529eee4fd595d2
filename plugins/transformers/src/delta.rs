//! `delta` (Ceilometer's DeltaTransformer): current − previous volume per (name,
//! resource), as a `delta` sample. The first sample is dropped, as is a sample older
//! than the previous one; `growth_only` drops negative deltas.

use std::collections::HashMap;

use ceilo_plugin_api::{
    Context, Parameters, Plugin, PluginError, Sample, SampleBatch, SampleType, Transformer,
};
use serde::Deserialize;

use crate::conversion::{Conversion, Scale, SourceParams, TargetParams};

/// Emits volume differences.
pub struct Delta {
    conversion: Conversion,
    growth_only: bool,
    previous: HashMap<(String, String), (f64, i64)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    source: SourceParams,
    #[serde(default)]
    target: TargetParams,
    #[serde(default)]
    growth_only: bool,
}

impl Plugin for Delta {
    const NAME: &'static str = "delta";
    const DESCRIPTION: &'static str =
        "current − previous volume per resource (growth_only drops negatives)";

    fn create(parameters: &Parameters, _context: &Context) -> Result<Self, PluginError> {
        let c: Config = parameters.parse()?;
        Ok(Delta {
            conversion: Conversion::new(c.source, c.target, Scale::None)?,
            growth_only: c.growth_only,
            previous: HashMap::new(),
        })
    }
}

impl Transformer for Delta {
    fn handle(&mut self, mut s: Sample, out: &mut SampleBatch) -> Result<(), PluginError> {
        let key = (s.name().to_owned(), s.resource_id().to_owned());
        let now = (s.volume(), s.timestamp_micros());
        let Some(prev) = self.previous.insert(key.clone(), now) else {
            return Ok(());
        };
        if now.1 < prev.1 {
            self.previous.insert(key, prev);
            return Err(PluginError::invalid_input(format!(
                "{} for {} is older than the previous sample: dropped",
                s.name(),
                s.resource_id()
            )));
        }
        let delta = now.0 - prev.0;
        if self.growth_only && delta < 0.0 {
            return Ok(());
        }
        if let Some(name) = self.conversion.mapped_name(&s) {
            s.set_name(name);
        }
        s.set_sample_type(SampleType::Delta);
        s.set_volume(delta);
        s.renew_message_id();
        out.push(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use serde_json::json;

    fn delta(params: serde_json::Value) -> Delta {
        Delta::create(
            &Parameters::from_json(&params.to_string()).unwrap(),
            &Context::default(),
        )
        .unwrap()
    }

    fn s(v: f64, secs: i64) -> Sample {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(secs);
        Sample::new("bytes", SampleType::Cumulative, "B", v, "eth0").with_timestamp(t)
    }

    fn feed(d: &mut Delta, x: Sample) -> Vec<(String, f64, SampleType)> {
        let mut out = SampleBatch::new();
        let _ = d.handle(x, &mut out);
        out.iter()
            .map(|s| (s.name().to_owned(), s.volume(), s.sample_type()))
            .collect()
    }

    #[test]
    fn differences_after_the_first_sample() {
        let mut d = delta(json!({"target": {"name": "bytes.delta"}}));
        assert!(feed(&mut d, s(100.0, 0)).is_empty());
        assert_eq!(
            feed(&mut d, s(150.0, 10)),
            [("bytes.delta".to_owned(), 50.0, SampleType::Delta)]
        );
        assert_eq!(feed(&mut d, s(120.0, 20))[0].1, -30.0);
    }

    #[test]
    fn growth_only_and_time_order() {
        let mut d = delta(json!({"growth_only": true}));
        feed(&mut d, s(100.0, 10));
        assert!(
            feed(&mut d, s(90.0, 20)).is_empty(),
            "negative delta dropped"
        );
        assert!(feed(&mut d, s(200.0, 5)).is_empty(), "older sample dropped");
        assert_eq!(
            feed(&mut d, s(95.0, 30))[0].1,
            5.0,
            "compared with the sample at 20 s"
        );
    }
}
