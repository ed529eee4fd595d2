//! `accumulator`: holds samples back until `size` of them are buffered, then releases
//! them all at the next flush (Ceilometer's semantics: the size is checked at flush,
//! not per sample; a size below 1 passes samples straight through).

use ceilo_plugin_api::{
    Context, Parameters, Plugin, PluginError, Sample, SampleBatch, Transformer,
};
use serde::Deserialize;

/// Buffers samples and releases them in groups of at least `size`.
pub struct Accumulator {
    size: i64,
    held: Vec<Sample>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "one", deserialize_with = "crate::lenient::int")]
    size: i64,
}

fn one() -> i64 {
    1
}

impl Plugin for Accumulator {
    const NAME: &'static str = "accumulator";
    const DESCRIPTION: &'static str =
        "buffers samples and releases them at flush once `size` are held";

    fn create(parameters: &Parameters, _context: &Context) -> Result<Self, PluginError> {
        let config: Config = parameters.parse()?;
        Ok(Accumulator {
            size: config.size,
            held: Vec::new(),
        })
    }
}

impl Transformer for Accumulator {
    fn handle(&mut self, sample: Sample, out: &mut SampleBatch) -> Result<(), PluginError> {
        if self.size >= 1 {
            self.held.push(sample);
        } else {
            out.push(sample);
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut SampleBatch) -> Result<(), PluginError> {
        if self.size >= 1 && self.held.len() as i64 >= self.size {
            out.extend(self.held.drain(..));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceilo_plugin_api::SampleType;

    fn acc(size: i64) -> Accumulator {
        let p = Parameters::from_json(&format!(r#"{{"size": {size}}}"#)).unwrap();
        Accumulator::create(&p, &Context::default()).unwrap()
    }

    fn sample(v: f64) -> Sample {
        Sample::new("m", SampleType::Gauge, "u", v, "r")
    }

    #[test]
    fn releases_at_flush_once_size_is_reached() {
        let mut a = acc(3);
        let mut out = SampleBatch::new();
        a.handle(sample(1.0), &mut out).unwrap();
        a.handle(sample(2.0), &mut out).unwrap();
        a.flush(&mut out).unwrap();
        assert!(out.is_empty(), "two of three held back");
        a.handle(sample(3.0), &mut out).unwrap();
        a.handle(sample(4.0), &mut out).unwrap();
        assert!(out.is_empty(), "size is checked at flush, not per sample");
        a.flush(&mut out).unwrap();
        let volumes: Vec<f64> = out.iter().map(Sample::volume).collect();
        assert_eq!(volumes, [1.0, 2.0, 3.0, 4.0]);
        out.clear();
        a.flush(&mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn size_below_one_passes_through() {
        let mut a = acc(0);
        let mut out = SampleBatch::new();
        a.handle(sample(1.0), &mut out).unwrap();
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn bad_size_is_an_invalid_parameter() {
        let p = Parameters::from_json(r#"{"size": "ten"}"#).unwrap();
        let err = Accumulator::create(&p, &Context::default()).err().unwrap();
        assert_eq!(err.kind(), ceilo_plugin_api::ErrorKind::INVALID_PARAMETERS);
        let p = Parameters::from_json(r#"{"sise": 3}"#).unwrap();
        let err = Accumulator::create(&p, &Context::default()).err().unwrap();
        assert!(err.message().contains("unknown field `sise`"), "{err}");
    }
}
