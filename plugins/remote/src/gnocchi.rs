//! `gnocchi://host:8041[?resources_definition_file=…&archive_policy=…]`: samples as
//! resources and measures in Gnocchi, as Ceilometer's Gnocchi publisher puts them,
//! mapped by Ceilometer's `gnocchi_resources.yaml` read unchanged.
//!
//! For each batch: the archive policies of the file are created once (one that exists
//! is left as it is); the measures of every meter the file maps go in one
//! `POST /v1/batch/resources/metrics/measures?create_metrics=true`, each metric with
//! its archive policy and unit; the resources Gnocchi does not know yet (its
//! `Unknown resources` answer) are created with the file's type and attributes and
//! the measures sent again; then each resource whose attributes (with its project)
//! changed since it was last written is updated. A resource id with `/` has it turned
//! into `_`, as Gnocchi forbids it. Meters the file does not map are left out, logged
//! once each.
//!
//! Where ceilo differs: the endpoint is the URL's host (Ceilometer asks Keystone's
//! catalog), authenticated by the URL's user (Gnocchi's `basic` mode) or a
//! `header=X-Auth-Token:…`; Gnocchi's own project is filtered out by id
//! (`filter_project_id=`), not by name through Keystone; a resource type Gnocchi does
//! not have is created with the file's attributes as optional strings (Ceilometer
//! expects `ceilometer-upgrade` to have made them); updates are written only when the
//! attributes changed (Ceilometer does so only with its cache configured).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use ceilo_jsonpath::Expr;
use ceilo_plugin_api::{log_error, log_info, log_warn, PluginError, Sample};
use serde_json::{json, Map, Value};

use crate::client::{Client, Failure, Request};
use crate::delivery::{Encoder, Transport};
use crate::json::as_dict;

/// One `resources:` entry of the file.
pub struct ResourceDefinition {
    pub resource_type: String,
    /// Metric name → its archive policy.
    pub metrics: HashMap<String, String>,
    /// Attribute name → where in the sample (as `as_dict`) its value is.
    pub attributes: Vec<(String, Expr)>,
    /// Every attribute reads the resource metadata alone (as in Ceilometer's file):
    /// samples with the same metadata give the same attributes.
    pub metadata_only: bool,
}

/// A parsed `gnocchi_resources.yaml`.
pub struct Definitions {
    pub resources: Vec<ResourceDefinition>,
    /// The archive policies to create, as the file writes them.
    pub archive_policies: Vec<Value>,
    /// Metric name → index in `resources` (the last definition naming it wins).
    by_metric: HashMap<String, usize>,
}

fn invalid(file: &Path, what: String) -> PluginError {
    PluginError::invalid_parameters(format!("{}: {what}", file.display()))
}

impl Definitions {
    /// Reads the file; `override_policy` (`archive_policy=`) replaces every metric's.
    pub fn load(file: &Path, override_policy: Option<&str>) -> Result<Definitions, PluginError> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            invalid(
                file,
                format!("cannot read it: {e} (give resources_definition_file=PATH; Ceilometer's ceilometer/publisher/data/gnocchi_resources.yaml reads unchanged)"),
            )
        })?;
        Definitions::parse(file, &text, override_policy)
    }

    pub fn parse(
        file: &Path,
        text: &str,
        override_policy: Option<&str>,
    ) -> Result<Definitions, PluginError> {
        let doc: Value =
            serde_yaml::from_str(text).map_err(|e| invalid(file, format!("not YAML: {e}")))?;
        let default_policy = doc
            .get("archive_policy_default")
            .and_then(Value::as_str)
            .unwrap_or("ceilometer-low")
            .to_owned();
        let archive_policies = match doc.get("archive_policies") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(invalid(file, "`archive_policies` must be a list".into())),
        };
        let list = match doc.get("resources") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(a)) => &a[..],
            Some(_) => return Err(invalid(file, "`resources` must be a list".into())),
        };
        let mut resources = Vec::with_capacity(list.len());
        for (i, r) in list.iter().enumerate() {
            let at = |what: &str| {
                invalid(
                    file,
                    format!(
                        "resource {} ({}): {what}",
                        i + 1,
                        r.get("resource_type")
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                    ),
                )
            };
            let resource_type = r
                .get("resource_type")
                .and_then(Value::as_str)
                .ok_or_else(|| at("`resource_type` (text) is required"))?
                .to_owned();
            // `archive_policy` on the resource is Ceilometer's deprecated form; as
            // there, it wins even over the override.
            let deprecated = r.get("archive_policy").and_then(Value::as_str);
            let policy_of = |extra: Option<&Value>| -> String {
                if let Some(p) = deprecated {
                    return p.to_owned();
                }
                if let Some(p) = override_policy {
                    return p.to_owned();
                }
                extra
                    .and_then(|e| e.get("archive_policy_name"))
                    .and_then(Value::as_str)
                    .unwrap_or(&default_policy)
                    .to_owned()
            };
            let metrics: HashMap<String, String> = match r.get("metrics") {
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(name, extra)| (name.clone(), policy_of(Some(extra))))
                    .collect(),
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|m| {
                        m.as_str()
                            .map(|n| (n.to_owned(), policy_of(None)))
                            .ok_or_else(|| at("`metrics` lists metric names"))
                    })
                    .collect::<Result<_, _>>()?,
                _ => return Err(at("`metrics` (a mapping or a list) is required")),
            };
            let mut attributes = Vec::new();
            let mut metadata_only = true;
            if let Some(Value::Object(attrs)) = r.get("attributes") {
                for (name, cfg) in attrs {
                    let fields = match cfg {
                        Value::String(s) => s.clone(),
                        Value::Object(o) if o.contains_key("plugin") => {
                            return Err(at(&format!(
                                "attribute `{name}`: trait plugins are not supported here"
                            )))
                        }
                        Value::Object(o) => match o.get("fields") {
                            Some(Value::String(s)) => s.clone(),
                            Some(Value::Array(a)) => join_fields(a).ok_or_else(|| {
                                at(&format!("attribute `{name}`: `fields` lists paths"))
                            })?,
                            _ => {
                                return Err(at(&format!(
                                    "attribute `{name}`: `fields` is required"
                                )))
                            }
                        },
                        Value::Array(a) => join_fields(a)
                            .ok_or_else(|| at(&format!("attribute `{name}`: a list of paths")))?,
                        _ => return Err(at(&format!("attribute `{name}`: expected a path"))),
                    };
                    metadata_only &= fields.trim_start().starts_with("resource_metadata");
                    let expr = ceilo_jsonpath::parse(&fields)
                        .map_err(|e| at(&format!("attribute `{name}`: `{fields}`: {e}")))?;
                    attributes.push((name.clone(), expr));
                }
            }
            resources.push(ResourceDefinition {
                resource_type,
                metrics,
                attributes,
                metadata_only,
            });
        }
        let mut by_metric = HashMap::new();
        for (i, r) in resources.iter().enumerate() {
            for m in r.metrics.keys() {
                by_metric.insert(m.clone(), i);
            }
        }
        Ok(Definitions {
            resources,
            archive_policies,
            by_metric,
        })
    }

    /// The definition mapping `metric`.
    pub fn of(&self, metric: &str) -> Option<&ResourceDefinition> {
        self.by_metric.get(metric).map(|&i| &self.resources[i])
    }
}

/// Ceilometer joins a list of paths as alternatives.
fn join_fields(a: &[Value]) -> Option<String> {
    let paths: Option<Vec<String>> = a
        .iter()
        .map(|p| p.as_str().map(|s| format!("({s})")))
        .collect();
    paths.map(|p| p.join("|"))
}

/// Where the definitions file is: the option's path, or `gnocchi_resources.yaml` in
/// the working directory, then in the data directory.
pub fn definitions_file(option: Option<&str>, data_dir: Option<&Path>) -> PathBuf {
    if let Some(p) = option {
        return PathBuf::from(p);
    }
    let name = Path::new("gnocchi_resources.yaml");
    match data_dir.map(|d| d.join(name)) {
        Some(in_data) if !name.exists() && in_data.exists() => in_data,
        _ => name.to_path_buf(),
    }
}

/// The encoder: a batch's measures as the body of Gnocchi's batch call, and its
/// resources (type, attributes) attached for the calls that may follow.
pub struct GnocchiEncoder {
    pub definitions: std::sync::Arc<Definitions>,
    pub filter_project_id: Option<String>,
    logged: HashSet<String>,
}

impl GnocchiEncoder {
    pub fn new(
        definitions: std::sync::Arc<Definitions>,
        filter_project_id: Option<String>,
    ) -> Self {
        GnocchiEncoder {
            definitions,
            filter_project_id,
            logged: HashSet::new(),
        }
    }
}

impl Encoder for GnocchiEncoder {
    fn encode(&mut self, batch: &[Sample]) -> Vec<Request> {
        let mut measures: Map<String, Value> = Map::new();
        let mut resources: Map<String, Value> = Map::new();
        let mut n = 0;
        // Per resource, the metadata its attributes were last read from.
        let mut read_from: HashMap<String, &str> = HashMap::new();
        for s in batch {
            if self
                .filter_project_id
                .as_deref()
                .is_some_and(|p| s.project_id() == Some(p))
            {
                continue;
            }
            let Some(rd) = self.definitions.of(s.name()) else {
                if self.logged.insert(s.name().to_owned()) {
                    log_warn!("gnocchi publisher: metric {} is not handled by Gnocchi (no resource in the definitions file maps it): left out", s.name());
                }
                continue;
            };
            n += 1;
            let rid = s.resource_id().replace('/', "_");
            let entry = resources.entry(rid.clone()).or_insert_with(|| {
                json!({"type": rd.resource_type, "resource": {"id": rid, "user_id": s.user_id()}, "extra": {}})
            });
            let metadata = s.resource_metadata_json();
            let same = rd.metadata_only && read_from.get(&rid) == Some(&metadata);
            if let Some(extra) = entry["extra"].as_object_mut() {
                extra.insert("project_id".into(), s.project_id().into());
                if !rd.attributes.is_empty() && !same {
                    let dict = as_dict(s).unwrap_or(Value::Null);
                    for (name, expr) in &rd.attributes {
                        if let Some(v) = expr.first(&dict).filter(|v| !v.is_null()) {
                            extra.insert(name.clone(), v);
                        }
                    }
                    read_from.insert(rid.clone(), metadata);
                }
            }
            let metric = measures
                .entry(rid)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .map(|m| {
                    m.entry(s.name().to_owned()).or_insert_with(|| {
                        json!({"measures": [], "archive_policy_name": rd.metrics.get(s.name()), "unit": s.unit()})
                    })
                });
            if let Some(list) = metric.and_then(|m| m["measures"].as_array_mut()) {
                let timestamp = s
                    .timestamp()
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                list.push(json!({"timestamp": timestamp, "value": s.volume()}));
            }
        }
        if n == 0 {
            return Vec::new();
        }
        vec![Request {
            suffix: String::new(),
            content_type: "application/json",
            body: serde_json::to_vec(&measures).unwrap_or_default(),
            samples: n,
            attachment: Some(Value::Object(resources)),
        }]
    }
}

/// Gnocchi's REST API, with what the publisher remembers between batches.
pub struct GnocchiTransport {
    client: Client,
    definitions: std::sync::Arc<Definitions>,
    policies_created: bool,
    /// Resource id → the attributes last written.
    written: HashMap<String, Value>,
}

impl GnocchiTransport {
    pub fn new(client: Client, definitions: std::sync::Arc<Definitions>) -> Self {
        GnocchiTransport {
            client,
            definitions,
            policies_created: false,
            written: HashMap::new(),
        }
    }

    fn call(&self, method: &str, path: &str, body: &Value) -> Result<(u16, Value), Failure> {
        self.call_bytes(method, path, &serde_json::to_vec(body).unwrap_or_default())
    }

    fn call_bytes(&self, method: &str, path: &str, body: &[u8]) -> Result<(u16, Value), Failure> {
        let (status, text) = self
            .client
            .call(method, path, body)
            .map_err(Failure::Transient)?;
        let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status >= 500 || status == 408 || status == 429 {
            return Err(Failure::Transient(format!(
                "{} answered {status} to {method} {path}: {}",
                self.client.shown(),
                brief(&answer)
            )));
        }
        Ok((status, answer))
    }

    fn ensure_archive_policies(&mut self) -> Result<(), Failure> {
        if self.policies_created {
            return Ok(());
        }
        for policy in &self.definitions.archive_policies {
            let (status, answer) = self.call("POST", "/v1/archive_policy", policy)?;
            if !(200..300).contains(&status) && status != 409 {
                log_error!(
                    "gnocchi publisher: archive policy {} not created: {status} {}",
                    policy.get("name").unwrap_or(&Value::Null),
                    brief(&answer)
                );
            }
        }
        self.policies_created = true;
        Ok(())
    }

    fn create_resource(&self, resource_type: &str, resource: &Value) -> Result<bool, Failure> {
        let path = format!("/v1/resource/{}", quote(resource_type));
        let (mut status, mut answer) = self.call("POST", &path, resource)?;
        if status == 404 && brief(&answer).contains("Resource type") {
            self.create_resource_type(resource_type)?;
            (status, answer) = self.call("POST", &path, resource)?;
        }
        if (200..300).contains(&status) || status == 409 {
            return Ok(true);
        }
        log_error!("gnocchi publisher: resource {} ({resource_type}) not created: {status} {}; its measures are left out", resource["id"], brief(&answer));
        Ok(false)
    }

    fn create_resource_type(&self, resource_type: &str) -> Result<(), Failure> {
        let attributes: Map<String, Value> = self
            .definitions
            .resources
            .iter()
            .filter(|r| r.resource_type == resource_type)
            .flat_map(|r| {
                r.attributes
                    .iter()
                    .map(|(n, _)| (n.clone(), json!({"type": "string", "required": false})))
            })
            .collect();
        let (status, answer) = self.call(
            "POST",
            "/v1/resource_type",
            &json!({"name": resource_type, "attributes": attributes}),
        )?;
        if (200..300).contains(&status) {
            log_info!("gnocchi publisher: created resource type {resource_type} (attributes {:?}, optional strings)", attributes.keys().collect::<Vec<_>>());
        } else if status != 409 {
            log_error!(
                "gnocchi publisher: resource type {resource_type} not created: {status} {}",
                brief(&answer)
            );
        }
        Ok(())
    }
}

/// An answer cut to a readable length.
fn brief(answer: &Value) -> String {
    let text = match answer.get("description") {
        Some(Value::String(s)) => s.clone(),
        Some(d) => d.to_string(),
        None => match answer {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        },
    };
    crate::options::shorten(text.trim())
}

fn quote(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

const BATCH_PATH: &str = "/v1/batch/resources/metrics/measures?create_metrics=true";

impl Transport for GnocchiTransport {
    fn send(&mut self, request: &Request) -> Result<(), Failure> {
        let none = Value::Null;
        let resources = request.attachment.as_ref().unwrap_or(&none);
        self.ensure_archive_policies()?;
        let (status, answer) = self.call_bytes("POST", BATCH_PATH, &request.body)?;
        if !(200..300).contains(&status) {
            let description = &answer["description"];
            if status != 400 || description["cause"] != "Unknown resources" {
                return Err(Failure::Rejected(format!(
                    "{} answered {status} to the measures: {}",
                    self.client.shown(),
                    brief(&answer)
                )));
            }
            let mut measures: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let unknown: Vec<&str> = description["detail"]
                .as_array()
                .map(|d| {
                    d.iter()
                        .filter_map(|r| r["original_resource_id"].as_str())
                        .collect()
                })
                .unwrap_or_default();
            for rid in unknown {
                let info = &resources[rid];
                let mut resource = info["resource"].clone();
                if let (Some(r), Some(extra)) =
                    (resource.as_object_mut(), info["extra"].as_object())
                {
                    r.extend(extra.clone());
                }
                let resource_type = info["type"].as_str().unwrap_or_default();
                if self.create_resource(resource_type, &resource)? {
                    self.written.insert(rid.to_owned(), info["extra"].clone());
                } else if let Some(m) = measures.as_object_mut() {
                    m.remove(rid);
                }
            }
            let (status, answer) = self.call("POST", BATCH_PATH, &measures)?;
            if !(200..300).contains(&status) {
                return Err(Failure::Rejected(format!(
                    "{} answered {status} to the measures: {}",
                    self.client.shown(),
                    brief(&answer)
                )));
            }
        }
        // Attributes that changed since they were last written.
        if let Some(all) = resources.as_object() {
            for (rid, info) in all {
                let extra = &info["extra"];
                if self.written.get(rid) == Some(extra) {
                    continue;
                }
                let path = format!(
                    "/v1/resource/{}/{}",
                    quote(info["type"].as_str().unwrap_or_default()),
                    quote(rid)
                );
                let (status, answer) = self.call("PATCH", &path, extra)?;
                if (200..300).contains(&status) {
                    self.written.insert(rid.clone(), extra.clone());
                } else {
                    log_warn!(
                        "gnocchi publisher: resource {rid} not updated: {status} {}",
                        brief(&answer)
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceilo_plugin_api::SampleType;

    const FILE: &str = "---
archive_policy_default: ceilometer-low
archive_policies:
  - name: ceilometer-low
    aggregation_methods: [mean]
    back_window: 0
    definition:
      - granularity: 5 minutes
        timespan: 30 days
resources:
  - resource_type: instance
    metrics:
      memory:
      cpu:
        archive_policy_name: ceilometer-low-rate
    attributes:
      host: resource_metadata.(instance_host|host)
      flavor_name: resource_metadata.(instance_type|(flavor.name)|flavor_name)
  - resource_type: ipmi_sensor
    metrics:
      - 'hardware.ipmi.power'
    attributes:
      node: resource_metadata.node
";

    fn definitions() -> Definitions {
        Definitions::parse(Path::new("gnocchi_resources.yaml"), FILE, None).unwrap()
    }

    #[test]
    fn the_file_reads_as_ceilometer_reads_it() {
        let d = definitions();
        assert_eq!(d.archive_policies.len(), 1);
        let i = d.of("cpu").unwrap();
        assert_eq!(
            (i.resource_type.as_str(), i.metrics["cpu"].as_str()),
            ("instance", "ceilometer-low-rate")
        );
        assert_eq!(i.metrics["memory"], "ceilometer-low", "the default policy");
        assert_eq!(
            d.of("hardware.ipmi.power").unwrap().resource_type,
            "ipmi_sensor",
            "the list form"
        );
        assert!(d.of("disk.read.bytes").is_none());
        let o = Definitions::parse(Path::new("f"), FILE, Some("high")).unwrap();
        assert_eq!(
            o.of("cpu").unwrap().metrics["cpu"],
            "high",
            "archive_policy= overrides"
        );
    }

    #[test]
    fn a_batch_becomes_measures_and_resources() {
        let mut e = GnocchiEncoder::new(
            std::sync::Arc::new(definitions()),
            Some("gnocchi-project".into()),
        );
        let mut s =
            Sample::new("cpu", SampleType::Cumulative, "ns", 5.0, "vm/1").with_project_id("p");
        s.set_resource_metadata(
            serde_json::from_value(json!({"host": "compute-1", "flavor": {"name": "m1"}})).unwrap(),
        );
        let skipped = Sample::new("cpu", SampleType::Cumulative, "ns", 6.0, "vm-2")
            .with_project_id("gnocchi-project");
        let unmapped = Sample::new("disk.read.bytes", SampleType::Cumulative, "B", 1.0, "vm/1");
        let r = e.encode(&[s, skipped, unmapped]);
        assert_eq!((r.len(), r[0].samples), (1, 1));
        let measures: Value = serde_json::from_slice(&r[0].body).unwrap();
        let m = &measures["vm_1"]["cpu"];
        assert_eq!(
            (m["archive_policy_name"].as_str(), m["unit"].as_str()),
            (Some("ceilometer-low-rate"), Some("ns"))
        );
        assert_eq!(m["measures"][0]["value"], 5.0);
        let res = &r[0].attachment.as_ref().unwrap()["vm_1"];
        assert_eq!(
            res["extra"],
            json!({"project_id": "p", "host": "compute-1", "flavor_name": "m1"})
        );
    }

    #[test]
    fn a_bad_file_is_refused_with_the_resource_named() {
        let e = Definitions::parse(Path::new("g.yaml"), "resources:\n  - metrics: [a]\n", None)
            .err()
            .unwrap();
        assert!(
            e.message().contains("g.yaml: resource 1") && e.message().contains("resource_type"),
            "{e}"
        );
        let e = Definitions::parse(Path::new("g.yaml"), "resources:\n  - resource_type: x\n    metrics: [a]\n    attributes:\n      n: resource_metadata.(\n", None).err().unwrap();
        assert!(e.message().contains("attribute `n`"), "{e}");
    }
}
