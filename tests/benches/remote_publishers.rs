//! Samples/s through the remote publishers, each against a plain client loop in the
//! same run: `cargo bench -p ceilo-tests --bench remote_publishers`.
//!
//! Each publisher is loaded from `libceilo_plugin_remote.so` (release) and given the
//! samples in batches of 1 000, then flushed (every sample taken by the endpoint). The
//! baseline encodes the same samples the same way (Ceilometer's meter message, renamed
//! as `as_dict` for JSON; the same Prometheus text; the same frames) and sends them
//! from one loop with the same client (ureq for HTTP, a std `TcpStream` for TCP), one
//! request after another: what a hand-written exporter would do. The endpoints are a
//! local axum server that reads each body and answers 200, and a TCP reader that
//! discards bytes, so the receiving side costs next to nothing. Rounds alternate the
//! two sides; medians are compared.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ceilo_host::loader::{PluginRegistry, ScanOptions};
use ceilo_plugin_api::{signing, Context, Sample, SampleType};
use ceilo_tests::*;
use serde_json::Value;

const SAMPLES: usize = 100_000;
const CHUNK: usize = 1_000;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let dir = build_workspace_release();
    let rounds = if full { 5 } else { 1 };
    let n = if full { SAMPLES } else { SAMPLES / 10 };
    let plugins = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        dir.join("libceilo_plugin_remote.so"),
        plugins.path().join("libceilo_plugin_remote.so"),
    )
    .expect("copy");
    let registry = PluginRegistry::scan(plugins.path(), &ScanOptions::default()).expect("scan");
    let samples: Vec<Sample> = (0..n)
        .map(|i| {
            Sample::new(
                "bench.gauge",
                SampleType::Gauge,
                "B",
                i as f64,
                format!("r{}", i % 100),
            )
            .with_project_id("p")
            .with_user_id("u")
            .with_resource_metadata(serde_json::json!({"host": "bench", "device": "vda"}))
        })
        .collect();
    let (http_port, bodies) = http_endpoint();
    let tcp_port = tcp_endpoint();
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    let base = format!("127.0.0.1:{http_port}");

    type Baseline<'a> = Box<dyn Fn(&[Sample]) + 'a>;
    let post = |url: String, content_type: &'static str, body: Vec<u8>| {
        let r = agent
            .post(&url)
            .header("Content-Type", content_type)
            .send(&body[..])
            .expect("post");
        assert!(r.status().is_success());
    };
    let defs = plugins.path().join("gnocchi_resources.yaml");
    std::fs::write(
        &defs,
        "resources:\n  - resource_type: generic\n    metrics:\n      bench.gauge:\n    attributes:\n      host: resource_metadata.host\n",
    )
    .expect("write definitions");
    let patched = std::cell::RefCell::new(std::collections::HashSet::<String>::new());
    let call = |method: &str, url: String, body: Vec<u8>| {
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(body)
            .expect("request");
        let mut r = agent.run(request).expect("call");
        let _ = r.body_mut().read_to_vec();
        assert!(r.status().is_success());
    };
    let cases: Vec<(&str, String, Baseline)> = vec![
        (
            "http:// (JSON)",
            format!("http://{base}/ingest"),
            Box::new(|chunk: &[Sample]| {
                let dicts: Vec<Value> = chunk.iter().map(as_dict).collect();
                post(
                    format!("http://{base}/ingest"),
                    "application/json",
                    serde_json::to_vec(&dicts).expect("json"),
                );
            }),
        ),
        (
            "prometheus:// (a push per resource)",
            format!("prometheus://{base}/metrics/job/bench"),
            Box::new(|chunk: &[Sample]| {
                for (rid, text) in prometheus_pushes(chunk) {
                    post(
                        format!("http://{base}/metrics/job/bench/resource_id/{rid}"),
                        "text/plain; version=0.0.4",
                        text.into_bytes(),
                    );
                }
            }),
        ),
        (
            "opentelemetryhttp:// (OTLP/JSON)",
            format!("opentelemetryhttp://{base}/v1/metrics"),
            Box::new(|chunk: &[Sample]| {
                post(
                    format!("http://{base}/v1/metrics"),
                    "application/json",
                    otlp_json(chunk),
                );
            }),
        ),
        (
            "gnocchi:// (batch measures, each resource's attributes once)",
            format!(
                "gnocchi://{base}?resources_definition_file={}",
                defs.display()
            ),
            Box::new(|chunk: &[Sample]| {
                let mut measures = serde_json::Map::new();
                for s in chunk {
                    let d = as_dict(s);
                    let m = measures
                        .entry(s.resource_id().to_owned())
                        .or_insert_with(|| serde_json::json!({"bench.gauge": {"measures": [], "archive_policy_name": "ceilometer-low", "unit": "B"}}));
                    if let Some(list) = m["bench.gauge"]["measures"].as_array_mut() {
                        list.push(
                            serde_json::json!({"timestamp": d["timestamp"], "value": s.volume()}),
                        );
                    }
                }
                call(
                    "POST",
                    format!(
                        "http://{base}/v1/batch/resources/metrics/measures?create_metrics=true"
                    ),
                    serde_json::to_vec(&measures).expect("json"),
                );
                for s in chunk {
                    if patched.borrow_mut().insert(s.resource_id().to_owned()) {
                        let extra =
                            serde_json::json!({"project_id": s.project_id(), "host": "bench"});
                        call(
                            "PATCH",
                            format!("http://{base}/v1/resource/generic/{}", s.resource_id()),
                            serde_json::to_vec(&extra).expect("json"),
                        );
                    }
                }
            }),
        ),
        (
            "tcp:// (signed msgpack frames)",
            format!("tcp://127.0.0.1:{tcp_port}"),
            Box::new(move |chunk: &[Sample]| {
                thread_local! {
                    static STREAM: std::cell::RefCell<Option<TcpStream>> = const { std::cell::RefCell::new(None) };
                }
                let mut out = Vec::new();
                for s in chunk {
                    let m = signing::ceilometer::meter_message(s, Some("bench-secret"))
                        .expect("message");
                    let body = rmp_serde::to_vec_named(&m).expect("msgpack");
                    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
                    out.extend_from_slice(&body);
                }
                STREAM.with(|cell| {
                    let mut s = cell.borrow_mut();
                    let stream = s.get_or_insert_with(|| {
                        TcpStream::connect(("127.0.0.1", tcp_port)).expect("connect")
                    });
                    stream.write_all(&out).expect("write");
                });
            }),
        ),
    ];

    println!("\nsamples through the remote publishers ({n} samples in publish batches of {CHUNK}, {rounds} rounds, medians)");
    println!("| publisher | plain client loop (baseline) | ceilo publisher (.so) | vs. baseline |");
    println!("|-----------|-----------------------------:|----------------------:|-------------:|");
    for (name, url, baseline) in &cases {
        let scheme = url.split(':').next().expect("scheme");
        let mut ceilo_t = Vec::new();
        let mut base_t = Vec::new();
        for _ in 0..rounds {
            let sep = if url.contains('?') { '&' } else { '?' };
            let url = if scheme == "tcp" {
                format!("{url}{sep}flush_timeout=300")
            } else {
                format!("{url}{sep}flush_timeout=300&timeout=30")
            };
            let ctx = Context::new(scheme, "bench").with_telemetry_secret("bench-secret");
            let mut p = registry
                .create_publisher(scheme, &serde_json::json!({ "url": url }), ctx)
                .expect("publisher");
            p.publish(&samples[..1]).expect("warm-up");
            p.flush().expect("warm-up flush");
            let start = Instant::now();
            for chunk in samples.chunks(CHUNK) {
                p.publish(chunk).expect("publish");
            }
            p.flush().expect("all sent");
            ceilo_t.push(start.elapsed());
            drop(p);

            let start = Instant::now();
            for chunk in samples.chunks(CHUNK) {
                baseline(chunk);
            }
            base_t.push(start.elapsed());
            patched.borrow_mut().clear();
        }
        let (c, b) = (median(ceilo_t), median(base_t));
        println!(
            "| {name} | {:.0} k/s | {:.0} k/s | {:.2}x |",
            n as f64 / b.as_secs_f64() / 1e3,
            n as f64 / c.as_secs_f64() / 1e3,
            b.as_secs_f64() / c.as_secs_f64()
        );
    }
    println!(
        "\n(endpoint bodies read: {} MB)",
        bodies.load(Ordering::Relaxed) / 1_000_000
    );
}

/// A sample as Ceilometer's `as_dict`, from its meter message (what the http
/// publisher sends).
fn as_dict(s: &Sample) -> Value {
    let Value::Object(m) = signing::ceilometer::meter_message(s, None).expect("message") else {
        unreachable!("a meter message is an object")
    };
    let renamed = m
        .into_iter()
        .filter(|(k, _)| k != "message_signature")
        .map(|(k, v)| {
            let k = match k.as_str() {
                "counter_name" => "name".to_owned(),
                "counter_type" => "type".to_owned(),
                "counter_unit" => "unit".to_owned(),
                "counter_volume" => "volume".to_owned(),
                "message_id" => "id".to_owned(),
                _ => k,
            };
            (k, v)
        });
    Value::Object(renamed.collect())
}

fn prometheus_pushes(chunk: &[Sample]) -> Vec<(String, String)> {
    let mut pushes: Vec<(String, String)> = Vec::new();
    for s in chunk {
        let line = format!(
            "bench_gauge{{resource_id=\"{}\", user_id=\"{}\", project_id=\"{}\"}} {}\n",
            s.resource_id(),
            s.user_id().unwrap_or(""),
            s.project_id().unwrap_or(""),
            signing::ceilometer::python_float(s.volume())
        );
        match pushes.iter_mut().find(|(r, _)| r == s.resource_id()) {
            // The latest value per series, as the Pushgateway keeps.
            Some((_, text)) => *text = format!("# TYPE bench_gauge gauge\n{line}"),
            None => pushes.push((
                s.resource_id().to_owned(),
                format!("# TYPE bench_gauge gauge\n{line}"),
            )),
        }
    }
    pushes
}

fn otlp_json(chunk: &[Sample]) -> Vec<u8> {
    let points: Vec<Value> = chunk
        .iter()
        .map(|s| {
            let t = (s.timestamp_micros() * 1000).to_string();
            serde_json::json!({
                "attributes": [
                    {"key": "resource_id", "value": {"stringValue": s.resource_id()}},
                    {"key": "user_id", "value": {"stringValue": s.user_id().unwrap_or("")}},
                    {"key": "project_id", "value": {"stringValue": s.project_id().unwrap_or("")}},
                ],
                "startTimeUnixNano": t, "timeUnixNano": t, "asDouble": s.volume(), "flags": 0,
            })
        })
        .collect();
    let body = serde_json::json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "ceilo"}}]},
        "scopeMetrics": [{"scope": {"name": "ceilometer", "version": "v1"}, "metrics": [{
            "name": "bench_gauge", "description": "bench.gauge unit:B", "unit": "B",
            "gauge": {"dataPoints": points}}]}]}]});
    serde_json::to_vec(&body).expect("json")
}

/// An HTTP endpoint reading every body and answering 200; returns its port and the
/// bytes it read.
fn http_endpoint() -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let bytes = Arc::new(AtomicU64::new(0));
    let counted = bytes.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
                let counted = counted.clone();
                async move {
                    counted.fetch_add(body.len() as u64, Ordering::Relaxed);
                    "{}"
                }
            });
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    (port, bytes)
}

/// A TCP endpoint discarding what it reads; returns its port.
fn tcp_endpoint() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut buf = vec![0u8; 1 << 16];
                while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
