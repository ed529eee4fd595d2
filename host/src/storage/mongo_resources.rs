//! Resource upkeep in MongoDB: one document per (resource id, project) in `resource`,
//! found by its `resource_id` and `project_id` fields under a unique index.
//!
//! Why fields and not a compound `_id`: a server may only use its `_id` index for
//! plain values. SecantusDB scans the collection for a document-valued `_id`, so
//! every upsert cost grew with the number of resources (3.2 s for 100 updates at
//! 2 000 resources against 0.23–0.27 s by two indexed fields; README "Benchmarks").
//! Records written under the compound `_id` keep it and are found by the same fields.
//!
//! A resource this process has not written yet is first inserted whole, with one
//! `insert_many` for the batch — a server applies an update statement at several
//! times the cost of inserting a document. Only those the unique key refuses
//! (another writer, an earlier run) and those already written get the merging
//! upsert.

use std::collections::HashSet;
use std::sync::Mutex;

use ceilo_plugin_api::Sample;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::{Collection, Database};

use super::model::{resource_updates, ResourceUpdate};
use super::mongo::{bson_date, DUPLICATE_KEY};
use crate::redact::shorten;

/// Keys remembered as written; past this the memory starts again (each key then
/// costs one refused insert more), so a store seeing millions of resources stays
/// bounded.
const KNOWN_CAPACITY: usize = 100_000;

type Key = (String, Option<String>);

/// Whether resources new to the process are inserted or upserted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Insert {
    /// Inserted whole; the unique key refuses those that exist.
    New,
    /// Upserted like the others.
    Never,
}

/// Keeps the `resource` collection in step with recorded samples.
pub(super) struct Resources {
    coll: Collection<Document>,
    db: Database,
    /// Resources this process has written. They get the upsert without a lookup:
    /// one expired meanwhile (by `expire` or a TTL index) is simply created again.
    known: Mutex<HashSet<Key>>,
}

fn key_of(u: &ResourceUpdate<'_>) -> Key {
    (u.resource_id.to_owned(), u.project_id.map(str::to_owned))
}

impl Resources {
    pub(super) fn new(coll: Collection<Document>, db: Database) -> Resources {
        Resources {
            coll,
            db,
            known: Mutex::new(HashSet::new()),
        }
    }

    fn is_known(&self, k: &Key) -> bool {
        self.known.lock().map(|s| s.contains(k)).unwrap_or(false)
    }

    fn remember(&self, keys: impl IntoIterator<Item = Key>) {
        // A poisoned lock only loses the memory: every key is then tried as new.
        if let Ok(mut s) = self.known.lock() {
            for k in keys {
                if s.len() >= KNOWN_CAPACITY {
                    s.clear();
                }
                s.insert(k);
            }
        }
    }

    /// Moves each (resource, project) of `samples` outward: created when new, its
    /// time range widened, meters added, and the newest sample's user, source and
    /// metadata kept. `metadata` builds a sample's metadata document.
    /// `Insert::Never` upserts every record: for rebuilding records before the
    /// unique key exists, where an insert would not be refused.
    pub(super) async fn upsert(
        &self,
        samples: &[Sample],
        metadata: impl Fn(&Sample) -> Result<Document, String>,
        insert: Insert,
    ) -> Result<(), String> {
        let updates = resource_updates(samples);
        if updates.is_empty() {
            return Ok(());
        }
        let (known, unknown): (Vec<&ResourceUpdate<'_>>, Vec<&ResourceUpdate<'_>>) = updates
            .iter()
            .partition(|u| insert == Insert::Never || self.is_known(&key_of(u)));
        let mut merge = known;
        merge.extend(self.insert_new(&unknown, &metadata).await?);
        if !merge.is_empty() {
            let ops = merge
                .iter()
                .map(|u| Ok(merge_statement(u, metadata(u.latest)?)))
                .collect::<Result<Vec<_>, String>>()?;
            // Two writers upserting the same new resource: one insert loses with a
            // duplicate key; run again, it is then a plain update.
            if let Err(e) = self.update(&ops).await {
                tracing::debug!(target: "ceilo::storage", "resource upsert retried: {e}");
                self.update(&ops).await?;
            }
        }
        self.remember(updates.iter().map(key_of));
        Ok(())
    }

    /// Inserts records for resources this process has not written; returns those
    /// that already had one (the unique key refuses the insert) or whose write was
    /// not confirmed: they get the merging upsert.
    async fn insert_new<'a, 'b>(
        &self,
        unknown: &[&'a ResourceUpdate<'b>],
        metadata: &impl Fn(&Sample) -> Result<Document, String>,
    ) -> Result<Vec<&'a ResourceUpdate<'b>>, String> {
        if unknown.is_empty() {
            return Ok(Vec::new());
        }
        let docs = unknown
            .iter()
            .map(|u| Ok(new_record(u, metadata(u.latest)?)))
            .collect::<Result<Vec<_>, String>>()?;
        match self.coll.insert_many(&docs).ordered(false).await {
            Ok(_) => Ok(Vec::new()),
            Err(e) => {
                let ErrorKind::InsertMany(ime) = e.kind.as_ref() else {
                    return Err(e.to_string());
                };
                if ime.write_concern_error.is_some() {
                    // Durability unconfirmed: the upsert writes every one again.
                    return Ok(unknown.to_vec());
                }
                let mut again = Vec::new();
                for we in ime.write_errors.iter().flatten() {
                    if we.code != DUPLICATE_KEY {
                        return Err(format!(
                            "resource insert failed (error {}): {}",
                            we.code,
                            shorten(&we.message, 200)
                        ));
                    }
                    if let Some(u) = unknown.get(we.index) {
                        again.push(*u);
                    }
                }
                Ok(again)
            }
        }
    }

    async fn update(&self, updates: &[Document]) -> Result<(), String> {
        let reply = self
            .db
            .run_command(doc! {
                "update": self.coll.name(),
                "updates": updates,
                "ordered": false,
                "writeConcern": { "j": true },
            })
            .await
            .map_err(|e| e.to_string())?;
        if let Ok(errors) = reply.get_array("writeErrors") {
            if let Some(first) = errors.first().and_then(Bson::as_document) {
                return Err(format!(
                    "{} resource update(s) failed, first: {}",
                    errors.len(),
                    shorten(first.get_str("errmsg").unwrap_or("no message"), 200)
                ));
            }
        }
        if let Ok(wce) = reply.get_document("writeConcernError") {
            return Err(format!(
                "resource updates not confirmed durable: {}",
                shorten(wce.get_str("errmsg").unwrap_or("no message"), 200)
            ));
        }
        Ok(())
    }
}

fn meter_documents(u: &ResourceUpdate<'_>) -> Vec<Document> {
    u.meters
        .iter()
        .map(|m| doc! { "counter_name": &m.name, "counter_type": &m.sample_type, "counter_unit": &m.unit })
        .collect()
}

/// The whole record of a resource first seen in this batch.
fn new_record(u: &ResourceUpdate<'_>, metadata: Document) -> Document {
    let s = u.latest;
    doc! {
        "resource_id": u.resource_id,
        "project_id": u.project_id,
        "first_us": u.first,
        "first_sample_timestamp": bson_date(u.first),
        "last_us": u.last,
        "last_sample_timestamp": bson_date(u.last),
        "meter": meter_documents(u),
        "latest_us": u.last,
        "user_id": s.user_id(),
        "source": s.source(),
        "metadata": metadata,
    }
}

/// An upsert merging the batch into the record, as an update pipeline: the time
/// range only widens, meters are added to the set, and the newest sample's user,
/// source and metadata win whatever order batches arrive in. Values go in as
/// `$literal`, so text that starts with `$` is never read as a field path.
fn merge_statement(u: &ResourceUpdate<'_>, metadata: Document) -> Document {
    let s = u.latest;
    let (first, last) = (bson_date(u.first), bson_date(u.last));
    let newer = doc! { "$gte": [u.last, { "$ifNull": ["$latest_us", i64::MIN] }] };
    let pick = |value: Bson, field: &str| {
        doc! { "$cond": [newer.clone(), { "$literal": value }, format!("${field}")] }
    };
    doc! {
        "q": { "resource_id": u.resource_id, "project_id": u.project_id },
        "u": [ { "$set": {
            "resource_id": { "$literal": u.resource_id },
            "project_id": { "$literal": u.project_id },
            "first_us": { "$min": [{ "$ifNull": ["$first_us", u.first] }, u.first] },
            "first_sample_timestamp": { "$min": [{ "$ifNull": ["$first_sample_timestamp", first] }, first] },
            "last_us": { "$max": [{ "$ifNull": ["$last_us", u.last] }, u.last] },
            "last_sample_timestamp": { "$max": [{ "$ifNull": ["$last_sample_timestamp", last] }, last] },
            "meter": { "$setUnion": [{ "$ifNull": ["$meter", []] }, { "$literal": meter_documents(u) }] },
            "latest_us": { "$max": [{ "$ifNull": ["$latest_us", u.last] }, u.last] },
            "user_id": pick(s.user_id().into(), "user_id"),
            "source": pick(s.source().into(), "source"),
            "metadata": pick(Bson::Document(metadata), "metadata"),
        } } ],
        "upsert": true,
    }
}
