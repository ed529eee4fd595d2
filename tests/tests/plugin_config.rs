//! `--plugin-config`: parameters for pollers (and handlers) from one file, checked by
//! `ceilo validate` with file and line, used by `ceilo poll --once`.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use ceilo_tests::*;

const PIPELINE: &str = "sources:\n  - name: probes\n    interval: 10\n    meters: [\"http.*\", uptime]\n    sinks: [out]\nsinks:\n  - name: out\n    publishers: [\"file:out.jsonl\"]\n";

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_owned()
}

/// A plugin directory with the built-ins and the out-of-tree example.
fn plugins() -> tempfile::TempDir {
    let dir = built_in_plugin_dir();
    std::fs::copy(
        build_example(ApiChange::None),
        dir.path().join("libacme_ceilo_plugins.so"),
    )
    .unwrap();
    dir
}

#[test]
fn pollers_take_their_parameters_from_the_plugin_config() {
    let plugins = plugins();
    let work = tempfile::tempdir().unwrap();
    // One HTTP server answering every request with 204.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 2048];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    let pipeline = write(work.path(), "pipeline.yaml", PIPELINE);
    let config = write(
        work.path(),
        "plugins.yaml",
        &format!(
            "pollers:\n  http:\n    urls: [\"http://{addr}/health\"]\n    timeout: 2\n  uptime: {{resource_id: web-1, unit: min}}\n"
        ),
    );
    let (code, out, err) = ceilo(&["validate"], &pipeline, plugins.path(), &config);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("pollers: http, uptime"), "{out}");

    let (code, out, err) = ceilo(&["poll", "--once"], &pipeline, plugins.path(), &config);
    assert_eq!(code, 0, "{err}");
    let samples: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let status = samples
        .iter()
        .find(|s| s["name"] == "http.status")
        .unwrap_or_else(|| panic!("no http.status among {samples:?}"));
    assert_eq!(status["volume"], 204.0);
    assert_eq!(status["resource_id"], format!("http://{addr}/health"));
    let uptime = samples
        .iter()
        .find(|s| s["name"] == "uptime")
        .unwrap_or_else(|| panic!("no uptime among {samples:?}"));
    assert_eq!(uptime["resource_id"], "web-1");
    assert_eq!(uptime["unit"], "min");
}

/// `ceilo <command> --pipeline P --plugin-dir D --plugin-config C`.
fn ceilo(command: &[&str], pipeline: &str, plugins: &Path, config: &str) -> (i32, String, String) {
    run_ceilo(
        &[
            command,
            &[
                "--pipeline",
                pipeline,
                "--plugin-dir",
                plugins.to_str().unwrap(),
                "--plugin-config",
                config,
            ],
        ]
        .concat(),
    )
}

fn validate(pipeline: &str, plugins: &Path, config: &str) -> (i32, String) {
    let (code, _, err) = ceilo(&["validate"], pipeline, plugins, config);
    (code, err)
}

#[test]
fn mistakes_in_the_plugin_config_are_located() {
    let plugins = plugins();
    let work = tempfile::tempdir().unwrap();
    let pipeline = write(work.path(), "pipeline.yaml", PIPELINE);
    let config = write(
        work.path(),
        "plugins.yaml",
        "pollers:\n  http:\n    urls: [\"https://example.com/\"]\n  uptme: {}\n  uptime: {unit: weeks}\ntransformers:\n  rate_of_change: {}\npoller: {}\n",
    );
    let (code, err) = validate(&pipeline, plugins.path(), &config);
    assert_ne!(code, 0);
    let line_of = |fragment: &str| -> String {
        err.lines()
            .find(|l| l.contains(fragment))
            .unwrap_or_else(|| panic!("no error mentions {fragment:?}:\n{err}"))
            .to_owned()
    };
    assert!(
        line_of("did you mean `uptime`?").contains("plugins.yaml:4:"),
        "{err}"
    );
    assert!(line_of("written in pipeline.yaml").contains("plugins.yaml:6:"));
    assert!(line_of("unknown section `poller`").contains("did you mean `pollers`?"));
    // The name errors come first; once they are fixed, parameters are checked by
    // creating each plugin, and located at its entry.
    let config = write(
        work.path(),
        "plugins.yaml",
        "pollers:\n  http:\n    urls: [\"https://example.com/\"]\n  uptime: {unit: weeks}\n",
    );
    let (code, err) = validate(&pipeline, plugins.path(), &config);
    assert_ne!(code, 0);
    let http = err
        .lines()
        .find(|l| l.contains("not a plain http:// URL"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        http.contains("plugins.yaml:2:") && http.contains("poller `http`"),
        "{http}"
    );
    let uptime = err
        .lines()
        .find(|l| l.contains("`unit` must be s, min or h"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(uptime.contains("plugins.yaml:4:"), "{uptime}");
}
