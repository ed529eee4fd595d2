//! Plugin ABI benchmark: `cargo bench -p ceilo-tests --bench plugin_abi`.
//!
//! (a) A trivial transformer on batches of 1, 100 and 10 000 samples, called through
//!     the loaded `.so` and, as the baseline, the very same code linked natively.
//! (b) Scanning a directory of 50 plugin libraries, against a baseline of plain
//!     `dlopen` of 50 copies of the same files.
//!
//! Both sides of each comparison run alternately in the same process, round after
//! round, and the medians are compared, because these machines are shared and noisy.

// The fixture library's code, compiled natively: the baseline runs the same code.
#[path = "../fixtures/bench-transformer/src/chain.rs"]
#[allow(dead_code)] // each benchmark uses part of it
mod chain;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ceilo_host::loader::{PluginRegistry, ScanOptions};
use ceilo_plugin_api::abi::current::glue::transform_batch;
use ceilo_plugin_api::{Context, Parameters, Plugin, Sample, SampleBatch, SampleType};
use ceilo_tests::build_workspace_release;
use chain::Scale;

const ROUNDS: usize = 15;
/// Samples per round and side, whatever the batch size.
const SAMPLES_PER_ROUND: usize = 100_000;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs it with no args: do
    // a quick smoke run then.
    let full = std::env::args().any(|a| a == "--bench");
    let dir = build_workspace_release();

    println!(
        "\nplugin ABI benchmark ({} rounds, medians; baseline measured in the same run)\n",
        if full { ROUNDS } else { 1 }
    );
    transformer_bench(&dir, full);
    println!();
    load_bench(&dir, full);
}

fn transformer_bench(dir: &Path, full: bool) {
    let so_dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        dir.join("libceilo_fixture_bench_transformer.so"),
        so_dir.path().join("libbench.so"),
    )
    .expect("copy bench plugin");
    let registry = PluginRegistry::scan(so_dir.path(), &ScanOptions::default()).expect("scan");
    let params = serde_json::json!({"factor": 2.0});
    let mut ffi = registry
        .create_transformer("bench_scale", &params, Context::default())
        .expect("create via the .so");
    let mut native = Scale::create(
        &Parameters::from_json(&params.to_string()).expect("params"),
        &Context::default(),
    )
    .expect("create natively");

    let template = Sample::new("cpu", SampleType::Cumulative, "ns", 1.0, "host-1")
        .with_project_id("p")
        .with_resource_metadata(serde_json::json!({"cpu_number": 4}));

    println!("(a) trivial transformer (volume × factor), samples/s");
    println!("| batch | native | through .so | .so / native time |");
    println!("|------:|-------:|------------:|------------------:|");
    for batch_size in [1usize, 100, 10_000] {
        let batches = SAMPLES_PER_ROUND / batch_size;
        let rounds = if full { ROUNDS } else { 1 };
        let mut native_t = Vec::new();
        let mut ffi_t = Vec::new();
        for _ in 0..rounds {
            native_t.push(timed(batches, batch_size, &template, |b| {
                transform_batch(&mut native, b).samples
            }));
            ffi_t.push(timed(batches, batch_size, &template, |b| {
                ffi.handle(b).samples
            }));
        }
        let (n, f) = (median(native_t), median(ffi_t));
        let rate = |d: Duration| (batches * batch_size) as f64 / d.as_secs_f64();
        println!(
            "| {batch_size} | {} | {} | {:.2}x |",
            human(rate(n)),
            human(rate(f)),
            f.as_secs_f64() / n.as_secs_f64()
        );
    }
}

/// Times `f` over `batches` pre-built batches; building and dropping them is not timed.
fn timed(
    batches: usize,
    size: usize,
    template: &Sample,
    mut f: impl FnMut(SampleBatch) -> SampleBatch,
) -> Duration {
    let inputs: Vec<SampleBatch> = (0..batches)
        .map(|_| (0..size).map(|_| template.clone()).collect())
        .collect();
    let mut outputs = Vec::with_capacity(batches);
    let start = Instant::now();
    for b in inputs {
        outputs.push(f(b));
    }
    let elapsed = start.elapsed();
    assert_eq!(
        outputs.iter().map(|o| o.len()).sum::<usize>(),
        batches * size
    );
    assert!(outputs.iter().all(|o| o.iter().all(|s| s.volume() == 2.0)));
    elapsed
}

fn load_bench(dir: &Path, full: bool) {
    let sources: Vec<PathBuf> = [
        "ceilo_plugin_system",
        "ceilo_plugin_transformers",
        "ceilo_plugin_publishers",
        "ceilo_plugin_notifications",
        "ceilo_fixture_bench_transformer",
    ]
    .iter()
    .map(|c| dir.join(format!("lib{c}.so")))
    .collect();
    // Each round loads fresh copies: a library already loaded would be found in the
    // dynamic linker's cache and cost nothing.
    let copies = |round: usize, tag: &str| {
        let d = tempfile::tempdir().expect("temp dir");
        for i in 0..50 {
            let src = &sources[i % sources.len()];
            std::fs::copy(src, d.path().join(format!("{tag}{round}_{i:02}.so"))).expect("copy");
        }
        d
    };
    let rounds = if full { 5 } else { 1 };
    let mut raw_t = Vec::new();
    let mut scan_t = Vec::new();
    let mut loaded = 0;
    for round in 0..rounds {
        let raw_dir = copies(round, "raw");
        let scan_dir = copies(round, "scan");

        let start = Instant::now();
        let mut files: Vec<PathBuf> = std::fs::read_dir(raw_dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        files.sort();
        for f in &files {
            // SAFETY: these are ceilo's own plugin libraries; their initialisers are
            // Rust's and harmless.
            let lib = unsafe { libloading::Library::new(f) }.expect("dlopen");
            std::mem::forget(lib); // like the host: never unloaded
        }
        raw_t.push(start.elapsed());

        let start = Instant::now();
        let registry =
            PluginRegistry::scan(scan_dir.path(), &ScanOptions::default()).expect("scan");
        scan_t.push(start.elapsed());
        loaded = registry.plugins().count();
        assert_eq!(
            registry.rejected().len(),
            45,
            "the 45 copies are refused as duplicates"
        );
    }
    let (raw, scan) = (median(raw_t), median(scan_t));
    println!("(b) 50 plugin libraries (5 distinct, 45 refused as duplicates; {loaded} plugins registered)");
    println!("| step | time | vs. baseline |");
    println!("|------|-----:|-------------:|");
    println!("| dlopen only (baseline) | {:.1} ms | 1.00x |", ms(raw));
    println!(
        "| ceilo scan: open, check ABI version and layout, list, register | {:.1} ms | {:.2}x |",
        ms(scan),
        ms(scan) / ms(raw)
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn human(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else {
        format!("{:.0} k", rate / 1e3)
    }
}
