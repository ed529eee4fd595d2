//! The embedded store: one SQLite file (WAL, `synchronous=FULL`, so a committed batch
//! survives a crash of the process or the machine), a table per Ceilometer collection,
//! the indexes the API's queries use, and dedupe by the unique `message_id`.
//!
//! One connection writes (a batch is one transaction); another reads, so queries do
//! not wait for writes (WAL readers see the last committed batch). SQLite calls block,
//! so they run on tokio's blocking pool.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ceilo_plugin_api::Sample;
use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OpenFlags, Row};
use serde_json::{Map, Value};

/// The columns of `meter` (and of `meter_recent`, which must match it).
macro_rules! meter_columns {
    () => {
        "
    id INTEGER PRIMARY KEY,
    message_id NOT NULL UNIQUE, -- 16-byte BLOB for a canonical UUID, else TEXT
    counter_name TEXT NOT NULL,
    counter_type TEXT NOT NULL,
    counter_unit TEXT NOT NULL,
    counter_volume REAL NOT NULL,
    user_id TEXT,
    project_id TEXT,
    resource_id TEXT NOT NULL,
    source TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    resource_metadata TEXT NOT NULL,
    monotonic_time REAL
"
    };
}

mod events;
mod snapshot;
mod staging;

use staging::{Sources, Staging, Table};
pub use staging::{MERGE_AT, STAGE_ABOVE};

use super::model::{from_micros, resource_updates, sample_type};
use super::statistics::{finish, period_bounds, stddev, Aggregate, GroupBy};
use super::{
    CondValue, EventQuery, Field, Resource, ResourceMeter, ResourceQuery, Retention, SampleQuery,
    Statistics, StatisticsQuery, Storage, StorageError, StoredSample, TraitDescription,
    WriteOutcome,
};
use crate::events::{Event, Trait};

/// Bumped when the schema changes; older files are migrated on open.
const SCHEMA_VERSION: i64 = 4;

const SCHEMA: &str = concat!(
    "
CREATE TABLE IF NOT EXISTS meter (", meter_columns!(), ");
-- Covers the statistics of a meter (per resource, per period): answered from the
-- index alone, without reading the rows.
CREATE INDEX IF NOT EXISTS meter_stats ON meter (counter_name, resource_id, timestamp, counter_volume, counter_unit);
-- Newest first, ties in insertion order (the rowid ascending): lists are read in the
-- order the API returns them, and `LIMIT N` reads N entries, with nothing to sort.
CREATE INDEX IF NOT EXISTS meter_project_time ON meter (project_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS meter_name_time ON meter (counter_name, timestamp DESC);
CREATE INDEX IF NOT EXISTS meter_time ON meter (timestamp DESC);
-- A resource is keyed by its id *and* its project (`project_key`: the project id, or
-- '' for none), so a sample of one project can never read or overwrite another
-- project's record of the same resource id.
CREATE TABLE IF NOT EXISTS resource (
    resource_id TEXT NOT NULL,
    project_key TEXT NOT NULL,
    project_id TEXT,
    user_id TEXT,
    source TEXT NOT NULL,
    first_sample_timestamp INTEGER NOT NULL,
    last_sample_timestamp INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    PRIMARY KEY (resource_id, project_key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS resource_project ON resource (project_id);
CREATE INDEX IF NOT EXISTS resource_last ON resource (last_sample_timestamp);
CREATE TABLE IF NOT EXISTS resource_meter (
    resource_id TEXT NOT NULL,
    project_key TEXT NOT NULL,
    counter_name TEXT NOT NULL,
    counter_type TEXT NOT NULL,
    counter_unit TEXT NOT NULL,
    PRIMARY KEY (resource_id, project_key, counter_name, counter_type, counter_unit)
) WITHOUT ROWID;
-- The units a meter was recorded in (statistics ask it before grouping).
CREATE INDEX IF NOT EXISTS resource_meter_unit ON resource_meter (counter_name, counter_unit);
"
);

/// A sample into `table` (`meter` or `meter_recent`: the same columns).
fn insert_sample(table: Table) -> &'static str {
    match table {
        Table::Meter => {
            "INSERT INTO meter (id, message_id, counter_name, counter_type, counter_unit, \
             counter_volume, user_id, project_id, resource_id, source, timestamp, recorded_at, \
             resource_metadata, monotonic_time) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
             ON CONFLICT (message_id) DO NOTHING"
        }
        Table::Recent => {
            "INSERT INTO meter_recent (id, message_id, counter_name, counter_type, counter_unit, \
             counter_volume, user_id, project_id, resource_id, source, timestamp, recorded_at, \
             resource_metadata, monotonic_time) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
             ON CONFLICT (message_id) DO NOTHING"
        }
    }
}

/// `meter` is written only while nothing is staged, so there its unique index alone
/// dedupes; a staged sample must also be absent from `meter`. (A separate probe: an
/// INSERT … SELECT … WHERE NOT EXISTS costs several times a plain insert.)
const IN_METER: &str = "SELECT EXISTS (SELECT 1 FROM meter WHERE message_id = ?1)";

// The newest sample's project, user, source and metadata win; timestamps only move
// outward (samples may arrive out of order).
const UPSERT_RESOURCE: &str = "INSERT INTO resource (resource_id, project_key, project_id, \
     user_id, source, first_sample_timestamp, last_sample_timestamp, metadata) \
     VALUES (?1, COALESCE(?2, ''), ?2, ?3, ?4, ?5, ?6, ?7) \
     ON CONFLICT (resource_id, project_key) DO UPDATE SET \
       user_id = CASE WHEN excluded.last_sample_timestamp >= resource.last_sample_timestamp \
                 THEN excluded.user_id ELSE resource.user_id END, \
       source = CASE WHEN excluded.last_sample_timestamp >= resource.last_sample_timestamp \
                THEN excluded.source ELSE resource.source END, \
       metadata = CASE WHEN excluded.last_sample_timestamp >= resource.last_sample_timestamp \
                  THEN excluded.metadata ELSE resource.metadata END, \
       first_sample_timestamp = min(resource.first_sample_timestamp, excluded.first_sample_timestamp), \
       last_sample_timestamp = max(resource.last_sample_timestamp, excluded.last_sample_timestamp)";

const INSERT_RESOURCE_METER: &str = "INSERT OR IGNORE INTO resource_meter \
     (resource_id, project_key, counter_name, counter_type, counter_unit) \
     VALUES (?1, COALESCE(?2, ''), ?3, ?4, ?5)";

/// Schema 3 keys resources by project: older files get their resources rebuilt from
/// the samples, per (resource, project), the newest sample of each winning.
const REBUILD_RESOURCES: &str = "
DROP TABLE IF EXISTS resource;
DROP TABLE IF EXISTS resource_meter;
DROP INDEX IF EXISTS resource_project;
DROP INDEX IF EXISTS resource_last;
DROP INDEX IF EXISTS resource_meter_unit;
";
// Run after SCHEMA has created the new tables. A bare column beside a single max()
// comes from the row holding that maximum (SQLite's documented rule).
const FILL_RESOURCES: &str = "
INSERT INTO resource (resource_id, project_key, project_id, user_id, source,
                      first_sample_timestamp, last_sample_timestamp, metadata)
SELECT l.resource_id, l.pk, l.project_id, l.user_id, l.source, f.first, l.last, l.resource_metadata
FROM (SELECT resource_id, COALESCE(project_id, '') AS pk, max(timestamp) AS last,
             project_id, user_id, source, resource_metadata
      FROM meter GROUP BY resource_id, COALESCE(project_id, '')) AS l
JOIN (SELECT resource_id, COALESCE(project_id, '') AS pk, min(timestamp) AS first
      FROM meter GROUP BY resource_id, COALESCE(project_id, '')) AS f
  ON f.resource_id = l.resource_id AND f.pk = l.pk;
INSERT OR IGNORE INTO resource_meter (resource_id, project_key, counter_name, counter_type, counter_unit)
SELECT DISTINCT resource_id, COALESCE(project_id, ''), counter_name, counter_type, counter_unit FROM meter;
";

// `id` last: read by nothing, but the ORDER BY of a compound select must name a column.
const SAMPLE_COLUMNS: &str = "message_id, counter_name, counter_type, counter_unit, \
     counter_volume, user_id, project_id, resource_id, source, timestamp, recorded_at, \
     resource_metadata, monotonic_time, id";

/// The embedded SQLite store.
pub struct EmbeddedStore {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
    known_meters: Arc<Mutex<KnownMeters>>,
    staging: Arc<Mutex<Staging>>,
    /// Whether the writer has its large page cache (see [`LARGE_BATCH`]).
    large_cache: Arc<AtomicBool>,
    retention: Retention,
    /// The clock used for `recorded_at` (tests set a fixed one).
    clock: fn() -> DateTime<Utc>,
}

impl EmbeddedStore {
    /// Opens (creating when missing) the store file and its schema.
    pub async fn open(path: &Path, retention: Retention) -> Result<EmbeddedStore, StorageError> {
        let p = path.to_owned();
        let (writer, reader) = tokio::task::spawn_blocking(move || open_connections(&p))
            .await
            .map_err(|e| unavailable(path, e.to_string()))??;
        tracing::info!(target: "ceilo::storage", "embedded store {} (retention: {})", path.display(), describe_retention(retention));
        Ok(EmbeddedStore {
            path: path.to_owned(),
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
            known_meters: Arc::new(Mutex::new(KnownMeters::new())),
            staging: Arc::new(Mutex::new(Staging::new(STAGE_ABOVE, MERGE_AT))),
            large_cache: Arc::new(AtomicBool::new(false)),
            retention,
            clock: Utc::now,
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the clock that stamps `recorded_at` (for deterministic tests).
    pub fn with_clock(mut self, clock: fn() -> DateTime<Utc>) -> Self {
        self.clock = clock;
        self
    }

    /// Replaces when writes are staged: once `meter` holds `stage_above` samples,
    /// batches go to `meter_recent`, merged into `meter` every `merge_at` samples
    /// (defaults [`STAGE_ABOVE`], [`MERGE_AT`]; tests use small ones).
    pub fn with_staging(mut self, stage_above: u64, merge_at: u64) -> Self {
        self.staging = Arc::new(Mutex::new(Staging::new(stage_above, merge_at)));
        self
    }

    /// Rows that could be read, or the first one that could not (a corrupt store).
    fn readable<T>(&self, rows: Vec<Result<T, String>>) -> Result<Vec<T>, StorageError> {
        rows.into_iter()
            .map(|r| {
                r.map_err(|reason| StorageError::Corrupt {
                    store: self.describe(),
                    reason,
                })
            })
            .collect()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        conn: &Arc<Mutex<Connection>>,
        f: impl FnOnce(&mut Connection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let read = Arc::ptr_eq(conn, &self.reader);
        let conn = conn.clone();
        let path = self.path.clone();
        let path2 = self.path.clone();
        let run = move || {
            let mut c = conn
                .lock()
                .map_err(|_| unavailable(&path, "connection lock poisoned".into()))?;
            f(&mut c)
        };
        // A read runs on the calling thread, the runtime moving this thread's other
        // tasks to another one (`block_in_place`): the blocking pool's two hand-offs
        // (wake a pool thread, then wake this task) cost more than the API's
        // smallest questions. Writes stay on the pool, where the collector overlaps
        // them with decoding. A current-thread runtime (tests) cannot move its
        // tasks, so it uses the pool for both.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if read && multi_thread {
            return tokio::task::block_in_place(run);
        }
        tokio::task::spawn_blocking(run)
            .await
            .map_err(|e| unavailable(&path2, e.to_string()))?
    }
}

pub(crate) fn describe_retention(r: Retention) -> String {
    match r.0 {
        Some(d) => humantime::format_duration(d).to_string(),
        None => "keep everything".into(),
    }
}

fn unavailable(path: &Path, reason: String) -> StorageError {
    StorageError::Unavailable {
        store: format!("embedded store {}", path.display()),
        reason,
    }
}

fn sql_err(path: &Path) -> impl Fn(rusqlite::Error) -> StorageError + '_ {
    move |e| unavailable(path, e.to_string())
}

fn open_connections(path: &Path) -> Result<(Connection, Connection), StorageError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            unavailable(
                path,
                format!("cannot create directory {}: {e}", dir.display()),
            )
        })?;
    }
    let e = sql_err(path);
    let mut writer = Connection::open(path).map_err(&e)?;
    configure(&writer).map_err(&e)?;
    let version: i64 = writer
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(&e)?;
    if version > SCHEMA_VERSION {
        return Err(unavailable(
            path,
            format!("written by a newer ceilo (schema {version}, this one knows {SCHEMA_VERSION}); upgrade ceilo or use another file"),
        ));
    }
    if version == SCHEMA_VERSION {
        // Current: nothing to write (a process opening a store another one is writing
        // must not need the write lock).
        writer.execute_batch(SCHEMA).map_err(&e)?;
        writer.execute_batch(staging::SCHEMA).map_err(&e)?;
        writer.execute_batch(events::SCHEMA).map_err(&e)?;
        return open_reader(path, writer);
    }
    let rebuild = (1..3).contains(&version);
    // IMMEDIATE: the write lock is taken (waiting out the busy timeout) before
    // anything is read, so a concurrent writer cannot invalidate this snapshot.
    let tx = writer
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(&e)?;
    if version == 1 {
        // Schema 1 had the same index without the covered columns.
        tx.execute_batch("DROP INDEX IF EXISTS meter_name_resource_time")
            .map_err(&e)?;
    }
    if rebuild {
        tx.execute_batch(REBUILD_RESOURCES).map_err(&e)?;
    }
    if version < 4 {
        // Schema 4 orders the time indexes newest first (rebuilt below) and adds
        // `meter_recent` (created empty: nothing to move).
        tx.execute_batch(
            "DROP INDEX IF EXISTS meter_project_time; DROP INDEX IF EXISTS meter_name_time; \
             DROP INDEX IF EXISTS meter_time;",
        )
        .map_err(&e)?;
    }
    tx.execute_batch(SCHEMA).map_err(&e)?;
    tx.execute_batch(staging::SCHEMA).map_err(&e)?;
    tx.execute_batch(events::SCHEMA).map_err(&e)?;
    if rebuild {
        tx.execute_batch(FILL_RESOURCES).map_err(&e)?;
        tracing::info!(target: "ceilo::storage", "embedded store {}: schema {version} → {SCHEMA_VERSION}: resources rebuilt per project from the samples", path.display());
    }
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}"))
        .map_err(&e)?;
    tx.commit().map_err(&e)?;
    open_reader(path, writer)
}

/// Opens the read connection beside `writer`.
fn open_reader(path: &Path, writer: Connection) -> Result<(Connection, Connection), StorageError> {
    let e = sql_err(path);
    let reader = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&e)?;
    reader
        .busy_timeout(std::time::Duration::from_secs(5))
        .map_err(&e)?;
    // The API asks questions of many shapes (each filter a statement of its own).
    reader.set_prepared_statement_cache_capacity(64);
    Ok((writer, reader))
}

/// The writer's page cache (KiB, as SQLite's negative `cache_size`) until a large
/// batch arrives, and after. A busy store keeps its indexes in memory with 64 MiB; an
/// agent writing a few dozen samples every interval would only grow its resident
/// memory towards that, page by page, over hours, for no gain.
const SMALL_CACHE_KIB: i64 = -2048;
const LARGE_CACHE_KIB: i64 = -65536;
/// Samples in one batch from which the writer takes the large cache (for good).
const LARGE_BATCH: usize = 1000;

fn configure(c: &Connection) -> rusqlite::Result<()> {
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    // WAL: readers never block the writer. FULL: a commit is on disk when it returns,
    // which is what lets the collector ack after `record`.
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.pragma_update(None, "foreign_keys", "OFF")?;
    // A small page cache to begin with (see LARGE_BATCH). Checkpoints every ~40 MiB
    // of WAL rather than 4: fewer, larger copies into the database file.
    c.pragma_update(None, "cache_size", SMALL_CACHE_KIB)?;
    c.pragma_update(None, "wal_autocheckpoint", 10000)?;
    // Statement journals (for inserts that may hit the unique index) stay in memory.
    c.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// (resource, project, meter, type, unit) rows known to be in `resource_meter`, so
/// that a batch only inserts new ones. Bounded; cleared by retention sweeps (which
/// delete rows).
type KnownMeters = HashSet<(String, Option<String>, String, String, String)>;
const KNOWN_METERS_MAX: usize = 200_000;

fn write_batch(
    c: &mut Connection,
    known: &mut KnownMeters,
    staging: &mut Staging,
    samples: &[Sample],
    recorded_at: i64,
) -> rusqlite::Result<WriteOutcome> {
    let mut added = Vec::new();
    let tx = c.transaction()?;
    let mut outcome = WriteOutcome::default();
    let table = staging.table(&tx)?;
    let mut id = staging::next_id(&tx)?;
    {
        let mut insert = tx.prepare_cached(insert_sample(table))?;
        let mut in_meter = tx.prepare_cached(IN_METER)?;
        for s in samples {
            let key = message_key(s.message_id());
            if table == Table::Recent && in_meter.query_row([&key], |r| r.get::<_, bool>(0))? {
                outcome.duplicates += 1;
                continue;
            }
            let n = insert.execute(params![
                id,
                key,
                s.name(),
                s.sample_type().as_str(),
                s.unit(),
                s.volume(),
                s.user_id(),
                s.project_id(),
                s.resource_id(),
                s.source(),
                s.timestamp_micros(),
                recorded_at,
                s.resource_metadata_json(),
                s.monotonic_time(),
            ])?;
            if n == 1 {
                outcome.stored += 1;
                id += 1;
            } else {
                outcome.duplicates += 1;
            }
        }
        let mut upsert = tx.prepare_cached(UPSERT_RESOURCE)?;
        let mut meter = tx.prepare_cached(INSERT_RESOURCE_METER)?;
        for u in resource_updates(samples) {
            upsert.execute(params![
                u.resource_id,
                u.project_id,
                u.latest.user_id(),
                u.latest.source(),
                u.first,
                u.last,
                u.latest.resource_metadata_json(),
            ])?;
            for m in &u.meters {
                let key = (
                    u.resource_id.to_owned(),
                    u.project_id.map(str::to_owned),
                    m.name.clone(),
                    m.sample_type.clone(),
                    m.unit.clone(),
                );
                if !known.contains(&key) {
                    meter.execute(params![key.0, key.1, key.2, key.3, key.4])?;
                    added.push(key);
                }
            }
        }
    }
    staging.recorded(&tx, table, outcome.stored as u64)?;
    tx.commit()?;
    if known.len() + added.len() > KNOWN_METERS_MAX {
        known.clear();
    }
    known.extend(added);
    Ok(outcome)
}

/// The stored form of a message id: the 16 bytes of a UUID written in canonical form
/// (what ceilo and Ceilometer generate; a smaller, faster unique index), else the text.
fn message_key(id: &str) -> SqlValue {
    match uuid::Uuid::try_parse(id) {
        Ok(u) if u.hyphenated().to_string() == id => SqlValue::Blob(u.as_bytes().to_vec()),
        _ => SqlValue::Text(id.to_owned()),
    }
}

fn message_id_from(v: SqlValue) -> Result<String, String> {
    match v {
        SqlValue::Text(t) => Ok(t),
        SqlValue::Blob(b) => uuid::Uuid::from_slice(&b)
            .map(|u| u.hyphenated().to_string())
            .map_err(|e| format!("message_id: {e}")),
        other => Err(format!("message_id: unexpected {other:?}")),
    }
}

fn sample_from_row(r: &Row<'_>) -> rusqlite::Result<Result<StoredSample, String>> {
    let kind: String = r.get(2)?;
    let metadata: String = r.get(11)?;
    let t = match sample_type(&kind) {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    let md: Map<String, Value> = match serde_json::from_str(&metadata) {
        Ok(m) => m,
        Err(e) => return Ok(Err(format!("resource_metadata: {e}"))),
    };
    let mut s = Sample::new(
        r.get::<_, String>(1)?,
        t,
        r.get::<_, String>(3)?,
        r.get(4)?,
        r.get::<_, String>(7)?,
    );
    match message_id_from(r.get(0)?) {
        Ok(id) => s.set_message_id(id),
        Err(e) => return Ok(Err(e)),
    }
    s.set_user_id(r.get(5)?);
    s.set_project_id(r.get(6)?);
    s.set_source(r.get::<_, String>(8)?);
    s.set_timestamp(from_micros(r.get(9)?));
    s.set_resource_metadata(md);
    s.set_monotonic_time(r.get(12)?);
    Ok(Ok(StoredSample {
        sample: s,
        recorded_at: from_micros(r.get(10)?),
    }))
}

/// The WHERE clause (with its leading ` WHERE`, or empty) and arguments for `q`.
fn where_clause(q: &SampleQuery) -> (String, Vec<SqlValue>) {
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    for (col, v) in [
        ("counter_name = ?", &q.meter),
        ("resource_id = ?", &q.resource_id),
        ("project_id = ?", &q.project_id),
        ("user_id = ?", &q.user_id),
        ("source = ?", &q.source),
    ] {
        if let Some(v) = v {
            clauses.push(col);
            args.push(SqlValue::Text(v.clone()));
        }
    }
    if let Some(id) = &q.message_id {
        clauses.push("message_id = ?");
        args.push(message_key(id));
    }
    if let Some(t) = q.start {
        clauses.push("timestamp >= ?");
        args.push(SqlValue::Integer(t.timestamp_micros()));
    }
    if let Some(t) = q.end {
        clauses.push("timestamp < ?");
        args.push(SqlValue::Integer(t.timestamp_micros()));
    }
    let mut owned: Vec<String> = Vec::new();
    for c in &q.conditions {
        let lhs = match (&c.field, c.field.column()) {
            (Field::Metadata(path), _) => {
                args.push(SqlValue::Text(json_path(path)));
                "json_extract(resource_metadata, ?)".to_owned()
            }
            (_, Some(col)) => col.to_owned(),
            (_, None) => continue,
        };
        let value = match (&c.field, &c.value) {
            (Field::MessageId, CondValue::Text(t)) => message_key(t),
            (_, CondValue::Text(t)) => SqlValue::Text(t.clone()),
            (_, CondValue::Number(n)) => SqlValue::Real(*n),
            // JSON booleans are 1 and 0 to json_extract.
            (_, CondValue::Bool(b)) => SqlValue::Integer(i64::from(*b)),
            (_, CondValue::Time(t)) => SqlValue::Integer(t.timestamp_micros()),
        };
        args.push(value);
        owned.push(format!("{lhs} {} ?", c.op.sql()));
    }
    let all: Vec<&str> = clauses
        .into_iter()
        .chain(owned.iter().map(String::as_str))
        .collect();
    if all.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", all.join(" AND ")), args)
    }
}

fn query_samples(
    c: &mut Connection,
    q: &SampleQuery,
) -> rusqlite::Result<Vec<Result<StoredSample, String>>> {
    // One snapshot for the probe and the query.
    snapshot::read(c, |c| {
        let sources = Sources::probe(c)?;
        let (sql, args) = samples_sql(q, sources);
        let mut stmt = c.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), sample_from_row)?;
        rows.collect()
    })
}

/// The query for `q`'s samples, newest first, over `sources`.
fn samples_sql(q: &SampleQuery, sources: Sources) -> (String, Vec<SqlValue>) {
    let (filter, args) = where_clause(q);
    let mut sql = format!("SELECT {SAMPLE_COLUMNS} FROM meter{filter}");
    if sources == Sources::Both {
        // A compound select, not a subquery: SQLite merges the two tables' ordered
        // index scans and stops at the limit.
        sql.push_str(&format!(
            " UNION ALL SELECT {SAMPLE_COLUMNS} FROM meter_recent{filter}"
        ));
    }
    // Ties in insertion order, as Ceilometer's MongoDB driver returns them.
    sql.push_str(" ORDER BY timestamp DESC, id ASC");
    if let Some(l) = q.limit {
        sql.push_str(&format!(" LIMIT {l}"));
    }
    (sql, sources.args(&args))
}

/// A JSON path for `json_extract` from a dotted metadata path, each key quoted.
fn json_path(path: &str) -> String {
    let mut out = String::from("$");
    for key in path.split('.') {
        out.push_str(".\"");
        out.push_str(&key.replace('"', "\\\""));
        out.push('"');
    }
    out
}

fn sql_to_json(v: SqlValue) -> Value {
    match v {
        SqlValue::Null => Value::Null,
        SqlValue::Integer(i) => Value::from(i),
        SqlValue::Real(f) => Value::from(f),
        SqlValue::Text(t) => Value::String(t),
        SqlValue::Blob(b) => Value::String(String::from_utf8_lossy(&b).into_owned()),
    }
}

/// One GROUP BY query: every period of every group, in the database.
fn query_statistics(c: &mut Connection, q: &StatisticsQuery) -> rusqlite::Result<Vec<Statistics>> {
    // One snapshot for the probe and the three queries.
    snapshot::read(c, |c| statistics_in_snapshot(c, q))
}

fn statistics_in_snapshot(
    c: &Connection,
    q: &StatisticsQuery,
) -> rusqlite::Result<Vec<Statistics>> {
    let sources = Sources::probe(c)?;
    let (filter, args) = where_clause(&q.filter);
    // Periods start at the query's start, else at the first matching sample.
    let origin: Option<i64> = match (q.period, q.filter.start) {
        (None, _) => None,
        (Some(_), Some(t)) => Some(t.timestamp_micros()),
        (Some(_), None) => {
            // The minimum of each table's minimum: each an index probe.
            let sql = match sources {
                Sources::MeterOnly => format!("SELECT min(timestamp) FROM meter{filter}"),
                Sources::Both => format!(
                    "SELECT min(t) FROM (SELECT min(timestamp) AS t FROM meter{filter} \
                     UNION ALL SELECT min(timestamp) AS t FROM meter_recent{filter})"
                ),
            };
            c.prepare_cached(&sql)?
                .query_row(rusqlite::params_from_iter(sources.args(&args)), |r| {
                    r.get(0)
                })?
        }
    };
    if q.period.is_some() && origin.is_none() {
        return Ok(Vec::new());
    }
    // Ceilometer reports one row per unit. A meter has one unit almost always, and
    // `resource_meter` (written with the samples) says which: then the groups need no
    // unit and SQLite streams them in index order.
    let units: Vec<String> = match &q.filter.meter {
        Some(m) => c
            .prepare_cached(
                "SELECT DISTINCT counter_unit FROM resource_meter WHERE counter_name = ?1",
            )?
            .query_map([m], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?,
        None => Vec::new(),
    };
    let single = match units.as_slice() {
        [one] => Some(one.as_str()),
        _ => None,
    };
    run_statistics(c, q, (sources, &filter, &args), origin, single)
}

/// The columns the statistics of `q` read (what a union of the two tables must carry).
fn statistics_columns(q: &StatisticsQuery) -> String {
    let mut cols = vec!["counter_unit", "counter_volume", "timestamp"];
    for g in &q.groupby {
        cols.push(g.column().unwrap_or("resource_metadata"));
    }
    for a in &q.aggregates {
        if let Aggregate::Cardinality(g) = a {
            cols.push(g.column().unwrap_or("resource_id"));
        }
    }
    let mut seen = HashSet::new();
    cols.retain(|c| seen.insert(*c));
    cols.join(", ")
}

/// The statistics; grouped by unit too unless the meter's only unit is `unit`.
fn run_statistics(
    c: &Connection,
    q: &StatisticsQuery,
    (sources, filter, args): (Sources, &str, &[SqlValue]),
    origin: Option<i64>,
    unit: Option<&str>,
) -> rusqlite::Result<Vec<Statistics>> {
    let by_unit = unit.is_none();
    let mut select = vec![if by_unit { "counter_unit" } else { "NULL" }.to_owned()];
    let mut group: Vec<String> = Vec::new();
    let mut select_args: Vec<SqlValue> = Vec::new();
    if let (Some(period), Some(origin)) = (q.period, origin) {
        let len = (period.max(1) as i64).saturating_mul(1_000_000);
        select.push(format!("(timestamp - {origin}) / {len}"));
        group.push((select.len()).to_string());
    }
    for g in &q.groupby {
        match g.column() {
            Some(col) => select.push(col.to_owned()),
            None => {
                let GroupBy::Metadata(path) = g else { continue };
                select.push("json_extract(resource_metadata, ?)".into());
                select_args.push(SqlValue::Text(json_path(path)));
            }
        }
        group.push(select.len().to_string());
    }
    if by_unit {
        group.push("1".into());
    }
    let fixed = select.len();
    let keys = select.clone();
    let aggregates = [
        "count(*)",
        "min(counter_volume)",
        "max(counter_volume)",
        "sum(counter_volume)",
        "sum(counter_volume * counter_volume)",
        "min(timestamp)",
        "max(timestamp)",
    ];
    select.extend(aggregates.map(str::to_owned));
    let mut distinct = false;
    for a in &q.aggregates {
        if let Aggregate::Cardinality(g) = a {
            distinct = true;
            select.push(format!(
                "count(DISTINCT {})",
                g.column().unwrap_or("resource_id")
            ));
        }
    }
    let group_by = if group.is_empty() {
        String::new()
    } else {
        format!(" GROUP BY {}", group.join(", "))
    };
    let (sql, all_args) = match sources {
        Sources::MeterOnly => (
            format!("SELECT {} FROM meter{filter}{group_by}", select.join(", ")),
            [select_args, args.to_vec()].concat(),
        ),
        // Distinct counts do not combine: one grouping over the rows of both tables.
        Sources::Both if distinct => (
            format!(
                "SELECT {}{}{group_by}",
                select.join(", "),
                sources.from(&statistics_columns(q), filter)
            ),
            [select_args, sources.args(args)].concat(),
        ),
        // Each table grouped in its own index order, then the partial aggregates
        // combined (a union would have to be sorted to be grouped).
        Sources::Both => {
            let aliased: Vec<String> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| format!("{k} AS k{i}"))
                .chain(
                    aggregates
                        .iter()
                        .enumerate()
                        .map(|(i, a)| format!("{a} AS a{i}")),
                )
                .collect();
            let arm = |table: &str| {
                format!(
                    "SELECT {} FROM {table}{filter}{group_by}",
                    aliased.join(", ")
                )
            };
            let outer: Vec<String> = (0..keys.len())
                .map(|i| format!("k{i}"))
                .chain(
                    ["sum", "min", "max", "sum", "sum", "min", "max"]
                        .iter()
                        .enumerate()
                        .map(|(i, f)| format!("{f}(a{i})")),
                )
                .collect();
            let arm_args = [select_args, args.to_vec()].concat();
            (
                format!(
                    "SELECT {} FROM ({} UNION ALL {}){group_by}",
                    outer.join(", "),
                    arm("meter"),
                    arm("meter_recent")
                ),
                [arm_args.clone(), arm_args].concat(),
            )
        }
    };
    let mut stmt = c.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(all_args))?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let count: i64 = r.get(fixed)?;
        if count == 0 {
            continue;
        }
        let unit: String = match unit {
            Some(u) => u.to_owned(),
            None => r.get(0)?,
        };
        let mut i = 1;
        let (period_start, period_end) = match (q.period, origin) {
            (Some(period), Some(origin)) => {
                let index: i64 = r.get(i)?;
                i += 1;
                let (s, e) = period_bounds(origin, period, index);
                (Some(s), Some(e))
            }
            _ => (None, None),
        };
        let mut groupby = BTreeMap::new();
        for g in &q.groupby {
            groupby.insert(g.name(), sql_to_json(r.get(i)?));
            i += 1;
        }
        let (sum, sum_sq): (f64, f64) = (r.get(fixed + 3)?, r.get(fixed + 4)?);
        let (tsmin, tsmax): (i64, i64) = (r.get(fixed + 5)?, r.get(fixed + 6)?);
        let mut aggregate = BTreeMap::new();
        let mut extra = fixed + 7;
        for a in &q.aggregates {
            let value = match a {
                Aggregate::Stddev => stddev(count as u64, sum, sum_sq),
                Aggregate::Cardinality(_) => {
                    let v: i64 = r.get(extra)?;
                    extra += 1;
                    v as f64
                }
            };
            aggregate.insert(a.key(), value);
        }
        out.push(Statistics {
            unit,
            count: count as u64,
            min: r.get(fixed + 1)?,
            max: r.get(fixed + 2)?,
            sum,
            avg: sum / count as f64,
            duration_start: from_micros(tsmin),
            duration_end: from_micros(tsmax),
            period: q.period.unwrap_or(0),
            period_start: from_micros(period_start.unwrap_or(tsmin)),
            period_end: from_micros(period_end.unwrap_or(tsmax)),
            groupby: (!q.groupby.is_empty()).then_some(groupby),
            aggregate,
        });
    }
    finish(&mut out, q);
    Ok(out)
}

fn query_resources(
    c: &Connection,
    q: &ResourceQuery,
) -> rusqlite::Result<Vec<Result<Resource, String>>> {
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(r) = &q.resource_id {
        clauses.push("resource_id = ?");
        args.push(SqlValue::Text(r.clone()));
    }
    for (col, v) in [
        ("project_id = ?", &q.project_id),
        ("user_id = ?", &q.user_id),
        ("source = ?", &q.source),
    ] {
        if let Some(v) = v {
            clauses.push(col);
            args.push(SqlValue::Text(v.clone()));
        }
    }
    let mut sql = "SELECT resource_id, project_id, user_id, source, first_sample_timestamp, \
                   last_sample_timestamp, metadata, project_key FROM resource"
        .to_owned();
    if !clauses.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&clauses.join(" AND "));
    }
    sql.push_str(" ORDER BY resource_id, project_key");
    let mut stmt = c.prepare_cached(&sql)?;
    let mut meters = c.prepare_cached(
        "SELECT counter_name, counter_type, counter_unit FROM resource_meter \
         WHERE resource_id = ?1 AND project_key = ?2 \
         ORDER BY counter_name, counter_type, counter_unit",
    )?;
    let mut out = Vec::new();
    let mut rows = stmt.query(rusqlite::params_from_iter(args))?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let metadata: String = r.get(6)?;
        let project_key: String = r.get(7)?;
        let ms = meters
            .query_map([&id, &project_key], |m| {
                Ok(ResourceMeter {
                    name: m.get(0)?,
                    sample_type: m.get(1)?,
                    unit: m.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(
            match serde_json::from_str::<Map<String, Value>>(&metadata) {
                Ok(md) => Ok(Resource {
                    resource_id: id,
                    project_id: r.get(1)?,
                    user_id: r.get(2)?,
                    source: r.get(3)?,
                    first_sample_timestamp: from_micros(r.get(4)?),
                    last_sample_timestamp: from_micros(r.get(5)?),
                    metadata: md,
                    meters: ms,
                }),
                Err(e) => Err(format!("resource {id}: metadata: {e}")),
            },
        );
    }
    Ok(out)
}

fn expire_before(c: &mut Connection, cutoff: i64) -> rusqlite::Result<u64> {
    // In slices, so that a large first sweep does not hold the write lock for long.
    let mut removed = 0u64;
    for table in ["meter", "meter_recent"] {
        loop {
            let n = c.execute(
                &format!(
                    "DELETE FROM {table} WHERE id IN \
                     (SELECT id FROM {table} WHERE timestamp < ?1 LIMIT 10000)"
                ),
                [cutoff],
            )?;
            removed += n as u64;
            if n < 10000 {
                break;
            }
        }
    }
    let tx = c.transaction()?;
    tx.execute(
        "DELETE FROM resource WHERE last_sample_timestamp < ?1",
        [cutoff],
    )?;
    tx.execute(
        "DELETE FROM resource_meter WHERE (resource_id, project_key) NOT IN \
         (SELECT resource_id, project_key FROM resource)",
        [],
    )?;
    tx.commit()?;
    Ok(removed)
}

#[async_trait]
impl Storage for EmbeddedStore {
    fn describe(&self) -> String {
        format!("embedded store {}", self.path.display())
    }

    async fn record(&self, samples: &[Sample]) -> Result<WriteOutcome, StorageError> {
        let (kept, refused) = super::limits::screen(samples);
        if kept.is_empty() {
            return Ok(WriteOutcome {
                refused,
                ..WriteOutcome::default()
            });
        }
        let batch = kept.into_owned();
        let now = (self.clock)().timestamp_micros();
        let path = self.path.clone();
        let known = self.known_meters.clone();
        let staging = self.staging.clone();
        let large_cache = self.large_cache.clone();
        let mut outcome = self
            .blocking(&self.writer, move |c| {
                if batch.len() >= LARGE_BATCH && !large_cache.swap(true, Ordering::Relaxed) {
                    c.pragma_update(None, "cache_size", LARGE_CACHE_KIB)
                        .map_err(sql_err(&path))?;
                }
                let mut known = known
                    .lock()
                    .map_err(|_| unavailable(&path, "meter cache lock poisoned".into()))?;
                let mut staging = staging
                    .lock()
                    .map_err(|_| unavailable(&path, "staging lock poisoned".into()))?;
                let written = write_batch(c, &mut known, &mut staging, &batch, now);
                if written.is_err() {
                    // The transaction rolled back; the sizes it counted did not happen.
                    staging.forget();
                }
                written.map_err(sql_err(&path))
            })
            .await?;
        outcome.refused = refused;
        Ok(outcome)
    }

    async fn samples(&self, query: &SampleQuery) -> Result<Vec<StoredSample>, StorageError> {
        let q = query.clone();
        let path = self.path.clone();
        let rows = self
            .blocking(&self.reader, move |c| {
                query_samples(c, &q).map_err(sql_err(&path))
            })
            .await?;
        self.readable(rows)
    }

    async fn resources(&self, query: &ResourceQuery) -> Result<Vec<Resource>, StorageError> {
        let q = query.clone();
        let path = self.path.clone();
        let rows = self
            .blocking(&self.reader, move |c| {
                query_resources(c, &q).map_err(sql_err(&path))
            })
            .await?;
        self.readable(rows)
    }

    async fn statistics(&self, query: &StatisticsQuery) -> Result<Vec<Statistics>, StorageError> {
        let q = query.clone();
        let path = self.path.clone();
        self.blocking(&self.reader, move |c| {
            query_statistics(c, &q).map_err(sql_err(&path))
        })
        .await
    }

    async fn expire(&self, now: DateTime<Utc>) -> Result<u64, StorageError> {
        let Some(cutoff) = self.retention.cutoff(now) else {
            return Ok(0);
        };
        let cutoff = cutoff.timestamp_micros();
        let path = self.path.clone();
        let known = self.known_meters.clone();
        let staging = self.staging.clone();
        self.blocking(&self.writer, move |c| {
            let removed =
                expire_before(c, cutoff).and_then(|n| events::expire_before(c, cutoff).map(|_| n));
            if let Ok(mut k) = known.lock() {
                k.clear();
            }
            if let Ok(mut s) = staging.lock() {
                s.forget();
            }
            removed.map_err(sql_err(&path))
        })
        .await
    }

    fn retention(&self) -> Retention {
        self.retention
    }

    async fn record_events(&self, batch: &[Event]) -> Result<WriteOutcome, StorageError> {
        let batch = batch.to_vec();
        let path = self.path.clone();
        self.blocking(&self.writer, move |c| {
            events::record(c, &batch).map_err(sql_err(&path))
        })
        .await
    }

    async fn events(&self, query: &EventQuery) -> Result<Vec<Event>, StorageError> {
        let q = query.clone();
        let path = self.path.clone();
        let rows = self
            .blocking(&self.reader, move |c| {
                events::query(c, &q).map_err(sql_err(&path))
            })
            .await?;
        self.readable(rows)
    }

    async fn event_types(&self) -> Result<Vec<String>, StorageError> {
        let path = self.path.clone();
        self.blocking(&self.reader, move |c| {
            events::event_types(c).map_err(sql_err(&path))
        })
        .await
    }

    async fn trait_descriptions(
        &self,
        event_type: &str,
    ) -> Result<Vec<TraitDescription>, StorageError> {
        let t = event_type.to_owned();
        let path = self.path.clone();
        let rows = self
            .blocking(&self.reader, move |c| {
                events::trait_descriptions(c, &t).map_err(sql_err(&path))
            })
            .await?;
        self.readable(rows)
    }

    async fn trait_values(&self, event_type: &str, name: &str) -> Result<Vec<Trait>, StorageError> {
        let (t, n) = (event_type.to_owned(), name.to_owned());
        let path = self.path.clone();
        let rows = self
            .blocking(&self.reader, move |c| {
                events::trait_values(c, &t, &n).map_err(sql_err(&path))
            })
            .await?;
        self.readable(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan's lines for `sql` (with `args` bound).
    fn plan(c: &Connection, sql: &str, args: &[SqlValue]) -> Vec<String> {
        let mut stmt = c
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("explain");
        stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("plan rows")
    }

    #[test]
    fn newest_samples_are_read_in_index_order_with_nothing_to_sort() {
        let c = Connection::open_in_memory().expect("memory db");
        c.execute_batch(SCHEMA).expect("schema");
        c.execute_batch(staging::SCHEMA).expect("staging schema");
        let newest = SampleQuery {
            limit: Some(100),
            ..SampleQuery::default()
        };
        let of_meter = SampleQuery {
            meter: Some("cpu".into()),
            ..newest.clone()
        };
        let of_project = SampleQuery {
            project_id: Some("p".into()),
            ..newest.clone()
        };
        for q in [newest, of_meter, of_project] {
            for sources in [Sources::MeterOnly, Sources::Both] {
                let (sql, args) = samples_sql(&q, sources);
                let lines = plan(&c, &sql, &args);
                assert!(
                    lines.iter().all(|l| !l.contains("TEMP B-TREE")),
                    "{q:?} over {sources:?} sorts: {lines:#?}"
                );
                assert!(
                    lines.iter().any(|l| l.contains("USING INDEX")),
                    "{q:?} over {sources:?} reads an index: {lines:#?}"
                );
            }
        }
    }
}
