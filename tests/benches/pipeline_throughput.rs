//! Pipeline throughput: `cargo bench -p ceilo-tests --bench pipeline_throughput`.
//!
//! A synthetic poller produces N samples per cycle (1 000 and 10 000) →
//! `unit_conversion` → `rate_of_change` → a null publisher. Through the host's pipeline
//! with every plugin loaded from its `.so` in process, the same with every plugin in a
//! worker process of its own (`--isolation all`), and the same chain linked natively
//! into the benchmark and called directly. All run alternately in one process; medians
//! are compared. `CEILO_BENCH_SKIP_ISOLATED=1` leaves out the worker processes (for
//! profiling the in-process path alone); `CEILO_BENCH_PER_CYCLE=N` runs only the plain
//! chain at N samples per cycle (`N:metadata`: the `cpu_util` chain). Instructions per sample (README):
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect='*run_once*'` (or
//! `'*native_cycle*'`) on the bench binary with both variables set, total ÷ samples.

// The fixture library's code, compiled natively: the baseline runs the same code.
#[path = "../fixtures/bench-transformer/src/chain.rs"]
#[allow(dead_code)] // each benchmark uses part of it
mod chain;

use std::time::{Duration, Instant};

use ceilo_host::loader::{
    IsolationMode, IsolationPolicy, PluginRegistry, ScanOptions, WorkerSettings,
};
use ceilo_host::pipeline::{self, HostSettings};
use ceilo_plugin_api::abi::current::glue::transform_batch;
use ceilo_plugin_api::{Context, Parameters, Plugin, Poller, Publisher};
use ceilo_plugin_transformers::{RateOfChange, UnitConversion};
use ceilo_tests::{build_workspace_release, wire_pipeline};
use chain::{Null, Synthetic};

const SAMPLES_PER_ROUND: usize = 200_000;

/// One benchmarked chain.
#[derive(Clone, Copy)]
struct Case {
    per_cycle: usize,
    /// The rate is Ceilometer's `cpu_util` scale, reading `resource_metadata.cpu_number`
    /// of every sample (the poller gives each resource metadata).
    cpu_util: bool,
    /// Also through worker processes (slow: only where the figure is tracked).
    isolated: bool,
}

const PLAIN_RATE: &str = r#"{"target": {"name": "bench.rate", "unit": "KB/s", "type": "gauge"}}"#;
const CPU_UTIL_RATE: &str = r#"{"target": {"name": "cpu_util", "unit": "%", "type": "gauge", "scale": "100.0 / (10**9 * (resource_metadata.cpu_number or 1))"}}"#;

impl Case {
    fn resources(&self) -> String {
        let suffix = if self.cpu_util { ":metadata" } else { "" };
        format!("count:{}{suffix}", self.per_cycle)
    }
    fn rate_parameters(&self) -> &'static str {
        if self.cpu_util {
            CPU_UTIL_RATE
        } else {
            PLAIN_RATE
        }
    }
}

fn pipeline_text(case: Case) -> String {
    format!(
        r#"
sources:
  - name: synthetic
    interval: 10
    meters: ["bench.counter"]
    resources: ["{}"]
    sinks: [chain]
sinks:
  - name: chain
    transformers:
      - name: unit_conversion
        parameters:
          target: {{name: bench.kilobytes, unit: KB, scale: 0.0009765625}}
      - name: rate_of_change
        parameters: {}
    publishers: ["null://"]
"#,
        case.resources(),
        case.rate_parameters()
    )
}

/// The chain of `case` wired from `registry`.
fn runtime(registry: &PluginRegistry, case: Case) -> pipeline::Runtime {
    let host = HostSettings {
        strict: true,
        ..HostSettings::default()
    };
    wire_pipeline(registry, "bench.yaml", &pipeline_text(case), &host)
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
    let skip_isolated = std::env::var("CEILO_BENCH_SKIP_ISOLATED").as_deref() == Ok("1");

    println!("\npipeline throughput: synthetic poller → unit_conversion → rate_of_change → null publisher");
    println!("({rounds} rounds of {SAMPLES_PER_ROUND} samples per chain, medians, one thread)\n");
    println!("| samples/cycle | chain | samples/s | time vs. native | vs. in-process |");
    println!("|--------------:|-------|----------:|----------------:|---------------:|");
    let cases = [
        (1_000, false, true),
        (10_000, false, true),
        (100_000, false, false),
        (10_000, true, false),
    ]
    .map(|(per_cycle, cpu_util, isolated)| Case {
        per_cycle,
        cpu_util,
        isolated,
    });
    // For instruction counts under callgrind: one case only (`N`, or `N:metadata` for
    // the `cpu_util` chain).
    let only: Option<(usize, bool)> = std::env::var("CEILO_BENCH_PER_CYCLE").ok().and_then(|v| {
        let (n, metadata) = match v.strip_suffix(":metadata") {
            Some(n) => (n, true),
            None => (v.as_str(), false),
        };
        n.parse().ok().map(|n| (n, metadata))
    });
    let mut in_process_rates = Vec::new();
    for case in cases {
        if only.is_some_and(|o| o != (case.per_cycle, case.cpu_util)) {
            continue;
        }
        let per_cycle = case.per_cycle;
        let skip_isolated = skip_isolated || !case.isolated;
        let cycles = (SAMPLES_PER_ROUND / per_cycle).max(2);
        let ffi = runtime(&in_process, case);
        let iso = runtime(&isolated, case);

        let p = |json: &str| Parameters::from_json(json).expect("params");
        let ctx = Context::default();
        let mut poller = Synthetic::create(&p("{}"), &ctx).expect("poller");
        let mut convert = UnitConversion::create(
            &p(r#"{"target": {"name": "bench.kilobytes", "unit": "KB", "scale": 0.0009765625}}"#),
            &ctx,
        )
        .expect("uc");
        let mut rate = RateOfChange::create(&p(case.rate_parameters()), &ctx).expect("roc");
        let mut null = Null::create(&p("{}"), &ctx).expect("null");
        let resources = vec![case.resources()];

        // Warm every path (rate_of_change drops each series' first sample).
        ceilo_host::services::agent::run_once(&ffi);
        if !skip_isolated {
            ceilo_host::services::agent::run_once(&iso);
        }
        native_cycle(&mut poller, &mut convert, &mut rate, &mut null, &resources);

        let (mut native_t, mut ffi_t, mut iso_t) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let start = Instant::now();
            for _ in 0..cycles {
                native_cycle(&mut poller, &mut convert, &mut rate, &mut null, &resources);
            }
            native_t.push(start.elapsed());
            for (rt, times) in [(&ffi, &mut ffi_t), (&iso, &mut iso_t)] {
                if skip_isolated && std::ptr::eq(rt, &iso) {
                    times.push(Duration::ZERO);
                    continue;
                }
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
        let chain = if case.cpu_util {
            ", cpu_util scale reading metadata"
        } else {
            ""
        };
        println!(
            "| {per_cycle} | native (same plugin code linked in, called directly){chain} | {:.2} M | 1.00x | |",
            rate_of(n) / 1e6
        );
        println!(
            "| {per_cycle} | ceilo pipeline, every plugin a loaded .so, in process{chain} | {:.2} M | {:.2}x | 1.00x |",
            rate_of(f) / 1e6,
            f.as_secs_f64() / n.as_secs_f64()
        );
        if !skip_isolated {
            println!(
                "| {per_cycle} | ceilo pipeline, every plugin in its own worker process | {:.2} M | {:.2}x | {:.2}x throughput |",
                rate_of(i) / 1e6,
                i.as_secs_f64() / n.as_secs_f64(),
                rate_of(i) / rate_of(f)
            );
        }
        if !case.cpu_util {
            in_process_rates.push((per_cycle, rate_of(f)));
        }
        assert!(null.taken > 0);
    }
    if let (Some(first), Some(last)) = (in_process_rates.first(), in_process_rates.last()) {
        println!(
            "\nin process, {} vs {} samples per cycle: {:.2}x the time per sample",
            last.0,
            first.0,
            first.1 / last.1
        );
    }
}

#[inline(never)] // a symbol of its own, for callgrind's --toggle-collect
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
