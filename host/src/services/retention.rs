//! The retention sweeper: removes samples older than the store's retention (and
//! resources idle since), periodically. MongoDB's TTL indexes do the same on the
//! server; the sweep makes both stores behave alike.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::storage::Storage;

/// Sweeps every `period(retention)` until `shutdown`. Returns at once without a
/// retention.
pub async fn run(store: Arc<dyn Storage>, mut shutdown: watch::Receiver<bool>) {
    let Some(retention) = store.retention().0 else {
        return;
    };
    let every = period(retention);
    loop {
        match store.expire(chrono::Utc::now()).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(target: "ceilo::storage", "retention: {n} expired sample(s) removed from {}", store.describe())
            }
            Err(e) => {
                tracing::warn!(target: "ceilo::storage", "retention sweep failed (next in {every:?}): {e}")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// A tenth of the retention, between 10 s and 10 min.
pub fn period(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(10), Duration::from_secs(600))
}
