//! `arithmetic` (Ceilometer's ArithmeticTransformer): an expression over several
//! meters of one resource, e.g. `100 * $(memory.usage) / $(memory)`. Every sample
//! reaching the sink is consumed; at flush, each resource for which all referenced
//! meters were seen yields one sample (latest values), and its cache is cleared. A NaN
//! or infinite result is dropped.

use std::collections::HashMap;

use ceilo_plugin_api::{
    log_warn, Context, Parameters, Plugin, PluginError, Sample, SampleBatch, SampleType,
    Transformer,
};
use serde::Deserialize;

use crate::conversion::field_of;
use crate::expr::{self, Expr, Scope};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetConfig {
    name: Option<String>,
    unit: Option<String>,
    #[serde(rename = "type")]
    sample_type: Option<SampleType>,
    expr: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    target: TargetConfig,
}

/// Computes a new meter from others.
pub struct Arithmetic {
    name: Option<String>,
    unit: Option<String>,
    sample_type: Option<SampleType>,
    expr: Expr,
    meters: Vec<String>,
    /// resource → meter → latest sample; resources in arrival order.
    cache: Vec<(String, HashMap<String, Sample>)>,
    latest_timestamp: Option<chrono::DateTime<chrono::Utc>>,
}

impl Plugin for Arithmetic {
    const NAME: &'static str = "arithmetic";
    const DESCRIPTION: &'static str =
        "expression over several meters of a resource, e.g. 100 * $(memory.usage) / $(memory)";

    fn create(parameters: &Parameters, _context: &Context) -> Result<Self, PluginError> {
        let c: Config = parameters.parse()?;
        let expr = expr::parse(&c.target.expr, true)
            .map_err(|e| PluginError::invalid_parameters(format!("target.expr: {e}")))?;
        let meters = expr.meters();
        if meters.is_empty() {
            // As Ceilometer: loaded, misconfigured, consuming its samples and publishing
            // nothing, with a warning (a pipeline file that has one keeps working).
            log_warn!(
                "arithmetic: target.expr `{}` references no meter (write meters as $(meter.name)): this transformer publishes nothing",
                c.target.expr.chars().take(80).collect::<String>()
            );
        }
        Ok(Arithmetic {
            name: c.target.name,
            unit: c.target.unit,
            sample_type: c.target.sample_type,
            expr,
            meters,
            cache: Vec::new(),
            latest_timestamp: None,
        })
    }
}

struct Resource<'a>(&'a HashMap<String, Sample>);

impl Scope for Resource<'_> {
    fn field(&self, _path: &[String]) -> Option<f64> {
        None
    }
    fn meter(&self, name: &str, path: &[String]) -> Option<f64> {
        self.0.get(name).and_then(|s| field_of(s, path, None))
    }
}

impl Transformer for Arithmetic {
    fn handle(&mut self, s: Sample, _out: &mut SampleBatch) -> Result<(), PluginError> {
        self.latest_timestamp = Some(s.timestamp());
        if !self.meters.iter().any(|m| m == s.name()) {
            return Ok(()); // consumed, as in Ceilometer
        }
        let rid = s.resource_id().to_owned();
        let slot = match self.cache.iter().position(|(r, _)| *r == rid) {
            Some(i) => &mut self.cache[i].1,
            None => {
                self.cache.push((rid, HashMap::new()));
                let last = self.cache.len() - 1;
                &mut self.cache[last].1
            }
        };
        slot.insert(s.name().to_owned(), s);
        Ok(())
    }

    fn flush(&mut self, out: &mut SampleBatch) -> Result<(), PluginError> {
        let complete =
            |m: &HashMap<String, Sample>| self.meters.iter().all(|name| m.contains_key(name));
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.cache)
            .into_iter()
            .partition(|(_, m)| complete(m));
        self.cache = waiting;
        for (rid, meters) in ready {
            let value = match self.expr.eval(&Resource(&meters)) {
                Ok(v) => v,
                Err(e) => {
                    log_warn!("arithmetic: dropped the result for {rid}: {e}");
                    continue;
                }
            };
            let Some(reference) = meters.get(&self.meters[0]) else {
                continue;
            };
            let mut s = reference.clone();
            if let Some(n) = &self.name {
                s.set_name(n.as_str());
            }
            if let Some(u) = &self.unit {
                s.set_unit(u.as_str());
            }
            if let Some(t) = self.sample_type {
                s.set_sample_type(t);
            }
            if let Some(ts) = self.latest_timestamp {
                s.set_timestamp(ts);
            }
            s.set_volume(value);
            s.renew_message_id();
            out.push(s);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn arith(expr: &str) -> Result<Arithmetic, PluginError> {
        let p =
            json!({"target": {"name": "memory_util", "unit": "%", "type": "gauge", "expr": expr}});
        Arithmetic::create(
            &Parameters::from_json(&p.to_string()).unwrap(),
            &Context::default(),
        )
    }

    fn m(name: &str, v: f64, r: &str) -> Sample {
        Sample::new(name, SampleType::Gauge, "MB", v, r)
            .with_resource_metadata(json!({"total": 400}))
    }

    #[test]
    fn computes_per_resource_when_all_meters_are_present() {
        let mut a = arith("100 * $(memory.usage) / $(memory)").unwrap();
        let mut out = SampleBatch::new();
        for s in [
            m("memory.usage", 50.0, "vm1"),
            m("memory", 200.0, "vm1"),
            m("memory.usage", 10.0, "vm2"),
            m("cpu", 1.0, "vm1"),
        ] {
            a.handle(s, &mut out).unwrap();
        }
        assert!(out.is_empty(), "every sample is consumed");
        a.flush(&mut out).unwrap();
        assert_eq!(out.len(), 1, "vm2 lacks memory");
        assert_eq!(
            (out[0].name(), out[0].resource_id(), out[0].volume()),
            ("memory_util", "vm1", 25.0)
        );
        out.clear();
        a.handle(m("memory", 100.0, "vm2"), &mut out).unwrap();
        a.flush(&mut out).unwrap();
        assert_eq!(
            (out[0].resource_id(), out[0].volume()),
            ("vm2", 10.0),
            "vm2's cache was kept"
        );
        out.clear();
        a.flush(&mut out).unwrap();
        assert!(out.is_empty(), "caches are cleared after a result");
    }

    #[test]
    fn metadata_references_and_nan_results() {
        let mut a = arith("$(memory.usage) / $(memory.usage).resource_metadata.total").unwrap();
        let mut out = SampleBatch::new();
        a.handle(m("memory.usage", 100.0, "vm"), &mut out).unwrap();
        a.flush(&mut out).unwrap();
        assert_eq!(out[0].volume(), 0.25);

        let mut a = arith("$(a) * 0 / $(a)").unwrap();
        let mut out = SampleBatch::new();
        a.handle(m("a", 0.0, "vm"), &mut out).unwrap();
        a.flush(&mut out).unwrap();
        assert!(out.is_empty(), "0/0 is dropped");
    }

    #[test]
    fn an_expression_without_meters_loads_and_publishes_nothing() {
        let mut a = arith("512.0 * 3").unwrap();
        let mut out = SampleBatch::new();
        a.handle(m("a", 1.0, "vm"), &mut out).unwrap();
        a.flush(&mut out).unwrap();
        assert!(out.is_empty(), "{out:?}");
        let e = arith("$(a) +").err().unwrap();
        assert!(e.message().contains("target.expr: bad expression"), "{e}");
    }
}
