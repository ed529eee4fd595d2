//! `opentelemetryhttp://host:4318/v1/metrics`: samples as OTLP/HTTP metrics, as
//! Ceilometer's OpenTelemetry publisher maps them: a meter's name with `.` turned into
//! `_` is the metric, its description `NAME unit:UNIT`, its unit the sample's; each
//! sample a data point (`as_double`) with the attributes `resource_id`, `user_id` and
//! `project_id`; the scope `ceilometer` `v1`. `cumulative` samples are a monotonic
//! cumulative Sum, `delta` a delta Sum, `gauge` a Gauge. JSON by default
//! (`application/json`, as Ceilometer sends), protobuf with `encoding=protobuf`.
//!
//! Where ceilo differs: one request carries a whole batch (data points of one meter
//! under one metric) where Ceilometer posts one request per sample; times are in
//! nanoseconds as OTLP defines them (Ceilometer writes seconds into the `_unix_nano`
//! fields); a Sum, not the `counter` key (which OTLP has not: a receiver refuses it);
//! JSON field names are the lowerCamelCase OTLP/JSON asks for; an absent user or
//! project is left out rather than sent as null.

use std::collections::HashMap;

use ceilo_plugin_api::{Sample, SampleType};

use crate::client::Request;
use crate::delivery::Encoder;

/// The OTLP metrics messages ceilo sends (field numbers as in opentelemetry-proto's
/// `collector/metrics/v1` and `metrics/v1`).
pub mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportMetricsServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_metrics: Vec<ResourceMetrics>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceMetrics {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_metrics: Vec<ScopeMetrics>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeMetrics {
        #[prost(message, optional, tag = "1")]
        pub scope: Option<InstrumentationScope>,
        #[prost(message, repeated, tag = "2")]
        pub metrics: Vec<Metric>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InstrumentationScope {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub version: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metric {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub description: String,
        #[prost(string, tag = "3")]
        pub unit: String,
        #[prost(oneof = "Data", tags = "5, 7")]
        pub data: Option<Data>,
    }
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Data {
        #[prost(message, tag = "5")]
        Gauge(Gauge),
        #[prost(message, tag = "7")]
        Sum(Sum),
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Gauge {
        #[prost(message, repeated, tag = "1")]
        pub data_points: Vec<NumberDataPoint>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sum {
        #[prost(message, repeated, tag = "1")]
        pub data_points: Vec<NumberDataPoint>,
        /// 1: delta, 2: cumulative.
        #[prost(int32, tag = "2")]
        pub aggregation_temporality: i32,
        #[prost(bool, tag = "3")]
        pub is_monotonic: bool,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NumberDataPoint {
        #[prost(message, repeated, tag = "7")]
        pub attributes: Vec<KeyValue>,
        #[prost(fixed64, tag = "2")]
        pub start_time_unix_nano: u64,
        #[prost(fixed64, tag = "3")]
        pub time_unix_nano: u64,
        #[prost(double, tag = "4")]
        pub as_double: f64,
        #[prost(uint32, tag = "8")]
        pub flags: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(string, tag = "1")]
        pub string_value: String,
    }
}

use proto::*;

/// The OTLP encoder.
pub struct Otlp {
    pub protobuf: bool,
}

const DELTA: i32 = 1;
const CUMULATIVE: i32 = 2;
/// The resource's `service.name`, and the scope (Ceilometer's).
const SERVICE: &str = "ceilo";
const SCOPE: (&str, &str) = ("ceilometer", "v1");

fn attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            string_value: value.to_owned(),
        }),
    }
}

fn point(s: &Sample) -> NumberDataPoint {
    let mut attributes = vec![attribute("resource_id", s.resource_id())];
    if let Some(u) = s.user_id() {
        attributes.push(attribute("user_id", u));
    }
    if let Some(p) = s.project_id() {
        attributes.push(attribute("project_id", p));
    }
    let nanos = u64::try_from(s.timestamp_micros())
        .unwrap_or(0)
        .saturating_mul(1000);
    NumberDataPoint {
        attributes,
        start_time_unix_nano: nanos,
        time_unix_nano: nanos,
        as_double: s.volume(),
        flags: 0,
    }
}

/// A batch's samples by meter (name, unit, type), in the order meters first appear:
/// each becomes one metric.
fn by_meter(batch: &[Sample]) -> Vec<(String, Vec<&Sample>)> {
    let mut index: HashMap<(&str, &str, SampleType), usize> = HashMap::new();
    let mut groups: Vec<(String, Vec<&Sample>)> = Vec::new();
    for s in batch {
        let key = (s.name(), s.unit(), s.sample_type());
        let i = *index.entry(key).or_insert_with(|| {
            groups.push((s.name().replace('.', "_"), Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(s);
    }
    groups
}

fn nanos(s: &Sample) -> u64 {
    u64::try_from(s.timestamp_micros())
        .unwrap_or(0)
        .saturating_mul(1000)
}

/// (temporality, monotonic) of a Sum, or None for a Gauge.
fn sum_kind(t: SampleType) -> Option<(i32, bool)> {
    match t {
        SampleType::Gauge => None,
        SampleType::Cumulative => Some((CUMULATIVE, true)),
        SampleType::Delta => Some((DELTA, false)),
    }
}

/// The protobuf request for one batch.
pub fn request(batch: &[Sample]) -> ExportMetricsServiceRequest {
    let metrics = by_meter(batch)
        .into_iter()
        .map(|(name, samples)| {
            let first = samples[0];
            let data_points: Vec<NumberDataPoint> = samples.iter().map(|s| point(s)).collect();
            let data = match sum_kind(first.sample_type()) {
                None => Data::Gauge(Gauge { data_points }),
                Some((temporality, monotonic)) => Data::Sum(Sum {
                    data_points,
                    aggregation_temporality: temporality,
                    is_monotonic: monotonic,
                }),
            };
            Metric {
                name,
                description: format!("{} unit:{}", first.name(), first.unit()),
                unit: first.unit().to_owned(),
                data: Some(data),
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![attribute("service.name", SERVICE)],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: SCOPE.0.into(),
                    version: SCOPE.1.into(),
                }),
                metrics,
            }],
        }],
    }
}

/// Appends `v` as a JSON string.
fn string(out: &mut Vec<u8>, v: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
}

fn string_attribute(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(b"{\"key\":");
    string(out, key);
    out.extend_from_slice(b",\"value\":{\"stringValue\":");
    string(out, value);
    out.extend_from_slice(b"}}");
}

/// The same request in OTLP/JSON, written straight from the samples (no tree of
/// values in between: this is the publisher's hot path).
pub fn json_request(batch: &[Sample]) -> Vec<u8> {
    use std::io::Write as _;
    let mut out = Vec::with_capacity(256 + batch.len() * 300);
    out.extend_from_slice(b"{\"resourceMetrics\":[{\"resource\":{\"attributes\":[");
    string_attribute(&mut out, "service.name", SERVICE);
    out.extend_from_slice(b"]},\"scopeMetrics\":[{\"scope\":{\"name\":");
    string(&mut out, SCOPE.0);
    out.extend_from_slice(b",\"version\":");
    string(&mut out, SCOPE.1);
    out.extend_from_slice(b"},\"metrics\":[");
    for (i, (name, samples)) in by_meter(batch).into_iter().enumerate() {
        let first = samples[0];
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"name\":");
        string(&mut out, &name);
        out.extend_from_slice(b",\"description\":");
        string(&mut out, &format!("{} unit:{}", first.name(), first.unit()));
        out.extend_from_slice(b",\"unit\":");
        string(&mut out, first.unit());
        let kind = sum_kind(first.sample_type());
        out.extend_from_slice(if kind.is_some() {
            b",\"sum\":{\"dataPoints\":["
        } else {
            b",\"gauge\":{\"dataPoints\":["
        });
        for (j, s) in samples.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"attributes\":[");
            string_attribute(&mut out, "resource_id", s.resource_id());
            if let Some(u) = s.user_id() {
                out.push(b',');
                string_attribute(&mut out, "user_id", u);
            }
            if let Some(p) = s.project_id() {
                out.push(b',');
                string_attribute(&mut out, "project_id", p);
            }
            // 64-bit integers are strings in OTLP/JSON; so are NaN and infinities.
            let t = nanos(s);
            let _ = write!(
                out,
                "],\"startTimeUnixNano\":\"{t}\",\"timeUnixNano\":\"{t}\",\"asDouble\":"
            );
            let v = s.volume();
            if v.is_finite() {
                let _ = serde_json::to_writer(&mut out, &v);
            } else {
                string(&mut out, &v.to_string());
            }
            out.extend_from_slice(b",\"flags\":0}");
        }
        out.extend_from_slice(b"]");
        if let Some((temporality, monotonic)) = kind {
            let _ = write!(
                out,
                ",\"aggregationTemporality\":{temporality},\"isMonotonic\":{monotonic}"
            );
        }
        out.extend_from_slice(b"}}");
    }
    out.extend_from_slice(b"]}]}]}");
    out
}

impl Encoder for Otlp {
    fn encode(&mut self, batch: &[Sample]) -> Vec<Request> {
        if batch.is_empty() {
            return Vec::new();
        }
        let (content_type, body) = if self.protobuf {
            (
                "application/x-protobuf",
                prost::Message::encode_to_vec(&request(batch)),
            )
        } else {
            ("application/json", json_request(batch))
        };
        vec![Request {
            suffix: String::new(),
            content_type,
            body,
            samples: batch.len(),
            attachment: None,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use serde_json::Value;

    fn batch() -> Vec<Sample> {
        vec![
            Sample::new("cpu", SampleType::Cumulative, "ns", 1.0, "vm").with_project_id("p"),
            Sample::new("memory.usage", SampleType::Gauge, "MB", 2.0, "vm"),
            Sample::new("cpu", SampleType::Cumulative, "ns", 3.0, "vm2"),
            Sample::new("net.delta", SampleType::Delta, "B", 4.0, "vm"),
        ]
    }

    #[test]
    fn meters_map_to_sums_and_gauges() {
        let r = request(&batch());
        let metrics = &r.resource_metrics[0].scope_metrics[0].metrics;
        let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["cpu", "memory_usage", "net_delta"]);
        assert_eq!(metrics[0].description, "cpu unit:ns");
        let Some(Data::Sum(cpu)) = &metrics[0].data else {
            panic!("cpu is a sum")
        };
        assert_eq!(
            (
                cpu.aggregation_temporality,
                cpu.is_monotonic,
                cpu.data_points.len()
            ),
            (2, true, 2)
        );
        let attrs: Vec<&str> = cpu.data_points[0]
            .attributes
            .iter()
            .map(|a| a.key.as_str())
            .collect();
        assert_eq!(attrs, ["resource_id", "project_id"]);
        assert!(matches!(metrics[1].data, Some(Data::Gauge(_))));
        let Some(Data::Sum(d)) = &metrics[2].data else {
            panic!("delta is a sum")
        };
        assert_eq!((d.aggregation_temporality, d.is_monotonic), (1, false));
        let t = batch()[0].timestamp_micros() as u64 * 1000;
        assert_eq!(
            cpu.data_points[0].time_unix_nano / 1_000_000_000,
            t / 1_000_000_000
        );
    }

    #[test]
    fn protobuf_round_trips_and_json_is_otlp_json() {
        let samples = batch();
        let mut e = Otlp { protobuf: true };
        let body = &e.encode(&samples)[0].body;
        let back = ExportMetricsServiceRequest::decode(&body[..]).unwrap();
        assert_eq!(back, request(&samples));
        let j: Value = serde_json::from_slice(&json_request(&samples)).unwrap();
        let sum = &j["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"];
        assert_eq!(sum["aggregationTemporality"], 2);
        assert!(sum["dataPoints"][0]["timeUnixNano"].is_string());
        assert_eq!(sum["dataPoints"][1]["asDouble"], 3.0);
    }
}
