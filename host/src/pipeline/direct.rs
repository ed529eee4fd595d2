//! `direct://`: the host's own publisher, writing a sink's samples straight into the
//! configured store (single-node use: no broker, no collector). A batch is taken only
//! once the store has it durably; redelivered samples are deduped by the store.

use std::sync::Arc;
use std::time::Duration;

use ceilo_plugin_api::Sample;

use super::output::Output;
use super::retry::with_retries;
use crate::storage::Storage;

/// Tries per batch before the sink is told the batch was not taken.
pub(crate) const ATTEMPTS: u32 = 4;
/// The first pause between tries (it doubles).
pub(crate) const FIRST_PAUSE: Duration = Duration::from_millis(100);

/// An open store and the runtime its I/O belongs to (sinks run on blocking threads).
#[derive(Clone)]
pub struct StoreHandle {
    /// The store.
    pub store: Arc<dyn Storage>,
    /// The tokio runtime that opened it.
    pub runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.store.describe())
    }
}

/// Writes batches into the store.
pub struct DirectOutput {
    handle: StoreHandle,
}

impl DirectOutput {
    /// Writes into `handle`'s store.
    pub fn new(handle: StoreHandle) -> DirectOutput {
        DirectOutput { handle }
    }
}

impl Output for DirectOutput {
    fn describe(&self) -> String {
        format!("direct:// ({})", self.handle.store.describe())
    }

    fn publish(&mut self, batch: &[Sample]) -> Result<(), String> {
        let store = self.handle.store.clone();
        let outcome = with_retries("direct://", ATTEMPTS, FIRST_PAUSE, || {
            self.handle
                .runtime
                .block_on(store.record(batch))
                .map_err(|e| e.to_string())
        })?;
        if outcome.duplicates > 0 {
            tracing::debug!(target: "ceilo::pipeline", "direct://: {} duplicate(s) not stored again", outcome.duplicates);
        }
        for r in &outcome.refused {
            let id = batch.get(r.index).map_or("(none)", |s| s.message_id());
            tracing::warn!(target: "ceilo::pipeline", message_id = %id, "direct://: sample not stored: {}", r.reason);
        }
        crate::metrics::global().stored(&outcome);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        // Every taken batch is already committed.
        Ok(())
    }
}
