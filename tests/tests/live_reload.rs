//! A running `ceilo agent` takes new plugin libraries and edited configuration
//! without a restart: libraries copied into its plugin directory, a library replaced
//! by a newer build, files that are no plugin; a pipeline.yaml edited to add a sink,
//! then broken; an `amqp://` publisher whose broker is down keeping its buffer across
//! a reload. Real processes, real files, real broker.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use ceilo_plugin_api::Sample;
use ceilo_tests::*;

/// A free local port.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `GET http://127.0.0.1:{port}{path}` as text ("" while nothing answers).
fn get(port: u16, path: &str) -> String {
    ureq::get(&format!("http://127.0.0.1:{port}{path}"))
        .call()
        .ok()
        .and_then(|mut r| r.body_mut().read_to_string().ok())
        .unwrap_or_default()
}

/// Waits up to `within` for `cond`, polling; panics with `what` otherwise.
fn wait_for(within: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn samples_named(file: &Path, name: &str) -> Vec<Sample> {
    read_samples(file)
        .into_iter()
        .filter(|s| s.name() == name)
        .collect()
}

/// The value of a metric line `name value` in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The longest time between consecutive samples, in seconds.
fn widest_gap(samples: &[Sample]) -> f64 {
    samples
        .windows(2)
        .map(|w| (w[1].timestamp_micros() - w[0].timestamp_micros()) as f64 / 1e6)
        .fold(0.0, f64::max)
}

/// `ceilo agent` on `pipeline` with its status endpoint on a free port, reloads
/// settling after `settle` seconds; returns the process and the port.
fn start_agent(
    pipeline: &Path,
    plugins: &Path,
    data: &Path,
    settle: &str,
) -> (std::process::Child, u16) {
    let port = free_port();
    let port_text = format!("127.0.0.1:{port}");
    let agent = spawn_service(
        "agent",
        pipeline,
        plugins,
        data,
        &["--status-listen", &port_text, "--reload-settle", settle],
        &[],
    );
    (agent, port)
}

#[test]
fn libraries_dropped_into_the_plugin_dir_are_taken_live() {
    let v3 = build_example(ApiChange::None);
    let v4 = build_example(ApiChange::ExampleVersion("0.4.0"));
    let other_abi = build_example(ApiChange::AbiMajor2);
    let plugins = agent_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let pipeline = data.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        "sources:\n  - name: s\n    interval: 2\n    meters: [\"load.1\", uptime]\n    sinks: [k]\nsinks:\n  - name: k\n    publishers: [\"file:out.json\"]\n",
    )
    .unwrap();
    let (agent, port) = start_agent(&pipeline, plugins.path(), data.path(), "0.5");
    let out = data.path().join("out.json");
    wait_for(Duration::from_secs(20), "the agent's first samples", || {
        !samples_named(&out, "load.1").is_empty()
    });
    assert!(samples_named(&out, "uptime").is_empty());

    // Copied in place (not atomically): the agent waits for the copy to settle.
    std::fs::copy(&v3, plugins.path().join("libacme.so")).unwrap();
    wait_for(
        Duration::from_secs(15),
        "uptime from the new library",
        || !samples_named(&out, "uptime").is_empty(),
    );
    let first = &samples_named(&out, "uptime")[0];
    assert_eq!(
        first.metadata_value("plugin_version"),
        Some(serde_json::json!("0.3.0"))
    );

    // Replaced by a newer build, the atomic way (`mv` over it).
    let staged = plugins.path().join(".libacme.so.new");
    std::fs::copy(&v4, &staged).unwrap();
    std::fs::rename(&staged, plugins.path().join("libacme.so")).unwrap();
    let version = |s: &Sample| s.metadata_value("plugin_version");
    wait_for(Duration::from_secs(15), "uptime from the new build", || {
        samples_named(&out, "uptime")
            .iter()
            .any(|s| version(s) == Some(serde_json::json!("0.4.0")))
    });
    // A few cycles more, then: every cycle produced one uptime sample, old build
    // then new, never both in one cycle and none skipped.
    std::thread::sleep(Duration::from_secs(5));
    let uptime = samples_named(&out, "uptime");
    let switch = uptime
        .iter()
        .position(|s| version(s) == Some(serde_json::json!("0.4.0")))
        .unwrap();
    assert!(
        uptime[switch..]
            .iter()
            .all(|s| version(s) == Some(serde_json::json!("0.4.0"))),
        "the old build stopped at the switch"
    );
    assert!(
        widest_gap(&uptime) < 3.5,
        "a cycle was lost across the replacement (2 s interval): widest gap {:.1}s",
        widest_gap(&uptime)
    );

    // Files that are no plugin, and a plugin for another ABI: one refusal line each.
    std::fs::write(plugins.path().join("libgarbage.so"), b"not a shared object").unwrap();
    std::fs::copy(&other_abi, plugins.path().join("libacme-abi2.so")).unwrap();
    wait_for(
        Duration::from_secs(15),
        "the refusals in /v2/plugins",
        || get(port, "/v2/plugins").contains("libacme-abi2.so"),
    );
    let view: serde_json::Value = serde_json::from_str(&get(port, "/v2/plugins")).unwrap();
    let uptime_row = view["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "uptime")
        .unwrap_or_else(|| panic!("{view:#}"));
    assert_eq!(
        (&uptime_row["version"], &uptime_row["generation"]),
        (&serde_json::json!("0.4.0"), &serde_json::json!(2)),
        "{view:#}"
    );
    let rejected = view["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2, "{view:#}");
    assert!(rejected.iter().any(|r| r["reason"]
        .as_str()
        .unwrap()
        .contains("built for plugin ABI 2.0")));
    let metrics = get(port, "/metrics");
    assert!(
        metric(&metrics, "ceilo_config_reloads_total").unwrap_or(0.0) >= 3.0,
        "{metrics}"
    );
    let produced = samples_named(&out, "load.1").len();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        samples_named(&out, "load.1").len() > produced,
        "the agent goes on"
    );

    let stderr = stop_ceilo(agent, Duration::from_secs(15));
    for file in ["libgarbage.so", "libacme-abi2.so"] {
        let refusals = stderr
            .lines()
            .filter(|l| l.contains("plugin library refused") && l.contains(file))
            .count();
        assert_eq!(refusals, 1, "one refusal line for {file}:\n{stderr}");
    }
}

const RATE_PIPELINE: &str = "sources:\n  - name: cpu\n    interval: 2\n    meters: [cpu]\n    sinks: [rate]\nsinks:\n  - name: rate\n    transformers:\n      - name: rate_of_change\n        parameters:\n          target: {name: cpu_util, unit: \"%\", type: gauge, scale: \"100.0 / (10**9 * (resource_metadata.cpu_number or 1))\"}\n    publishers: [\"file:rate.json\"]\n";

#[test]
fn edited_pipelines_are_validated_then_applied_keeping_transformer_state() {
    let plugins = built_in_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let pipeline = data.path().join("pipeline.yaml");
    std::fs::write(&pipeline, RATE_PIPELINE).unwrap();
    let (agent, port) = start_agent(&pipeline, plugins.path(), data.path(), "0.3");
    let rate = data.path().join("rate.json");
    wait_for(Duration::from_secs(20), "cpu_util", || {
        samples_named(&rate, "cpu_util").len() >= 2
    });

    // A sink added: it gets samples; the rate sink, untouched, keeps its state.
    std::fs::write(
        &pipeline,
        format!("{RATE_PIPELINE}  - name: extra\n    publishers: [\"file:extra.json\"]\n")
            .replace(
                "    sinks: [rate]\n",
                "    sinks: [rate]\n  - name: memory\n    interval: 2\n    meters: [memory.usage]\n    sinks: [extra]\n",
            ),
    )
    .unwrap();
    let extra = data.path().join("extra.json");
    wait_for(Duration::from_secs(15), "samples in the new sink", || {
        !samples_named(&extra, "memory.usage").is_empty()
    });
    std::thread::sleep(Duration::from_secs(5));
    let rates = samples_named(&rate, "cpu_util");
    assert!(
        widest_gap(&rates) < 3.5,
        "the rate sink lost its previous sample at the reload (2 s interval): widest gap {:.1}s",
        widest_gap(&rates)
    );

    // Broken: refused with file and line, counted; the running pipeline stays.
    std::fs::write(
        &pipeline,
        RATE_PIPELINE.replace("rate_of_change", "rate_of_chnge"),
    )
    .unwrap();
    wait_for(
        Duration::from_secs(15),
        "the failed reload on /metrics",
        || metric(&get(port, "/metrics"), "ceilo_config_reload_failures_total") == Some(1.0),
    );
    let metrics = get(port, "/metrics");
    assert_eq!(
        metric(&metrics, "ceilo_config_last_reload_successful"),
        Some(0.0)
    );
    let view: serde_json::Value = serde_json::from_str(&get(port, "/v2/plugins")).unwrap();
    let error = view["reloads"]["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("pipeline.yaml:9:") && error.contains("did you mean `rate_of_change`?"),
        "{view:#}"
    );
    let (rates_before, extra_before) = (
        samples_named(&rate, "cpu_util").len(),
        samples_named(&extra, "memory.usage").len(),
    );
    std::thread::sleep(Duration::from_secs(5));
    assert!(samples_named(&rate, "cpu_util").len() > rates_before);
    assert!(
        samples_named(&extra, "memory.usage").len() > extra_before,
        "the old pipeline, extra sink included, still publishes"
    );

    // Fixed, and SIGHUP: applied (the file change alone would do too).
    std::fs::write(&pipeline, RATE_PIPELINE).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &agent.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_for(Duration::from_secs(15), "the reload applied", || {
        metric(
            &get(port, "/metrics"),
            "ceilo_config_last_reload_successful",
        ) == Some(1.0)
    });
    let stderr = stop_ceilo(agent, Duration::from_secs(15));
    let refused = stderr
        .lines()
        .find(|l| l.contains("reload refused"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(refused.contains("pipeline.yaml:9:"), "{refused}");
}

/// Forwards connections on `listener` to RabbitMQ until the process ends; returns
/// the count of connections accepted.
fn forward_to_broker(listener: TcpListener) -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let Ok(broker) = TcpStream::connect("127.0.0.1:5672") else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), broker.try_clone().unwrap()),
                (broker, client),
            ] {
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    accepted
}

#[test]
fn an_amqp_publisher_keeps_its_buffer_across_a_reload_that_does_not_touch_it() {
    let Some(_) = rabbitmq() else { return };
    let plugins = agent_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    // The broker is "down": nothing listens on this port until the test forwards it.
    let port = free_port();
    let queue = unique("metering.sample.live");
    // No disk spool: what survives the reload is the publisher's memory.
    let amqp = format!(
        "amqp://guest:guest@127.0.0.1:{port}/%2f?exchange={}&queue={queue}&policy=queue&spool=&flush_timeout=1",
        unique("ceilo-live")
    );
    let pipeline = load_pipeline(data.path(), &amqp);
    let agent = spawn_service(
        "agent",
        &pipeline,
        plugins.path(),
        data.path(),
        &["--reload-settle", "0.3"],
        &[("CEILO_TELEMETRY_SECRET", "k")],
    );
    let produced = data.path().join("produced.json");
    wait_for(Duration::from_secs(20), "samples buffered", || {
        read_samples(&produced).len() >= 9
    });
    // A sink added beside the amqp one: the reload keeps it.
    let text = std::fs::read_to_string(&pipeline).unwrap();
    std::fs::write(
        &pipeline,
        format!("{text}  - name: other\n    publishers: [\"file:other.json\"]\n").replace(
            "    sinks: [k]\n",
            "    sinks: [k]\n  - name: t\n    interval: 1\n    meters: [memory.usage]\n    sinks: [other]\n",
        ),
    )
    .unwrap();
    let other = data.path().join("other.json");
    wait_for(Duration::from_secs(15), "the reload applied", || {
        !read_samples(&other).is_empty()
    });
    // The broker comes back.
    let connections = forward_to_broker(TcpListener::bind(("127.0.0.1", port)).unwrap());
    std::thread::sleep(Duration::from_secs(6));
    let stderr = stop_ceilo(agent, Duration::from_secs(20));
    // One publisher throughout: a new one would have connected beside the old.
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the amqp publisher was replaced at the reload:\n{stderr}"
    );
    let url = rabbitmq().unwrap();
    let received: std::collections::HashSet<String> = drain_samples(&url, &queue)
        .iter()
        .filter_map(|s| s["message_id"].as_str().map(str::to_owned))
        .collect();
    let produced = read_samples(&produced);
    let lost: Vec<&str> = produced
        .iter()
        .map(|s| s.message_id())
        .filter(|id| !received.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} samples produced were lost across the reload:\n{stderr}",
        lost.len(),
        produced.len()
    );
}

/// The count of applied (`applied`) or refused (`failed`) reloads in `/v2/plugins`.
fn reloads(port: u16, which: &str) -> i64 {
    serde_json::from_str::<serde_json::Value>(&get(port, "/v2/plugins"))
        .ok()
        .and_then(|v| v["reloads"][which].as_i64())
        .unwrap_or(-1)
}

const NOTIFICATION_PIPELINE: &str = "sources:\n  - name: memory\n    meters: [memory]\n    sinks: [a]\nsinks:\n  - name: a\n    publishers: [\"file:a.json\"]\n";

#[test]
fn a_running_notification_agent_takes_an_edited_pipeline() {
    let Some(url) = rabbitmq() else { return };
    let plugins = notification_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let pipeline = data.path().join("pipeline.yaml");
    std::fs::write(&pipeline, NOTIFICATION_PIPELINE).unwrap();
    let (exchange, topic) = (unique("nova-reload"), unique("notifications.info"));
    let port = free_port();
    let port_text = format!("127.0.0.1:{port}");
    let agent = spawn_service(
        "notification",
        &pipeline,
        plugins.path(),
        data.path(),
        &[
            "--exchange",
            &exchange,
            "--topic",
            &topic,
            "--status-listen",
            &port_text,
            "--reload-settle",
            "0.3",
        ],
        &[("CEILO_AMQP_URL", url.as_str())],
    );
    wait_for(Duration::from_secs(15), "the status endpoint", || {
        reloads(port, "applied") >= 0
    });
    std::thread::sleep(Duration::from_millis(1000)); // the agent declares its queue
    let create =
        std::fs::read(workspace_root().join("tests/notifications/nova_instance_create_end.json"))
            .unwrap();
    let (a, b) = (data.path().join("a.json"), data.path().join("b.json"));
    let publish = || publish_notifications(&url, &exchange, &topic, vec![create.clone()]);
    publish();
    wait_for(Duration::from_secs(15), "memory in sink a", || {
        samples_named(&a, "memory").len() == 1
    });

    // A sink added for vcpus: the next notification reaches both.
    let applied = reloads(port, "applied");
    std::fs::write(
        &pipeline,
        NOTIFICATION_PIPELINE.replace(
            "sinks:\n  - name: a",
            "  - name: vcpus\n    meters: [vcpus]\n    sinks: [b]\nsinks:\n  - name: b\n    publishers: [\"file:b.json\"]\n  - name: a",
        ),
    )
    .unwrap();
    wait_for(Duration::from_secs(15), "the reload applied", || {
        reloads(port, "applied") > applied
    });
    publish();
    wait_for(Duration::from_secs(15), "vcpus in the new sink", || {
        samples_named(&b, "vcpus").len() == 1 && samples_named(&a, "memory").len() == 2
    });

    // Broken: refused with file and line; the running pipeline, both sinks, goes on.
    std::fs::write(
        &pipeline,
        NOTIFICATION_PIPELINE.replace("file:a.json", "nosuch://a"),
    )
    .unwrap();
    wait_for(Duration::from_secs(15), "the refused reload", || {
        reloads(port, "failed") == 1
    });
    publish();
    wait_for(
        Duration::from_secs(15),
        "samples from the old pipeline",
        || samples_named(&b, "vcpus").len() == 2 && samples_named(&a, "memory").len() == 3,
    );

    // `ceilo plugins --api-url` reads the same view from the running service.
    let (code, table, err) = run_ceilo(&["plugins", "--api-url", &format!("http://{port_text}")]);
    assert_eq!(code, 0, "{err}");
    assert!(table.starts_with("notification ("), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("compute") && l.contains("libceilo_plugin_notifications.so")),
        "{table}"
    );
    assert!(table.contains("1 refused"), "{table}");
    assert!(table.contains("pipeline.yaml:7:"), "{table}");

    let stderr = stop_ceilo(agent, Duration::from_secs(20));
    assert_eq!(
        samples_named(&a, "memory").len(),
        3,
        "nothing sent twice across the reloads\n{stderr}"
    );
}
