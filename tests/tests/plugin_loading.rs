//! Loading real plugin libraries from a directory: what loads, what is refused and
//! why, and that the host survives plugins that panic.

use std::path::Path;

use ceilo_host::loader::{CreateError, PluginKind, PluginRegistry, ScanOptions};
use ceilo_plugin_api::{Context, ErrorKind, Sample, SampleBatch, SampleType};
use ceilo_tests::*;
use serde_json::{json, Value};

fn scan(dir: &Path) -> PluginRegistry {
    PluginRegistry::scan(dir, &ScanOptions::default()).expect("scan")
}

fn listing(dir: &Path) -> Value {
    let (code, stdout, stderr) = run_ceilo(&[
        "plugins",
        "--plugin-dir",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "ceilo plugins failed: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn rejected_reason(listing: &Value, file: &str) -> String {
    listing["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["library"].as_str().unwrap().ends_with(file))
        .unwrap_or_else(|| panic!("{file} not among the rejected: {listing:#}"))["reason"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn all_built_in_plugins_load_and_are_listed() {
    let dir = built_in_plugin_dir();
    let l = listing(dir.path());
    let plugins: Vec<(String, String)> = l["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["kind"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for expected in [
        ("poller", "load"),
        ("notification", "compute"),
        ("transformer", "accumulator"),
        ("publisher", "file"),
    ] {
        assert!(
            plugins.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} missing from {plugins:?}"
        );
    }
    assert_eq!(l["rejected"], json!([]));
    for p in l["plugins"].as_array().unwrap() {
        for field in ["kind", "name", "version", "library", "description"] {
            assert!(
                p[field].as_str().is_some_and(|s| !s.is_empty()),
                "{field} empty in {p}"
            );
        }
        assert!(Path::new(p["library"].as_str().unwrap()).starts_with(dir.path()));
    }
}

#[test]
fn table_output_lists_plugins_and_refusals() {
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), b"not a library").unwrap();
    let dir = plugin_dir(&[
        (&library("ceilo_plugin_system"), "libceilo_plugin_system.so"),
        (garbage.path(), "x.so"),
    ]);
    let (code, stdout, _) = run_ceilo(&["plugins", "--plugin-dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("KIND") && stdout.contains("load"),
        "{stdout}"
    );
    assert!(stdout.contains("x.so: not a shared object"), "{stdout}");
}

#[test]
fn bad_libraries_are_each_reported_and_the_rest_still_load() {
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), b"\x00garbage, not ELF at all").unwrap();
    let system = library("ceilo_plugin_system");
    let dir = plugin_dir(&[
        (garbage.path(), "x.so"),
        (&system_shared_object(), "libm-copy.so"),
        (&system, "a_system.so"),
        (&system, "b_system_again.so"),
        (&library("ceilo_plugin_transformers"), "transformers.so"),
    ]);
    let l = listing(dir.path());

    assert!(rejected_reason(&l, "x.so").contains("not a shared object"));
    let reason = rejected_reason(&l, "libm-copy.so");
    assert!(reason.contains("not a ceilo plugin"), "{reason}");
    let reason = rejected_reason(&l, "b_system_again.so");
    assert!(
        reason.contains("duplicate plugin name")
            && reason.contains("poller `load`")
            && reason.contains("a_system.so"),
        "{reason}"
    );
    assert_eq!(l["rejected"].as_array().unwrap().len(), 3, "{l:#}");

    let loaded: Vec<(&str, &str)> = l["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["library"].as_str().unwrap()))
        .collect();
    assert!(
        loaded
            .iter()
            .all(|(_, lib)| lib.ends_with("a_system.so") || lib.ends_with("transformers.so")),
        "{loaded:?}"
    );
    assert!(
        loaded
            .iter()
            .any(|(n, lib)| *n == "load" && lib.ends_with("a_system.so")),
        "the earlier file wins"
    );
    assert!(loaded.iter().any(|(n, _)| *n == "accumulator"));
}

#[test]
fn an_unreadable_directory_is_the_only_failure() {
    let (code, _, stderr) = run_ceilo(&["plugins", "--plugin-dir", "/nonexistent/ceilo-plugins"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("cannot read plugin directory /nonexistent/ceilo-plugins"),
        "{stderr}"
    );

    let empty = tempfile::tempdir().unwrap();
    let l = listing(empty.path());
    assert_eq!(l, json!({"plugins": [], "rejected": [], "failed": []}));
}

#[test]
fn a_plugin_panicking_in_its_factory_or_a_call_is_an_error_and_the_host_goes_on() {
    let dir = plugin_dir(&[
        (&library("ceilo_fixture_panicky"), "libpanicky.so"),
        (&library("ceilo_plugin_system"), "libsystem.so"),
    ]);
    let reg = scan(dir.path());

    let err = reg
        .create_poller(
            "panicky",
            &json!({"panic_in": "create"}),
            Context::new("panicky", "test"),
        )
        .unwrap_err();
    let CreateError::Plugin(e) = err else {
        panic!("expected a plugin error, got {err}")
    };
    assert_eq!(e.error.kind(), ErrorKind::PANIC);
    assert!(e.to_string().contains("poller plugin `panicky`"), "{e}");
    assert!(e.to_string().contains("factory exploded on purpose"), "{e}");

    let mut p = reg
        .create_poller("panicky", &json!({}), Context::new("panicky", "test"))
        .unwrap();
    let err = p.poll(&["panic".to_owned()]).unwrap_err();
    assert_eq!(err.error.kind(), ErrorKind::PANIC);
    assert!(
        err.to_string().contains("poll exploded on purpose"),
        "{err}"
    );
    // The same instance and the other plugins keep working.
    assert_eq!(p.poll(&[]).unwrap().len(), 1);
    let mut load = reg
        .create_poller("load", &json!({}), Context::new("load", "test"))
        .unwrap();
    assert_eq!(load.poll(&[]).unwrap().len(), 3);

    // A transformer: a failing sample and a panicking one do not lose the others
    // handled before them; the panic is reported with the plugin's name.
    let mut t = reg
        .create_transformer("panicky", &json!({}), Context::new("panicky", "test"))
        .unwrap();
    let batch: SampleBatch = ["ok1", "bad", "ok2", "boom", "after"]
        .iter()
        .map(|n| Sample::new(*n, SampleType::Gauge, "", 1.0, "r"))
        .collect();
    let out = t.handle(batch);
    let names: Vec<&str> = out.samples.iter().map(|s| s.name()).collect();
    assert_eq!(names, ["ok1", "ok2"]);
    assert_eq!(out.failed, 3, "bad, boom and the sample after the panic");
    let reported = out.first_error.unwrap();
    assert_eq!(
        reported.error.kind(),
        ErrorKind::PANIC,
        "the panic is reported over the earlier failure"
    );
    assert!(
        reported
            .to_string()
            .contains("transformer plugin `panicky`"),
        "{reported}"
    );
    let out = t.handle(vec![Sample::new("fine", SampleType::Gauge, "", 1.0, "r")].into());
    assert_eq!(out.samples.len(), 1);

    // A trait plugin (ABI 1.3): a panic in its factory stops its definition, with
    // the place; a panic in a call leaves that trait out of that event only.
    let defs = |text: &str| {
        ceilo_host::events::parse_with_plugins(
            std::path::Path::new("event_definitions.yaml"),
            text,
            &reg,
        )
        .expect("parses")
    };
    let broken = defs("- event_type: x\n  traits:\n    t: {fields: payload.v, plugin: {name: panicky, parameters: {panic_in: create}}}\n");
    assert_eq!(broken.errors.len(), 1);
    let shown = broken.errors[0].to_string();
    assert!(
        shown.contains("event_definitions.yaml:3:") && shown.contains("trait factory exploded"),
        "{shown}"
    );
    let ok = defs("- event_type: x\n  traits:\n    t: {fields: payload.v, plugin: panicky}\n");
    let conv = ceilo_host::events::Converter::new(ok.definitions, &Default::default());
    let note = |v: &str| {
        json!({"event_type": "x", "metadata": {"message_id": format!("m-{v}"), "timestamp": "2026-01-01T00:00:00"},
               "ctxt": {}, "publisher_id": "p", "payload": {"v": v}})
    };
    let Ok(ceilo_host::events::Conversion::Event(e, left_out)) =
        conv.convert("info", &note("boom"))
    else {
        panic!("no event")
    };
    assert!(e.trait_named("t").is_none());
    assert!(
        left_out.iter().any(|w| w.contains("trait_values exploded")),
        "{left_out:?}"
    );
    let Ok(ceilo_host::events::Conversion::Event(e, _)) = conv.convert("info", &note("fine"))
    else {
        panic!("no event")
    };
    assert_eq!(
        e.trait_named("t").map(|t| &t.value),
        Some(&ceilo_host::events::TraitValue::Text("fine".into())),
        "the same instance works on"
    );
}

#[test]
fn unknown_plugins_and_bad_parameters_are_named() {
    let dir = built_in_plugin_dir();
    let reg = scan(dir.path());
    let err = reg
        .create_transformer("acumulator", &json!({}), Context::default())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no transformer plugin named `acumulator` is loaded (did you mean `accumulator`? \
         loaded: accumulator, aggregator, arithmetic, delta, rate_of_change, unit_conversion)"
    );
    let err = reg
        .create_transformer("accumulator", &json!({"size": "big"}), Context::default())
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("transformer plugin `accumulator` ("),
        "{text}"
    );
    assert!(
        text.contains("invalid parameters") && text.contains("invalid type"),
        "{text}"
    );
}

#[test]
fn built_in_plugins_work_through_the_abi() {
    let dir = built_in_plugin_dir();
    let reg = scan(dir.path());
    assert_eq!(
        reg.get(PluginKind::Poller, "load").unwrap().abi.to_string(),
        "1.3"
    );

    let mut poller = reg
        .create_poller("load", &json!({}), Context::new("load", "test"))
        .unwrap();
    assert_eq!(poller.meters().unwrap(), ["load.1", "load.5", "load.15"]);
    let samples = poller.poll(&[]).unwrap();

    let mut acc = reg
        .create_transformer(
            "accumulator",
            &json!({"size": 4}),
            Context::new("accumulator", "test"),
        )
        .unwrap();
    assert!(acc.handle(samples.clone()).samples.is_empty());
    assert!(acc.flush().samples.is_empty(), "3 of 4 held");
    assert!(acc.handle(samples).samples.is_empty());
    assert_eq!(acc.flush().samples.len(), 6);

    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("samples.json");
    let url = format!("file://{}", file.display());
    let mut publisher = reg
        .create_publisher("file", &json!({ "url": url }), Context::new("file", "test"))
        .unwrap();
    let batch = poller.poll(&[]).unwrap();
    publisher.publish(&batch).unwrap();
    publisher.flush().unwrap();
    assert!(publisher.has_stats());
    let text = std::fs::read_to_string(&file).unwrap();
    let back: Vec<Sample> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(back, batch.into_vec());

    let mut compute = reg
        .create_notification("compute", &json!({}), Context::new("compute", "test"))
        .unwrap();
    assert_eq!(compute.event_types().unwrap(), ["compute.instance.*"]);
    let n = json!({
        "event_type": "compute.instance.exists",
        "payload": {"instance_id": "i-1", "tenant_id": "p", "user_id": "u", "memory_mb": 2048, "vcpus": 2, "root_gb": 20, "ephemeral_gb": 0}
    });
    let samples = compute.handle(&n.to_string()).unwrap();
    assert_eq!(samples.len(), 5);
    let err = compute.handle("{not json").unwrap_err();
    assert_eq!(err.error.kind(), ErrorKind::INVALID_INPUT);
}
