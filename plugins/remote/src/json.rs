//! `http://` and `https://`: samples as JSON, each as Ceilometer's `Sample.as_dict()`
//! (`name`, `type`, `unit`, `volume`, `user_id`, `user_name`, `project_id`,
//! `project_name`, `resource_id`, `timestamp`, `resource_metadata`, `source`, `id`,
//! `monotonic_time`): a JSON array per request with `batch=True` (the default), one
//! object per request with `batch=False`.

use ceilo_plugin_api::{log_error, signing, Sample};
use serde_json::Value;

use crate::client::Request;
use crate::delivery::Encoder;

/// Ceilometer's meter-message names for the fields `as_dict` names otherwise.
const RENAMED: [(&str, &str); 5] = [
    ("counter_name", "name"),
    ("counter_type", "type"),
    ("counter_unit", "unit"),
    ("counter_volume", "volume"),
    ("message_id", "id"),
];

/// A sample as Ceilometer's `Sample.as_dict()`.
pub fn as_dict(sample: &Sample) -> Option<Value> {
    let message = match signing::ceilometer::meter_message(sample, None) {
        Ok(Value::Object(m)) => m,
        Ok(_) => return None,
        Err(e) => {
            log_error!(
                "http publisher: sample {} cannot be written as JSON: {e}",
                sample.message_id()
            );
            return None;
        }
    };
    let mut out = serde_json::Map::with_capacity(message.len());
    for (k, v) in message {
        if k == signing::SIGNATURE_FIELD {
            continue;
        }
        let name = RENAMED
            .iter()
            .find(|(from, _)| *from == k)
            .map_or(k.as_str(), |(_, to)| to);
        out.insert(name.to_owned(), v);
    }
    Some(Value::Object(out))
}

/// The JSON encoder.
pub struct Json {
    pub batch: bool,
}

impl Encoder for Json {
    fn encode(&mut self, batch: &[Sample]) -> Vec<Request> {
        let dicts: Vec<Value> = batch.iter().filter_map(as_dict).collect();
        let request = |body: Vec<u8>, samples| Request {
            suffix: String::new(),
            content_type: "application/json",
            body,
            samples,
            attachment: None,
        };
        if self.batch {
            if dicts.is_empty() {
                return Vec::new();
            }
            let n = dicts.len();
            vec![request(serde_json::to_vec(&dicts).unwrap_or_default(), n)]
        } else {
            dicts
                .iter()
                .map(|d| request(serde_json::to_vec(d).unwrap_or_default(), 1))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceilo_plugin_api::SampleType;

    #[test]
    fn samples_are_ceilometers_as_dict() {
        let s = Sample::new("cpu", SampleType::Cumulative, "ns", 12.5, "vm-1").with_project_id("p");
        let d = as_dict(&s).unwrap();
        let mut keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "id",
                "monotonic_time",
                "name",
                "project_id",
                "project_name",
                "resource_id",
                "resource_metadata",
                "source",
                "timestamp",
                "type",
                "unit",
                "user_id",
                "user_name",
                "volume"
            ]
        );
        assert_eq!(
            (d["name"].as_str(), d["type"].as_str()),
            (Some("cpu"), Some("cumulative"))
        );
        assert_eq!(
            (d["volume"].as_f64(), d["id"].as_str()),
            (Some(12.5), Some(s.message_id()))
        );
        assert_eq!(d["user_id"], Value::Null);
    }

    #[test]
    fn batch_or_one_request_per_sample() {
        let batch: Vec<Sample> = (0..3)
            .map(|i| Sample::new("m", SampleType::Gauge, "u", i as f64, "r"))
            .collect();
        let one = Json { batch: true }.encode(&batch);
        assert_eq!((one.len(), one[0].samples), (1, 3));
        let array: Vec<Value> = serde_json::from_slice(&one[0].body).unwrap();
        assert_eq!(array.len(), 3);
        let each = Json { batch: false }.encode(&batch);
        assert_eq!(each.len(), 3);
        let second: Value = serde_json::from_slice(&each[1].body).unwrap();
        assert_eq!(second["volume"].as_f64(), Some(1.0));
    }
}
