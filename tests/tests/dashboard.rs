//! The dashboard in a real headless browser (Debian's chromium, driven by
//! playwright-core from `tests/browser`): the page loads, lists and chooses cpu_util,
//! draws a chart with a series per resource; under `ceilo run`, it lists the plugins
//! the process has loaded. The screenshots are kept in `target/test-artifacts/`.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use ceilo_host::storage::{self, Retention};
use ceilo_plugin_api::{Sample, SampleType};
use ceilo_tests::*;

/// node, chromium and `tests/browser/node_modules`; `None` (skip) when missing unless
/// `CEILO_REQUIRE_SERVICES=1`.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium =
        PathBuf::from(std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let script = workspace_root().join("tests/browser/dashboard.mjs");
    let modules = workspace_root().join("tests/browser/node_modules/playwright-core");
    let node_ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if chromium.exists() && modules.exists() && node_ok {
        return Some((chromium, script));
    }
    let what = format!(
        "chromium at {} ({}), node ({}), playwright-core in tests/browser ({})",
        chromium.display(),
        chromium.exists(),
        node_ok,
        modules.exists()
    );
    if std::env::var("CEILO_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("the browser test needs {what}; tests/run.sh installs them");
    }
    eprintln!("skipped: the browser test needs {what}");
    None
}

#[test]
fn the_dashboard_lists_cpu_util_and_draws_its_chart() {
    let Some((chromium, script)) = browser() else {
        return;
    };
    build_workspace();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/dash.db", dir.path().display());
    let now = chrono::Utc::now();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = storage::open(Some(&url), dir.path(), Retention::default())
            .await
            .unwrap();
        let mut batch = Vec::new();
        for i in 0..30 {
            for (r, base) in [("vm-1", 20.0), ("vm-2", 60.0)] {
                batch.push(
                    Sample::new("cpu_util", SampleType::Gauge, "%", base + (i % 7) as f64, r)
                        .with_timestamp(now - chrono::Duration::minutes(30 - i)),
                );
            }
        }
        batch.push(Sample::new(
            "memory.usage",
            SampleType::Gauge,
            "MB",
            512.0,
            "vm-1",
        ));
        store.record(&batch).await.unwrap();
        // Events of the last half hour, of two projects: the dashboard lists the newest.
        let events: Vec<ceilo_host::events::Event> = (0..30)
            .map(|i| ceilo_host::events::Event {
                message_id: format!("ev-{i:02}"),
                event_type: "compute.instance.update".into(),
                generated: now - chrono::Duration::minutes(30 - i),
                traits: vec![ceilo_host::events::Trait {
                    name: "project_id".into(),
                    value: ceilo_host::events::TraitValue::Text(format!("p{}", i % 2)),
                }],
                raw: serde_json::json!({}),
            })
            .collect();
        store.record_events(&events).await.unwrap();
    });
    let empty = dir.path().join("no-plugins");
    std::fs::create_dir_all(&empty).unwrap();
    let (api, listen) = spawn_api(&[
        "--no-auth",
        "--storage",
        &url,
        "--pipeline",
        dir.path().join("none.yaml").to_str().unwrap(),
        "--plugin-dir",
        empty.to_str().unwrap(),
    ]);
    let artifacts = target_dir().join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let out = Command::new("node")
        .arg(&script)
        .arg(format!("http://{listen}/"))
        .arg(&shot)
        .env("CHROMIUM", &chromium)
        .current_dir(workspace_root().join("tests/browser"))
        .output()
        .expect("run node");
    let log = stop_ceilo(api, Duration::from_secs(10));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}\n{log}");
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("the script's report");
    assert_eq!(seen["series"], 2, "one series per resource: {seen}");
    let listed: Vec<&str> = seen["events"]
        .as_array()
        .expect("events listed")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let newest: Vec<String> = (5..30).rev().map(|i| format!("ev-{i:02}")).collect();
    assert_eq!(
        listed, newest,
        "the newest 25 events, newest first, every project: {seen}"
    );
    assert_eq!(
        seen["plugins_hidden"], true,
        "`ceilo api` loads no plugins: no panel ({seen})"
    );
    assert!(
        seen["legend"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap_or("").contains("vm-1")),
        "{seen}"
    );
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 1000)
            .unwrap_or(false),
        "screenshot saved"
    );
}

#[test]
fn the_dashboard_of_ceilo_run_lists_its_plugins() {
    let Some((chromium, script)) = browser() else {
        return;
    };
    let plugins = built_in_plugin_dir();
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap();
    let listen = format!("127.0.0.1:{port}");
    let run = spawn_ceilo(
        &[
            "run",
            "--listen",
            &listen,
            "--pipeline",
            data.path().join("none.yaml").to_str().unwrap(),
            "--plugin-dir",
            plugins.path().to_str().unwrap(),
            "--data-dir",
            data.path().to_str().unwrap(),
        ],
        &[],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "ceilo run did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let artifacts = target_dir().join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let out = Command::new("node")
        .arg(&script)
        .arg(format!("http://{listen}/"))
        .arg(artifacts.join("dashboard-plugins.png"))
        .arg("plugins")
        .env("CHROMIUM", &chromium)
        .current_dir(workspace_root().join("tests/browser"))
        .output()
        .expect("run node");
    let log = stop_ceilo(run, Duration::from_secs(15));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).expect("the script's report");
    let listed: Vec<&str> = seen["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p.as_str())
        .collect();
    for expected in ["poller/cpu", "transformer/rate_of_change", "publisher/file"] {
        assert!(listed.contains(&expected), "{expected} not listed: {seen}");
    }
    assert!(
        seen["summary"].as_str().unwrap_or("").starts_with("run: "),
        "{seen}"
    );
}
