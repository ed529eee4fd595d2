//! `ceilo validate`: every check of DESIGN.md, each reported with its line, and all
//! of them in one run.

use std::path::Path;

use ceilo_tests::*;

fn validate(yaml: &str, plugins: &Path) -> (i32, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, yaml).unwrap();
    let (code, out, err) = run_ceilo(&[
        "validate",
        "--pipeline",
        file.to_str().unwrap(),
        "--plugin-dir",
        plugins.to_str().unwrap(),
    ]);
    (code, out, err, dir)
}

/// The error line containing `fragment`, which must be located at `line`.
fn assert_error(stderr: &str, line: usize, fragment: &str) {
    let found = stderr
        .lines()
        .find(|l| l.contains(fragment))
        .unwrap_or_else(|| panic!("no error mentions {fragment:?}:\n{stderr}"));
    assert!(
        found.contains(&format!("pipeline.yaml:{line}:")),
        "{fragment:?} should be reported at line {line}: {found}"
    );
}

const BROKEN: &str = r#"sources:
  - name: dup
    interval: -5
    meters: ["cpu"]
    sinks: [good_sink]
  - name: dup
    interval: 10
    meters: []
    sinks: [missing_sink]
  - interval: 10
    meters: ["cpu", "!load.1"]
    sinks: [good_sink]
  - name: nosinks
    meters: ["*", "cpu"]
  - name: typo_meter
    meters: ["memory.usag"]
    sinks: [good_sink]
    intervall: 5
sinks:
  - name: good_sink
    transformers:
      - name: rate_of_chnge
      - name: accumulator
        parameters:
          size: lots
    publishers:
      - file:out.json
      - fiel:///tmp/x
  - name: good_sink
    publishers: []
"#;

#[test]
fn every_error_is_reported_with_its_line() {
    let plugins = built_in_plugin_dir();
    let (code, _, err, _dir) = validate(BROKEN, plugins.path());
    assert_ne!(code, 0, "an invalid pipeline fails validation");
    assert_error(
        &err,
        3,
        "source `dup`: interval must be a positive integer (seconds), found -5",
    );
    assert_error(&err, 6, "duplicate source name `dup`");
    assert_error(&err, 8, "source `dup`: no meters");
    assert_error(&err, 9, "sink `missing_sink` is not defined");
    assert_error(&err, 10, "required field `name` is missing");
    assert_error(&err, 11, "both included and excluded meters");
    assert_error(&err, 13, "source `nosinks`: no sinks");
    assert_error(&err, 14, "included meters with the wildcard");
    assert_error(
        &err,
        16,
        "no loaded poller or notification handler produces meter `memory.usag` (did you mean `memory.usage`?",
    );
    assert_error(
        &err,
        18,
        "unknown field `intervall` (did you mean `interval`?",
    );
    assert_error(&err, 22, "unknown transformer `rate_of_chnge` (did you mean `rate_of_change`? loaded transformers: accumulator,");
    assert_error(
        &err,
        25,
        "bad parameters for transformer `accumulator`: invalid type",
    );
    assert_error(
        &err,
        28,
        "unknown publisher `fiel` in `fiel:///tmp/x` (did you mean `file`?",
    );
    assert_error(&err, 29, "duplicate sink name `good_sink`");
    assert_error(&err, 29, "sink `good_sink`: no publishers");
    assert!(
        err.contains("14 errors and 1 warning in the pipeline configuration"),
        "{err}"
    );
}

#[test]
fn deeply_nested_yaml_is_refused_at_its_line() {
    let plugins = built_in_plugin_dir();
    // 100 000 levels of flow sequences on line 3; 1 000 levels of block mappings.
    let flow = format!(
        "sources: []\nsinks: []\nx: {}1{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (code, _, err, _dir) = validate(&flow, plugins.path());
    assert_ne!(code, 0);
    assert_error(&err, 3, "nested more than 64 levels deep");
    assert!(err.len() < 2000, "a readable error: {} bytes", err.len());
    let mut block = String::from("sources: []\nsinks: []\n");
    for depth in 0..1000 {
        block.push_str(&" ".repeat(depth));
        block.push_str("k:\n");
    }
    let (code, _, err, _dir) = validate(&block, plugins.path());
    assert_ne!(code, 0);
    // The 65th mapping starts on line 3 + 64.
    assert_error(&err, 67, "nested more than 64 levels deep");
    // Nesting a real pipeline uses is fine.
    let nested = format!(
        "sources: []\nsinks: []\nx: {}1{}\n",
        "[".repeat(60),
        "]".repeat(60)
    );
    let (_, _, err, _dir) = validate(&nested, plugins.path());
    assert!(!err.contains("levels deep"), "{err}");
}

#[test]
fn refusals_of_the_whole_file_are_located_too() {
    let plugins = built_in_plugin_dir();
    // Not UTF-8: the first bad byte, line 2 column 9.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pipeline.yaml");
    std::fs::write(&file, b"sources: []\nsinks: [\"a\xff\"]\n").unwrap();
    let (code, _, err) = run_ceilo(&[
        "validate",
        "--pipeline",
        file.to_str().unwrap(),
        "--plugin-dir",
        plugins.path().to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert_error(&err, 2, "not UTF-8 text (byte 0xff)");
    assert!(err.contains("pipeline.yaml:2:11:"), "{err}");
    // Two documents: where the second starts.
    let (code, _, err, _dir) =
        validate("sources: []\nsinks: []\n---\nsources: []\n", plugins.path());
    assert_ne!(code, 0);
    assert_error(&err, 3, "a second YAML document");
    // A root that is not a mapping, and an empty file.
    for (text, line) in [("- a\n- b\n", 1), ("# nothing\n", 1), ("\n\n42\n", 3)] {
        let (code, _, err, _dir) = validate(text, plugins.path());
        assert_ne!(code, 0, "{text:?}");
        assert_error(&err, line, "must be a mapping");
    }
    // An alias bomb: nine levels of nine aliases each.
    let mut bomb = String::from("sources: []\nsinks: []\na0: &a0 [x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 9].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let (code, _, err, _dir) = validate(&bomb, plugins.path());
    assert_ne!(code, 0);
    assert!(err.contains("an alias bomb?"), "{err}");
    assert!(err.contains("pipeline.yaml:"), "{err}");
    assert!(err.len() < 2000, "{err}");
}

#[test]
fn yaml_syntax_errors_are_located() {
    let plugins = built_in_plugin_dir();
    let (code, _, err, _dir) = validate(
        "sources:\n  - name: a\n    meters: [cpu\nsinks: []\n",
        plugins.path(),
    );
    assert_ne!(code, 0);
    assert!(err.contains("pipeline.yaml:4:"), "{err}");
    assert!(err.contains("not valid YAML"), "{err}");
}

#[test]
fn a_missing_file_says_how_to_give_another() {
    let plugins = built_in_plugin_dir();
    let (code, _, err) = run_ceilo(&[
        "validate",
        "--pipeline",
        "/nonexistent/p.yaml",
        "--plugin-dir",
        plugins.path().to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("/nonexistent/p.yaml: cannot read the pipeline file")
            && err.contains("--pipeline"),
        "{err}"
    );
}

#[test]
fn the_default_pipeline_is_valid_and_its_wiring_is_printed() {
    let plugins = built_in_plugin_dir();
    let default = workspace_root().join("pipeline.yaml");
    let (code, out, err) = run_ceilo(&[
        "validate",
        "--pipeline",
        default.to_str().unwrap(),
        "--plugin-dir",
        plugins.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("is valid: 2 source(s), 2 sink(s)"), "{out}");
    assert!(out.contains("source cpu_source (every 10s)"), "{out}");
    assert!(out.contains("pollers: cpu\n"), "{out}");
    assert!(
        out.contains("→ sink cpu_sink: rate_of_change → direct://"),
        "{out}"
    );
}

#[test]
fn passwords_in_publisher_urls_are_never_printed() {
    let plugins = built_in_plugin_dir();
    let yaml = "sources:\n  - name: s\n    meters: [cpu]\n    sinks: [k]\n\
                sinks:\n  - name: k\n    publishers: [\"amqp://ceilo:hunter2@127.0.0.1/%2f\", \"amqq://ceilo:hunter2@h/\"]\n";
    let (code, out, err, _dir) = validate(yaml, plugins.path());
    assert_ne!(code, 0, "amqq is not a publisher");
    assert!(
        err.contains("unknown publisher `amqq` in `amqq://ceilo:***@h/` (did you mean `amqp`?"),
        "{err}"
    );
    assert!(
        !out.contains("hunter2") && !err.contains("hunter2"),
        "{out}{err}"
    );
    let fixed = yaml.replace(", \"amqq://ceilo:hunter2@h/\"", "");
    let (code, out, err, _dir) = validate(&fixed, plugins.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("amqp://ceilo:***@127.0.0.1/%2f") && !out.contains("hunter2"),
        "{out}"
    );
}

#[test]
fn huge_names_are_quoted_cut_with_the_line_and_the_hint_kept() {
    let plugins = built_in_plugin_dir();
    let huge = "q".repeat(100_000);
    let yaml = format!(
        "sources:\n  - name: s\n    interval: 10\n    meters: [\"{huge}\"]\n    sinks: [\"{huge}\"]\n\
         sinks:\n  - name: k\n    transformers:\n      - name: \"{huge}\"\n    publishers: [\"{huge}://x\"]\n"
    );
    let (code, _, err, _dir) = validate(&yaml, plugins.path());
    assert_eq!(code, 1, "{}", &err[..err.len().min(2000)]);
    assert!(err.len() < 2000, "readable errors: {} bytes", err.len());
    assert_error(&err, 4, "produces meter `qqqq");
    assert_error(&err, 5, "is not defined (define it under `sinks`)");
    assert_error(&err, 9, "(loaded transformers:");
    assert_error(&err, 10, "(loaded publishers:");
}

#[test]
fn a_meter_nothing_produces_is_a_warning_and_an_error_with_strict() {
    let plugins = built_in_plugin_dir();
    let yaml = "sources:\n  - name: s\n    interval: 10\n    meters: [\"load.1\", \"disk.device.read.bytes\"]\n    sinks: [k]\n\
                sinks:\n  - name: k\n    publishers: [\"log://\"]\n";
    let (code, out, err, dir) = validate(yaml, plugins.path());
    assert_eq!(
        code, 0,
        "as Ceilometer, a meter no plugin polls is not fatal:\n{out}{err}"
    );
    assert!(out.contains("1 warning(s)"), "{out}");
    assert_error(
        &err,
        4,
        "warning: no loaded poller or notification handler produces meter `disk.device.read.bytes`",
    );
    let file = dir.path().join("pipeline.yaml");
    let (code, _, err) = run_ceilo(&[
        "validate",
        "--strict",
        "--pipeline",
        file.to_str().unwrap(),
        "--plugin-dir",
        plugins.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert_error(&err, 4, "produces meter `disk.device.read.bytes`");
}

/// Ceilometer 2013.2's shipped `pipeline.yaml`, in the original format (a list of
/// pipelines), as written there.
const CEILOMETER_2013_2: &str = r#"---
-
    name: meter_pipeline
    interval: 600
    meters:
        - "*"
    transformers:
    publishers:
        - rpc://
-
    name: cpu_pipeline
    interval: 600
    meters:
        - "cpu"
    transformers:
        - name: "rate_of_change"
          parameters:
              target:
                  name: "cpu_util"
                  unit: "%"
                  type: "gauge"
                  scale: "100.0 / (10**9 * (resource_metadata.cpu_number or 1))"
    publishers:
        - rpc://
"#;

#[test]
fn the_original_pipeline_format_is_read_as_ceilometer_read_it() {
    let plugins = built_in_plugin_dir();
    // As shipped it is valid (rpc:// is the notifier publisher): one source and one
    // sink per pipeline.
    let (code, out, err, _dir) = validate(CEILOMETER_2013_2, plugins.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 source(s), 2 sink(s)"), "{out}");
    assert!(err.contains("the original pipeline format"), "{err}");
    // Errors are located in the original file.
    let (code, _, err, _dir) = validate(
        &CEILOMETER_2013_2.replace("rpc://", "kafka://"),
        plugins.path(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("2 errors in the pipeline configuration"),
        "{err}"
    );
    assert_error(&err, 9, "sink `meter_pipeline`: unknown publisher `kafka` in `kafka://` (a Ceilometer publisher ceilo has no plugin for");
    assert_error(&err, 24, "sink `cpu_pipeline`: unknown publisher `kafka`");
    // 2013.1's: `counters`, and the `meter_publisher` it named (the notifier).
    let y2013_1 = "---\n-\n    name: meter_pipeline\n    interval: 60\n    counters:\n        - \"*\"\n    transformers:\n    publishers:\n        - meter_publisher\n";
    let (code, out, err, _dir) = validate(y2013_1, plugins.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("notifier://"), "{out}");
    // Mistakes in the old format are located in it too.
    let (code, _, err, _dir) = validate(
        &y2013_1.replace("interval: 60", "intervall: 60"),
        plugins.path(),
    );
    assert_eq!(code, 1, "{err}");
    assert_error(&err, 4, "unknown field `intervall`");
}

#[test]
fn handlers_are_chosen_by_name_or_pattern() {
    let plugins = built_in_plugin_dir();
    let default = workspace_root().join("pipeline.yaml");
    let run = |handlers: &str| {
        run_ceilo(&[
            "validate",
            "--pipeline",
            default.to_str().unwrap(),
            "--plugin-dir",
            plugins.path().to_str().unwrap(),
            "--handlers",
            handlers,
        ])
    };
    let (code, out, err) = run("compute");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("notification handler compute: ok"), "{out}");
    assert!(
        out.contains("notification handler declarative: not selected (--handlers)"),
        "{out}"
    );
    let (code, out, err) = run("!compute");
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("notification handler compute: not selected"),
        "{out}"
    );
    let (code, _, err) = run("compte");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no notification handler named `compte` is loaded (did you mean `compute`?"),
        "{err}"
    );
    let (code, _, err) = run("compute,!declarative");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("both included and excluded"), "{err}");
}
