//! The sample of plugin ABI 1.0 and 1.1 — FROZEN. Every string separately owned
//! (`RString`), metadata as JSON text. Since ABI 1.2 the crate's [`crate::Sample`] is
//! made of shared [`crate::Text`]; this layout stays for the libraries built before,
//! and the host converts at their boundary.

use abi_stable::std_types::{ROption, RString, RVec};
use abi_stable::StableAbi;

use crate::SampleType;

/// One sample as ABI 1.0 and 1.1 libraries pass it (the layout they were built with).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Sample {
    name: RString,
    sample_type: SampleType,
    unit: RString,
    volume: f64,
    user_id: ROption<RString>,
    project_id: ROption<RString>,
    resource_id: RString,
    /// Microseconds since the Unix epoch, UTC.
    timestamp_us: i64,
    /// A JSON object, as text.
    resource_metadata: RString,
    source: RString,
    message_id: RString,
    monotonic_time: ROption<f64>,
}

/// A list of 1.0 samples, as ABI 1.0 and 1.1 libraries pass it.
#[repr(transparent)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq)]
pub struct SampleBatch(pub RVec<Sample>);

fn rstring(s: &str) -> RString {
    RString::from(s)
}

impl From<&crate::Sample> for Sample {
    fn from(s: &crate::Sample) -> Self {
        Sample {
            name: rstring(s.name()),
            sample_type: s.sample_type(),
            unit: rstring(s.unit()),
            volume: s.volume(),
            user_id: s.user_id().map(rstring).into(),
            project_id: s.project_id().map(rstring).into(),
            resource_id: rstring(s.resource_id()),
            timestamp_us: s.timestamp_micros(),
            resource_metadata: rstring(s.resource_metadata_json()),
            source: rstring(s.source()),
            message_id: rstring(s.message_id()),
            monotonic_time: s.monotonic_time().into(),
        }
    }
}

impl From<Sample> for crate::Sample {
    fn from(s: Sample) -> Self {
        // A 1.x library's metadata was checked to be an object when it was set.
        crate::Sample::from_parts_trusted(crate::SampleParts {
            name: s.name.into_string(),
            sample_type: s.sample_type,
            unit: s.unit.into_string(),
            volume: s.volume,
            user_id: Option::from(s.user_id).map(RString::into_string),
            project_id: Option::from(s.project_id).map(RString::into_string),
            resource_id: s.resource_id.into_string(),
            timestamp_micros: s.timestamp_us,
            resource_metadata_json: s.resource_metadata.into_string(),
            source: s.source.into_string(),
            message_id: s.message_id.into_string(),
            monotonic_time: s.monotonic_time.into(),
        })
    }
}

impl From<&[crate::Sample]> for SampleBatch {
    fn from(samples: &[crate::Sample]) -> Self {
        SampleBatch(samples.iter().map(Sample::from).collect())
    }
}

impl From<crate::SampleBatch> for SampleBatch {
    fn from(batch: crate::SampleBatch) -> Self {
        SampleBatch::from(&batch[..])
    }
}

impl From<SampleBatch> for crate::SampleBatch {
    fn from(batch: SampleBatch) -> Self {
        batch.0.into_iter().map(crate::Sample::from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_both_ways_without_loss() {
        let s = crate::Sample::new("cpu", SampleType::Cumulative, "ns", 1.5, "vm-1")
            .with_project_id("p")
            .with_user_id("u")
            .with_monotonic_time(3.0)
            .with_resource_metadata(json!({"a": {"b": 1}}));
        let old = Sample::from(&s);
        assert_eq!(old.message_id.as_str(), s.message_id());
        assert_eq!(crate::Sample::from(old), s);
        let bare = crate::Sample::new("m", SampleType::Gauge, "", 0.0, "r");
        assert_eq!(Sample::from(&bare).resource_metadata.as_str(), "{}");
        assert_eq!(crate::Sample::from(Sample::from(&bare)), bare);
    }
}
