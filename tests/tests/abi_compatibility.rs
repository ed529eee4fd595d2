//! The compatibility contract (plugin-api/README.md, "Versioning"): a plugin built
//! for an older ABI minor keeps loading and working; a plugin for another ABI major,
//! or with a changed layout, is refused with a message that says why and what to do;
//! an out-of-tree plugin built by a third party loads.

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
    let dir = plugin_dir(&[(&library("ceilo_fixture_abi_v1_0"), "libold.so")]);
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
    let layout = build_example(ApiChange::SampleLayout);
    let dir = plugin_dir(&[
        (&major2, "libmajor2.so"),
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
            && r.contains("this host's 1.1")
            && r.contains("rebuild it against ceilo-plugin-api 1.x"),
        "{r}"
    );
    let r = reason("liblayout.so");
    assert!(
        r.contains("do not match plugin ABI 1.1") && r.contains("rebuild it against the released"),
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
