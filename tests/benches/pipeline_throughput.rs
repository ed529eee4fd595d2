//! Pipeline throughput: `cargo bench -p ceilo-tests --bench pipeline_throughput`.
//!
//! A synthetic poller produces N samples per cycle → `unit_conversion` →
//! `rate_of_change` → a null publisher. Through the host's pipeline with every plugin
//! loaded from its `.so`, against the same chain linked natively into the benchmark
//! and called directly. Both run alternately in one process; medians are compared.

// The fixture library's code, compiled natively: the baseline runs the same code.
#[path = "../fixtures/bench-transformer/src/chain.rs"]
#[allow(dead_code)] // each benchmark uses part of it
mod chain;

use std::time::{Duration, Instant};

use ceilo_host::loader::{PluginRegistry, ScanOptions};
use ceilo_host::pipeline::{self, Catalog, HostSettings, OutputMode};
use ceilo_plugin_api::abi::v1_0::glue::transform_batch;
use ceilo_plugin_api::{Context, Parameters, Plugin, Poller, Publisher};
use ceilo_plugin_transformers::{RateOfChange, UnitConversion};
use ceilo_tests::build_workspace_release;
use chain::{Null, Synthetic};

const SAMPLES_PER_CYCLE: usize = 10_000;
const CYCLES_PER_ROUND: usize = 20;

const PIPELINE: &str = r#"
sources:
  - name: synthetic
    interval: 10
    meters: ["bench.counter"]
    resources: ["count:10000"]
    sinks: [chain]
sinks:
  - name: chain
    transformers:
      - name: unit_conversion
        parameters:
          target: {name: bench.kilobytes, unit: KB, scale: 0.0009765625}
      - name: rate_of_change
        parameters:
          target: {name: bench.rate, unit: KB/s, type: gauge}
    publishers: ["null://"]
"#;

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
    let registry = PluginRegistry::scan(plugins.path(), &ScanOptions::default()).expect("scan");
    assert!(registry.rejected().is_empty(), "{:?}", registry.rejected());
    let meters = pipeline::poller_meters(&registry);
    let catalog = Catalog {
        registry: &registry,
        poller_meters: &meters,
        handler_meters: &pipeline::handler_meters(&registry, &Default::default()),
    };
    let config = pipeline::parse(std::path::Path::new("bench.yaml"), PIPELINE, &catalog)
        .expect("valid pipeline");
    let runtime = pipeline::wire(
        &config,
        &registry,
        &meters,
        OutputMode::Publishers,
        &HostSettings::default(),
        true,
    )
    .expect("wire");

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
    let resources = vec![format!("count:{SAMPLES_PER_CYCLE}")];

    // Warm both paths (rate_of_change drops each series' first sample).
    ceilo_host::services::agent::run_once(&runtime);
    native_cycle(&mut poller, &mut convert, &mut rate, &mut null, &resources);

    let mut native_t = Vec::new();
    let mut ffi_t = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..CYCLES_PER_ROUND {
            native_cycle(&mut poller, &mut convert, &mut rate, &mut null, &resources);
        }
        native_t.push(start.elapsed());

        let start = Instant::now();
        for _ in 0..CYCLES_PER_ROUND {
            let errors = ceilo_host::services::agent::run_once(&runtime);
            assert!(errors.is_empty(), "{errors:?}");
        }
        ffi_t.push(start.elapsed());
    }
    let per_round = (SAMPLES_PER_CYCLE * CYCLES_PER_ROUND) as f64;
    let (n, f) = (median(native_t), median(ffi_t));
    let rate_of = |d: Duration| per_round / d.as_secs_f64();
    println!("\npipeline throughput: synthetic poller ({SAMPLES_PER_CYCLE} samples/cycle) → unit_conversion → rate_of_change → null publisher");
    println!("({rounds} rounds of {CYCLES_PER_ROUND} cycles, medians, one thread)\n");
    println!("| chain | samples/s | time vs. native |");
    println!("|-------|----------:|----------------:|");
    println!(
        "| native (same plugin code linked in, called directly) | {:.2} M | 1.00x |",
        rate_of(n) / 1e6
    );
    println!(
        "| ceilo pipeline, every plugin a loaded .so | {:.2} M | {:.2}x |",
        rate_of(f) / 1e6,
        f.as_secs_f64() / n.as_secs_f64()
    );
    assert!(null.taken > 0);
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
