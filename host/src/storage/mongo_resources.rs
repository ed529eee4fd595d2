//! Resource upkeep in MongoDB: one document per (resource id, project) in `resource`,
//! found by its `resource_id` and `project_id` fields under a unique index.
//!
//! Why fields and not a compound `_id`: a server may only use its `_id` index for
//! plain values. SecantusDB scans the collection for a document-valued `_id`, so
//! every upsert cost grew with the number of resources (3.2 s for 100 updates at
//! 2 000 resources against 0.23–0.27 s by two indexed fields; README "Benchmarks").
//! Records written under the compound `_id` keep it and are found by the same fields.
//!
//! A server applies an update statement at several times the cost of inserting a
//! document, the more so the more it computes, so each record gets the least a batch
//! needs:
//! - a resource this process has not written yet is inserted whole, with one
//!   `insert_many` for the batch;
//! - a record this process knows, which the batch only moves forward in time (no
//!   meter to add, no earlier sample, the newest sample's user, source and metadata
//!   unchanged), gets a short `$max` of its newest time, applying only while the
//!   record is as this process left it (its `_id`, first and newest time, newest
//!   fields); if any does not apply, those records are merged instead;
//! - everything else — refused inserts (another writer, an earlier run), new meters,
//!   older samples — gets the merging upsert, after which the record's `_id` and
//!   meters are read back so its next batch can take the short statement.
//!
//! The collector's writes here are unjournaled: the samples' journaled insert that
//! follows makes them durable (`Journal::ByNextWrite`).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use ceilo_plugin_api::Sample;
use futures_lite::StreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::ErrorKind;
use mongodb::options::{Acknowledgment, WriteConcern};
use mongodb::{Collection, Database};

use super::model::{resource_updates, ResourceUpdate};
use super::mongo::{bson_date, DUPLICATE_KEY};
use crate::redact::shorten;

/// Records remembered; past this the memory starts again (each record then costs a
/// merge and a lookup more), so a store seeing millions of resources stays bounded.
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

/// When the writes reach the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Journal {
    /// Each command waits for it (`j: true`).
    Each,
    /// The caller's next write asks for it and covers these: a server's journal is
    /// one log written in order, so syncing a later record syncs every earlier one.
    /// (SecantusDB syncs once per statement asked, ~0.5 ms each; `mongod` once per
    /// command.)
    ByNextWrite,
}

/// What this process knows of one record: enough to tell when a batch only moves its
/// newest time forward. `id` is the record's `_id`: a record removed and made again
/// has another, so what is known of the old one is never taken for the new one.
struct Record {
    id: ObjectId,
    /// Fingerprints of the meters the record holds (a record's meters only grow).
    meters: Vec<u64>,
    /// The record's first time was at most this, and its newest time at least
    /// `latest` with the fields fingerprinted by `newest`, when last written.
    first: i64,
    latest: i64,
    newest: u64,
}

/// Keeps the `resource` collection in step with recorded samples.
pub(super) struct Resources {
    coll: Collection<Document>,
    db: Database,
    known: Mutex<HashMap<Key, Record>>,
    /// Keyed per process, so no one can choose meters or metadata whose
    /// fingerprints collide.
    hasher: RandomState,
}

fn key_of(u: &ResourceUpdate<'_>) -> Key {
    (u.resource_id.to_owned(), u.project_id.map(str::to_owned))
}

fn unjournaled() -> WriteConcern {
    WriteConcern::builder()
        .w(Acknowledgment::Nodes(1))
        .journal(false)
        .build()
}

impl Resources {
    pub(super) fn new(coll: Collection<Document>, db: Database) -> Resources {
        Resources {
            coll,
            db,
            known: Mutex::new(HashMap::new()),
            hasher: RandomState::new(),
        }
    }

    /// Sorted fingerprints of (name, type, unit) triples.
    fn meter_prints<'m>(
        &self,
        meters: impl Iterator<Item = (&'m str, &'m str, &'m str)>,
    ) -> Vec<u64> {
        let mut v: Vec<u64> = meters.map(|m| self.hasher.hash_one(m)).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    fn batch_meter_prints(&self, u: &ResourceUpdate<'_>) -> Vec<u64> {
        self.meter_prints(
            u.meters
                .iter()
                .map(|m| (m.name.as_str(), m.sample_type.as_str(), m.unit.as_str())),
        )
    }

    fn newest_print(&self, s: &Sample) -> u64 {
        self.hasher
            .hash_one((s.user_id(), s.source(), s.resource_metadata_json()))
    }

    /// What to send for a batch's record, by what this process knows: the short
    /// statement when the batch only moves the record's newest time forward (no meter
    /// to add, no earlier first time, the newest sample as new as the record's with
    /// the same user, source and metadata). The statement checks the record itself;
    /// this only spares sending ones that fail.
    fn plan(&self, u: &ResourceUpdate<'_>) -> Plan {
        // A poisoned lock only loses the memory: the insert's refusal leads to a merge.
        let Ok(known) = self.known.lock() else {
            return Plan::Insert;
        };
        let Some(r) = known.get(&key_of(u)) else {
            return Plan::Insert;
        };
        let covered = self
            .batch_meter_prints(u)
            .iter()
            .all(|m| r.meters.binary_search(m).is_ok());
        if covered
            && u.first >= r.first
            && u.last >= r.latest
            && r.newest == self.newest_print(u.latest)
        {
            Plan::MoveForward(r.id)
        } else {
            Plan::Merge
        }
    }

    fn remember(&self, key: Key, record: Record) {
        // A poisoned lock only loses the memory: every record then gets the merge.
        if let Ok(mut known) = self.known.lock() {
            insert_bounded(&mut known, key, record);
        }
    }

    fn forget(&self, keys: impl IntoIterator<Item = Key>) {
        if let Ok(mut known) = self.known.lock() {
            for k in keys {
                known.remove(&k);
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
        journal: Journal,
    ) -> Result<(), String> {
        let updates = resource_updates(samples);
        if updates.is_empty() {
            return Ok(());
        }
        let (mut quick, mut merge, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
        for u in &updates {
            match insert {
                Insert::Never => merge.push(u),
                Insert::New => match self.plan(u) {
                    Plan::MoveForward(id) => quick.push((u, id)),
                    Plan::Merge => merge.push(u),
                    Plan::Insert => unknown.push(u),
                },
            }
        }
        if !quick.is_empty() && !self.move_forward(&quick, &metadata, journal).await? {
            // Another writer changed one of them: the merge is right whatever it did.
            self.forget(quick.iter().map(|(u, _)| key_of(u)));
            merge.extend(quick.iter().map(|(u, _)| *u));
            quick.clear();
        }
        let inserted = self.insert_new(&unknown, &metadata, journal).await?;
        merge.extend(inserted.again);
        if !merge.is_empty() {
            let ops = merge
                .iter()
                .map(|u| Ok(merge_statement(u, metadata(u.latest)?)))
                .collect::<Result<Vec<_>, String>>()?;
            // Two writers upserting the same new resource: one insert loses with a
            // duplicate key; run again, it is then a plain update. Anything else (the
            // server gone) is the caller's to retry and report.
            if let Err(e) = self.update(&ops, journal).await {
                if !e.duplicate {
                    return Err(e.message);
                }
                tracing::debug!(target: "ceilo::storage", "resource upsert retried: {}", e.message);
                self.update(&ops, journal).await?;
            }
        }
        if insert == Insert::Never {
            return Ok(());
        }
        for (u, id) in quick {
            self.remember_written(u, id);
        }
        for (u, id) in inserted.created {
            self.remember_written(u, id);
        }
        self.learn(&merge).await
    }

    /// Records what a write of `u` to the record `id` left in it: what was known of
    /// that same record, plus the batch.
    fn remember_written(&self, u: &ResourceUpdate<'_>, id: ObjectId) {
        let Ok(mut known) = self.known.lock() else {
            return;
        };
        let key = key_of(u);
        let mut meters = self.batch_meter_prints(u);
        let mut first = u.first;
        if let Some(r) = known.get(&key).filter(|r| r.id == id) {
            meters.extend(&r.meters);
            meters.sort_unstable();
            meters.dedup();
            first = first.min(r.first);
        }
        let record = Record {
            id,
            meters,
            first,
            latest: u.last,
            newest: self.newest_print(u.latest),
        };
        insert_bounded(&mut known, key, record);
    }

    /// Sends the statements that only move records' newest time forward, each
    /// applying only to the record as this process knows it (same `_id`, no earlier
    /// first time, newest time not past the batch's, same newest user, source and
    /// metadata). False when any did not apply.
    async fn move_forward(
        &self,
        quick: &[(&ResourceUpdate<'_>, ObjectId)],
        metadata: &impl Fn(&Sample) -> Result<Document, String>,
        journal: Journal,
    ) -> Result<bool, String> {
        let ops = quick
            .iter()
            .map(|(u, id)| {
                let s = u.latest;
                Ok(doc! {
                    "q": {
                        "_id": id,
                        "first_us": { "$lte": u.first },
                        "latest_us": { "$lte": u.last },
                        "user_id": s.user_id(),
                        "source": s.source(),
                        "metadata": metadata(s)?,
                    },
                    "u": { "$max": {
                        "last_us": u.last,
                        "last_sample_timestamp": bson_date(u.last),
                        "latest_us": u.last,
                    } },
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let matched = self.update(&ops, journal).await?;
        Ok(matched == ops.len() as i64)
    }

    /// Reads back the `_id` and meters of records just merged, so that their next
    /// batches can take the short statement. The record read holds this batch (the
    /// merge came first), so its meters include the batch's.
    async fn learn(&self, merged: &[&ResourceUpdate<'_>]) -> Result<(), String> {
        if merged.is_empty() {
            return Ok(());
        }
        let wanted: HashMap<Key, &ResourceUpdate<'_>> =
            merged.iter().map(|u| (key_of(u), *u)).collect();
        let ids: Vec<&str> = merged.iter().map(|u| u.resource_id).collect();
        let mut cursor = self
            .coll
            .find(doc! { "resource_id": { "$in": ids } })
            .projection(
                doc! { "_id": 1, "resource_id": 1, "project_id": 1, "meter": 1, "first_us": 1, "latest_us": 1 },
            )
            .await
            .map_err(|e| e.to_string())?;
        while let Some(d) = cursor.next().await {
            let d = d.map_err(|e| e.to_string())?;
            let (Ok(id), Ok(resource_id)) = (d.get_object_id("_id"), d.get_str("resource_id"))
            else {
                continue; // a record of an earlier layout: it keeps the merge
            };
            let key = (
                resource_id.to_owned(),
                d.get_str("project_id").ok().map(str::to_owned),
            );
            let Some(u) = wanted.get(&key) else {
                continue;
            };
            let meters = d
                .get_array("meter")
                .map(|a| {
                    self.meter_prints(a.iter().filter_map(Bson::as_document).filter_map(|m| {
                        Some((
                            m.get_str("counter_name").ok()?,
                            m.get_str("counter_type").ok()?,
                            m.get_str("counter_unit").ok()?,
                        ))
                    }))
                })
                .unwrap_or_default();
            let first = d.get_i64("first_us").unwrap_or(i64::MIN);
            // Another writer's newer sample may hold the newest fields: the next
            // batch tries the short statement only when newer still (and it checks
            // the fields itself).
            let latest = d.get_i64("latest_us").map_or(u.last, |l| l.max(u.last));
            self.remember(
                key,
                Record {
                    id,
                    meters,
                    first,
                    latest,
                    newest: self.newest_print(u.latest),
                },
            );
        }
        Ok(())
    }

    /// Inserts records for resources this process has not written: `created` with
    /// their `_id`, `again` those that already had one (the unique key refuses the
    /// insert) or whose write was not confirmed: they get the merging upsert.
    async fn insert_new<'a, 'b>(
        &self,
        unknown: &[&'a ResourceUpdate<'b>],
        metadata: &impl Fn(&Sample) -> Result<Document, String>,
        journal: Journal,
    ) -> Result<Inserted<'a, 'b>, String> {
        let mut out = Inserted {
            created: Vec::new(),
            again: Vec::new(),
        };
        if unknown.is_empty() {
            return Ok(out);
        }
        let ids: Vec<ObjectId> = unknown.iter().map(|_| ObjectId::new()).collect();
        let docs = unknown
            .iter()
            .zip(&ids)
            .map(|(u, id)| Ok(new_record(u, *id, metadata(u.latest)?)))
            .collect::<Result<Vec<_>, String>>()?;
        let mut action = self.coll.insert_many(&docs).ordered(false);
        if journal == Journal::ByNextWrite {
            action = action.write_concern(unjournaled());
        }
        let result = action.await;
        match result {
            Ok(_) => out.created = unknown.iter().copied().zip(ids).collect(),
            Err(e) => {
                let ErrorKind::InsertMany(ime) = e.kind.as_ref() else {
                    return Err(e.to_string());
                };
                if ime.write_concern_error.is_some() {
                    // Durability unconfirmed: the upsert writes every one again.
                    out.again = unknown.to_vec();
                    return Ok(out);
                }
                let mut refused = vec![false; unknown.len()];
                for we in ime.write_errors.iter().flatten() {
                    if we.code != DUPLICATE_KEY {
                        return Err(format!(
                            "resource insert failed (error {}): {}",
                            we.code,
                            shorten(&we.message, 200)
                        ));
                    }
                    if let Some(r) = refused.get_mut(we.index) {
                        *r = true;
                    }
                }
                for ((u, id), refused) in unknown.iter().zip(ids).zip(refused) {
                    if refused {
                        out.again.push(*u);
                    } else {
                        out.created.push((*u, id));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Runs update statements; the number of records they matched.
    async fn update(&self, updates: &[Document], journal: Journal) -> Result<i64, UpdateError> {
        let concern = match journal {
            Journal::ByNextWrite => doc! { "w": 1, "j": false },
            Journal::Each => doc! { "j": true },
        };
        let reply = self
            .db
            .run_command(doc! {
                "update": self.coll.name(),
                "updates": updates,
                "ordered": false,
                "writeConcern": concern,
            })
            .await
            .map_err(|e| UpdateError::other(e.to_string()))?;
        if let Ok(errors) = reply.get_array("writeErrors") {
            let errors: Vec<&Document> = errors.iter().filter_map(Bson::as_document).collect();
            if let Some(first) = errors.first() {
                return Err(UpdateError {
                    duplicate: errors
                        .iter()
                        .all(|e| e.get_i32("code").is_ok_and(|c| c == DUPLICATE_KEY)),
                    message: format!(
                        "{} resource update(s) failed, first: {}",
                        errors.len(),
                        shorten(first.get_str("errmsg").unwrap_or("no message"), 200)
                    ),
                });
            }
        }
        if let Ok(wce) = reply.get_document("writeConcernError") {
            return Err(UpdateError::other(format!(
                "resource updates not confirmed durable: {}",
                shorten(wce.get_str("errmsg").unwrap_or("no message"), 200)
            )));
        }
        // `n` counts matched and upserted records alike.
        Ok(match reply.get("n") {
            Some(Bson::Int32(n)) => i64::from(*n),
            Some(Bson::Int64(n)) => *n,
            _ => 0,
        })
    }
}

/// Why update statements failed; `duplicate` when only by the unique key (two
/// writers creating one record at once), which running them again resolves.
struct UpdateError {
    duplicate: bool,
    message: String,
}

impl UpdateError {
    fn other(message: String) -> UpdateError {
        UpdateError {
            duplicate: false,
            message,
        }
    }
}

impl From<UpdateError> for String {
    fn from(e: UpdateError) -> String {
        e.message
    }
}

/// What a batch's record gets (see `Resources::plan`).
enum Plan {
    /// The short statement, for the record with this `_id`.
    MoveForward(ObjectId),
    /// The merging upsert.
    Merge,
    /// Inserted whole, as new to this process.
    Insert,
}

/// Past `KNOWN_CAPACITY` the memory starts again.
fn insert_bounded(known: &mut HashMap<Key, Record>, key: Key, record: Record) {
    if known.len() >= KNOWN_CAPACITY && !known.contains_key(&key) {
        known.clear();
    }
    known.insert(key, record);
}

/// What `insert_new` did.
struct Inserted<'a, 'b> {
    created: Vec<(&'a ResourceUpdate<'b>, ObjectId)>,
    again: Vec<&'a ResourceUpdate<'b>>,
}

fn meter_documents(u: &ResourceUpdate<'_>) -> Vec<Document> {
    u.meters
        .iter()
        .map(|m| doc! { "counter_name": &m.name, "counter_type": &m.sample_type, "counter_unit": &m.unit })
        .collect()
}

/// The whole record of a resource first seen in this batch.
fn new_record(u: &ResourceUpdate<'_>, id: ObjectId, metadata: Document) -> Document {
    let s = u.latest;
    doc! {
        "_id": id,
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
