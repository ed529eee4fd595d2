//! `unit_conversion` (Ceilometer's ScalingTransformer): renames, retypes and scales
//! each sample in `source.unit` (all samples when none is given).

use ceilo_plugin_api::{
    Context, Parameters, Plugin, PluginError, Sample, SampleBatch, Transformer,
};

use crate::conversion::{Conversion, Scale, SourceTarget};

/// Converts samples: `target {name, unit, type, scale, max, map_to}`.
pub struct UnitConversion {
    conversion: Conversion,
}

impl Plugin for UnitConversion {
    const NAME: &'static str = "unit_conversion";
    const DESCRIPTION: &'static str =
        "renames and scales samples (target: name, unit, type, scale, max, map_to)";

    fn create(parameters: &Parameters, _context: &Context) -> Result<Self, PluginError> {
        let c: SourceTarget = parameters.parse()?;
        Ok(UnitConversion {
            conversion: Conversion::new(c.source, c.target, Scale::None)?,
        })
    }
}

impl Transformer for UnitConversion {
    fn handle(&mut self, sample: Sample, out: &mut SampleBatch) -> Result<(), PluginError> {
        if self.conversion.applies_to(&sample) {
            self.conversion.convert(sample, 1.0, out)
        } else {
            out.push(sample);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceilo_plugin_api::SampleType;
    use serde_json::json;

    fn t(params: serde_json::Value) -> Result<UnitConversion, PluginError> {
        UnitConversion::create(
            &Parameters::from_json(&params.to_string()).unwrap(),
            &Context::default(),
        )
    }

    fn run(t: &mut UnitConversion, s: Sample) -> SampleBatch {
        let mut out = SampleBatch::new();
        t.handle(s, &mut out).unwrap();
        out
    }

    #[test]
    fn numeric_scale_and_target_fields() {
        let mut c = t(json!({"source": {"unit": "B"}, "target": {"name": "disk.kb", "unit": "KB", "type": "gauge", "scale": 0.0009765625}})).unwrap();
        let s = Sample::new(
            "disk.read.bytes",
            SampleType::Cumulative,
            "B",
            2048.0,
            "sda",
        );
        let id = s.message_id().to_owned();
        let out = run(&mut c, s);
        let o = &out[0];
        assert_eq!(
            (o.name(), o.unit(), o.sample_type(), o.volume()),
            ("disk.kb", "KB", SampleType::Gauge, 2.0)
        );
        assert_ne!(o.message_id(), id, "a derived sample gets its own id");
        // other units pass unchanged
        let out = run(&mut c, Sample::new("x", SampleType::Gauge, "MB", 3.0, "r"));
        assert_eq!((out[0].name(), out[0].volume()), ("x", 3.0));
    }

    #[test]
    fn expression_scale_max_and_regex_map() {
        let mut c = t(json!({
            "source": {"map_from": {"name": "disk\\.(read|write)\\.bytes", "unit": "(B)"}},
            "target": {"map_to": {"name": "disk.\\1.kilobytes", "unit": "K\\1"}, "scale": "volume * 1.0 / 1024", "max": 3}
        }))
        .unwrap();
        let out = run(
            &mut c,
            Sample::new(
                "disk.write.bytes",
                SampleType::Cumulative,
                "B",
                2048.0,
                "sda",
            ),
        );
        assert_eq!(
            (out[0].name(), out[0].unit(), out[0].volume()),
            ("disk.write.kilobytes", "KB", 2.0)
        );
        let out = run(
            &mut c,
            Sample::new(
                "disk.read.bytes",
                SampleType::Cumulative,
                "B",
                10240.0,
                "sda",
            ),
        );
        assert_eq!(out[0].volume(), 3.0, "capped by max");
    }

    #[test]
    fn zero_max_does_not_cap_and_missing_metadata_uses_or() {
        let mut c =
            t(json!({"target": {"scale": "volume / (resource_metadata.cores or 2)", "max": 0}}))
                .unwrap();
        let out = run(&mut c, Sample::new("m", SampleType::Gauge, "", 1000.0, "r"));
        assert_eq!(out[0].volume(), 500.0);
    }

    #[test]
    fn an_expression_without_fields_is_the_new_volume() {
        // As Ceilometer's eval of a string scale: its value replaces the volume.
        let mut c = t(json!({"target": {"scale": "2 * 10**3"}})).unwrap();
        let out = run(&mut c, Sample::new("m", SampleType::Gauge, "", 7.0, "r"));
        assert_eq!(out[0].volume(), 2000.0);
        // One that is not finite stays an expression, and fails on each sample.
        let mut c = t(json!({"target": {"scale": "1 / 0"}})).unwrap();
        let mut out = SampleBatch::new();
        let err = c
            .handle(Sample::new("m", SampleType::Gauge, "", 7.0, "r"), &mut out)
            .unwrap_err();
        assert!(err.message().contains("scale for m of r"), "{err}");
        assert!(out.is_empty());
    }

    #[test]
    fn bad_parameters_are_reported() {
        let err = t(json!({"target": {"scale": "volume *"}})).err().unwrap();
        assert!(
            err.message().contains("target.scale: bad expression"),
            "{err}"
        );
        let err = t(json!({"target": {"type": "rate"}})).err().unwrap();
        assert!(
            err.message().contains("unknown sample type `rate`"),
            "{err}"
        );
        let err = t(json!({"traget": {}})).err().unwrap();
        assert!(err.message().contains("unknown field `traget`"), "{err}");
    }
}
