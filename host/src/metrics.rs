//! ceilo's own counters, process-wide (what the collector and `direct://` store, what
//! they refuse), read by logs now and by the API's `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use crate::pipeline::SinkReport;

use crate::storage::WriteOutcome;

/// The counters.
#[derive(Debug, Default)]
pub struct Counters {
    stored: AtomicU64,
    duplicates: AtomicU64,
    signature_failures: AtomicU64,
    malformed: AtomicU64,
    store_errors: AtomicU64,
    unstorable: AtomicU64,
    polled: AtomicU64,
    published: AtomicU64,
    dropped: AtomicU64,
    publish_errors: AtomicU64,
    plugin_errors: Mutex<BTreeMap<String, u64>>,
    worker_restarts: Mutex<BTreeMap<String, u64>>,
    failed_plugins: Mutex<BTreeMap<(String, String), String>>,
    samples_cut: AtomicU64,
    poll_overruns: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    /// 1 until a reload is refused, then 0 until one is applied.
    last_reload_failed: std::sync::atomic::AtomicBool,
}

/// A plugin left out because it could not be created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedPlugin {
    /// `poller`, `transformer`…
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Why, with its library.
    pub reason: String,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Samples newly stored.
    pub stored: u64,
    /// Samples not stored again because their message id was already stored.
    pub duplicates: u64,
    /// Samples refused for a missing or wrong signature.
    pub signature_failures: u64,
    /// Messages or samples that could not be decoded.
    pub malformed: u64,
    /// Failed store writes (retried).
    pub store_errors: u64,
    /// Samples no store can hold: refused alone (dead-lettered by the collector).
    pub unstorable: u64,
}

impl Counters {
    /// Counts a write.
    pub fn stored(&self, o: &WriteOutcome) {
        self.stored.fetch_add(o.stored as u64, Relaxed);
        self.duplicates.fetch_add(o.duplicates as u64, Relaxed);
        self.unstorable.fetch_add(o.refused.len() as u64, Relaxed);
    }
    /// Counts samples refused for their signature.
    pub fn signature_failures(&self, n: u64) {
        self.signature_failures.fetch_add(n, Relaxed);
    }
    /// Counts undecodable messages or samples.
    pub fn malformed(&self, n: u64) {
        self.malformed.fetch_add(n, Relaxed);
    }
    /// Counts a failed write.
    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Relaxed);
    }
    /// Counts samples polled.
    pub fn polled(&self, n: u64) {
        self.polled.fetch_add(n, Relaxed);
    }
    /// Counts a sink's report.
    pub fn sink(&self, r: &SinkReport) {
        self.published.fetch_add(r.published, Relaxed);
        self.dropped.fetch_add(r.failed, Relaxed);
        self.publish_errors.fetch_add(r.publish_errors, Relaxed);
    }
    /// Counts a worker process lost (died or killed past a deadline).
    pub fn worker_restart(&self, who: &str) {
        if let Ok(mut m) = self.worker_restarts.lock() {
            *m.entry(who.to_owned()).or_default() += 1;
        }
    }
    /// Records a plugin left out because its creation failed.
    pub fn plugin_failed(&self, kind: &str, name: &str, reason: &str) {
        if let Ok(mut m) = self.failed_plugins.lock() {
            m.insert((kind.to_owned(), name.to_owned()), reason.to_owned());
        }
    }
    /// The plugins left out, by kind and name.
    pub fn failed_plugins(&self) -> Vec<FailedPlugin> {
        self.failed_plugins
            .lock()
            .map(|m| {
                m.iter()
                    .map(|((kind, name), reason)| FailedPlugin {
                        kind: kind.clone(),
                        name: name.clone(),
                        reason: reason.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    /// Forgets the plugins recorded as failed (before a reload records its own);
    /// returns them, to put back if the reload is refused.
    pub fn take_failed_plugins(&self) -> BTreeMap<(String, String), String> {
        self.failed_plugins
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }
    /// Puts back what [`Counters::take_failed_plugins`] took.
    pub fn restore_failed_plugins(&self, failed: BTreeMap<(String, String), String>) {
        if let Ok(mut m) = self.failed_plugins.lock() {
            *m = failed;
        }
    }
    /// Counts a configuration reload, applied or refused.
    pub fn reload(&self, applied: bool) {
        if applied {
            self.reloads.fetch_add(1, Relaxed);
        } else {
            self.reload_failures.fetch_add(1, Relaxed);
        }
        self.last_reload_failed.store(!applied, Relaxed);
    }
    /// Counts samples cut by the per-poll cap.
    pub fn samples_cut(&self, n: u64) {
        self.samples_cut.fetch_add(n, Relaxed);
    }
    /// Counts a poll that missed its deadline.
    pub fn poll_overrun(&self) {
        self.poll_overruns.fetch_add(1, Relaxed);
    }
    /// Counts a failed call into a plugin.
    pub fn plugin_error(&self, plugin: &str) {
        if let Ok(mut m) = self.plugin_errors.lock() {
            *m.entry(plugin.to_owned()).or_default() += 1;
        }
    }
    /// The counters in Prometheus' text format.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP ceilo_{name} {help}\n# TYPE ceilo_{name} counter\nceilo_{name} {v}"
            );
        };
        let s = self.snapshot();
        counter(
            "samples_polled_total",
            "Samples returned by pollers.",
            self.polled.load(Relaxed),
        );
        counter(
            "samples_published_total",
            "Samples handed to publishers.",
            self.published.load(Relaxed),
        );
        counter(
            "samples_dropped_total",
            "Samples transformers failed on.",
            self.dropped.load(Relaxed),
        );
        counter(
            "publish_errors_total",
            "Batches a publisher did not take.",
            self.publish_errors.load(Relaxed),
        );
        counter(
            "samples_cut_total",
            "Samples cut by the per-poll cap (--max-samples-per-poll).",
            self.samples_cut.load(Relaxed),
        );
        counter(
            "poll_overruns_total",
            "Polls that missed their deadline.",
            self.poll_overruns.load(Relaxed),
        );
        counter(
            "config_reloads_total",
            "Configuration and plugin reloads applied.",
            self.reloads.load(Relaxed),
        );
        counter(
            "config_reload_failures_total",
            "Reloads refused (invalid configuration): the one in force stayed.",
            self.reload_failures.load(Relaxed),
        );
        counter("samples_stored_total", "Samples newly stored.", s.stored);
        counter(
            "samples_duplicate_total",
            "Redelivered samples not stored again.",
            s.duplicates,
        );
        counter(
            "signature_failures_total",
            "Samples refused for their signature.",
            s.signature_failures,
        );
        counter(
            "malformed_total",
            "Messages or samples that could not be decoded.",
            s.malformed,
        );
        counter(
            "store_errors_total",
            "Failed store writes (retried).",
            s.store_errors,
        );
        counter(
            "samples_unstorable_total",
            "Samples no store can hold (a NUL in a metadata key, over 16 MiB), refused alone.",
            s.unstorable,
        );
        let _ = writeln!(
            out,
            "# HELP ceilo_config_last_reload_successful Whether the last reload was applied (1) or refused (0).\n# TYPE ceilo_config_last_reload_successful gauge\nceilo_config_last_reload_successful {}",
            u8::from(!self.last_reload_failed.load(Relaxed))
        );
        let _ = writeln!(out, "# HELP ceilo_plugin_errors_total Failed calls into a plugin.\n# TYPE ceilo_plugin_errors_total counter");
        if let Ok(m) = self.plugin_errors.lock() {
            for (plugin, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "ceilo_plugin_errors_total{{plugin=\"{}\"}} {n}",
                    label(plugin)
                );
            }
        }
        let _ = writeln!(out, "# HELP ceilo_worker_restarts_total Plugin worker processes lost (died, or killed past a deadline) and restarted.\n# TYPE ceilo_worker_restarts_total counter");
        if let Ok(m) = self.worker_restarts.lock() {
            for (who, n) in m.iter() {
                let _ = writeln!(
                    out,
                    "ceilo_worker_restarts_total{{plugin=\"{}\"}} {n}",
                    label(who)
                );
            }
        }
        let _ = writeln!(out, "# HELP ceilo_plugin_failed Plugins left out because they could not be created (1 each).\n# TYPE ceilo_plugin_failed gauge");
        for f in self.failed_plugins() {
            let _ = writeln!(
                out,
                "ceilo_plugin_failed{{kind=\"{}\",plugin=\"{}\",reason=\"{}\"}} 1",
                label(&f.kind),
                label(&f.name),
                label(&crate::redact::shorten(&f.reason, 200))
            );
        }
        out
    }
    /// The current values.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            stored: self.stored.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            signature_failures: self.signature_failures.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            store_errors: self.store_errors.load(Relaxed),
            unstorable: self.unstorable.load(Relaxed),
        }
    }
}

/// The process's counters.
pub fn global() -> &'static Counters {
    static C: OnceLock<Counters> = OnceLock::new();
    C.get_or_init(Counters::default)
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
