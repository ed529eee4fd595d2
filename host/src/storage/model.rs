//! What the stores keep and answer: stored samples, resources, queries, write outcomes.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use ceilo_plugin_api::{Sample, SampleType};

/// A sample as stored: the sample plus when the store received it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSample {
    /// The sample, every field as it was written.
    pub sample: Sample,
    /// When the store recorded it (microsecond precision).
    pub recorded_at: DateTime<Utc>,
}

/// A meter seen on a resource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ResourceMeter {
    /// Meter name.
    pub name: String,
    /// Its type.
    pub sample_type: String,
    /// Its unit.
    pub unit: String,
}

/// A resource: what the store knows of everything one project measured on one resource
/// id. The same id in two projects is two resources: neither sees the other's meters,
/// times or metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The resource id.
    pub resource_id: String,
    /// The project it belongs to (part of its key).
    pub project_id: Option<String>,
    /// User of the latest sample.
    pub user_id: Option<String>,
    /// Source of the latest sample.
    pub source: String,
    /// Timestamp of the oldest sample seen.
    pub first_sample_timestamp: DateTime<Utc>,
    /// Timestamp of the newest sample seen.
    pub last_sample_timestamp: DateTime<Utc>,
    /// Metadata of the newest sample seen.
    pub metadata: Map<String, Value>,
    /// The meters measured on it, sorted by name.
    pub meters: Vec<ResourceMeter>,
}

/// Which samples to return. Every set field must match; samples come newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleQuery {
    /// Meter name.
    pub meter: Option<String>,
    /// Resource id.
    pub resource_id: Option<String>,
    /// Project id.
    pub project_id: Option<String>,
    /// User id.
    pub user_id: Option<String>,
    /// Source.
    pub source: Option<String>,
    /// Message id.
    pub message_id: Option<String>,
    /// Timestamp at or after.
    pub start: Option<DateTime<Utc>>,
    /// Timestamp before.
    pub end: Option<DateTime<Utc>>,
    /// Further conditions, all of which must hold.
    pub conditions: Vec<super::Condition>,
    /// At most this many (none: all).
    pub limit: Option<usize>,
}

/// Which resources to return, sorted by id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceQuery {
    /// Resource id.
    pub resource_id: Option<String>,
    /// Project id.
    pub project_id: Option<String>,
    /// User id (of the latest sample).
    pub user_id: Option<String>,
    /// Source (of the latest sample).
    pub source: Option<String>,
}

/// What a write did. `stored + duplicates + refused.len()` is the batch size.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Samples newly stored.
    pub stored: usize,
    /// Samples whose message id was already stored (a redelivery): not stored again.
    pub duplicates: usize,
    /// Samples the store cannot hold, whatever the retries (see `limits`): not stored,
    /// for the caller to dead-letter.
    pub refused: Vec<Refusal>,
}

/// One sample of a batch a store refused for what it is, not for an outage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Its position in the batch given to `record`.
    pub index: usize,
    /// Why, and what would make it storable.
    pub reason: String,
}

/// A resource's summary of one batch, per (resource id, project): what the upsert
/// moves outward or replaces. Resources are keyed by project, so that one project's
/// samples never touch another project's record of the same resource id.
#[derive(Debug, Clone)]
pub(crate) struct ResourceUpdate<'a> {
    pub resource_id: &'a str,
    pub project_id: Option<&'a str>,
    pub first: i64,
    pub last: i64,
    /// The sample with the newest timestamp (its user, source, metadata win).
    pub latest: &'a Sample,
    pub meters: Vec<ResourceMeter>,
}

/// Summarises a batch per (resource, project), in first-seen order.
pub(crate) fn resource_updates(samples: &[Sample]) -> Vec<ResourceUpdate<'_>> {
    let mut out: Vec<ResourceUpdate<'_>> = Vec::new();
    let mut index: std::collections::HashMap<(&str, Option<&str>), usize> =
        std::collections::HashMap::new();
    for s in samples {
        let t = s.timestamp_micros();
        let meter = ResourceMeter {
            name: s.name().to_owned(),
            sample_type: s.sample_type().as_str().to_owned(),
            unit: s.unit().to_owned(),
        };
        let key = (s.resource_id(), s.project_id());
        match index.get(&key) {
            Some(&i) => {
                let u = &mut out[i];
                u.first = u.first.min(t);
                if t >= u.last {
                    u.last = t;
                    u.latest = s;
                }
                if !u.meters.contains(&meter) {
                    u.meters.push(meter);
                }
            }
            None => {
                index.insert(key, out.len());
                out.push(ResourceUpdate {
                    resource_id: s.resource_id(),
                    project_id: s.project_id(),
                    first: t,
                    last: t,
                    latest: s,
                    meters: vec![meter],
                });
            }
        }
    }
    out
}

/// Microseconds since the epoch to a time (out-of-range values clamp to the epoch).
pub(crate) fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Parses a stored sample type; stores only ever hold valid ones.
pub(crate) fn sample_type(text: &str) -> Result<SampleType, String> {
    text.parse::<SampleType>().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_updates_take_extremes_and_the_latest_sample() {
        let t0 = Utc::now();
        let a = Sample::new("cpu", SampleType::Cumulative, "ns", 1.0, "r1")
            .with_timestamp(t0)
            .with_project_id("p")
            .with_user_id("new");
        let b = Sample::new("mem", SampleType::Gauge, "MB", 1.0, "r1")
            .with_timestamp(t0 - chrono::Duration::seconds(10))
            .with_project_id("p")
            .with_user_id("old");
        // The same resource id in another project is another resource.
        let other = Sample::new("cpu", SampleType::Cumulative, "ns", 1.0, "r1")
            .with_timestamp(t0 + chrono::Duration::seconds(10))
            .with_project_id("q");
        let c = Sample::new("cpu", SampleType::Cumulative, "ns", 2.0, "r2").with_timestamp(t0);
        let batch = [a.clone(), b.clone(), other, c];
        let u = resource_updates(&batch);
        assert_eq!(u.len(), 3);
        assert_eq!(u[0].first, b.timestamp_micros());
        assert_eq!(u[0].last, a.timestamp_micros());
        assert_eq!(u[0].latest.user_id(), Some("new"));
        assert_eq!(u[0].meters.len(), 2);
        assert_eq!((u[1].resource_id, u[1].project_id), ("r1", Some("q")));
        assert_eq!(u[1].meters.len(), 1);
    }
}
