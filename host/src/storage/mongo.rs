//! The MongoDB store, in Ceilometer's layout: collection `meter` (one document per
//! sample, unique `message_id`) and `resource` (one per resource id and project,
//! kept by `mongo_resources`).
//!
//! Timestamps are kept twice: as BSON dates (`timestamp`, what TTL indexes and people
//! read) and as microseconds (`timestamp_us`, what queries sort on), because a BSON
//! date only holds milliseconds and a sample must come back exactly as written.
//! Metadata keys MongoDB cannot hold are escaped (see `metadata_keys`). A batch
//! acknowledged by `record` survives a crash: its samples' insert asks for the journal
//! (`j: true`), and the resource writes made before it are synced with it.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use async_trait::async_trait;
use ceilo_plugin_api::Sample;
use chrono::{DateTime, Utc};
use futures_lite::StreamExt;
use mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document};
use mongodb::error::ErrorKind;
use mongodb::options::{ClientOptions, CollectionOptions, FindOptions, IndexOptions, WriteConcern};
use mongodb::{Client, Collection, IndexModel};
use serde_json::{Map, Value};

use super::embedded::describe_retention;
use super::limits;
use super::metadata_keys;
use super::model::{from_micros, sample_type, Refusal};
use super::mongo_events;
use super::mongo_resources::{Insert, Journal, Resources};
use super::statistics::{finish, period_bounds, Aggregate, GroupBy};
use super::{
    CondValue, EventQuery, Field, Resource, ResourceMeter, ResourceQuery, Retention, SampleQuery,
    Statistics, StatisticsQuery, Storage, StorageError, StoredSample, TraitDescription,
    WriteOutcome,
};
use crate::events::{Event, Trait};
use crate::redact::{mask_url, shorten};

pub(super) const DUPLICATE_KEY: i32 = 11000;
/// Per-document write errors about the document itself (bad value or field name,
/// too large, failed validation): the same document fails the same way every time,
/// so it is refused alone instead of retried.
const DOCUMENT_ERRORS: [i32; 9] = [2, 9, 52, 55, 56, 57, 121, 10334, 17280];
/// Write errors other than duplicates are retried this many times within one call.
const WRITE_ATTEMPTS: usize = 3;
const METER_TTL_INDEX: &str = "meter_ttl";
const RESOURCE_TTL_INDEX: &str = "resource_ttl";
/// The single-field index on `resource.resource_id` of earlier versions (see
/// `drop_legacy_resource_index`).
const LEGACY_RESOURCE_ID_INDEX: &str = "resource_id";
/// The server's code for dropping an index that does not exist.
const INDEX_NOT_FOUND: i32 = 27;

/// The MongoDB store.
pub struct MongoStore {
    shown: String,
    meter: Collection<Document>,
    resource: Collection<Document>,
    resources: Resources,
    event: Collection<Document>,
    retention: Retention,
}

impl MongoStore {
    /// Connects, checks the server answers, and creates the indexes (idempotently);
    /// with `manage_retention`, sets, changes or drops the TTL indexes to match
    /// `retention`.
    pub async fn open(
        url: &str,
        database: &str,
        retention: Retention,
        manage_retention: bool,
    ) -> Result<MongoStore, StorageError> {
        let shown = format!("MongoDB {}", mask_url(url));
        let fail = |reason: String| StorageError::Unavailable {
            store: shown.clone(),
            reason,
        };
        let mut options = ClientOptions::parse(url)
            .await
            .map_err(|e| StorageError::Url {
                url: mask_url(url),
                reason: e.to_string(),
            })?;
        if options.server_selection_timeout.is_none() {
            // Fail a write within seconds when the server is down, so callers back off
            // and say so instead of hanging for the driver's default 30 s.
            options.server_selection_timeout = Some(Duration::from_secs(5));
        }
        if options.app_name.is_none() {
            options.app_name = Some("ceilo".into());
        }
        let client = Client::with_options(options).map_err(|e| fail(e.to_string()))?;
        let db = client.database(database);
        db.run_command(doc! { "ping": 1 })
            .await
            .map_err(|e| fail(format!("cannot reach the server: {e}")))?;
        let durable = CollectionOptions::builder()
            .write_concern(WriteConcern::builder().journal(true).build())
            .build();
        let store = MongoStore {
            shown: format!("{shown} (database {database})"),
            meter: db.collection_with_options("meter", durable.clone()),
            resource: db.collection_with_options("resource", durable.clone()),
            resources: Resources::new(
                db.collection_with_options("resource", durable.clone()),
                db.clone(),
            ),
            event: db.collection_with_options("event", durable),
            retention,
        };
        store.create_indexes(manage_retention).await?;
        store.rekey_resources().await?;
        store.key_resources().await?;
        tracing::info!(target: "ceilo::storage", "{} (retention: {})", store.shown, describe_retention(retention));
        Ok(store)
    }

    fn unavailable(&self, e: impl std::fmt::Display) -> StorageError {
        StorageError::Unavailable {
            store: self.shown.clone(),
            reason: e.to_string(),
        }
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> StorageError {
        StorageError::Corrupt {
            store: self.shown.clone(),
            reason: e.to_string(),
        }
    }

    /// Resources written before they were keyed by project (`_id` the resource id
    /// alone, where the newest sample's project took the record over) are rebuilt from
    /// the samples, per (resource, project). Once: new records carry `resource_id`.
    async fn rekey_resources(&self) -> Result<(), StorageError> {
        let old = doc! { "resource_id": { "$exists": false } };
        let found = self
            .resource
            .find_one(old.clone())
            .await
            .map_err(|e| self.unavailable(e))?;
        if found.is_none() {
            return Ok(());
        }
        tracing::info!(target: "ceilo::storage", "{}: resources are now kept per project; rebuilding them from the samples", self.shown);
        // Rebuilt first, old records removed last: a rebuild cut short (the upserts
        // are idempotent) is simply run again at the next open. Upserts only: the
        // unique key is made after this, so an insert would not be refused.
        let mut cursor = self
            .meter
            .find(doc! {})
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut batch = Vec::with_capacity(1000);
        while let Some(d) = cursor.next().await {
            let d = d.map_err(|e| self.unavailable(e))?;
            batch.push(sample_from(&d).map_err(|e| self.corrupt(e))?.sample);
            if batch.len() == 1000 {
                self.upsert_resources(&batch, Insert::Never).await?;
                batch.clear();
            }
        }
        self.upsert_resources(&batch, Insert::Never).await?;
        self.resource
            .delete_many(old)
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(())
    }

    /// Merges a batch into the resource records.
    async fn upsert_resources(
        &self,
        samples: &[Sample],
        insert: Insert,
    ) -> Result<(), StorageError> {
        self.resources
            .upsert(samples, metadata_document, insert, Journal::Each)
            .await
            .map_err(|e| self.unavailable(e))
    }

    /// The unique index resource records are found by. Made after `rekey_resources`,
    /// which removes the records of the earliest layout (they had no `resource_id`).
    async fn key_resources(&self) -> Result<(), StorageError> {
        let index = IndexModel::builder()
            .keys(doc! { "resource_id": 1, "project_id": 1 })
            .options(
                IndexOptions::builder()
                    .name("resource_key".to_owned())
                    .unique(true)
                    .build(),
            )
            .build();
        let e = match self.resource.create_index(index).await {
            Ok(_) => return self.drop_legacy_resource_index().await,
            Err(e) => e,
        };
        let duplicate = match e.kind.as_ref() {
            // The server names the pair after "dup key".
            ErrorKind::Command(c) if c.code == DUPLICATE_KEY => Some(
                c.message
                    .find("dup key")
                    .map_or(c.message.as_str(), |at| &c.message[at..]),
            ),
            _ => None,
        };
        Err(self.unavailable(if let Some(pair) = duplicate {
            // Only a writer without the key (an older ceilo still running, another
            // tool) makes these; which copy is right cannot be told from here.
            format!(
                "cannot create the unique index `resource_key` on `resource`: two documents \
                 have the same resource_id and project_id ({}); stop other writers, keep \
                 the one of each pair with the newest `last_us`, delete the other and start \
                 again",
                shorten(pair, 200)
            )
        } else {
            format!(
                "cannot create index `resource_key` on `resource`: {}",
                shorten(&e.to_string(), 300)
            )
        }))
    }

    /// Drops the single-field `resource_id` index earlier versions made: the unique
    /// key starts with `resource_id`, so it answers the same queries, and every index
    /// costs each write of a record (on SecantusDB even when the write leaves the
    /// indexed fields alone: README "Benchmarks"). Only a cost: a store that cannot
    /// drop it (a role without `dropIndex`) still opens, with a warning.
    async fn drop_legacy_resource_index(&self) -> Result<(), StorageError> {
        match self.resource.drop_index(LEGACY_RESOURCE_ID_INDEX).await {
            Ok(()) => {}
            // Not there: a store made since, or another ceilo dropped it first.
            Err(e) if matches!(e.kind.as_ref(), ErrorKind::Command(c) if c.code == INDEX_NOT_FOUND) =>
                {}
            Err(e) => tracing::warn!(
                target: "ceilo::storage",
                "{}: cannot drop the redundant index `{LEGACY_RESOURCE_ID_INDEX}` of `resource` \
                 (it only slows writes; drop it by hand): {}",
                self.shown,
                shorten(&e.to_string(), 300)
            ),
        }
        Ok(())
    }

    async fn create_indexes(&self, manage_retention: bool) -> Result<(), StorageError> {
        let named = |keys: Document, name: &str, unique: bool| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .name(name.to_owned())
                        .unique(unique.then_some(true))
                        .build(),
                )
                .build()
        };
        self.meter
            .create_indexes([
                named(doc! { "message_id": 1 }, "meter_message_id", true),
                named(
                    doc! { "counter_name": 1, "resource_id": 1, "timestamp_us": -1 },
                    "meter_name_resource_time",
                    false,
                ),
                named(
                    doc! { "project_id": 1, "timestamp_us": -1 },
                    "meter_project_time",
                    false,
                ),
            ])
            .await
            .map_err(|e| self.unavailable(format!("cannot create indexes on `meter`: {e}")))?;
        self.event
            .create_indexes([
                named(
                    doc! { "event_type": 1, "generated_us": 1 },
                    "event_type_generated",
                    false,
                ),
                named(doc! { "generated_us": 1 }, "event_generated", false),
                named(
                    doc! { "traits.trait_name": 1, "traits.trait_value": 1 },
                    "event_traits",
                    false,
                ),
            ])
            .await
            .map_err(|e| self.unavailable(format!("cannot create indexes on `event`: {e}")))?;
        self.resource
            .create_indexes([named(doc! { "project_id": 1 }, "resource_project", false)])
            .await
            .map_err(|e| self.unavailable(format!("cannot create indexes on `resource`: {e}")))?;
        if !manage_retention {
            return Ok(());
        }
        self.set_ttl(&self.meter, METER_TTL_INDEX, "timestamp")
            .await?;
        self.set_ttl(&self.resource, RESOURCE_TTL_INDEX, "last_sample_timestamp")
            .await
    }

    /// Makes the TTL index match the retention: created, changed (dropped and
    /// recreated: what every mongod accepts) or dropped.
    async fn set_ttl(
        &self,
        coll: &Collection<Document>,
        name: &str,
        field: &str,
    ) -> Result<(), StorageError> {
        let want = self.retention.0.map(|d| d.as_secs().max(1));
        let mut current: Option<Option<i64>> = None;
        let mut cursor = coll
            .list_indexes()
            .await
            .map_err(|e| self.unavailable(format!("cannot list indexes: {e}")))?;
        while let Some(ix) = cursor.next().await {
            let ix = ix.map_err(|e| self.unavailable(e))?;
            if ix.options.as_ref().and_then(|o| o.name.as_deref()) == Some(name) {
                let secs = ix
                    .options
                    .as_ref()
                    .and_then(|o| o.expire_after)
                    .map(|d| d.as_secs() as i64);
                current = Some(secs);
            }
        }
        if current == Some(want.map(|s| s as i64)) || (current.is_none() && want.is_none()) {
            return Ok(());
        }
        if current.is_some() {
            coll.drop_index(name)
                .await
                .map_err(|e| self.unavailable(format!("cannot drop index {name}: {e}")))?;
        }
        if let Some(secs) = want {
            let model = IndexModel::builder()
                .keys(doc! { field: 1 })
                .options(
                    IndexOptions::builder()
                        .name(name.to_owned())
                        .expire_after(Duration::from_secs(secs))
                        .build(),
                )
                .build();
            coll.create_index(model)
                .await
                .map_err(|e| self.unavailable(format!("cannot create index {name}: {e}")))?;
        }
        Ok(())
    }

    /// Inserts `docs`; refusals in the outcome are indexed in `docs`.
    async fn insert(&self, docs: Vec<Document>) -> Result<WriteOutcome, StorageError> {
        let mut outcome = WriteOutcome::default();
        let mut pending: Vec<usize> = (0..docs.len()).collect();
        // Inserted by an earlier attempt whose durability was not confirmed (a
        // write-concern error): a duplicate-key error on those is our own write.
        let mut ours: HashSet<usize> = HashSet::new();
        let mut last_error = String::new();
        for _ in 0..WRITE_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            let batch: Vec<&Document> = pending.iter().map(|&i| &docs[i]).collect();
            match self.meter.insert_many(batch).ordered(false).await {
                Ok(_) => {
                    outcome.stored += pending.len();
                    pending.clear();
                }
                Err(e) => {
                    let ErrorKind::InsertMany(ime) = e.kind.as_ref() else {
                        return Err(self.unavailable(e));
                    };
                    let mut failed: HashSet<usize> = HashSet::new();
                    let mut retry = Vec::new();
                    for we in ime.write_errors.iter().flatten() {
                        let Some(&i) = pending.get(we.index) else {
                            continue;
                        };
                        failed.insert(i);
                        if we.code == DUPLICATE_KEY {
                            if ours.contains(&i) {
                                outcome.stored += 1;
                            } else {
                                outcome.duplicates += 1;
                            }
                        } else if DOCUMENT_ERRORS.contains(&we.code) {
                            outcome.refused.push(Refusal {
                                index: i,
                                reason: format!(
                                    "MongoDB refused the document (error {}): {}",
                                    we.code,
                                    shorten(&we.message, 160)
                                ),
                            });
                        } else {
                            last_error = format!("write error {}: {}", we.code, we.message);
                            retry.push(i);
                        }
                    }
                    let written: Vec<usize> = pending
                        .iter()
                        .copied()
                        .filter(|i| !failed.contains(i))
                        .collect();
                    if let Some(wce) = &ime.write_concern_error {
                        // Written but not confirmed durable: write them again; the
                        // unique index turns that into a confirmation.
                        last_error = format!("write concern error {}: {}", wce.code, wce.message);
                        ours.extend(written.iter().copied());
                        retry.extend(written);
                        retry.sort_unstable();
                    } else {
                        outcome.stored += written.len();
                    }
                    pending = retry;
                }
            }
        }
        if pending.is_empty() {
            outcome.refused.sort_unstable_by_key(|r| r.index);
            Ok(outcome)
        } else {
            Err(self.unavailable(format!(
                "{} sample(s) not stored after {WRITE_ATTEMPTS} attempts: {last_error}",
                pending.len()
            )))
        }
    }
}

pub(super) fn bson_date(us: i64) -> BsonDateTime {
    BsonDateTime::from_millis(us.div_euclid(1000))
}

/// The sample's metadata as BSON, keys escaped. Integers beyond i64 (which BSON cannot
/// hold) become doubles.
fn metadata_document(s: &Sample) -> Result<Document, String> {
    let escaped = metadata_keys::escape(&Value::Object(s.resource_metadata()));
    match mongodb::bson::to_bson(&fit_integers(escaped)).map_err(|e| e.to_string())? {
        Bson::Document(d) => Ok(d),
        _ => Err("resource_metadata is not an object".into()),
    }
}

fn fit_integers(v: Value) -> Value {
    match v {
        Value::Number(n) if n.is_u64() && n.as_i64().is_none() => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, fit_integers(v))).collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(fit_integers).collect()),
        other => other,
    }
}

fn sample_document(s: &Sample, recorded_at: DateTime<Utc>) -> Result<Document, String> {
    let ts = s.timestamp_micros();
    let rec = recorded_at.timestamp_micros();
    Ok(doc! {
        "message_id": s.message_id(),
        "counter_name": s.name(),
        "counter_type": s.sample_type().as_str(),
        "counter_unit": s.unit(),
        "counter_volume": s.volume(),
        "user_id": s.user_id(),
        "project_id": s.project_id(),
        "resource_id": s.resource_id(),
        "source": s.source(),
        "timestamp": bson_date(ts),
        "timestamp_us": ts,
        "recorded_at": bson_date(rec),
        "recorded_at_us": rec,
        "resource_metadata": metadata_document(s)?,
        "monotonic_time": s.monotonic_time(),
    })
}

/// The size of `s`'s document in BSON (none: it cannot be encoded).
pub(super) fn document_size(s: &Sample) -> Option<usize> {
    let d = sample_document(s, Utc::now()).ok()?;
    mongodb::bson::to_vec(&d).ok().map(|v| v.len())
}

fn metadata_from(d: Option<&Document>) -> Map<String, Value> {
    let Some(d) = d else {
        return Map::new();
    };
    match metadata_keys::unescape(&Bson::Document(d.clone()).into_relaxed_extjson()) {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn opt_str(d: &Document, key: &str) -> Option<String> {
    d.get_str(key).ok().map(str::to_owned)
}

fn sample_from(d: &Document) -> Result<StoredSample, String> {
    let text = |k: &str| {
        d.get_str(k)
            .map(str::to_owned)
            .map_err(|e| format!("{k}: {e}"))
    };
    let int = |k: &str| d.get_i64(k).map_err(|e| format!("{k}: {e}"));
    let volume = match d.get("counter_volume") {
        Some(Bson::Double(f)) => *f,
        Some(Bson::Int32(i)) => f64::from(*i),
        Some(Bson::Int64(i)) => *i as f64,
        other => return Err(format!("counter_volume: not a number ({other:?})")),
    };
    let mut s = Sample::new(
        text("counter_name")?,
        sample_type(&text("counter_type")?)?,
        text("counter_unit")?,
        volume,
        text("resource_id")?,
    );
    s.set_message_id(text("message_id")?);
    s.set_user_id(opt_str(d, "user_id"));
    s.set_project_id(opt_str(d, "project_id"));
    s.set_source(text("source")?);
    s.set_timestamp(from_micros(int("timestamp_us")?));
    s.set_resource_metadata(metadata_from(d.get_document("resource_metadata").ok()));
    s.set_monotonic_time(d.get_f64("monotonic_time").ok());
    Ok(StoredSample {
        sample: s,
        recorded_at: from_micros(int("recorded_at_us")?),
    })
}

fn resource_from(d: &Document) -> Result<Resource, String> {
    let id = d
        .get_str("resource_id")
        .map_err(|e| format!("resource_id: {e}"))?
        .to_owned();
    let int = |k: &str| d.get_i64(k).map_err(|e| format!("resource {id}: {k}: {e}"));
    let mut meters: Vec<ResourceMeter> = d
        .get_array("meter")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .filter_map(|m| {
                    Some(ResourceMeter {
                        name: m.get_str("counter_name").ok()?.to_owned(),
                        sample_type: m.get_str("counter_type").ok()?.to_owned(),
                        unit: m.get_str("counter_unit").ok()?.to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    meters.sort();
    Ok(Resource {
        project_id: opt_str(d, "project_id"),
        user_id: opt_str(d, "user_id"),
        source: opt_str(d, "source").unwrap_or_default(),
        first_sample_timestamp: from_micros(int("first_us")?),
        last_sample_timestamp: from_micros(int("last_us")?),
        metadata: metadata_from(d.get_document("metadata").ok()),
        meters,
        resource_id: id,
    })
}

/// The `find`/`$match` filter for a sample query.
fn filter_document(q: &SampleQuery) -> Document {
    let mut filter = Document::new();
    for (key, v) in [
        ("counter_name", &q.meter),
        ("resource_id", &q.resource_id),
        ("project_id", &q.project_id),
        ("user_id", &q.user_id),
        ("source", &q.source),
        ("message_id", &q.message_id),
    ] {
        if let Some(v) = v {
            filter.insert(key, v.as_str());
        }
    }
    let mut range = Document::new();
    if let Some(t) = q.start {
        range.insert("$gte", t.timestamp_micros());
    }
    if let Some(t) = q.end {
        range.insert("$lt", t.timestamp_micros());
    }
    if !range.is_empty() {
        filter.insert("timestamp_us", range);
    }
    let mut and: Vec<Document> = Vec::new();
    for c in &q.conditions {
        let path = match &c.field {
            Field::Metadata(p) => format!(
                "resource_metadata.{}",
                p.split('.')
                    .map(metadata_keys::escape_key)
                    .collect::<Vec<_>>()
                    .join(".")
            ),
            Field::Timestamp => "timestamp_us".to_owned(),
            other => other.column().unwrap_or("resource_id").to_owned(),
        };
        let value = match &c.value {
            CondValue::Text(t) => Bson::String(t.clone()),
            CondValue::Number(n) => Bson::Double(*n),
            CondValue::Bool(b) => Bson::Boolean(*b),
            CondValue::Time(t) => Bson::Int64(t.timestamp_micros()),
        };
        let mut cmp = Document::new();
        cmp.insert(c.op.mongo(), value);
        let mut one = Document::new();
        one.insert(path, cmp);
        and.push(one);
    }
    if !and.is_empty() {
        filter.insert("$and", and);
    }
    filter
}

/// The field path of a group (metadata keys escaped as stored).
fn group_path(g: &GroupBy) -> String {
    match g {
        GroupBy::Metadata(path) => format!(
            "$resource_metadata.{}",
            path.split('.')
                .map(metadata_keys::escape_key)
                .collect::<Vec<_>>()
                .join(".")
        ),
        other => format!("${}", other.column().unwrap_or("resource_id")),
    }
}

fn number(v: Option<&Bson>) -> f64 {
    match v {
        Some(Bson::Double(f)) => *f,
        Some(Bson::Int32(i)) => f64::from(*i),
        Some(Bson::Int64(i)) => *i as f64,
        _ => 0.0,
    }
}

fn integer(v: Option<&Bson>) -> i64 {
    match v {
        Some(Bson::Double(f)) => *f as i64,
        Some(Bson::Int32(i)) => i64::from(*i),
        Some(Bson::Int64(i)) => *i,
        _ => 0,
    }
}

impl MongoStore {
    /// One aggregation pipeline: `$match`, then `$group` by unit, period and groups.
    async fn aggregate_statistics(
        &self,
        q: &StatisticsQuery,
    ) -> Result<Vec<Statistics>, StorageError> {
        let filter = filter_document(&q.filter);
        let origin = match (q.period, q.filter.start) {
            (None, _) => None,
            (Some(_), Some(t)) => Some(t.timestamp_micros()),
            (Some(_), None) => {
                let first = self
                    .meter
                    .find_one(filter.clone())
                    .sort(doc! { "timestamp_us": 1 })
                    .projection(doc! { "timestamp_us": 1 })
                    .await
                    .map_err(|e| self.unavailable(e))?;
                match first {
                    Some(d) => Some(d.get_i64("timestamp_us").map_err(|e| self.corrupt(e))?),
                    None => return Ok(Vec::new()),
                }
            }
        };
        let mut id = doc! { "unit": "$counter_unit" };
        if let (Some(period), Some(origin)) = (q.period, origin) {
            let len = (period.max(1) as i64).saturating_mul(1_000_000);
            id.insert(
                "bucket",
                doc! { "$floor": { "$divide": [{ "$subtract": ["$timestamp_us", origin] }, len] } },
            );
        }
        for (i, g) in q.groupby.iter().enumerate() {
            id.insert(format!("g{i}"), group_path(g));
        }
        let mut group = doc! {
            "_id": id,
            "count": { "$sum": 1 },
            "min": { "$min": "$counter_volume" },
            "max": { "$max": "$counter_volume" },
            "sum": { "$sum": "$counter_volume" },
            "tsmin": { "$min": "$timestamp_us" },
            "tsmax": { "$max": "$timestamp_us" },
        };
        for (i, a) in q.aggregates.iter().enumerate() {
            match a {
                Aggregate::Stddev => {
                    group.insert(format!("a{i}"), doc! { "$stdDevPop": "$counter_volume" });
                }
                Aggregate::Cardinality(g) => {
                    group.insert(format!("a{i}"), doc! { "$addToSet": group_path(g) });
                }
            }
        }
        let mut cursor = self
            .meter
            .aggregate([doc! { "$match": filter }, doc! { "$group": group }])
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut out = Vec::new();
        while let Some(d) = cursor.next().await {
            let d = d.map_err(|e| self.unavailable(e))?;
            let key = d.get_document("_id").map_err(|e| self.corrupt(e))?;
            let count = integer(d.get("count")).max(0) as u64;
            let sum = number(d.get("sum"));
            let (tsmin, tsmax) = (integer(d.get("tsmin")), integer(d.get("tsmax")));
            let (period_start, period_end) = match (q.period, origin) {
                (Some(period), Some(origin)) => {
                    period_bounds(origin, period, integer(key.get("bucket")))
                }
                _ => (tsmin, tsmax),
            };
            let mut groupby = BTreeMap::new();
            for (i, g) in q.groupby.iter().enumerate() {
                let v = key
                    .get(format!("g{i}"))
                    .cloned()
                    .map(|b| metadata_keys::unescape(&b.into_relaxed_extjson()))
                    .unwrap_or(Value::Null);
                groupby.insert(g.name(), v);
            }
            let mut aggregate = BTreeMap::new();
            for (i, a) in q.aggregates.iter().enumerate() {
                let v = match a {
                    Aggregate::Stddev => number(d.get(format!("a{i}"))),
                    Aggregate::Cardinality(_) => d
                        .get_array(format!("a{i}"))
                        .map(|a| a.iter().filter(|v| !matches!(v, Bson::Null)).count() as f64)
                        .unwrap_or(0.0),
                };
                aggregate.insert(a.key(), v);
            }
            out.push(Statistics {
                unit: key.get_str("unit").unwrap_or_default().to_owned(),
                count,
                min: number(d.get("min")),
                max: number(d.get("max")),
                sum,
                avg: if count > 0 { sum / count as f64 } else { 0.0 },
                duration_start: from_micros(tsmin),
                duration_end: from_micros(tsmax),
                period: q.period.unwrap_or(0),
                period_start: from_micros(period_start),
                period_end: from_micros(period_end),
                groupby: (!q.groupby.is_empty()).then_some(groupby),
                aggregate,
            });
        }
        finish(&mut out, q);
        Ok(out)
    }
}

#[async_trait]
impl Storage for MongoStore {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    async fn record(&self, samples: &[Sample]) -> Result<WriteOutcome, StorageError> {
        let (kept, mut refused) = limits::screen(samples);
        if kept.is_empty() {
            return Ok(WriteOutcome {
                refused,
                ..WriteOutcome::default()
            });
        }
        let now = Utc::now();
        let docs = kept
            .iter()
            .map(|s| sample_document(s, now))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.unavailable(e))?;
        // Resources first, unjournaled; the samples' insert, journaled, then makes both
        // durable at one sync (see `Journal::ByNextWrite`). A sample the server itself
        // refuses (a validator) may so have widened its resource's record, as the
        // resource comes first in Ceilometer's driver too.
        self.resources
            .upsert(&kept, metadata_document, Insert::New, Journal::ByNextWrite)
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut outcome = self.insert(docs).await?;
        if !outcome.refused.is_empty() {
            // Back to positions in the caller's batch.
            let original: Vec<usize> = (0..samples.len())
                .filter(|i| !refused.iter().any(|r| r.index == *i))
                .collect();
            for r in &mut outcome.refused {
                r.index = original.get(r.index).copied().unwrap_or(r.index);
            }
        }
        refused.append(&mut outcome.refused);
        refused.sort_unstable_by_key(|r| r.index);
        outcome.refused = refused;
        Ok(outcome)
    }

    async fn samples(&self, q: &SampleQuery) -> Result<Vec<StoredSample>, StorageError> {
        let filter = filter_document(q);
        let options = FindOptions::builder()
            // Ties in insertion order (ObjectIds grow), as Ceilometer's driver returns them.
            .sort(doc! { "timestamp_us": -1, "_id": 1 })
            .limit(q.limit.map(|l| l as i64))
            .build();
        let mut cursor = self
            .meter
            .find(filter)
            .with_options(options)
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut out = Vec::new();
        while let Some(d) = cursor.next().await {
            let d = d.map_err(|e| self.unavailable(e))?;
            out.push(sample_from(&d).map_err(|e| self.corrupt(e))?);
        }
        Ok(out)
    }

    async fn statistics(&self, q: &StatisticsQuery) -> Result<Vec<Statistics>, StorageError> {
        self.aggregate_statistics(q).await
    }

    async fn resources(&self, q: &ResourceQuery) -> Result<Vec<Resource>, StorageError> {
        let mut filter = Document::new();
        if let Some(r) = &q.resource_id {
            filter.insert("resource_id", r.as_str());
        }
        for (key, v) in [
            ("project_id", &q.project_id),
            ("user_id", &q.user_id),
            ("source", &q.source),
        ] {
            if let Some(v) = v {
                filter.insert(key, v.as_str());
            }
        }
        let mut cursor = self
            .resource
            .find(filter)
            .sort(doc! { "resource_id": 1, "project_id": 1 })
            .await
            .map_err(|e| self.unavailable(e))?;
        let mut out = Vec::new();
        while let Some(d) = cursor.next().await {
            let d = d.map_err(|e| self.unavailable(e))?;
            out.push(resource_from(&d).map_err(|e| self.corrupt(e))?);
        }
        Ok(out)
    }

    async fn expire(&self, now: DateTime<Utc>) -> Result<u64, StorageError> {
        let Some(cutoff) = self.retention.cutoff(now) else {
            return Ok(0);
        };
        let cutoff = cutoff.timestamp_micros();
        let removed = self
            .meter
            .delete_many(doc! { "timestamp_us": { "$lt": cutoff } })
            .await
            .map_err(|e| self.unavailable(e))?;
        self.resource
            .delete_many(doc! { "last_us": { "$lt": cutoff } })
            .await
            .map_err(|e| self.unavailable(e))?;
        self.event
            .delete_many(doc! { "generated_us": { "$lt": cutoff } })
            .await
            .map_err(|e| self.unavailable(e))?;
        Ok(removed.deleted_count)
    }

    fn retention(&self) -> Retention {
        self.retention
    }

    async fn record_events(&self, events: &[Event]) -> Result<WriteOutcome, StorageError> {
        mongo_events::record(&self.event, events)
            .await
            .map_err(|e| self.unavailable(e))
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StorageError> {
        mongo_events::query(&self.event, query)
            .await
            .map_err(|e| self.unavailable(e))?
            .into_iter()
            .map(|e| e.map_err(|e| self.corrupt(e)))
            .collect()
    }

    async fn event_types(&self) -> Result<Vec<String>, StorageError> {
        mongo_events::event_types(&self.event)
            .await
            .map_err(|e| self.unavailable(e))
    }

    async fn trait_descriptions(
        &self,
        event_type: &str,
    ) -> Result<Vec<TraitDescription>, StorageError> {
        let traits = self.traits_of_type(event_type).await?;
        Ok(mongo_events::descriptions(traits))
    }

    async fn trait_values(&self, event_type: &str, name: &str) -> Result<Vec<Trait>, StorageError> {
        let mut traits = self.traits_of_type(event_type).await?;
        traits.retain(|t| t.name == name);
        Ok(traits)
    }
}

impl MongoStore {
    async fn traits_of_type(&self, event_type: &str) -> Result<Vec<Trait>, StorageError> {
        mongo_events::traits_of_type(&self.event, event_type)
            .await
            .map_err(|e| self.unavailable(e))?
            .into_iter()
            .map(|t| t.map_err(|e| self.corrupt(e)))
            .collect()
    }
}
