//! Pipeline throughput: `cargo bench -p ceilo-tests --bench pipeline_throughput`.
//!
//! A synthetic poller produces N samples per cycle (1 000 and 10 000) →
//! `unit_conversion` → `rate_of_change` → a null publisher. Through the host's pipeline
//! with every plugin loaded from its `.so` in process, the same with every plugin in a
//! worker process of its own (`--isolation all`), and the same chain linked natively
//! into the benchmark and called directly. All run alternately in one process; medians
//! are compared.

// The fixture library's code, compiled natively: the baseline runs the same code.
#[path = "../fixtures/bench-transformer/src/chain.rs"]
#[allow(dead_code)] // each benchmark uses part of it
mod chain;

use std::time::{Duration, Instant};

use ceilo_host::loader::{
    IsolationMode, IsolationPolicy, PluginRegistry, ScanOptions, WorkerSettings,
};
use ceilo_host::pipeline::{self, Catalog, HostSettings, OutputMode};
use ceilo_plugin_api::abi::v1_0::glue::transform_batch;
use ceilo_plugin_api::{Context, Parameters, Plugin, Poller, Publisher};
use ceilo_plugin_transformers::{RateOfChange, UnitConversion};
use ceilo_tests::build_workspace_release;
use chain::{Null, Synthetic};

const SAMPLES_PER_ROUND: usize = 200_000;

fn pipeline_text(per_cycle: usize) -> String {
    format!(
        r#"
sources:
  - name: synthetic
    interval: 10
    meters: ["bench.counter"]
    resources: ["count:{per_cycle}"]
    sinks: [chain]
sinks:
  - name: chain
    transformers:
      - name: unit_conversion
        parameters:
          target: {{name: bench.kilobytes, unit: KB, scale: 0.0009765625}}
      - name: rate_of_change
        parameters:
          target: {{name: bench.rate, unit: KB/s, type: gauge}}
    publishers: ["null://"]
"#
    )
}

/// The chain wired from `registry` for `per_cycle` samples per cycle.
fn runtime(registry: &PluginRegistry, per_cycle: usize) -> pipeline::Runtime {
    let discovery = pipeline::discover_pollers(registry, &Default::default());
    let catalog = Catalog {
        registry,
        poller_meters: &discovery.meters,
        handler_meters: &pipeline::handler_meters(registry, &Default::default()),
        pollers_failed: false,
    };
    let config = pipeline::parse(
        std::path::Path::new("bench.yaml"),
        &pipeline_text(per_cycle),
        &catalog,
    )
    .expect("valid pipeline");
    let host = HostSettings {
        strict: true,
        ..HostSettings::default()
    };
    pipeline::wire(
        &config,
        registry,
        &discovery.meters,
        OutputMode::Publishers,
        &host,
        true,
    )
    .expect("wire")
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds = if full { 11 } else { 1 };
    let dir = build_workspace_release();
    let plugins = tempfile::tempdir().expect("temp dir");
    for lib in [
        "ceilo_plugin_transformers",
        "ceilo_fixture_bench_transformer",
    ] {
        std::fs::copy(
            dir.join(format!("lib{lib}.so")),
            plugins.path().join(format!("lib{lib}.so")),
        )
        .expect("copy");
    }
    let in_process = PluginRegistry::scan(plugins.path(), &ScanOptions::default()).expect("scan");
    assert!(
        in_process.rejected().is_empty(),
        "{:?}",
        in_process.rejected()
    );
    // The same libraries, every one in worker processes of the release `ceilo`.
    let isolated_options = ScanOptions {
        isolation: Some(IsolationPolicy {
            mode: IsolationMode::All,
            isolate: vec![],
            in_process: vec![],
            worker: WorkerSettings {
                program: dir.join("ceilo"),
                args: vec!["--log-level".into(), "warn".into()],
                memory_limit: None,
                call_timeout: Duration::from_secs(30),
            },
        }),
        ..ScanOptions::default()
    };
    let isolated = PluginRegistry::scan(plugins.path(), &isolated_options).expect("scan");

    println!("\npipeline throughput: synthetic poller → unit_conversion → rate_of_change → null publisher");
    println!("({rounds} rounds of {SAMPLES_PER_ROUND} samples per chain, medians, one thread)\n");
    println!("| samples/cycle | chain | samples/s | time vs. native | vs. in-process |");
    println!("|--------------:|-------|----------:|----------------:|---------------:|");
    for per_cycle in [1_000usize, 10_000] {
        let cycles = SAMPLES_PER_ROUND / per_cycle;
        let ffi = runtime(&in_process, per_cycle);
        let iso = runtime(&isolated, per_cycle);

        let p = |json: &str| Parameters::from_json(json).expect("params");
        let ctx = Context::default();
        let mut poller = Synthetic::create(&p("{}"), &ctx).expect("poller");
        let mut convert = UnitConversion::create(
            &p(r#"{"target": {"name": "bench.kilobytes", "unit": "KB", "scale": 0.0009765625}}"#),
            &ctx,
        )
        .expect("uc");
        let mut rate = RateOfChange::create(
            &p(r#"{"target": {"name": "bench.rate", "unit": "KB/s", "type": "gauge"}}"#),
            &ctx,
        )
        .expect("roc");
        let mut null = Null::create(&p("{}"), &ctx).expect("null");
        let resources = vec![format!("count:{per_cycle}")];

        // Warm every path (rate_of_change drops each series' first sample).
        ceilo_host::services::agent::run_once(&ffi);
        ceilo_host::services::agent::run_once(&iso);
        native_cycle(&mut poller, &mut convert, &mut rate, &mut null, &resources);

        let (mut native_t, mut ffi_t, mut iso_t) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let start = Instant::now();
            for _ in 0..cycles {
                native_cycle(&mut poller, &mut convert, &mut rate, &mut null, &resources);
            }
            native_t.push(start.elapsed());
            for (rt, times) in [(&ffi, &mut ffi_t), (&iso, &mut iso_t)] {
                let start = Instant::now();
                for _ in 0..cycles {
                    let errors = ceilo_host::services::agent::run_once(rt);
                    assert!(errors.is_empty(), "{errors:?}");
                }
                times.push(start.elapsed());
            }
        }
        let per_round = (per_cycle * cycles) as f64;
        let (n, f, i) = (median(native_t), median(ffi_t), median(iso_t));
        let rate_of = |d: Duration| per_round / d.as_secs_f64();
        println!(
            "| {per_cycle} | native (same plugin code linked in, called directly) | {:.2} M | 1.00x | |",
            rate_of(n) / 1e6
        );
        println!(
            "| {per_cycle} | ceilo pipeline, every plugin a loaded .so, in process | {:.2} M | {:.2}x | 1.00x |",
            rate_of(f) / 1e6,
            f.as_secs_f64() / n.as_secs_f64()
        );
        println!(
            "| {per_cycle} | ceilo pipeline, every plugin in its own worker process | {:.2} M | {:.2}x | {:.2}x throughput |",
            rate_of(i) / 1e6,
            i.as_secs_f64() / n.as_secs_f64(),
            rate_of(i) / rate_of(f)
        );
        assert!(null.taken > 0);
    }
}

fn native_cycle(
    poller: &mut Synthetic,
    convert: &mut UnitConversion,
    rate: &mut RateOfChange,
    null: &mut Null,
    resources: &[String],
) {
    let batch = poller.poll(resources).expect("poll");
    let batch = transform_batch(convert, batch).samples;
    let batch = transform_batch(rate, batch).samples;
    null.publish(&batch).expect("publish");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
