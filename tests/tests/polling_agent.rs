//! The polling agent and `ceilo poll --once`, with the real plugins, on the real /proc.

use std::path::Path;
use std::time::{Duration, Instant};

use ceilo_tests::*;
use serde_json::Value;

/// Runs `ceilo agent` for `run_for`, stops it with SIGTERM, returns its stderr.
fn run_agent(pipeline: &Path, plugins: &Path, data: &Path, run_for: Duration) -> String {
    // In process: these tests are about the scheduling of plugins in the host itself
    // (tests/plugin_containment.rs covers isolated ones).
    let child = spawn_service(
        "agent",
        pipeline,
        plugins,
        data,
        &["--isolation", "none"],
        &[],
    );
    std::thread::sleep(run_for);
    stop_ceilo(child, Duration::from_secs(15))
}

#[test]
fn poll_once_prints_cpu_memory_disk_and_network_samples() {
    let plugins = built_in_plugin_dir();
    let default = workspace_root().join("pipeline.yaml");
    let data = tempfile::tempdir().unwrap();
    let (code, out, err) = run_ceilo(&[
        "poll",
        "--once",
        "--pipeline",
        default.to_str().unwrap(),
        "--plugin-dir",
        plugins.path().to_str().unwrap(),
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for meter in [
        "cpu",
        "memory.usage",
        "memory.total",
        "disk.read.bytes",
        "network.incoming.bytes",
        "load.1",
    ] {
        assert!(
            lines.iter().any(|s| s["name"] == meter),
            "no {meter} sample in:\n{out}"
        );
    }
    for s in &lines {
        let obj = s.as_object().unwrap();
        for field in [
            "name",
            "type",
            "unit",
            "volume",
            "user_id",
            "project_id",
            "resource_id",
            "timestamp",
            "resource_metadata",
            "source",
            "message_id",
            "monotonic_time",
        ] {
            assert!(obj.contains_key(field), "{field} missing from {s}");
        }
        assert!(s["volume"].is_number() && s["resource_metadata"].is_object());
        assert!(s["timestamp"].as_str().unwrap().ends_with('Z'));
    }
    let cpu = lines.iter().find(|s| s["name"] == "cpu").unwrap();
    assert_eq!(
        (cpu["type"].as_str(), cpu["unit"].as_str()),
        (Some("cumulative"), Some("ns"))
    );
    assert!(cpu["resource_metadata"]["cpu_number"].as_u64().unwrap() >= 1);
    // --once prints; it does not publish.
    assert!(!data.path().join("samples.json").exists());
}

#[test]
fn three_cycles_give_cpu_util_and_a_rotated_file_set() {
    let plugins = built_in_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let pipeline = data.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        r#"
sources:
  - name: meter_source
    interval: 1
    meters: ["*"]
    sinks: [meter_sink]
  - name: cpu_source
    interval: 1
    meters: ["cpu"]
    sinks: [cpu_sink]
sinks:
  - name: meter_sink
    publishers: ["file:raw/samples.json?max_bytes=3000&backup_count=2"]
  - name: cpu_sink
    transformers:
      - name: rate_of_change
        parameters:
          target: {name: cpu_util, unit: "%", type: gauge, max: 100,
                   scale: "100.0 / (10**9 * (resource_metadata.cpu_number or 1))"}
    publishers: ["file:cpu_util.json"]
"#,
    )
    .unwrap();
    let log = run_agent(
        &pipeline,
        plugins.path(),
        data.path(),
        Duration::from_millis(3500),
    );

    let util = read_samples(&data.path().join("cpu_util.json"));
    assert!(
        util.len() >= 2,
        "3+ cycles give 2+ rates (the first cpu sample is the reference): {util:?}\n{log}"
    );
    for s in &util {
        assert_eq!((s.name(), s.unit()), ("cpu_util", "%"));
        assert!(
            (0.0..=100.0).contains(&s.volume()),
            "cpu_util {}",
            s.volume()
        );
    }
    let raw = data.path().join("raw");
    let files: Vec<String> = std::fs::read_dir(&raw)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for f in ["samples.json", "samples.json.1", "samples.json.2"] {
        assert!(files.contains(&f.to_owned()), "{f} missing: {files:?}");
        assert!(std::fs::metadata(raw.join(f)).unwrap().len() <= 3000);
    }
    assert!(
        !files.contains(&"samples.json.3".to_owned()),
        "backup_count=2 keeps two: {files:?}"
    );
    assert!(
        log.contains("shutting down: flushing transformers and publishers"),
        "{log}"
    );
}

#[test]
fn a_slow_poller_and_a_panicking_poller_do_not_stop_the_others() {
    let plugins = plugin_dir(&[
        (&library("ceilo_plugin_system"), "libceilo_plugin_system.so"),
        (
            &library("ceilo_plugin_publishers"),
            "libceilo_plugin_publishers.so",
        ),
        (&library("ceilo_fixture_panicky"), "libpanicky.so"),
    ]);
    let data = tempfile::tempdir().unwrap();
    let pipeline = data.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        r#"
sources:
  - name: slow_source
    interval: 1
    meters: ["slow"]
    resources: ["sleep:2500"]
    sinks: [raw]
  - name: panic_source
    interval: 1
    meters: ["panicky"]
    resources: ["panic"]
    sinks: [raw]
  - name: load_source
    interval: 1
    meters: ["load.1"]
    sinks: [raw]
sinks:
  - name: raw
    publishers: ["file:raw.json"]
"#,
    )
    .unwrap();
    let started = Instant::now();
    let log = run_agent(
        &pipeline,
        plugins.path(),
        data.path(),
        Duration::from_millis(3600),
    );
    let ran_for = started.elapsed().as_secs_f64();

    let got = read_samples(&data.path().join("raw.json"));
    let load = got.iter().filter(|s| s.name() == "load.1").count();
    assert!(
        load >= 3,
        "load.1 polled every second despite the others ({load} in {ran_for:.1}s)\n{log}"
    );
    assert!(got.iter().all(|s| s.name() != "panicky"));
    assert!(
        log.contains("poller `slow` did not return within its deadline (1.0s)"),
        "{log}"
    );
    assert!(log.contains("still busy with an earlier poll"), "{log}");
    assert!(
        log.contains("poller plugin `panicky`") && log.contains("panicked in poll"),
        "{log}"
    );
    assert!(
        log.contains("backing off: next poll of `panicky` in 2s"),
        "{log}"
    );
}

fn validate_with_polling(pipeline: &Path, polling: &Path, plugins: &Path) -> (i32, String, String) {
    run_ceilo(&[
        "validate",
        "--pipeline",
        pipeline.to_str().unwrap(),
        "--polling",
        polling.to_str().unwrap(),
        "--plugin-dir",
        plugins.to_str().unwrap(),
    ])
}

/// Ceilometer's Pike-and-later split: polling.yaml polls, pipeline.yaml (sources
/// without intervals) routes.
const ROUTING_PIPELINE: &str = r#"
sources:
  - name: meter_source
    meters: ["*"]
    sinks: [meter_sink]
  - name: memory_source
    meters: ["memory.*"]
    sinks: [memory_sink]
sinks:
  - name: meter_sink
    publishers: ["file:all.json"]
  - name: memory_sink
    publishers: ["file:memory.json"]
"#;

#[test]
fn with_polling_yaml_only_its_meters_are_polled_and_the_pipeline_routes_them() {
    let plugins = built_in_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let pipeline = data.path().join("pipeline.yaml");
    std::fs::write(&pipeline, ROUTING_PIPELINE).unwrap();
    let polling = data.path().join("polling.yaml");
    std::fs::write(
        &polling,
        "sources:\n  - name: some_pollsters\n    interval: \"1\"\n    meters: [cpu, memory.usage]\n",
    )
    .unwrap();
    let child = spawn_service(
        "agent",
        &pipeline,
        plugins.path(),
        data.path(),
        &[
            "--isolation",
            "none",
            "--polling",
            polling.to_str().unwrap(),
        ],
        &[],
    );
    std::thread::sleep(Duration::from_millis(2500));
    let log = stop_ceilo(child, Duration::from_secs(15));
    let log = log
        + &{
            // The same files again, as `validate` shows them.
            let (code, out, err) = validate_with_polling(&pipeline, &polling, plugins.path());
            assert_eq!(code, 0, "{out}{err}");
            assert!(
                out.contains("polling source some_pollsters (every 1s)"),
                "{out}"
            );
            assert!(out.contains("source meter_source (routes)"), "{out}");
            out
        };
    let names = |file: &str| {
        let mut n: Vec<String> = read_samples(&data.path().join(file))
            .iter()
            .map(|s| s.name().to_owned())
            .collect();
        n.sort();
        n.dedup();
        n
    };
    // `*` in the pipeline does not poll everything: polling.yaml decides.
    assert_eq!(names("all.json"), ["cpu", "memory.usage"], "{log}");
    assert_eq!(names("memory.json"), ["memory.usage"], "{log}");
    // Polled every second (the pipeline's sources have no interval: 600s if polling).
    let cpu = read_samples(&data.path().join("all.json"))
        .iter()
        .filter(|s| s.name() == "cpu")
        .count();
    assert!(cpu >= 2, "{cpu} cpu samples in 2.5s at interval 1\n{log}");
}

#[test]
fn polling_yaml_errors_are_located_and_reported_with_the_pipelines() {
    let plugins = built_in_plugin_dir();
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("pipeline.yaml");
    // One pipeline error (a dangling sink), reported in the same run.
    std::fs::write(
        &pipeline,
        ROUTING_PIPELINE.replace("sinks: [memory_sink]", "sinks: [memroy_sink]"),
    )
    .unwrap();
    let polling = dir.path().join("polling.yaml");
    std::fs::write(
        &polling,
        r#"sources:
  - name: a
    meters: [cpu]
  - name: b
    interval: 0
    meters: [cpu, "!memory.usage"]
  - name: c
    interval: 60
    meters: [memory.usage, no.such.meter]
    sinks: [meter_sink]
    discovery: [local_instances://]
"#,
    )
    .unwrap();
    let (code, out, err) = validate_with_polling(&pipeline, &polling, plugins.path());
    assert_eq!(code, 1, "{out}{err}");
    let at = |line: usize, fragment: &str| {
        let found = err
            .lines()
            .find(|l| l.contains(fragment))
            .unwrap_or_else(|| panic!("nothing mentions {fragment:?}:\n{err}"));
        assert!(
            found.contains(&format!("polling.yaml:{line}:")),
            "{fragment:?} should be at polling.yaml:{line}: {found}"
        );
    };
    at(2, "required field `interval` is missing");
    at(5, "interval must be a positive integer (seconds), found 0");
    at(6, "included and excluded");
    at(10, "polling sources have no sinks");
    at(
        9,
        "warning: no loaded poller produces meter `no.such.meter`",
    );
    at(11, "warning: `discovery` is ignored");
    assert!(err.contains("sink `memroy_sink` is not defined"), "{err}");
    assert!(err.contains("5 errors and 2 warnings"), "{err}");
}

#[test]
fn a_library_the_pipeline_does_not_use_leaves_nothing_mapped_once_the_agent_runs() {
    // The scan runs every library's start-up code; the agent then unmaps what that
    // touched. amqp's library is scanned, and nothing of this pipeline calls it.
    let plugins = built_in_plugin_dir();
    let mut mapped = Vec::new();
    for keep in ["0", "1"] {
        let data = tempfile::tempdir().unwrap();
        let pipeline = data.path().join("pipeline.yaml");
        std::fs::write(
            &pipeline,
            "sources:\n  - name: s\n    interval: 1\n    meters: [cpu]\n    sinks: [k]\n\
             sinks:\n  - name: k\n    publishers: [\"file:samples.json\"]\n",
        )
        .unwrap();
        let child = spawn_service(
            "agent",
            &pipeline,
            plugins.path(),
            data.path(),
            &["--isolation", "none"],
            &[("CEILO_KEEP_START_UP_PAGES", keep)],
        );
        let out = data.path().join("samples.json");
        let started = Instant::now();
        while std::fs::metadata(&out).map_or(true, |m| m.len() == 0) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the agent wrote no sample"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        mapped.push(
            mappings(child.id())
                .iter()
                .filter(|m| m.path.ends_with("libceilo_plugin_amqp.so"))
                .map(|m| m.file_kib)
                .sum::<u64>(),
        );
        stop_ceilo(child, Duration::from_secs(15));
    }
    assert_eq!(
        mapped[0], 0,
        "pages of the unused library still mapped after start: {mapped:?} KiB"
    );
    assert!(
        mapped[1] > 0,
        "with CEILO_KEEP_START_UP_PAGES=1 the scan's pages stay mapped: {mapped:?} KiB"
    );
}

/// A poll of thousands of samples reaches the publishers whole, in order and
/// transformed once, rates computed per resource: 2 500 synthetic counters →
/// unit_conversion → rate_of_change → `file:`.
#[test]
fn a_large_poll_is_published_whole_in_order_and_transformed_once() {
    use ceilo_host::loader::{PluginRegistry, ScanOptions};
    use ceilo_host::pipeline::HostSettings;

    let libs = [
        "ceilo_fixture_bench_transformer",
        "ceilo_plugin_transformers",
        "ceilo_plugin_publishers",
    ]
    .map(|c| (library(c), format!("lib{c}.so")));
    let refs: Vec<(&Path, &str)> = libs
        .iter()
        .map(|(p, n)| (p.as_path(), n.as_str()))
        .collect();
    let plugins = plugin_dir(&refs);
    let out = tempfile::tempdir().expect("temp dir");
    let file = out.path().join("rates.json");
    let text = format!(
        "sources:\n  - name: s\n    interval: 10\n    meters: [bench.counter]\n    resources: [\"count:2500\"]\n    sinks: [k]\n\
         sinks:\n  - name: k\n    transformers:\n      - name: unit_conversion\n        parameters: {{target: {{name: bench.kilobytes, unit: KB, scale: 0.0009765625}}}}\n      \
         - name: rate_of_change\n        parameters: {{target: {{name: bench.rate, unit: KB/s, type: gauge}}}}\n    publishers: [\"file:{}\"]\n",
        file.display()
    );
    let registry = PluginRegistry::scan(plugins.path(), &ScanOptions::default()).expect("scan");
    assert!(registry.rejected().is_empty(), "{:?}", registry.rejected());
    let host = HostSettings {
        strict: true,
        data_dir: out.path().to_path_buf(),
        ..HostSettings::default()
    };
    let runtime = wire_pipeline(&registry, "large-poll.yaml", &text, &host);
    // The first cycle only gives rate_of_change its reference points.
    for _ in 0..2 {
        let errors = ceilo_host::services::agent::run_once(&runtime);
        assert!(errors.is_empty(), "{errors:?}");
    }
    let samples = read_samples(&file);
    assert_eq!(samples.len(), 2500, "every sample of the second poll, once");
    for (i, s) in samples.iter().enumerate() {
        assert_eq!(s.resource_id(), format!("r{i}"), "in the poller's order");
        assert_eq!((s.name(), s.unit()), ("bench.rate", "KB/s"));
        // 1 000 B more per poll, one second of monotonic time apart, in KB.
        assert_eq!(s.volume(), 1000.0 / 1024.0, "r{i}");
    }
}
