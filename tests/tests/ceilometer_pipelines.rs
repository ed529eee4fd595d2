//! The `pipeline.yaml` Ceilometer shipped in each release from 2013.1 to 26.0.0, as
//! shipped (its sources, sinks, transformer parameters and publishers, written here
//! from the files in openstack/ceilometer's history): each validates in `ceilo
//! validate` but for the publishers ceilo does not have (each reported once per sink,
//! with what to use instead), and, with its publishers replaced by `file:`, runs in
//! `ceilo agent`.

use std::time::Duration;

use ceilo_tests::*;

/// What changed from release to release in the decoupled format (2014.1 and later).
struct Shipped {
    release: &'static str,
    publisher: &'static str,
    /// Sources with `interval: 600` (dropped in 8.0.0).
    intervals: bool,
    /// `disk.device.*` meters in disk_source (from 2015.1.0).
    disk_device: bool,
    /// `cpu_delta_sink` (from 5.0.0).
    cpu_delta: bool,
    /// `max: 100` on cpu_util (from 9.0.0).
    cpu_max: bool,
}

const DECOUPLED: [Shipped; 7] = [
    Shipped {
        release: "2014.1",
        publisher: "rpc://",
        intervals: true,
        disk_device: false,
        cpu_delta: false,
        cpu_max: false,
    },
    Shipped {
        release: "2014.2",
        publisher: "notifier://",
        intervals: true,
        disk_device: false,
        cpu_delta: false,
        cpu_max: false,
    },
    Shipped {
        release: "2015.1.0",
        publisher: "notifier://",
        intervals: true,
        disk_device: true,
        cpu_delta: false,
        cpu_max: false,
    },
    // 6.0.0 and 7.0.0 shipped 5.0.0's file unchanged.
    Shipped {
        release: "5.0.0",
        publisher: "notifier://",
        intervals: true,
        disk_device: true,
        cpu_delta: true,
        cpu_max: false,
    },
    Shipped {
        release: "8.0.0",
        publisher: "notifier://",
        intervals: false,
        disk_device: true,
        cpu_delta: true,
        cpu_max: false,
    },
    // 10.0.0 shipped 9.0.0's; 11.0.0 added only comments.
    Shipped {
        release: "9.0.0",
        publisher: "gnocchi://",
        intervals: false,
        disk_device: true,
        cpu_delta: true,
        cpu_max: true,
    },
    Shipped {
        release: "11.0.0",
        publisher: "gnocchi://",
        intervals: false,
        disk_device: true,
        cpu_delta: true,
        cpu_max: true,
    },
];

impl Shipped {
    fn yaml(&self) -> String {
        let interval = if self.intervals {
            "      interval: 600\n"
        } else {
            ""
        };
        let source = |name: &str, meters: &str, sinks: &str| {
            format!(
                "    - name: {name}\n{interval}      meters: [{meters}]\n      sinks: [{sinks}]\n"
            )
        };
        let disk_meters = if self.disk_device {
            r#""disk.read.bytes", "disk.read.requests", "disk.write.bytes", "disk.write.requests", "disk.device.read.bytes", "disk.device.read.requests", "disk.device.write.bytes", "disk.device.write.requests""#
        } else {
            r#""disk.read.bytes", "disk.read.requests", "disk.write.bytes", "disk.write.requests""#
        };
        let (disk_from, disk_to) = if self.disk_device {
            (
                r#"(disk\\.device|disk)\\.(read|write)\\.(bytes|requests)"#,
                r#"\\1.\\2.\\3.rate"#,
            )
        } else {
            (
                r#"disk\\.(read|write)\\.(bytes|requests)"#,
                r#"disk.\\1.\\2.rate"#,
            )
        };
        let p = self.publisher;
        let mut y = String::from("---\nsources:\n");
        y += &source("meter_source", r#""*""#, "meter_sink");
        y += &source(
            "cpu_source",
            r#""cpu""#,
            if self.cpu_delta {
                "cpu_sink, cpu_delta_sink"
            } else {
                "cpu_sink"
            },
        );
        y += &source("disk_source", disk_meters, "disk_sink");
        y += &source(
            "network_source",
            r#""network.incoming.bytes", "network.incoming.packets", "network.outgoing.bytes", "network.outgoing.packets""#,
            "network_sink",
        );
        y += &format!(
            "sinks:\n    - name: meter_sink\n      transformers:\n      publishers: [{p}]\n"
        );
        let max = if self.cpu_max { "max: 100, " } else { "" };
        y += &format!(
            "    - name: cpu_sink\n      transformers:\n          - name: \"rate_of_change\"\n            parameters:\n                target: {{name: \"cpu_util\", unit: \"%\", type: \"gauge\", {max}scale: \"100.0 / (10**9 * (resource_metadata.cpu_number or 1))\"}}\n      publishers: [{p}]\n"
        );
        if self.cpu_delta {
            y += &format!(
                "    - name: cpu_delta_sink\n      transformers:\n          - name: \"delta\"\n            parameters: {{target: {{name: \"cpu.delta\"}}, growth_only: True}}\n      publishers: [{p}]\n"
            );
        }
        y += &format!(
            "    - name: disk_sink\n      transformers:\n          - name: \"rate_of_change\"\n            parameters:\n                source: {{map_from: {{name: \"{disk_from}\", unit: \"(B|request)\"}}}}\n                target: {{map_to: {{name: \"{disk_to}\", unit: \"\\\\1/s\"}}, type: \"gauge\"}}\n      publishers: [{p}]\n"
        );
        y += &format!(
            "    - name: network_sink\n      transformers:\n          - name: \"rate_of_change\"\n            parameters:\n                source:\n                   map_from: {{name: \"network\\\\.(incoming|outgoing)\\\\.(bytes|packets)\", unit: \"(B|packet)\"}}\n                target: {{map_to: {{name: \"network.\\\\1.\\\\2.rate\", unit: \"\\\\1/s\"}}, type: \"gauge\"}}\n      publishers: [{p}]\n"
        );
        y
    }

    fn sinks(&self) -> usize {
        if self.cpu_delta {
            5
        } else {
            4
        }
    }
}

/// 2013.1: the original format, one pipeline publishing to `meter_publisher`.
const CEILOMETER_2013_1: &str = "---\n-\n    name: meter_pipeline\n    interval: 60\n    counters:\n        - \"*\"\n    transformers:\n    publishers:\n        - meter_publisher\n";

/// 2013.2: the original format, with a cpu_util pipeline.
const CEILOMETER_2013_2: &str = r#"---
-
    name: meter_pipeline
    interval: 600
    meters: ["*"]
    transformers:
    publishers: [rpc://]
-
    name: cpu_pipeline
    interval: 600
    meters: ["cpu"]
    transformers:
        - name: "rate_of_change"
          parameters:
              target: {name: "cpu_util", unit: "%", type: "gauge",
                       scale: "100.0 / (10**9 * (resource_metadata.cpu_number or 1))"}
    publishers: [rpc://]
"#;

/// 26.0.0: one source, everything to Gnocchi.
const CEILOMETER_26: &str = "---\nsources:\n    - name: meter_source\n      meters:\n          - \"*\"\n      sinks:\n          - meter_sink\nsinks:\n    - name: meter_sink\n      publishers:\n          - gnocchi://\n";

/// Every release's file: (release, text, publisher as written, sinks).
fn releases() -> Vec<(&'static str, String, &'static str, usize)> {
    let mut all = vec![
        ("2013.1", CEILOMETER_2013_1.to_owned(), "meter_publisher", 1),
        ("2013.2", CEILOMETER_2013_2.to_owned(), "rpc://", 2),
    ];
    for s in &DECOUPLED {
        all.push((s.release, s.yaml(), s.publisher, s.sinks()));
    }
    all.push(("26.0.0", CEILOMETER_26.to_owned(), "gnocchi://", 1));
    all
}

fn validate(dir: &std::path::Path, yaml: &str, plugins: &std::path::Path) -> (i32, String, String) {
    let file = dir.join("pipeline.yaml");
    std::fs::write(&file, yaml).unwrap();
    run_ceilo(&[
        "validate",
        "--pipeline",
        file.to_str().unwrap(),
        "--plugin-dir",
        plugins.to_str().unwrap(),
    ])
}

#[test]
fn every_shipped_pipeline_validates() {
    let plugins = built_in_plugin_dir();
    for (release, yaml, _publisher, sinks) in releases() {
        let dir = tempfile::tempdir().unwrap();
        let (code, out, err) = validate(dir.path(), &yaml, plugins.path());
        // meter_publisher, rpc:// and notifier:// are ceilo's notifier publisher;
        // gnocchi:// is in the remote publishers' library.
        assert_eq!(code, 0, "{release}: {out}{err}");
        assert!(
            out.contains(&format!("{sinks} sink(s)")),
            "{release}: {out}"
        );
    }
    // Without the remote publishers' library, the error says where gnocchi:// is.
    let without = plugin_dir(&[(&library("ceilo_plugin_system"), "libceilo_plugin_system.so")]);
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = validate(dir.path(), CEILOMETER_26, without.path());
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("unknown publisher `gnocchi`") && err.contains("libceilo_plugin_remote.so"),
        "{err}"
    );
}

#[test]
fn every_shipped_pipeline_runs_in_the_agent_with_file_publishers() {
    let plugins = built_in_plugin_dir();
    for (release, yaml, publisher, _) in releases() {
        let data = tempfile::tempdir().unwrap();
        let pipeline = data.path().join("pipeline.yaml");
        std::fs::write(&pipeline, yaml.replace(publisher, "file:samples.json")).unwrap();
        let child = spawn_service(
            "agent",
            &pipeline,
            plugins.path(),
            data.path(),
            &["--isolation", "none"],
            &[],
        );
        // The first cycle starts at once, whatever the interval.
        let file = data.path().join("samples.json");
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_secs(10)
            && !read_samples(&file).iter().any(|s| s.name() == "cpu")
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = stop_ceilo(child, Duration::from_secs(15));
        let samples = read_samples(&file);
        for meter in [
            "cpu",
            "memory.usage",
            "disk.read.bytes",
            "network.incoming.bytes",
        ] {
            assert!(
                samples.iter().any(|s| s.name() == meter),
                "{release}: no {meter} sample\n{log}"
            );
        }
        assert!(!log.contains("ERROR"), "{release}: {log}");
    }
}
