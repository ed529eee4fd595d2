//! No plugin can take the host down: pollers that panic (in `create` and in `poll`),
//! hang, segfault, abort, flood, or allocate without bound run through the real
//! `ceilo agent` beside the built-in `load` poller, isolated in worker processes and
//! (for what a process can survive) in process. The `load` poller's samples keep
//! arriving on time, shutdown ends within its bound, crashes are reported with the
//! signal and the worker comes back, and nothing is published twice.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use ceilo_plugin_api::Sample;
use ceilo_tests::*;

fn plugins() -> tempfile::TempDir {
    plugin_dir(&[
        (&library("ceilo_plugin_system"), "libceilo_plugin_system.so"),
        (
            &library("ceilo_plugin_publishers"),
            "libceilo_plugin_publishers.so",
        ),
        (&library("ceilo_fixture_misbehaving"), "libmisbehaving.so"),
    ])
}

/// A pipeline with the `load` poller in a source of its own and one source per
/// misbehaving poller (each with its own resources; every 1 s, but `flood` and `hog`
/// every 4 s, since building a huge batch or filling the worker's memory takes over a
/// second in a debug build on a loaded machine), all into
/// `file:out.json`.
fn pipeline(dir: &Path, misbehaving: &[(&str, Vec<String>)]) -> std::path::PathBuf {
    let mut text = String::from(
        "sources:\n  - name: normal\n    interval: 1\n    meters: [load.1]\n    sinks: [out]\n",
    );
    for (name, resources) in misbehaving {
        let res: Vec<String> = resources.iter().map(|r| format!("{r:?}")).collect();
        text.push_str(&format!(
            "  - name: {name}\n    interval: {}\n    meters: [misbehaving.{name}]\n    resources: [{}]\n    sinks: [out]\n",
            if matches!(*name, "flood" | "hog") { 4 } else { 1 },
            res.join(", ")
        ));
    }
    text.push_str("sinks:\n  - name: out\n    publishers: [\"file:out.json\"]\n");
    let file = dir.join("pipeline.yaml");
    std::fs::write(&file, text).unwrap();
    file
}

fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// SIGTERM, then the process must be gone within `bound` (plus start-up slack).
fn stop_within(child: std::process::Child, bound: Duration) -> String {
    let started = Instant::now();
    let stderr = stop_ceilo(child, bound + Duration::from_secs(3));
    assert!(
        started.elapsed() < bound + Duration::from_secs(3),
        "shutdown took {:?}",
        started.elapsed()
    );
    stderr
}

fn by_name<'a>(samples: &'a [Sample], name: &str) -> Vec<&'a Sample> {
    samples.iter().filter(|s| s.name() == name).collect()
}

/// The `load.1` samples came about once per second: no gap much over the interval.
fn assert_on_time(samples: &[Sample], stderr: &str) {
    let load = by_name(samples, "load.1");
    assert!(load.len() >= 5, "load.1 samples: {}\n{stderr}", load.len());
    let mut times: Vec<i64> = load.iter().map(|s| s.timestamp_micros()).collect();
    times.sort();
    let worst = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    assert!(
        worst < 2_500_000,
        "load.1 had a gap of {:.2}s (interval 1s): another poller delayed it\n{stderr}",
        worst as f64 / 1e6
    );
}

fn assert_unique(samples: &[Sample]) {
    let mut ids = HashSet::new();
    for s in samples {
        assert!(
            ids.insert(s.message_id().to_owned()),
            "published twice: {s:?}"
        );
    }
}

#[test]
fn isolated_plugins_crash_hang_and_hog_and_the_host_carries_on() {
    let plugins = plugins();
    let work = tempfile::tempdir().unwrap();
    let once = |n: &str| vec![format!("once:{}", work.path().join(n).display())];
    let file = pipeline(
        work.path(),
        &[
            ("segfault", once("segfault")),
            ("abort", once("abort")),
            ("hog", once("hog")),
            ("hang", once("hang")),
            ("panic_poll", vec![]),
            ("panic_create", vec![]),
            ("flood", vec!["count:200000".into()]),
        ],
    );
    let data = work.path().join("data");
    let child = spawn_service(
        "agent",
        &file,
        plugins.path(),
        &data,
        &[
            "--worker-memory-limit",
            "256",
            "--max-samples-per-poll",
            "1000",
            "--shutdown-timeout",
            "3",
        ],
        &[],
    );
    let out = data.join("out.json");
    // Every crashing poller misbehaves once, then (in a restarted worker) works.
    wait_for(
        "samples from every restarted worker",
        Duration::from_secs(40),
        || {
            let s = read_samples(&out);
            ["segfault", "abort", "hog", "hang"]
                .iter()
                .all(|n| !by_name(&s, &format!("misbehaving.{n}")).is_empty())
                && by_name(&s, "load.1").len() >= 5
        },
    );
    let stderr = stop_within(child, Duration::from_secs(3));
    let samples = read_samples(&out);
    assert_on_time(&samples, &stderr);
    assert_unique(&samples);

    for expected in [
        "poller `segfault` (libmisbehaving.so): its worker process died during `poll`: killed by signal 11 (SIGSEGV",
        "poller `abort` (libmisbehaving.so): its worker process died during `poll`: killed by signal 6 (SIGABRT",
        "poller `hog` (libmisbehaving.so): its worker process died during `poll`: killed by signal 6 (SIGABRT",
        "poller `hang` (libmisbehaving.so): did not finish `poll` within 1.0s: its worker process was killed",
        "poller `panic_create` left out",
        "create exploded on purpose",
        "poll exploded on purpose",
        "worker process restarted",
        "cut 199000 (--max-samples-per-poll)",
    ] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    // Each death is logged once by the worker supervisor (the agent then reports the
    // failed poll as it reports any plugin error).
    let deaths = stderr
        .lines()
        .filter(|l| l.contains("ceilo::worker") && l.contains("(SIGSEGV"))
        .count();
    assert_eq!(deaths, 1, "one line per crash:\n{stderr}");
    let flood = by_name(&samples, "misbehaving.flood");
    assert!(
        !flood.is_empty() && flood.len().is_multiple_of(1000),
        "{}",
        flood.len()
    );
    assert!(by_name(&samples, "misbehaving.panic_create").is_empty());
}

#[test]
fn in_process_plugins_that_panic_hang_or_flood_cannot_stop_the_host() {
    let plugins = plugins();
    let work = tempfile::tempdir().unwrap();
    let file = pipeline(
        work.path(),
        &[
            ("hang", vec![]),
            ("panic_poll", vec![]),
            ("panic_create", vec![]),
            ("flood", vec!["count:300000".into()]),
        ],
    );
    let data = work.path().join("data");
    let child = spawn_service(
        "agent",
        &file,
        plugins.path(),
        &data,
        &["--isolation", "none", "--shutdown-timeout", "3"],
        &[],
    );
    let out = data.join("out.json");
    wait_for("load.1 samples", Duration::from_secs(30), || {
        by_name(&read_samples(&out), "load.1").len() >= 6
    });
    let stderr = stop_within(child, Duration::from_secs(3));
    let samples = read_samples(&out);
    assert_on_time(&samples, &stderr);
    assert_unique(&samples);
    for expected in [
        "poller `hang` did not return within its deadline (1.0s)",
        "poller `panic_create` left out",
        "poll exploded on purpose",
        "poller `flood` returned 300000 samples in one poll: kept 100000, cut 200000",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
}

#[test]
fn a_plugin_that_cannot_be_created_is_shown_failed_and_strict_refuses() {
    let plugins = plugins();
    let work = tempfile::tempdir().unwrap();
    let file = pipeline(work.path(), &[("panic_create", vec![])]);
    let (p, d) = (file.to_str().unwrap(), plugins.path().to_str().unwrap());

    let (code, stdout, stderr) = run_ceilo(&["validate", "--pipeline", p, "--plugin-dir", d]);
    assert_ne!(code, 0, "validate must fail:\n{stdout}\n{stderr}");
    assert!(
        stderr.contains("poller `panic_create`") && stderr.contains("create exploded on purpose"),
        "{stderr}"
    );

    let (code, stdout, _) = run_ceilo(&["plugins", "--plugin-dir", d, "--format", "json"]);
    assert_eq!(code, 0);
    let listing: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let failed = listing["failed"].as_array().unwrap();
    assert!(
        failed
            .iter()
            .any(|f| f["name"] == "panic_create"
                && f["reason"].as_str().unwrap().contains("exploded")),
        "{listing:#}"
    );
    let row = |name: &str| {
        listing["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(row("panic_create")["status"], "failed");
    assert_eq!(row("panic_create")["isolation"], "worker");
    assert_eq!(row("load")["status"], "ok");
    assert_eq!(row("load")["isolation"], "in-process");

    let (code, _, stderr) = run_ceilo(&[
        "agent",
        "--pipeline",
        p,
        "--plugin-dir",
        d,
        "--data-dir",
        work.path().join("data").to_str().unwrap(),
        "--strict",
    ]);
    assert_ne!(code, 0, "--strict refuses to start");
    assert!(stderr.contains("panic_create"), "{stderr}");

    // `ceilo run` shows it on /metrics, and runs the rest.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let data = work.path().join("run-data");
    let child = spawn_service(
        "run",
        &file,
        plugins.path(),
        &data,
        &["--listen", &listen, "--no-auth"],
        &[],
    );
    let mut metrics = String::new();
    wait_for("/metrics", Duration::from_secs(30), || {
        match ureq::get(&format!("http://{listen}/metrics")).call() {
            Ok(mut r) => {
                metrics = r.body_mut().read_to_string().unwrap_or_default();
                true
            }
            Err(_) => false,
        }
    });
    stop_ceilo(child, Duration::from_secs(15));
    assert!(
        metrics.contains("ceilo_plugin_failed{kind=\"poller\",plugin=\"panic_create\""),
        "{metrics}"
    );
}
