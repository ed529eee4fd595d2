//! ceilo's own counters, process-wide (what the collector and `direct://` store, what
//! they refuse), read by logs now and by the API's `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use crate::storage::WriteOutcome;

/// The counters.
#[derive(Debug, Default)]
pub struct Counters {
    stored: AtomicU64,
    duplicates: AtomicU64,
    signature_failures: AtomicU64,
    malformed: AtomicU64,
    store_errors: AtomicU64,
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
}

impl Counters {
    /// Counts a write.
    pub fn stored(&self, o: WriteOutcome) {
        self.stored.fetch_add(o.stored as u64, Relaxed);
        self.duplicates.fetch_add(o.duplicates as u64, Relaxed);
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
    /// The current values.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            stored: self.stored.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
            signature_failures: self.signature_failures.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            store_errors: self.store_errors.load(Relaxed),
        }
    }
}

/// The process's counters.
pub fn global() -> &'static Counters {
    static C: OnceLock<Counters> = OnceLock::new();
    C.get_or_init(Counters::default)
}
