//! `compute`: instance meters from Nova's `compute.instance.*` notifications, as
//! Ceilometer derives them: `instance` (1 per instance), `memory` (MB), `vcpus`,
//! `disk.root.size` and `disk.ephemeral.size` (GB), for every notification that
//! carries flavor data.

use ceilo_plugin_api::{
    parse_timestamp, Context, Notification, NotificationHandler, Parameters, Plugin, PluginError,
    Sample, SampleBatch, SampleType,
};
use serde_json::{Map, Value};

/// Turns instance notifications into instance, memory, vcpus and disk size samples.
pub struct Compute;

impl Plugin for Compute {
    const NAME: &'static str = "compute";
    const DESCRIPTION: &'static str =
        "instance, memory, vcpus, disk.root.size, disk.ephemeral.size from compute.instance.*";

    fn create(parameters: &Parameters, _context: &Context) -> Result<Self, PluginError> {
        if !parameters.is_empty() {
            return Err(PluginError::invalid_parameters(
                "`compute` takes no parameters",
            ));
        }
        Ok(Compute)
    }
}

/// (meter, unit, payload field); `None` for the constant `instance` meter.
const METERS: [(&str, &str, Option<&str>); 5] = [
    ("instance", "instance", None),
    ("memory", "MB", Some("memory_mb")),
    ("vcpus", "vcpu", Some("vcpus")),
    ("disk.root.size", "GB", Some("root_gb")),
    ("disk.ephemeral.size", "GB", Some("ephemeral_gb")),
];

impl NotificationHandler for Compute {
    fn event_types(&self) -> Vec<String> {
        vec!["compute.instance.*".to_owned()]
    }

    fn meters(&self) -> Vec<String> {
        METERS.iter().map(|(m, _, _)| m.to_string()).collect()
    }

    fn handle(&mut self, n: &Notification) -> Result<SampleBatch, PluginError> {
        let payload = n.payload.as_object().ok_or_else(|| {
            PluginError::invalid_input(format!("{}: payload is not an object", n.event_type))
        })?;
        let text = |k: &str| payload.get(k).and_then(Value::as_str).map(str::to_owned);
        let Some(instance_id) = text("instance_id") else {
            return Err(PluginError::invalid_input(format!(
                "{}: payload has no `instance_id`",
                n.event_type
            )));
        };
        // Only notifications with flavor data describe the instance's size.
        if !payload.contains_key("memory_mb") {
            return Ok(SampleBatch::new());
        }
        let timestamp = n.timestamp.as_deref().and_then(|t| parse_timestamp(t).ok());
        let metadata = metadata(payload, &n.event_type, n.publisher_id.as_deref());
        // One template for the instance: every meter's sample clones it, sharing its
        // ids and metadata text instead of building them again per meter.
        let mut template = Sample::new("", SampleType::Gauge, "", 0.0, instance_id.as_str())
            .with_resource_metadata(Value::Object(metadata));
        template.set_user_id(text("user_id"));
        template.set_project_id(text("tenant_id").or_else(|| text("project_id")));
        template.set_source("openstack");
        if let Some(t) = timestamp {
            template.set_timestamp(t);
        }
        let mut out = SampleBatch::new();
        for (meter, unit, field) in METERS {
            let volume = match field {
                None => 1.0,
                Some(f) => match payload.get(f).and_then(number) {
                    Some(v) => v,
                    None => continue,
                },
            };
            let mut s = template.clone();
            s.set_name(meter);
            s.set_unit(unit);
            s.set_volume(volume);
            s.renew_message_id();
            out.push(s);
        }
        Ok(out)
    }
}

/// Numbers sometimes arrive as strings.
fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// The longest text a `user_metadata` value keeps (Ceilometer's
/// `reserved_metadata_length`).
const USER_METADATA_LENGTH: usize = 256;

/// As Ceilometer builds it: the payload, plus `event_type`, plus `host` (the
/// notification's `publisher_id`, e.g. `compute.vagrant-precise`); a mapping-valued
/// `metadata` is taken out, its `metering.*` keys kept as `user_metadata` with `.` in
/// the rest of the key written `_` and text cut to 256 characters; a `metadata` of
/// another shape (old notifications' lists) stays as it is.
fn metadata(
    payload: &Map<String, Value>,
    event_type: &str,
    publisher_id: Option<&str>,
) -> Map<String, Value> {
    let mut m = payload.clone();
    m.insert("event_type".into(), Value::String(event_type.to_owned()));
    m.insert(
        "host".into(),
        publisher_id.map_or(Value::Null, |p| Value::String(p.to_owned())),
    );
    if let Some(Value::Object(source)) = payload.get("metadata") {
        m.remove("metadata");
        let user: Map<String, Value> = source
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix("metering.")?.replace('.', "_");
                let v = match v {
                    Value::String(t) => {
                        Value::String(t.chars().take(USER_METADATA_LENGTH).collect())
                    }
                    other => other.clone(),
                };
                Some((key, v))
            })
            .collect();
        if !user.is_empty() {
            m.insert("user_metadata".into(), Value::Object(user));
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn notification(payload: Value) -> Notification {
        let body = json!({
            "event_type": "compute.instance.create.end",
            "timestamp": "2012-05-08 20:23:48.028195",
            "publisher_id": "compute.vagrant-precise",
            "payload": payload,
        });
        Notification::from_json(&body.to_string()).unwrap()
    }

    fn full_payload() -> Value {
        json!({
            "instance_id": "9f9d01b9-4a58-4271-9e27-398b21ab20d1",
            "tenant_id": "7c150a59fe714e6f9263774af9688f0e",
            "user_id": "1e3ce043029547f1a61c1996d1a531a2",
            "memory_mb": 512, "vcpus": 1, "root_gb": 0, "ephemeral_gb": "0",
            "instance_type": "m1.tiny",
            "metadata": {"metering.stack": "s1", "metering.foo.bar": "x", "other": "x"},
            "host": "compute-node-7",
        })
    }

    #[test]
    fn create_end_gives_the_five_meters() {
        let out = Compute.handle(&notification(full_payload())).unwrap();
        let got: Vec<(String, f64)> = out
            .iter()
            .map(|s| (s.name().to_owned(), s.volume()))
            .collect();
        assert_eq!(
            got,
            [
                ("instance".into(), 1.0),
                ("memory".into(), 512.0),
                ("vcpus".into(), 1.0),
                ("disk.root.size".into(), 0.0),
                ("disk.ephemeral.size".into(), 0.0)
            ]
        );
        let s = &out[1];
        assert_eq!(s.resource_id(), "9f9d01b9-4a58-4271-9e27-398b21ab20d1");
        assert_eq!(s.project_id(), Some("7c150a59fe714e6f9263774af9688f0e"));
        assert_eq!(s.user_id(), Some("1e3ce043029547f1a61c1996d1a531a2"));
        assert_eq!(
            s.timestamp().to_rfc3339(),
            "2012-05-08T20:23:48.028195+00:00"
        );
        assert_eq!(s.metadata_value("user_metadata.stack"), Some(json!("s1")));
        // As Ceilometer: `.` in a user metadata key becomes `_`; the host is the
        // publisher's, not the payload's.
        assert_eq!(s.metadata_value("user_metadata.foo_bar"), Some(json!("x")));
        assert_eq!(
            s.metadata_value("host"),
            Some(json!("compute.vagrant-precise"))
        );
        assert_eq!(s.metadata_value("instance_type"), Some(json!("m1.tiny")));
        assert_eq!(s.metadata_value("metadata"), None);
    }

    #[test]
    fn list_shaped_metadata_and_missing_flavor_do_not_break_it() {
        let mut p = full_payload();
        p["metadata"] = json!([{"key": "metering.stack", "value": "s2"}, {"bogus": 1}, 7]);
        let out = Compute.handle(&notification(p)).unwrap();
        // Kept as it is, as Ceilometer keeps a metadata that is not a mapping.
        assert_eq!(out[0].metadata_value("user_metadata.stack"), None);
        assert_eq!(
            out[0].metadata_value("metadata"),
            Some(json!([{"key": "metering.stack", "value": "s2"}, {"bogus": 1}, 7]))
        );
        let mut p = full_payload();
        p["metadata"] = json!([]);
        let out = Compute.handle(&notification(p)).unwrap();
        assert_eq!(out[0].metadata_value("metadata"), Some(json!([])));

        let out = Compute
            .handle(&notification(json!({"instance_id": "i"})))
            .unwrap();
        assert!(out.is_empty(), "no flavor data, no samples");

        let err = Compute
            .handle(&notification(json!({"memory_mb": 1})))
            .unwrap_err();
        assert!(err.message().contains("instance_id"), "{err}");
    }
}
