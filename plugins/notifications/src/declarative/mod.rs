//! `declarative`: meters defined in the shape of Ceilometer's `meters.yaml`
//! (`metric:` entries with `name`, `event_type`, `type`, `unit`, `volume`,
//! `resource_id`, `user_id`, `project_id`, `timestamp`, `metadata`,
//! `user_metadata`, `lookup`), given inline as `definitions` or as a file,
//! `definitions_file`. A Ceilometer `meters.yaml` loads unchanged (anchors and `<<`
//! merge keys included). Event types are matched as Ceilometer does: each pattern is a
//! regular expression applied at the start of the event type. A definition that
//! cannot be compiled is skipped with a warning naming it — or, when the host is
//! validating a configuration, reported as an error.

mod definition;
pub use ceilo_jsonpath as jsonpath;

use ceilo_plugin_api::{
    log_warn, Context, Notification, NotificationHandler, Parameters, Plugin, PluginError,
    SampleBatch,
};
use serde_json::Value;

use definition::MeterDefinition;

pub use ceilo_plugin_api::compat::python_replacement;

/// Turns notifications into samples by meter definitions.
pub struct Declarative {
    definitions: Vec<MeterDefinition>,
}

impl Plugin for Declarative {
    const NAME: &'static str = "declarative";
    const DESCRIPTION: &'static str =
        "meters from notifications by Ceilometer meters.yaml definitions (definitions or definitions_file)";

    fn create(parameters: &Parameters, context: &Context) -> Result<Self, PluginError> {
        let config = load(parameters)?;
        let metrics = config
            .get("metric")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                PluginError::invalid_parameters("the definitions have no `metric:` list")
            })?;
        let mut definitions: Vec<MeterDefinition> = Vec::new();
        let mut problems = Vec::new();
        // Later definitions of a name win, as in Ceilometer (it reads the list reversed
        // and skips names it has seen).
        for (i, cfg) in metrics.iter().enumerate().rev() {
            let label = cfg
                .get("name")
                .map(|n| n.to_string())
                .unwrap_or_else(|| format!("#{}", i + 1));
            match MeterDefinition::new(cfg) {
                Ok(d)
                    if definitions
                        .iter()
                        .any(|o| o.fixed_name().is_some() && o.fixed_name() == d.fixed_name()) =>
                {
                    log_warn!("declarative: skipping duplicate meter definition {label}");
                }
                Ok(d) => definitions.push(d),
                Err(e) => problems.push(format!("meter definition {label} (entry {}): {e}", i + 1)),
            }
        }
        definitions.reverse();
        if !problems.is_empty() {
            if context.validating {
                return Err(PluginError::invalid_parameters(problems.join("; ")));
            }
            for p in &problems {
                log_warn!("declarative: {p}; skipped");
            }
        }
        Ok(Declarative { definitions })
    }
}

fn load(p: &Parameters) -> Result<Value, PluginError> {
    let (text, origin) = match (p.get::<Value>("definitions")?, p.get::<String>("definitions_file")?) {
        (Some(inline), None) => return Ok(inline),
        (None, Some(file)) => (
            std::fs::read_to_string(&file).map_err(|e| PluginError::invalid_parameters(format!("{file}: {e}")))?,
            file,
        ),
        (Some(_), Some(_)) => return Err(PluginError::invalid_parameters("give `definitions` or `definitions_file`, not both")),
        (None, None) => {
            return Err(PluginError::invalid_parameters(
                "no meter definitions: give `definitions` (a meters.yaml mapping) or `definitions_file` (its path)",
            ))
        }
    };
    let mut yaml: serde_yaml::Value = serde_yaml::from_str(&text)
        .map_err(|e| PluginError::invalid_parameters(format!("{origin}: {e}")))?;
    yaml.apply_merge()
        .map_err(|e| PluginError::invalid_parameters(format!("{origin}: {e}")))?;
    serde_json::to_value(yaml)
        .map_err(|e| PluginError::invalid_parameters(format!("{origin}: {e}")))
}

impl NotificationHandler for Declarative {
    fn event_types(&self) -> Vec<String> {
        // Definitions filter by their own regular expressions.
        vec!["*".into()]
    }

    fn meters(&self) -> Vec<String> {
        // Names computed from the notification cannot be listed: then "unknown".
        let fixed: Option<Vec<String>> = self
            .definitions
            .iter()
            .map(MeterDefinition::fixed_name)
            .collect();
        fixed.unwrap_or_default()
    }

    fn handle(&mut self, n: &Notification) -> Result<SampleBatch, PluginError> {
        let body = Value::Object(n.body.clone());
        let mut out = SampleBatch::new();
        for d in self.definitions.iter().filter(|d| d.matches(&n.event_type)) {
            let (samples, problems) = d.samples(&body);
            out.extend(samples);
            for p in problems {
                log_warn!(
                    "declarative: {} ({}): {p}",
                    n.event_type,
                    n.message_id.as_deref().unwrap_or("no message id")
                );
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::PathBuf;

    fn fixtures() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/notifications")
    }

    fn ceilometer() -> Declarative {
        let file = fixtures().join("ceilometer_meters.yaml");
        let p = Parameters::from_json(&json!({ "definitions_file": file }).to_string()).unwrap();
        // Validating: any definition that does not compile fails the test.
        Declarative::create(&p, &Context::default().validating()).unwrap_or_else(|e| panic!("{e}"))
    }

    fn run(d: &mut Declarative, body: &Value) -> Vec<(String, f64, String)> {
        let n = Notification::from_json(&body.to_string()).unwrap();
        let mut out: Vec<_> = d
            .handle(&n)
            .unwrap()
            .iter()
            .map(|s| (s.name().to_owned(), s.volume(), s.resource_id().to_owned()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn fixture(name: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(fixtures().join(name)).unwrap()).unwrap()
    }

    #[test]
    fn nova_instance_meters_as_ceilometer_makes_them() {
        let mut d = ceilometer();
        let create = fixture("nova_instance_create_end.json");
        let got = run(&mut d, &create);
        let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "compute.instance.booting.time",
                "disk.ephemeral.size",
                "disk.root.size",
                "memory",
                "vcpus"
            ]
        );
        let booting = got
            .iter()
            .find(|g| g.0 == "compute.instance.booting.time")
            .unwrap();
        assert!(
            (booting.1 - 6.985999).abs() < 1e-6,
            "launched_at − created_at: {booting:?}"
        );
        assert!(got
            .iter()
            .all(|g| g.2 == "9f9d01b9-4a58-4271-9e27-398b21ab20d1"));

        let n = Notification::from_json(&create.to_string()).unwrap();
        let samples = d.handle(&n).unwrap();
        let memory = samples.iter().find(|s| s.name() == "memory").unwrap();
        assert_eq!(memory.metadata_value("flavor_name"), Some(json!("m1.tiny")));
        assert_eq!(
            memory.metadata_value("user_metadata.stack"),
            Some(json!("2cadc4b4-8789-123c-b4eg-edd2f0a9c128"))
        );
        assert_eq!(
            memory.project_id(),
            Some("7c150a59fe714e6f9263774af9688f0e")
        );
        assert_eq!(
            memory.timestamp().to_rfc3339(),
            "2012-05-08T20:23:48.028195+00:00"
        );

        // The lookahead excludes create.start and update.
        let mut start = create.clone();
        start["event_type"] = json!("compute.instance.create.start");
        assert!(run(&mut d, &start).is_empty());
        let mut update = create;
        update["event_type"] = json!("compute.instance.update");
        assert!(run(&mut d, &update).is_empty());
    }

    #[test]
    fn cinder_and_glance() {
        let mut d = ceilometer();
        let mut cinder = fixture("cinder_volume_create_end.json");
        cinder["payload"]["glance_metadata"] = json!([{"key": "image_id", "value": "img-9"}]);
        assert_eq!(
            run(&mut d, &cinder),
            [(
                "volume.size".into(),
                2.0,
                "3b761164-84b4-4eb3-8fcb-1974c641d6ef".into()
            )]
        );
        let n = Notification::from_json(&cinder.to_string()).unwrap();
        let s = &d.handle(&n).unwrap()[0];
        assert_eq!(
            s.metadata_value("image_id"),
            Some(json!("img-9")),
            "filter without @"
        );
        assert_eq!(s.metadata_value("display_name"), Some(json!("volume1")));
        assert_eq!(
            s.metadata_value("instance_id"),
            None,
            "no attachment, no key"
        );

        let glance = fixture("glance_image_upload.json");
        assert_eq!(
            run(&mut d, &glance),
            [(
                "image.size".into(),
                13147648.0,
                "fda54a44-3f96-40bf-ab07-0a4ce9e1761d".into()
            )]
        );
        let n = Notification::from_json(&glance.to_string()).unwrap();
        let s = &d.handle(&n).unwrap()[0];
        assert_eq!(s.project_id(), Some("fd2dc62ceb4e4e6e95a75d5d4ea7bcb8"));
        assert_eq!(
            s.metadata_value("event_type"),
            Some(json!("image.upload")),
            "default metadata"
        );
        assert_eq!(s.metadata_value("host"), Some(json!("images.localhost")));
        assert_eq!(
            s.metadata_value("checksum"),
            Some(json!("93264c3edf5972c9f1cb309543d38a5c"))
        );
    }

    #[test]
    fn lookup_filters_arithmetic_and_concatenation() {
        let mut d = ceilometer();
        let swift = json!({
            "event_type": "objectstore.http.request",
            "payload": {
                "target": {"id": "AUTH_p"}, "initiator": {"id": "u", "project_id": "p"},
                "measurements": [
                    {"metric": {"name": "storage.objects.incoming.bytes", "unit": "B"}, "result": 28},
                    {"metric": {"name": "storage.objects.outgoing.bytes", "unit": "B"}, "result": 10}
                ]
            }
        });
        assert_eq!(
            run(&mut d, &swift),
            [
                (
                    "storage.objects.incoming.bytes".into(),
                    28.0,
                    "AUTH_p".into()
                ),
                (
                    "storage.objects.outgoing.bytes".into(),
                    10.0,
                    "AUTH_p".into()
                )
            ]
        );
        let metrics = json!({
            "event_type": "compute.metrics.update", "publisher_id": "compute.h1",
            "payload": {"host": "h1", "nodename": "n1", "metrics": [
                {"name": "cpu.frequency", "value": 2400, "timestamp": "2016-01-01T00:00:00.000000", "source": "libvirt"},
                {"name": "cpu.kernel.percent", "value": 0.125, "timestamp": "2016-01-01T00:00:00.000000", "source": "libvirt"}
            ]}
        });
        assert_eq!(
            run(&mut d, &metrics),
            [
                ("compute.node.cpu.frequency".into(), 2400.0, "h1_n1".into()),
                (
                    "compute.node.cpu.kernel.percent".into(),
                    12.5,
                    "h1_n1".into()
                )
            ]
        );
        let auth = json!({"event_type": "identity.authenticate", "payload": {"outcome": "failure", "initiator": {"id": "u7"}}});
        assert_eq!(
            run(&mut d, &auth),
            [("identity.authenticate.failure".into(), 1.0, "u7".into())]
        );
    }

    #[test]
    fn exclusions_win_and_exclusions_alone_match_everything_else() {
        let defs = json!({"metric": [
            {"name": "mixed", "event_type": ["x.*", "!x.secret"], "type": "gauge", "unit": "u", "volume": 1, "resource_id": "$.payload.id"},
            {"name": "only_not", "event_type": ["!x.*"], "type": "gauge", "unit": "u", "volume": 2, "resource_id": "$.payload.id"}
        ]});
        let p = Parameters::from_json(&json!({ "definitions": defs }).to_string()).unwrap();
        let mut d = Declarative::create(&p, &Context::default()).unwrap();
        let names = |d: &mut Declarative, t: &str| -> Vec<String> {
            run(d, &json!({"event_type": t, "payload": {"id": "r1"}}))
                .into_iter()
                .map(|(n, _, _)| n)
                .collect()
        };
        assert_eq!(names(&mut d, "x.public"), ["mixed"]);
        assert!(names(&mut d, "x.secret").is_empty(), "the exclusion wins");
        assert_eq!(names(&mut d, "y.other"), ["only_not"]);
    }

    #[test]
    fn bad_definitions_are_skipped_or_reported_when_validating() {
        let defs = json!({"metric": [
            {"name": "ok", "event_type": "x.*", "type": "gauge", "unit": "u", "volume": "$.payload.v", "resource_id": "$.payload.id"},
            {"name": "no_unit", "event_type": "x.*", "type": "gauge", "volume": 1, "resource_id": "r"},
            {"name": "bad_type", "event_type": "x.*", "type": "rate", "unit": "u", "volume": 1, "resource_id": "r"},
            {"name": "bad_path", "event_type": "x.*", "type": "gauge", "unit": "u", "volume": "$.payload[", "resource_id": "r"}
        ]});
        let p = Parameters::from_json(&json!({ "definitions": defs }).to_string()).unwrap();
        let mut d = Declarative::create(&p, &Context::default()).unwrap();
        assert_eq!(d.meters(), ["ok"]);
        let got = run(
            &mut d,
            &json!({"event_type": "x.y", "payload": {"v": "5", "id": "r1"}}),
        );
        assert_eq!(
            got,
            [("ok".into(), 5.0, "r1".into())],
            "numeric strings are volumes"
        );
        let err = Declarative::create(&p, &Context::default().validating())
            .err()
            .unwrap();
        let m = err.message();
        assert!(
            m.contains("\"no_unit\"") && m.contains("required field(s) unit missing"),
            "{m}"
        );
        assert!(
            m.contains("invalid type `rate`") && m.contains("\"bad_path\""),
            "{m}"
        );
        let err = Declarative::create(&Parameters::default(), &Context::default())
            .err()
            .unwrap();
        assert!(err.message().contains("no meter definitions"), "{err}");
    }
}
