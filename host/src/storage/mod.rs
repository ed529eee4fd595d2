//! The host's storage: one interface, two stores chosen by URL.
//!
//! - `mongodb://host:port/dbname` — MongoDB (collections `meter` and `resource`);
//! - `sqlite:///path/to/file.db` or `sqlite:relative.db` (under the data directory) —
//!   the embedded store, one SQLite file, no server. This is the default:
//!   `<data-dir>/ceilo.db`.
//!
//! Both dedupe by `message_id` (delivery is at least once, storage is exactly once),
//! keep resources up to date per sample and expire data older than the retention.

mod condition;
mod embedded;
mod events;
mod limits;
mod metadata_keys;
mod model;
mod mongo;
mod mongo_events;
mod mongo_resources;
mod statistics;
mod url;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::events::{Event, Trait};
use async_trait::async_trait;
use ceilo_plugin_api::Sample;
use chrono::{DateTime, Utc};

pub use condition::{CondValue, Condition, Field, Op};
pub use embedded::EmbeddedStore;
pub use events::{trait_type_of_code, EventQuery, TraitDescription, TraitFilter};
pub use limits::{unstorable, MAX_DOCUMENT_BYTES};
pub use metadata_keys::{
    escape as escape_metadata_keys, path_problem as metadata_path_problem,
    unescape as unescape_metadata_keys,
};
pub use model::{
    Refusal, Resource, ResourceMeter, ResourceQuery, SampleQuery, StoredSample, WriteOutcome,
};
pub use mongo::MongoStore;
pub use statistics::{Aggregate, GroupBy, Statistics, StatisticsQuery};
pub use url::{StorageUrl, DEFAULT_EMBEDDED_FILE};

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The storage URL is not usable.
    #[error("storage URL `{url}`: {reason}")]
    Url {
        /// The URL (password masked).
        url: String,
        /// What is wrong and what would fix it.
        reason: String,
    },
    /// The store cannot be reached or refused the operation; worth retrying.
    #[error("{store}: {reason}")]
    Unavailable {
        /// Which store.
        store: String,
        /// Why.
        reason: String,
    },
    /// The store holds something it should not (a corrupt row, a foreign document).
    #[error("{store}: stored data is not readable: {reason}")]
    Corrupt {
        /// Which store.
        store: String,
        /// What.
        reason: String,
    },
}

/// How long data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention(pub Option<Duration>);

impl Retention {
    /// The oldest timestamp kept at `now` (none: everything is kept).
    pub fn cutoff(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let d = chrono::Duration::from_std(self.0?).ok()?;
        now.checked_sub_signed(d)
    }
}

/// A store of samples and resources.
#[async_trait]
pub trait Storage: Send + Sync {
    /// For logs: `embedded store /var/lib/ceilo/ceilo.db`.
    fn describe(&self) -> String;

    /// Stores a batch. Samples whose `message_id` is already stored are counted as
    /// duplicates, not stored again, and never make the write fail; samples no store
    /// can hold ([`unstorable`], or refused by the database for what they are) are
    /// returned as refusals, not stored, and never make the write fail either. `Ok`
    /// means every other sample of the batch is durably stored (now or before); on
    /// `Err` (an outage) the caller retries the whole batch later.
    async fn record(&self, samples: &[Sample]) -> Result<WriteOutcome, StorageError>;

    /// Samples matching `query`, newest first.
    async fn samples(&self, query: &SampleQuery) -> Result<Vec<StoredSample>, StorageError>;

    /// Statistics of the samples `query.filter` selects, per period and group,
    /// computed by the store; sorted by period start, then group.
    async fn statistics(&self, query: &StatisticsQuery) -> Result<Vec<Statistics>, StorageError>;

    /// Resources matching `query`, by id.
    async fn resources(&self, query: &ResourceQuery) -> Result<Vec<Resource>, StorageError>;

    /// Removes samples older than the retention and resources with no sample since,
    /// as of `now` (MongoDB's TTL indexes do this on their own; this sweeps what they
    /// leave). Returns the samples removed.
    async fn expire(&self, now: DateTime<Utc>) -> Result<u64, StorageError>;

    /// The retention the store applies.
    fn retention(&self) -> Retention;

    /// Stores events, each once by message id (a stored one counts as a duplicate);
    /// `Ok` means every event of the batch is durably stored, now or before.
    async fn record_events(&self, events: &[Event]) -> Result<WriteOutcome, StorageError>;

    /// Events matching `query`, oldest first (then by message id), with their traits
    /// by name.
    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StorageError>;

    /// Every stored event type, sorted.
    async fn event_types(&self) -> Result<Vec<String>, StorageError>;

    /// The trait names (with their types) of an event type's stored events: by type
    /// (text, int, float, datetime), then by name, as Panko's SQL store lists them.
    async fn trait_descriptions(
        &self,
        event_type: &str,
    ) -> Result<Vec<TraitDescription>, StorageError>;

    /// Every value of trait `name` over an event type's stored events, oldest first.
    async fn trait_values(&self, event_type: &str, name: &str) -> Result<Vec<Trait>, StorageError>;
}

/// Opens the store `url` names (none: the embedded default under `data_dir`),
/// creating its schema and indexes, and applying `retention` (MongoDB's TTL indexes
/// are set to it). For the processes that write and own the retention policy.
pub async fn open(
    url: Option<&str>,
    data_dir: &Path,
    retention: Retention,
) -> Result<Arc<dyn Storage>, StorageError> {
    open_with(url, data_dir, retention, true).await
}

/// Opens the store for a process that does not own the retention policy (the API):
/// TTL indexes are left as the writers set them.
pub async fn open_reader(
    url: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn Storage>, StorageError> {
    open_with(url, data_dir, Retention(None), false).await
}

async fn open_with(
    url: Option<&str>,
    data_dir: &Path,
    retention: Retention,
    manage_retention: bool,
) -> Result<Arc<dyn Storage>, StorageError> {
    match StorageUrl::parse(url, data_dir)? {
        StorageUrl::Embedded(path) => {
            let store = EmbeddedStore::open(&path, retention).await?;
            Ok(Arc::new(store))
        }
        StorageUrl::Mongo { url, database } => {
            let store = MongoStore::open(&url, &database, retention, manage_retention).await?;
            Ok(Arc::new(store))
        }
    }
}

/// Parses `--retention`: a duration such as `30d`, `12h`, `90m` (`0` or `none`: keep
/// everything).
pub fn parse_retention(text: &str) -> Result<Retention, String> {
    let t = text.trim();
    if t.is_empty() || t == "0" || t.eq_ignore_ascii_case("none") {
        return Ok(Retention(None));
    }
    let d = humantime::parse_duration(t).map_err(|e| {
        format!("invalid retention `{t}`: {e} (expected a duration such as 30d, 12h or 3600s, or `none`)")
    })?;
    if d < Duration::from_secs(1) {
        return Err(format!(
            "invalid retention `{t}`: must be at least 1s (or `none`)"
        ));
    }
    Ok(Retention(Some(d)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_parses_durations() {
        assert_eq!(parse_retention("none").unwrap(), Retention(None));
        assert_eq!(
            parse_retention("2d").unwrap(),
            Retention(Some(Duration::from_secs(2 * 86400)))
        );
        assert!(parse_retention("soon").unwrap_err().contains("30d"));
        let now = Utc::now();
        assert_eq!(
            Retention(Some(Duration::from_secs(60))).cutoff(now),
            Some(now - chrono::Duration::seconds(60))
        );
    }
}
