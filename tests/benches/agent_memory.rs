//! Resident memory of an idle `ceilo agent`:
//! `cargo bench -p ceilo-tests --bench agent_memory`.
//!
//! A release `ceilo agent` on the repository's default `pipeline.yaml` (the system
//! pollers every 10 s, `cpu_util` by `rate_of_change`, `direct://` into the embedded
//! store) with the seven built-in libraries in its plugin directory. Its RSS is read
//! from `/proc/PID/status` every second from the end of the first cycle on, and the
//! median of the second half of the run is reported, with its highest reading (a
//! poll cycle maps its code back in) and the parts (the executable,
//! plugin libraries, system libraries, anonymous memory) read from
//! `/proc/PID/smaps` at the end. In the same run, alternated: the same agent with
//! `CEILO_KEEP_START_UP_PAGES=1` (start-up pages left resident: what ceilo did
//! before), and `sleep` (a process of libc alone: the floor). Target: ≤ 10 MB.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ceilo_tests::*;

/// KiB resident, and its parts.
#[derive(Debug, Default, Clone, Copy)]
struct Rss {
    total: u64,
    /// The highest reading of the second half (during a poll cycle).
    peak: u64,
    executable: u64,
    plugins: u64,
    system: u64,
    anonymous: u64,
}

fn status_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Splits what is resident by what is mapped: anonymous pages (heap, stacks,
/// written pages of any file) apart, file pages by file.
fn parts(pid: u32, exe: &Path, plugins: &Path) -> Rss {
    let mut rss = Rss::default();
    for m in mappings(pid) {
        rss.anonymous += m.anonymous_kib;
        rss.total += m.anonymous_kib + m.file_kib;
        if m.path.starts_with(&*plugins.to_string_lossy()) {
            rss.plugins += m.file_kib;
        } else if Path::new(&m.path) == exe {
            rss.executable += m.file_kib;
        } else {
            rss.system += m.file_kib;
        }
    }
    rss
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Runs `child` for `secs`, returns the median RSS of the second half and the parts
/// at the end.
fn observe(mut child: Child, secs: u64, exe: &Path, plugins: &Path) -> Rss {
    let pid = child.id();
    let start = Instant::now();
    let mut readings = Vec::new();
    while start.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(1));
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the process under test exited early: {status}");
        }
        if start.elapsed() >= Duration::from_secs(secs / 2) {
            readings.extend(status_rss(pid));
        }
    }
    let mut rss = parts(pid, exe, plugins);
    rss.peak = readings.iter().copied().max().unwrap_or(0);
    rss.total = median(readings);
    let _ = child.kill();
    let _ = child.wait();
    rss
}

fn agent(exe: &Path, plugins: &Path, data: &Path, keep_pages: bool) -> Child {
    let mut cmd = Command::new(exe);
    cmd.args(["agent", "--plugin-dir"])
        .arg(plugins)
        .arg("--data-dir")
        .arg(data)
        .arg("--pipeline")
        .arg(workspace_root().join("pipeline.yaml"))
        .current_dir(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if keep_pages {
        cmd.env("CEILO_KEEP_START_UP_PAGES", "1");
    }
    cmd.spawn().expect("start ceilo agent")
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 * 1024.0 / 1e6)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, secs) = if full { (3, 60) } else { (1, 25) };
    let dir = build_workspace_release();
    let exe = std::fs::canonicalize(dir.join("ceilo")).expect("ceilo built");
    let plugins = tempfile::tempdir().expect("temp dir");
    for c in BUILT_IN {
        let name = format!("lib{c}.so");
        std::fs::copy(dir.join(&name), plugins.path().join(&name)).expect("copy plugin");
    }
    let plugins_path = std::fs::canonicalize(plugins.path()).expect("plugin dir");

    let mut results: Vec<(&str, Vec<Rss>)> = vec![
        ("`sleep` (libc alone: the floor)", Vec::new()),
        (
            "ceilo agent, start-up pages kept resident (before)",
            Vec::new(),
        ),
        (
            "ceilo agent (pages handed back after start-up and after each cycle)",
            Vec::new(),
        ),
    ];
    for _ in 0..rounds {
        let sleep = Command::new("sleep")
            .arg("3600")
            .spawn()
            .expect("start sleep");
        results[0].1.push(observe(sleep, 5, &exe, &plugins_path));
        for (i, keep) in [(1, true), (2, false)] {
            let data = tempfile::tempdir().expect("temp dir");
            let child = agent(&exe, &plugins_path, data.path(), keep);
            results[i].1.push(observe(child, secs, &exe, &plugins_path));
        }
    }

    println!(
        "\nIdle RSS, default pipeline, {rounds} round(s) of {secs} s, medians of the second half\n"
    );
    println!(
        "| process | RSS | peak | executable | plugin libraries | system libraries | anonymous |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, runs) in &results {
        let pick = |f: fn(&Rss) -> u64| median(runs.iter().map(f).collect());
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} |",
            mb(pick(|r| r.total)),
            mb(pick(|r| r.peak)),
            mb(pick(|r| r.executable)),
            mb(pick(|r| r.plugins)),
            mb(pick(|r| r.system)),
            mb(pick(|r| r.anonymous)),
        );
    }
    let ceilo = median(results[2].1.iter().map(|r| r.total).collect());
    println!(
        "\ntarget ≤ 10 MB: {} ({})",
        if ceilo as f64 * 1024.0 <= 10e6 {
            "met"
        } else {
            "not met"
        },
        mb(ceilo)
    );
}
