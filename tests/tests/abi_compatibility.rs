//! The compatibility contract (plugin-api/README.md, "Compatibility contract"): plugins
//! built for a released ABI (1.0, 1.1, 1.2) against the released plugin-api — a frozen copy
//! in `tests/released-abi`, never the workspace's crate — keep loading and working in a
//! pipeline; a plugin for a newer minor, another major, or a changed layout is refused
//! with both versions and what to do; an out-of-tree plugin built by a third party
//! loads.

use std::path::Path;

use ceilo_host::loader::{PluginKind, PluginRegistry, ScanOptions};
use ceilo_plugin_api::{Context, Sample, SampleType};
use ceilo_tests::*;
use serde_json::json;

fn scan(dir: &Path) -> PluginRegistry {
    PluginRegistry::scan(dir, &ScanOptions::default()).expect("scan")
}

#[test]
fn a_plugin_built_for_abi_1_0_loads_and_works() {
    let v1_0 = build_released_abi_plugins().v1_0;
    let dir = plugin_dir(&[(&v1_0, "libold.so")]);
    let reg = scan(dir.path());
    assert!(reg.rejected().is_empty(), "{:?}", reg.rejected());
    let p = reg
        .get(PluginKind::Publisher, "old_counting")
        .expect("old publisher listed");
    assert_eq!(p.abi.to_string(), "1.0");

    let out = tempfile::tempdir().unwrap();
    let count_file = out.path().join("count");
    let mut publisher = reg
        .create_publisher(
            "old_counting",
            &json!({"path": count_file}),
            Context::new("old_counting", "test"),
        )
        .unwrap();
    let batch: Vec<Sample> = (0..5)
        .map(|i| Sample::new("m", SampleType::Gauge, "", i as f64, "r"))
        .collect();
    publisher.publish(&batch).unwrap();
    publisher.publish(&batch[..2]).unwrap();
    assert_eq!(std::fs::read_to_string(&count_file).unwrap(), "7");
    // The 1.1 entry point it lacks gets the host's default.
    assert!(!publisher.has_stats());
    assert_eq!(publisher.stats().unwrap(), vec![]);

    let mut double = reg
        .create_transformer("old_double", &json!({}), Context::default())
        .unwrap();
    let out = double.handle(batch.into());
    let volumes: Vec<f64> = out.samples.iter().map(|s| s.volume()).collect();
    assert_eq!(volumes, [0.0, 2.0, 4.0, 6.0, 8.0]);

    let (code, stdout, _) = run_ceilo(&[
        "plugins",
        "--plugin-dir",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0);
    let listing: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["abi"] == "1.0"));
}

#[test]
fn the_third_party_example_builds_out_of_tree_and_loads() {
    let built = build_example(ApiChange::None);
    let dir = plugin_dir(&[
        (&built, "libacme_ceilo_plugins.so"),
        (
            &library("ceilo_plugin_publishers"),
            "libceilo_plugin_publishers.so",
        ),
    ]);
    let (code, stdout, stderr) = run_ceilo(&[
        "plugins",
        "--plugin-dir",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let listing: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let uptime = listing["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "uptime")
        .unwrap_or_else(|| panic!("uptime not listed: {listing:#}"));
    assert_eq!(uptime["kind"], "poller");
    assert_eq!(uptime["version"], "0.3.0");

    let reg = scan(dir.path());
    let mut poller = reg
        .create_poller(
            "uptime",
            &json!({"resource_id": "box-1"}),
            Context::new("uptime", "test"),
        )
        .unwrap();
    let samples = poller.poll(&[]).unwrap();
    assert_eq!(samples.len(), 1);
    assert_eq!(
        (samples[0].name(), samples[0].resource_id()),
        ("uptime", "box-1")
    );
    assert!(samples[0].volume() > 0.0);

    let mut rename = reg
        .create_transformer("rename", &json!({"to": "renamed"}), Context::default())
        .unwrap();
    assert_eq!(rename.handle(samples).samples[0].name(), "renamed");
    let err = reg
        .create_transformer("rename", &json!({}), Context::default())
        .unwrap_err();
    assert!(err.to_string().contains("`to` is required"), "{err}");
}

#[test]
fn incompatible_plugins_are_refused_with_both_versions_and_the_fix() {
    let major2 = build_example(ApiChange::AbiMajor2);
    let minor2 = build_example(ApiChange::AbiMinorNewer);
    let layout = build_example(ApiChange::SampleLayout);
    let dir = plugin_dir(&[
        (&major2, "libmajor2.so"),
        (&minor2, "libminor2.so"),
        (&layout, "liblayout.so"),
        (&library("ceilo_plugin_system"), "libceilo_plugin_system.so"),
    ]);
    let reg = scan(dir.path());
    let reason = |file: &str| {
        reg.rejected()
            .iter()
            .find(|r| r.library.ends_with(file))
            .unwrap_or_else(|| panic!("{file} was not refused: {:?}", reg.rejected()))
            .reason
            .clone()
    };
    let r = reason("libmajor2.so");
    assert!(
        r.contains("built for plugin ABI 2.0")
            && r.contains("this host's 1.3")
            && r.contains("rebuild it against ceilo-plugin-api 1.x"),
        "{r}"
    );
    let r = reason("libminor2.so");
    assert!(
        r.contains("built for plugin ABI 1.4")
            && r.contains("newer than this host's 1.3")
            && r.contains("this host supports plugin ABI 1.0–1.3")
            && r.contains("upgrade ceilo"),
        "{r}"
    );
    let r = reason("liblayout.so");
    assert!(
        r.contains("declares plugin ABI 1.3")
            && r.contains("this host supports plugin ABI 1.0–1.3")
            && r.contains("rebuild it against the released"),
        "{r}"
    );
    assert!(
        r.contains("type `Sample`: unexpected field"),
        "the summary names the type: {r}"
    );
    assert!(!r.contains('\n'), "one line per library: {r}");
    // The compatible library next to them still loads.
    assert!(reg.get(PluginKind::Poller, "load").is_some());
    assert!(reg.get(PluginKind::Poller, "uptime").is_none());
}

#[test]
fn plugins_built_against_the_released_plugin_api_run_in_a_pipeline() {
    let released = build_released_abi_plugins();
    let dir = plugin_dir(&[
        (&released.v1_0, "libreleased_1_0.so"),
        (&released.v1_1, "libreleased_1_1.so"),
        (&released.v1_2, "libreleased_1_2.so"),
        (&released.v1_3, "libreleased_1_3.so"),
        (
            &library("ceilo_plugin_publishers"),
            "libceilo_plugin_publishers.so",
        ),
    ]);
    let work = tempfile::tempdir().unwrap();
    let lines = work.path().join("lines.txt");
    let count = work.path().join("count.txt");
    let lines12 = work.path().join("lines12.txt");
    let pipeline = work.path().join("pipeline.yaml");
    std::fs::write(
        &pipeline,
        format!(
            r#"
sources:
  - name: released
    interval: 1
    meters: ["released.counter", "old.counter", "v12.counter"]
    sinks: [both]
sinks:
  - name: both
    transformers:
      - name: released_double
      - name: old_double
      - name: v12_double
    publishers:
      - file:out.json
      - released_lines://{}
      - old_counting://{}
      - v12_lines://{}
"#,
            lines.display(),
            count.display(),
            lines12.display()
        ),
    )
    .unwrap();
    let data = work.path().join("data");
    let child = spawn_service("agent", &pipeline, dir.path(), &data, &[], &[]);
    let out = data.join("out.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while read_samples(&out).len() < 6 {
        assert!(
            std::time::Instant::now() < deadline,
            "no samples from the released plugins"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let stderr = stop_ceilo(child, std::time::Duration::from_secs(15));
    assert!(!stderr.contains("refused"), "{stderr}");
    let samples = read_samples(&out);
    for name in ["released.counter", "old.counter", "v12.counter"] {
        let mine: Vec<f64> = samples
            .iter()
            .filter(|s| s.name() == name)
            .map(|s| s.volume())
            .collect();
        assert!(mine.len() >= 2, "{name}: {samples:?}");
        // Poll n gives n; the three transformers double it (1.2's by the `factor` of
        // 2 in the 1.2 poller's metadata, the others' metadata lacking one).
        assert_eq!(mine[0], 8.0, "{name}: {mine:?}");
        assert_eq!(mine[1], 16.0, "{name}: {mine:?}");
    }
    // Every sample crossed all three ABIs and kept its identity: ids are UUIDs, and
    // the 1.2 publisher saw each sample the file publisher stored.
    let lines12 = std::fs::read_to_string(&lines12).unwrap();
    assert_eq!(lines12.lines().count(), samples.len(), "{lines12}");
    for s in &samples {
        assert!(
            lines12.contains(s.message_id()),
            "{} not seen by 1.2",
            s.message_id()
        );
    }
    let lines = std::fs::read_to_string(&lines).unwrap();
    assert_eq!(lines.lines().count(), samples.len(), "{lines}");
    let counted: usize = std::fs::read_to_string(&count).unwrap().parse().unwrap();
    assert_eq!(counted, samples.len());
    let abis: std::collections::BTreeSet<String> = samples
        .iter()
        .filter_map(|s| s.metadata_value("abi"))
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert!(abis.contains("1.1") && abis.contains("1.2"), "{abis:?}");
    assert_eq!(
        samples
            .iter()
            .find(|s| s.name() == "v12.counter")
            .and_then(|s| s.metadata_value("factor")),
        Some(json!(2))
    );

    // The 1.1 handler works through the host too.
    let reg = scan(dir.path());
    let mut echo = reg
        .create_notification("released_echo", &json!({}), Context::default())
        .unwrap();
    assert_eq!(echo.event_types().unwrap(), ["released.*"]);
    let out = echo
        .handle(r#"{"event_type": "released.thing", "payload": {"value": 7}}"#)
        .unwrap();
    assert_eq!(out[0].volume(), 7.0);
    let mut echo12 = reg
        .create_notification("v12_echo", &json!({}), Context::default())
        .unwrap();
    assert_eq!(echo12.event_types().unwrap(), ["v12.*"]);
    let out = echo12
        .handle(r#"{"event_type": "v12.thing", "payload": {"value": 9}}"#)
        .unwrap();
    assert_eq!((out[0].name(), out[0].volume()), ("v12.event", 9.0));
    assert_eq!(
        reg.get(PluginKind::Poller, "v12_counter")
            .unwrap()
            .abi
            .to_string(),
        "1.2"
    );
    // What a 1.2 library leaves unset reads as unset in the host (the absent-text mark
    // is not an address of the library's own).
    let mut counter = reg
        .create_poller("v12_counter", &json!({}), Context::default())
        .unwrap();
    let polled = counter.poll(&[]).unwrap();
    assert_eq!(
        (polled[0].user_id(), polled[0].project_id()),
        (None, None),
        "{:?}",
        polled[0]
    );
    assert_eq!(polled[0].source(), "ceilo");

    // The 1.3 library, built against 1.3's frozen copy: its poller and its trait
    // plugin, beside the older ABIs' plugins in one host.
    assert_eq!(
        reg.get(PluginKind::Trait, "v13_join")
            .unwrap()
            .abi
            .to_string(),
        "1.3"
    );
    let mut gauge = reg
        .create_poller("v13_gauge", &json!({}), Context::default())
        .unwrap();
    assert_eq!(gauge.poll(&[]).unwrap()[0].volume(), 13.0);
    let mut join = reg
        .create_trait_plugin("v13_join", &json!({"with": ","}), Context::default())
        .unwrap();
    let matches = [
        ceilo_plugin_api::TraitMatch::new("payload.a", json!("x")),
        ceilo_plugin_api::TraitMatch::new("payload.b", json!(2)),
    ];
    assert_eq!(
        join.trait_values(&matches).unwrap(),
        [json!("2:payload.a=x,payload.b=2")]
    );
    assert_eq!(join.trait_values(&[]).unwrap(), [serde_json::Value::Null]);
}
