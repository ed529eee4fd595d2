//! The remote publishers (`libceilo_plugin_remote.so`) against real receivers: an
//! HTTP(S) endpoint, Debian's Prometheus Pushgateway read back through Prometheus'
//! own HTTP API, an OTLP receiver decoding with PyPI's opentelemetry-proto, and a TCP
//! reader running Ceilometer's own signature check; and the agent's scrape endpoint
//! (`--prometheus-listen`) scraped by Debian's Prometheus. Endpoints stopped
//! mid-stream: samples are buffered and retried, none lost within the buffer, and the
//! publisher's counters say so.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ceilo_plugin_api::{Sample, SampleType};
use ceilo_tests::receivers::{
    self, free_port, make_certificates, Gnocchi, Prometheus, Pushgateway, Receiver,
};
use ceilo_tests::*;
use serde_json::Value;

/// The agent's plugins plus the remote publishers.
fn plugins() -> tempfile::TempDir {
    plugin_dir(&[
        (&library("ceilo_plugin_system"), "libceilo_plugin_system.so"),
        (
            &library("ceilo_plugin_publishers"),
            "libceilo_plugin_publishers.so",
        ),
        (&library("ceilo_plugin_remote"), "libceilo_plugin_remote.so"),
    ])
}

/// `load.*` every second to `publishers` and to `file:produced.json`.
fn pipeline(dir: &std::path::Path, publishers: &[String]) -> std::path::PathBuf {
    let list: Vec<String> = publishers
        .iter()
        .map(|p| format!("\"{p}\""))
        .chain(["\"file:produced.json\"".to_owned()])
        .collect();
    let file = dir.join("pipeline.yaml");
    std::fs::write(
        &file,
        format!(
            "sources:\n  - name: s\n    interval: 1\n    meters: [\"load.*\"]\n    sinks: [k]\n\
             sinks:\n  - name: k\n    publishers: [{}]\n",
            list.join(", ")
        ),
    )
    .unwrap();
    file
}

/// Runs an agent on `publishers` for `secs`, then stops it; returns (produced, log).
fn run_agent(
    publishers: &[String],
    secs: f64,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Vec<Sample>, String) {
    let plugins = plugins();
    let data = tempfile::tempdir().unwrap();
    let file = pipeline(data.path(), publishers);
    let agent = spawn_service("agent", &file, plugins.path(), data.path(), extra, env);
    std::thread::sleep(Duration::from_secs_f64(secs));
    let log = stop_ceilo(agent, Duration::from_secs(30));
    (read_samples(&data.path().join("produced.json")), log)
}

fn ids(samples: &[Sample]) -> HashSet<String> {
    samples.iter().map(|s| s.message_id().to_owned()).collect()
}

/// The samples of every JSON request body received (arrays or single objects).
fn posted(entries: &[Value]) -> Vec<Value> {
    entries
        .iter()
        .flat_map(
            |e| match serde_json::from_str::<Value>(e["body"].as_str().unwrap()).unwrap() {
                Value::Array(a) => a,
                one => vec![one],
            },
        )
        .collect()
}

fn posted_ids(entries: &[Value]) -> HashSet<String> {
    posted(entries)
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn http_posts_every_sample_as_ceilometers_json_with_its_options() {
    let receiver = Receiver::http(&[]);
    let url = format!(
        "http://user:pw@127.0.0.1:{}/ingest?extra=1&timeout=2&header=X-Site:%20lab",
        receiver.port
    );
    let (produced, log) = run_agent(&[url], 2.5, &[], &[]);
    assert!(
        produced.len() >= 6,
        "several cycles of 3 meters: {}\n{log}",
        produced.len()
    );
    assert!(
        !log.contains(":pw@"),
        "the password is never logged:\n{log}"
    );
    let entries = receiver.wait_for(Duration::from_secs(5), |e| {
        posted_ids(e).len() >= produced.len()
    });
    assert_eq!(
        posted_ids(&entries),
        ids(&produced),
        "every sample arrived\n{log}"
    );
    let first = &entries[0];
    assert_eq!(
        first["path"], "/ingest?extra=1",
        "options leave the URL; the rest stays"
    );
    assert_eq!(first["headers"]["authorization"], "Basic dXNlcjpwdw==");
    assert_eq!(first["headers"]["x-site"], "lab");
    assert_eq!(first["headers"]["content-type"], "application/json");
    assert!(
        first["body"].as_str().unwrap().starts_with('['),
        "batch=True: one array per request"
    );
    let by_id: HashMap<String, Value> = posted(&entries)
        .into_iter()
        .map(|d| (d["id"].as_str().unwrap().to_owned(), d))
        .collect();
    for s in &produced {
        let d = &by_id[s.message_id()];
        assert_eq!(d["name"], s.name());
        assert_eq!(d["type"], "gauge");
        assert_eq!(d["volume"].as_f64(), Some(s.volume()));
        assert_eq!(d["resource_id"], s.resource_id());
    }
}

#[test]
fn https_checks_the_servers_certificate_unless_told_not_to() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key, other_ca) = make_certificates(certs.path());
    let receiver = Receiver::http(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let at = |path: &str, query: &str| format!("https://127.0.0.1:{}/{path}{query}", receiver.port);
    let publishers = [
        at("ca", &format!("?verify_ssl={}", ca.display())),
        at("off", "?verify_ssl=False"),
        at("other", &format!("?verify_ssl={}", other_ca.display())),
        at("default", ""),
    ];
    let (produced, log) = run_agent(&publishers, 2.5, &[], &[]);
    let entries = receiver.wait_for(Duration::from_secs(5), |e| {
        posted_ids(e).len() >= produced.len()
    });
    let at_path = |p: &str| -> Vec<Value> {
        entries
            .iter()
            .filter(|e| e["path"].as_str().unwrap().starts_with(p))
            .cloned()
            .collect()
    };
    assert_eq!(
        posted_ids(&at_path("/ca")),
        ids(&produced),
        "trusted through verify_ssl=CA\n{log}"
    );
    assert_eq!(
        posted_ids(&at_path("/off")),
        ids(&produced),
        "verify_ssl=False\n{log}"
    );
    assert!(
        at_path("/other").is_empty(),
        "a certificate from another CA is refused"
    );
    assert!(
        at_path("/default").is_empty(),
        "a certificate no public root signed is refused"
    );
    assert!(
        log.to_lowercase().contains("certificate") && log.contains("/other"),
        "the refusal is logged, naming the endpoint:\n{log}"
    );
}

/// The remote publishers loaded into this process (for their counters).
fn in_process() -> (ceilo_host::loader::PluginRegistry, tempfile::TempDir) {
    let dir = plugin_dir(&[(&library("ceilo_plugin_remote"), "libceilo_plugin_remote.so")]);
    let reg = ceilo_host::loader::PluginRegistry::scan(dir.path(), &Default::default()).unwrap();
    (reg, dir)
}

fn counter(stats: &[ceilo_plugin_api::Counter], name: &str) -> u64 {
    stats
        .iter()
        .find(|c| c.name() == name)
        .map(|c| c.value())
        .unwrap_or_else(|| panic!("no counter {name}: {stats:?}"))
}

/// The remote publisher `name` on `url`, loaded into this process (for its counters),
/// with what keeps its library loaded.
fn publisher(
    name: &str,
    url: &str,
) -> (
    ceilo_host::loader::PublisherInstance,
    (ceilo_host::loader::PluginRegistry, tempfile::TempDir),
) {
    let (reg, dir) = in_process();
    let p = reg
        .create_publisher(
            name,
            &serde_json::json!({ "url": url }),
            ceilo_plugin_api::Context::new(name, "test"),
        )
        .unwrap_or_else(|e| panic!("{name} on {url}: {e}"));
    (p, (reg, dir))
}

/// Waits until the publisher has nothing buffered (it is retrying with backoff while
/// its endpoint was away; `flush` does not wait for an endpoint it knows is down).
fn drained(p: &mut ceilo_host::loader::PublisherInstance) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while counter(&p.stats().unwrap(), "buffered") > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    p.flush().unwrap();
}

fn batch(n: usize, offset: usize) -> Vec<Sample> {
    (0..n)
        .map(|i| {
            Sample::new(
                "m",
                SampleType::Gauge,
                "u",
                (offset + i) as f64,
                format!("r{}", i % 3),
            )
        })
        .collect()
}

#[test]
fn an_http_endpoint_stopped_mid_stream_loses_nothing() {
    let mut receiver = Receiver::http(&[]);
    let url = format!(
        "http://127.0.0.1:{}/x?max_retries=1&timeout=2&flush_timeout=20",
        receiver.port
    );
    let (mut p, _loaded) = publisher("http", &url);
    let mut sent = Vec::new();
    for round in 0..10 {
        if round == 3 {
            receiver.stop();
        }
        if round == 7 {
            receiver.resume();
        }
        let b = batch(20, round * 20);
        p.publish(&b).unwrap();
        sent.extend(b);
        std::thread::sleep(Duration::from_millis(150));
    }
    drained(&mut p);
    let stats = p.stats().unwrap();
    assert_eq!(counter(&stats, "published"), 200, "{stats:?}");
    assert_eq!(
        (counter(&stats, "buffered"), counter(&stats, "dropped")),
        (0, 0),
        "{stats:?}"
    );
    assert!(
        counter(&stats, "retried") >= 1,
        "the outage was retried: {stats:?}"
    );
    let got = posted_ids(&receiver.entries());
    assert_eq!(
        got,
        ids(&sent),
        "every sample arrived once the endpoint was back"
    );
}

#[test]
fn a_full_buffer_drops_the_oldest_with_policy_drop_and_counts_them() {
    let mut receiver = Receiver::http(&[]);
    receiver.stop();
    let url = format!(
        "http://127.0.0.1:{}/x?max_retries=0&timeout=1&buffer=50&policy=drop&flush_timeout=20",
        receiver.port
    );
    let (mut p, _loaded) = publisher("http", &url);
    let sent = batch(200, 0);
    p.publish(&sent).unwrap();
    let stats = p.stats().unwrap();
    assert_eq!(counter(&stats, "dropped"), 150, "{stats:?}");
    assert_eq!(counter(&stats, "buffered"), 50, "{stats:?}");
    receiver.resume();
    std::thread::sleep(Duration::from_millis(500));
    p.flush().unwrap();
    let stats = p.stats().unwrap();
    assert_eq!(
        (counter(&stats, "published"), counter(&stats, "buffered")),
        (50, 0),
        "{stats:?}"
    );
    let got = posted(&receiver.entries());
    let volumes: HashSet<u64> = got
        .iter()
        .map(|d| d["volume"].as_f64().unwrap() as u64)
        .collect();
    assert!(volumes.contains(&199), "the newest are kept");
    assert!(
        !volumes.contains(&0) || got.len() <= 50,
        "the oldest went first"
    );
}

#[test]
fn a_request_the_endpoint_refuses_is_counted_not_retried_forever() {
    let receiver = Receiver::http(&["--status", "400"]);
    let url = format!("http://127.0.0.1:{}/x", receiver.port);
    let (mut p, _loaded) = publisher("http", &url);
    p.publish(&batch(5, 0)).unwrap();
    p.flush().unwrap();
    let stats = p.stats().unwrap();
    assert_eq!(
        (counter(&stats, "rejected"), counter(&stats, "published")),
        (5, 0),
        "{stats:?}"
    );
    assert_eq!(counter(&stats, "buffered"), 0);
}

#[test]
fn a_bad_url_is_refused_with_the_option_named() {
    let (reg, _dir) = in_process();
    for (name, url, want) in [
        ("http", "http://h/?timeout=soon", "`timeout=soon`"),
        (
            "https",
            "https://h/?verify_ssl=/no/such/ca.pem",
            "cannot read it",
        ),
        (
            "opentelemetryhttp",
            "opentelemetryhttp://h/v1/metrics?encoding=xml",
            "json or protobuf",
        ),
        ("tcp", "tcp://h:1?colour=red", "tcp:// takes"),
    ] {
        let e = reg
            .create_publisher(
                name,
                &serde_json::json!({ "url": url }),
                ceilo_plugin_api::Context::new(name, "test"),
            )
            .err()
            .unwrap_or_else(|| panic!("{url} is refused"));
        assert!(e.to_string().contains(want), "{url}: {e}");
    }
}

#[test]
fn prometheus_pushes_to_a_pushgateway_and_prometheus_reads_them() {
    let Some(gateway) = Pushgateway::start() else {
        return;
    };
    let Some(prom) = Prometheus::start(&[("pushgateway", format!("127.0.0.1:{}", gateway.port))])
    else {
        return;
    };
    let publishers = [
        format!("prometheus://127.0.0.1:{}/metrics/job/ceilo", gateway.port),
        format!(
            "prometheus://127.0.0.1:{}/metrics/job/ceilo/site/lab",
            gateway.port
        ),
    ];
    let (produced, log) = run_agent(&publishers, 2.5, &[], &[]);
    let last = produced
        .iter()
        .rev()
        .find(|s| s.name() == "load.1")
        .expect("load.1 was produced");
    let want = last.volume();
    let per_resource = prom.wait_for(
        "load_1{job=\"ceilo\",site=\"\"}",
        Duration::from_secs(20),
        |r| {
            r.iter()
                .any(|v| v["value"][1].as_str().and_then(|x| x.parse::<f64>().ok()) == Some(want))
        },
    );
    assert_eq!(
        per_resource.len(),
        1,
        "one series per resource: {per_resource:?}\n{log}"
    );
    let m = &per_resource[0]["metric"];
    assert_eq!(m["resource_id"], last.resource_id(), "{m}");
    assert_eq!(
        per_resource[0]["value"][1]
            .as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap(),
        want
    );
    let grouped = prom.wait_for(
        "load_15{job=\"ceilo\",site=\"lab\"}",
        Duration::from_secs(20),
        |r| !r.is_empty(),
    );
    assert_eq!(grouped.len(), 1, "{grouped:?}");
    assert_eq!(grouped[0]["metric"]["resource_id"], last.resource_id());
}

#[test]
fn a_pushgateway_restarted_mid_stream_gets_the_samples_kept_for_it() {
    let Some(mut gateway) = Pushgateway::start() else {
        return;
    };
    let url = format!(
        "prometheus://127.0.0.1:{}/metrics/job/outage?max_retries=0&flush_timeout=20",
        gateway.port
    );
    let (mut p, _loaded) = publisher("prometheus", &url);
    let mut total = 0;
    for round in 0..8 {
        if round == 2 {
            gateway.stop();
        }
        if round == 6 {
            gateway.resume();
        }
        let b = batch(9, round * 9);
        total += b.len() as u64;
        p.publish(&b).unwrap();
        std::thread::sleep(Duration::from_millis(150));
    }
    drained(&mut p);
    let stats = p.stats().unwrap();
    assert_eq!(counter(&stats, "published"), total, "{stats:?}");
    assert_eq!(
        (counter(&stats, "dropped"), counter(&stats, "buffered")),
        (0, 0),
        "{stats:?}"
    );
    assert!(counter(&stats, "retried") >= 1, "{stats:?}");
    // What the gateway holds now is the last push of each resource.
    let Some(prom) = Prometheus::start(&[("pushgateway", format!("127.0.0.1:{}", gateway.port))])
    else {
        return;
    };
    let r = prom.wait_for("m{job=\"outage\"}", Duration::from_secs(20), |r| {
        r.len() == 3
    });
    let mut values: Vec<f64> = r
        .iter()
        .map(|v| v["value"][1].as_str().unwrap().parse().unwrap())
        .collect();
    values.sort_by(f64::total_cmp);
    assert_eq!(values, [69.0, 70.0, 71.0], "{r:?}");
}

#[test]
fn the_agents_scrape_endpoint_is_read_by_prometheus() {
    let port = free_port();
    let Some(prom) = Prometheus::start(&[("ceilo", format!("127.0.0.1:{port}"))]) else {
        return;
    };
    let plugins = plugins();
    let data = tempfile::tempdir().unwrap();
    let file = pipeline(data.path(), &[]);
    let listen = format!("127.0.0.1:{port}");
    let agent = spawn_service(
        "agent",
        &file,
        plugins.path(),
        data.path(),
        &["--prometheus-listen", &listen],
        &[],
    );
    let series = prom.wait_for("ceilometer_load_5", Duration::from_secs(20), |r| {
        !r.is_empty()
    });
    let own = prom.wait_for("ceilo_samples_polled_total", Duration::from_secs(10), |r| {
        !r.is_empty()
    });
    let log = stop_ceilo(agent, Duration::from_secs(20));
    let produced = read_samples(&data.path().join("produced.json"));
    assert_eq!(series.len(), 1, "{series:?}\n{log}");
    let m = &series[0]["metric"];
    let s = produced
        .iter()
        .find(|s| s.name() == "load.5")
        .expect("load.5 produced");
    assert_eq!(m["counter"], "load.5");
    assert_eq!(m["publisher"], "ceilometer");
    assert_eq!(m["type"], "5");
    assert_eq!(
        m["load"],
        s.resource_id(),
        "Ceilometer's label named after the meter's first part"
    );
    assert_eq!(m["resource"], s.resource_id());
    assert_eq!(m["unit"], s.unit());
    let value: f64 = series[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(
        produced
            .iter()
            .any(|p| p.name() == "load.5" && p.volume() == value),
        "the value is one the agent polled: {value}"
    );
    assert!(
        !own.is_empty(),
        "ceilo's own metrics beside the polled meters"
    );
}

#[test]
fn opentelemetry_receiver_decodes_json_and_protobuf() {
    let Some(receiver) = Receiver::otlp() else {
        return;
    };
    let base = format!("opentelemetryhttp://127.0.0.1:{}/v1/metrics", receiver.port);
    let publishers = [base.clone(), format!("{base}?encoding=protobuf")];
    let (produced, log) = run_agent(&publishers, 2.5, &[], &[]);
    let want: HashSet<(String, String, u64, String)> = produced
        .iter()
        .map(|s| {
            (
                s.name().replace('.', "_"),
                s.resource_id().to_owned(),
                s.volume().to_bits(),
                (s.timestamp_micros() * 1000).to_string(),
            )
        })
        .collect();
    let points =
        |entries: &[Value], content_type: &str| -> HashSet<(String, String, u64, String)> {
            let mut out = HashSet::new();
            for e in entries
                .iter()
                .filter(|e| e["headers"]["content-type"] == content_type)
            {
                let rm = &e["decoded"]["resource_metrics"][0];
                let scope = &rm["scope_metrics"][0];
                assert_eq!(scope["scope"]["name"], "ceilometer");
                for m in scope["metrics"].as_array().unwrap() {
                    assert_eq!(
                        m["description"].as_str().unwrap(),
                        format!(
                            "{} unit:{}",
                            m["name"].as_str().unwrap().replace('_', "."),
                            m["unit"].as_str().unwrap()
                        )
                    );
                    let gauge = m["gauge"]["data_points"]
                        .as_array()
                        .expect("load is a gauge");
                    for p in gauge {
                        let rid = p["attributes"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|a| a["key"] == "resource_id")
                            .map(|a| a["value"]["string_value"].as_str().unwrap().to_owned())
                            .unwrap();
                        out.insert((
                            m["name"].as_str().unwrap().to_owned(),
                            rid,
                            p["as_double"].as_f64().unwrap().to_bits(),
                            p["time_unix_nano"].as_str().unwrap().to_owned(),
                        ));
                    }
                }
            }
            out
        };
    let entries = receiver.wait_for(Duration::from_secs(5), |e| {
        points(e, "application/json").len() >= want.len()
            && points(e, "application/x-protobuf").len() >= want.len()
    });
    assert_eq!(
        points(&entries, "application/json"),
        want,
        "OTLP/JSON\n{log}"
    );
    assert_eq!(
        points(&entries, "application/x-protobuf"),
        want,
        "OTLP protobuf\n{log}"
    );
}

#[test]
fn tcp_messages_verify_with_ceilometers_own_code_and_reconnect() {
    let Some(mut receiver) = Receiver::tcp("s3cret") else {
        return;
    };
    let plugins = plugins();
    let data = tempfile::tempdir().unwrap();
    let file = pipeline(
        data.path(),
        &[format!("tcp://127.0.0.1:{}?max_retries=0", receiver.port)],
    );
    let agent = spawn_service(
        "agent",
        &file,
        plugins.path(),
        data.path(),
        &[],
        &[("CEILO_TELEMETRY_SECRET", "s3cret")],
    );
    std::thread::sleep(Duration::from_millis(2200));
    let before = receiver.entries().len();
    receiver.stop();
    std::thread::sleep(Duration::from_millis(1500));
    receiver.resume();
    std::thread::sleep(Duration::from_millis(2500));
    let log = stop_ceilo(agent, Duration::from_secs(30));
    let produced = read_samples(&data.path().join("produced.json"));
    let last_id = produced
        .last()
        .map(|s| s.message_id().to_owned())
        .unwrap_or_default();
    let entries = receiver.wait_for(Duration::from_secs(5), |e| {
        e.iter()
            .any(|x| x["message"]["message_id"] == last_id.as_str())
    });
    assert!(
        before >= 3,
        "samples arrived before the outage: {before}\n{log}"
    );
    assert!(
        entries.iter().all(|e| e["valid"] == true),
        "Ceilometer's verify_signature accepts every message"
    );
    let got: HashSet<&str> = entries
        .iter()
        .map(|e| e["message"]["message_id"].as_str().unwrap())
        .collect();
    let last = produced.last().unwrap();
    assert!(
        got.contains(last.message_id()),
        "after the receiver came back, samples arrive again\n{log}"
    );
    let m = &entries.last().unwrap()["message"];
    assert!(
        m["counter_name"].as_str().unwrap().starts_with("load."),
        "{m}"
    );
}

/// Gnocchi's aggregates of one metric: (timestamp, value) at `granularity` seconds.
fn gnocchi_measures(
    g: &Gnocchi,
    rid: &str,
    metric: &str,
    aggregation: &str,
    granularity: &str,
) -> Vec<(String, f64)> {
    g.client(&[
        "measures",
        "show",
        "--resource-id",
        rid,
        metric,
        "--refresh",
        "--aggregation",
        aggregation,
        "--granularity",
        granularity,
    ])
    .as_array()
    .cloned()
    .unwrap_or_default()
    .iter()
    .map(|m| {
        (
            m["timestamp"].as_str().unwrap_or_default().to_owned(),
            m["value"].as_f64().unwrap(),
        )
    })
    .collect()
}

#[test]
fn gnocchi_gets_resources_and_measures_mapped_by_ceilometers_file() {
    let Some(resources) = receivers::ceilometer_gnocchi_resources() else {
        return;
    };
    let Some(gnocchi) = Gnocchi::start() else {
        return;
    };
    let plugins = plugins();
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("pipeline.yaml");
    let url = format!(
        "gnocchi://admin@127.0.0.1:{}?resources_definition_file={}",
        gnocchi.port,
        resources.display()
    );
    std::fs::write(
        &file,
        format!(
            "sources:\n  - name: s\n    interval: 1\n    meters: [\"cpu\", \"memory.usage\", \"load.1\"]\n    sinks: [k]\n\
             sinks:\n  - name: k\n    publishers: [\"{url}\", \"file:produced.json\"]\n"
        ),
    )
    .unwrap();
    let agent = spawn_service("agent", &file, plugins.path(), data.path(), &[], &[]);
    std::thread::sleep(Duration::from_millis(3500));
    let log = stop_ceilo(agent, Duration::from_secs(30));
    let produced = read_samples(&data.path().join("produced.json"));
    let memory: Vec<&Sample> = produced
        .iter()
        .filter(|s| s.name() == "memory.usage")
        .collect();
    assert!(memory.len() >= 2, "{log}");
    let rid = memory[0].resource_id().replace('/', "_");
    assert!(
        log.contains("metric load.1 is not handled by Gnocchi"),
        "a meter the file does not map is logged:\n{log}"
    );

    let policies = gnocchi.client(&["archive-policy", "list"]);
    let names: HashSet<&str> = policies
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(
        names.contains("ceilometer-low") && names.contains("ceilometer-low-rate"),
        "{names:?}"
    );
    let resource = gnocchi.client(&["resource", "show", "--type", "instance", &rid]);
    assert_eq!(resource["original_resource_id"], rid.as_str(), "{resource}");
    assert_eq!(resource["type"], "instance");
    let metrics = resource["metrics"].as_object().expect("metrics");
    assert!(
        metrics.contains_key("cpu") && metrics.contains_key("memory.usage"),
        "{resource}"
    );
    assert!(!metrics.contains_key("load.1"));
    let cpu = gnocchi.client(&["metric", "show", "--resource-id", &rid, "cpu"]);
    assert_eq!(
        cpu["archive_policy/name"], "ceilometer-low-rate",
        "the file's policy for cpu: {cpu}"
    );
    assert_eq!(cpu["unit"], "ns");

    // The 5-minute means Gnocchi computed against the ones of what was produced.
    let mut buckets: HashMap<i64, Vec<f64>> = HashMap::new();
    for s in &memory {
        buckets
            .entry(s.timestamp().timestamp().div_euclid(300))
            .or_default()
            .push(s.volume());
    }
    let got = gnocchi_measures(&gnocchi, &rid, "memory.usage", "mean", "300");
    assert_eq!(got.len(), buckets.len(), "{got:?}\n{log}");
    for (ts, mean) in got {
        let t = chrono::DateTime::parse_from_rfc3339(&ts)
            .unwrap()
            .timestamp()
            .div_euclid(300);
        let want = &buckets[&t];
        let expected = want.iter().sum::<f64>() / want.len() as f64;
        assert!(
            (mean - expected).abs() < 1e-6 * expected.abs().max(1.0),
            "{ts}: {mean} vs {expected}"
        );
    }
}

const COUNTING_DEFINITIONS: &str = "archive_policy_default: ceilo-count
archive_policies:
  - name: ceilo-count
    aggregation_methods: [count, mean]
    back_window: 0
    definition:
      - granularity: 1 hour
        timespan: 1 day
resources:
  - resource_type: generic
    metrics:
      m:
";

#[test]
fn a_gnocchi_stopped_mid_stream_gets_every_measure_kept_for_it() {
    let Some(mut gnocchi) = Gnocchi::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let defs = dir.path().join("gnocchi_resources.yaml");
    std::fs::write(&defs, COUNTING_DEFINITIONS).unwrap();
    let url = format!(
        "gnocchi://admin@127.0.0.1:{}?resources_definition_file={}&max_retries=0&flush_timeout=60",
        gnocchi.port,
        defs.display()
    );
    let (mut p, _loaded) = publisher("gnocchi", &url);
    let mut sent = Vec::new();
    for round in 0..6 {
        if round == 2 {
            gnocchi.stop();
        }
        if round == 4 {
            gnocchi.resume();
        }
        let b = batch(30, round * 30);
        p.publish(&b).unwrap();
        sent.extend(b);
        std::thread::sleep(Duration::from_millis(300));
    }
    drained(&mut p);
    let stats = p.stats().unwrap();
    assert_eq!(counter(&stats, "published"), 180, "{stats:?}");
    assert_eq!(
        (counter(&stats, "dropped"), counter(&stats, "rejected")),
        (0, 0),
        "{stats:?}"
    );
    assert!(counter(&stats, "retried") >= 1, "{stats:?}");
    for r in 0..3 {
        let rid = format!("r{r}");
        let counts: f64 = gnocchi_measures(&gnocchi, &rid, "m", "count", "3600")
            .iter()
            .map(|(_, c)| c)
            .sum();
        assert_eq!(counts, 60.0, "every measure of {rid} arrived");
    }
    let resource = gnocchi.client(&["resource", "show", "--type", "generic", "r0"]);
    assert_eq!(resource["original_resource_id"], "r0");
}
