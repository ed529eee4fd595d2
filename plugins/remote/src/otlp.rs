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

use ceilo_plugin_api::{Sample, SampleType};
use serde_json::{json, Value};

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

/// The request for one batch: one metric per meter (name, unit, type), in the order
/// meters first appear.
pub fn request(batch: &[Sample]) -> ExportMetricsServiceRequest {
    let mut metrics: Vec<(String, String, SampleType, Metric)> = Vec::new();
    for s in batch {
        let name = s.name().replace('.', "_");
        let found = metrics
            .iter_mut()
            .find(|(n, u, t, _)| *n == name && u == s.unit() && *t == s.sample_type());
        let metric = match found {
            Some(m) => &mut m.3,
            None => {
                let data = match s.sample_type() {
                    SampleType::Gauge => Data::Gauge(Gauge::default()),
                    SampleType::Cumulative => Data::Sum(Sum {
                        data_points: Vec::new(),
                        aggregation_temporality: CUMULATIVE,
                        is_monotonic: true,
                    }),
                    SampleType::Delta => Data::Sum(Sum {
                        data_points: Vec::new(),
                        aggregation_temporality: DELTA,
                        is_monotonic: false,
                    }),
                };
                metrics.push((
                    name.clone(),
                    s.unit().to_owned(),
                    s.sample_type(),
                    Metric {
                        name,
                        description: format!("{} unit:{}", s.name(), s.unit()),
                        unit: s.unit().to_owned(),
                        data: Some(data),
                    },
                ));
                &mut metrics.last_mut().expect("just pushed").3
            }
        };
        match &mut metric.data {
            Some(Data::Gauge(g)) => g.data_points.push(point(s)),
            Some(Data::Sum(sum)) => sum.data_points.push(point(s)),
            None => {}
        }
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![attribute("service.name", "ceilo")],
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "ceilometer".into(),
                    version: "v1".into(),
                }),
                metrics: metrics.into_iter().map(|m| m.3).collect(),
            }],
        }],
    }
}

fn kv_json(kv: &[KeyValue]) -> Value {
    kv.iter()
        .map(|a| {
            json!({"key": a.key, "value": {"stringValue": a.value.as_ref().map_or("", |v| v.string_value.as_str())}})
        })
        .collect()
}

fn points_json(points: &[NumberDataPoint]) -> Value {
    points
        .iter()
        .map(|p| {
            json!({
                "attributes": kv_json(&p.attributes),
                // 64-bit integers are strings in OTLP/JSON.
                "startTimeUnixNano": p.start_time_unix_nano.to_string(),
                "timeUnixNano": p.time_unix_nano.to_string(),
                "asDouble": if p.as_double.is_finite() { json!(p.as_double) } else { json!(p.as_double.to_string()) },
                "flags": p.flags,
            })
        })
        .collect()
}

/// `request` in OTLP/JSON.
pub fn to_json(r: &ExportMetricsServiceRequest) -> Value {
    let rm: Vec<Value> = r
        .resource_metrics
        .iter()
        .map(|rm| {
            let scopes: Vec<Value> = rm
                .scope_metrics
                .iter()
                .map(|sm| {
                    let metrics: Vec<Value> = sm
                        .metrics
                        .iter()
                        .map(|m| {
                            let mut o = json!({"name": m.name, "description": m.description, "unit": m.unit});
                            match &m.data {
                                Some(Data::Gauge(g)) => {
                                    o["gauge"] = json!({"dataPoints": points_json(&g.data_points)})
                                }
                                Some(Data::Sum(s)) => {
                                    o["sum"] = json!({
                                        "dataPoints": points_json(&s.data_points),
                                        "aggregationTemporality": s.aggregation_temporality,
                                        "isMonotonic": s.is_monotonic,
                                    })
                                }
                                None => {}
                            }
                            o
                        })
                        .collect();
                    let scope = sm.scope.as_ref().map_or(json!({}), |s| json!({"name": s.name, "version": s.version}));
                    json!({"scope": scope, "metrics": metrics})
                })
                .collect();
            let resource = rm
                .resource
                .as_ref()
                .map_or(json!({}), |r| json!({"attributes": kv_json(&r.attributes)}));
            json!({"resource": resource, "scopeMetrics": scopes})
        })
        .collect();
    json!({ "resourceMetrics": rm })
}

impl Encoder for Otlp {
    fn encode(&mut self, batch: &[Sample]) -> Vec<Request> {
        if batch.is_empty() {
            return Vec::new();
        }
        let r = request(batch);
        let (content_type, body) = if self.protobuf {
            ("application/x-protobuf", prost::Message::encode_to_vec(&r))
        } else {
            (
                "application/json",
                serde_json::to_vec(&to_json(&r)).unwrap_or_default(),
            )
        };
        vec![Request {
            suffix: String::new(),
            content_type,
            body,
            samples: batch.len(),
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

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
        let j = to_json(&request(&samples));
        let sum = &j["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["sum"];
        assert_eq!(sum["aggregationTemporality"], 2);
        assert!(sum["dataPoints"][0]["timeUnixNano"].is_string());
        assert_eq!(sum["dataPoints"][1]["asDouble"], 3.0);
    }
}
