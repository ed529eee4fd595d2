//! Staged writes: once the `meter` table is large, batches land in a small
//! `meter_recent` table and are merged into `meter` in large runs sorted by series.
//!
//! Why: a batch holds one sample of each of thousands of series, and `meter_stats`
//! (ordered by series) has one leaf page per series once the table is large, so a
//! batch written straight into `meter` dirties a page per sample — tens of MB of WAL
//! and checkpoint per batch, growing with the table until the rate is a fraction of
//! an empty store's. `meter_recent` is small enough that its pages are few; merging
//! a few hundred thousand samples in series order touches each series' pages of
//! `meter` once per merge instead of once per batch. Small stores write straight into
//! `meter`, where that cost does not arise and a second copy would only cost.
//!
//! Readers see both tables: [`Sources`] says whether `meter_recent` holds anything
//! (probed in the reader's transaction, so the answer and the query share a snapshot).

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Transaction};

/// The staging table: the same columns and indexes as `meter`.
pub(super) const SCHEMA: &str = concat!(
    "CREATE TABLE IF NOT EXISTS meter_recent (",
    meter_columns!(),
    ");
CREATE INDEX IF NOT EXISTS meter_recent_stats ON meter_recent (counter_name, resource_id, timestamp, counter_volume, counter_unit);
CREATE INDEX IF NOT EXISTS meter_recent_project_time ON meter_recent (project_id, timestamp DESC);
CREATE INDEX IF NOT EXISTS meter_recent_name_time ON meter_recent (counter_name, timestamp DESC);
CREATE INDEX IF NOT EXISTS meter_recent_time ON meter_recent (timestamp DESC);
"
);

/// Every column of both tables, in their order.
const COLUMNS: &str = "id, message_id, counter_name, counter_type, counter_unit, \
     counter_volume, user_id, project_id, resource_id, source, timestamp, recorded_at, \
     resource_metadata, monotonic_time";

/// Stage once `meter` holds about this many samples (its series index then has a
/// page per series of the typical load batch, 10 000 series).
pub const STAGE_ABOVE: u64 = 500_000;
/// Merge once this many samples are staged.
pub const MERGE_AT: u64 = 100_000;

/// Where a batch is written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Table {
    Meter,
    Recent,
}

/// The writer's view of the two tables: thresholds, and sizes it keeps up to date
/// (recomputed after anything it did not see, such as a failed commit or a sweep).
#[derive(Debug)]
pub(super) struct Staging {
    stage_above: u64,
    merge_at: u64,
    meter_rows: Option<u64>,
    staged: Option<u64>,
}

impl Staging {
    pub(super) fn new(stage_above: u64, merge_at: u64) -> Staging {
        Staging {
            stage_above,
            merge_at: merge_at.max(1),
            meter_rows: None,
            staged: None,
        }
    }

    /// Forgets the sizes (the next batch asks the database).
    pub(super) fn forget(&mut self) {
        self.meter_rows = None;
        self.staged = None;
    }

    /// The table the next batch goes to.
    pub(super) fn table(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<Table> {
        let meter_rows = match self.meter_rows {
            Some(n) => n,
            None => {
                // Ids only grow, so the span of ids bounds the count; reading it is
                // two index probes where count(*) reads the whole table.
                let n: i64 = tx.query_row(
                    "SELECT coalesce(max(id) - min(id) + 1, 0) FROM meter",
                    [],
                    |r| r.get(0),
                )?;
                *self.meter_rows.insert(n.max(0) as u64)
            }
        };
        // Counted before the batch is written (`recorded` adds the batch to it).
        self.staged_rows(tx)?;
        // Asked every batch, not remembered: `meter` may be written only while
        // nothing is staged, and another process may have staged since.
        let staged: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM meter_recent)", [], |r| {
            r.get(0)
        })?;
        Ok(if staged || meter_rows >= self.stage_above {
            Table::Recent
        } else {
            Table::Meter
        })
    }

    fn staged_rows(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<u64> {
        match self.staged {
            Some(n) => Ok(n),
            None => {
                let n: i64 = tx.query_row("SELECT count(*) FROM meter_recent", [], |r| r.get(0))?;
                Ok(*self.staged.insert(n.max(0) as u64))
            }
        }
    }

    /// Accounts for `stored` samples written to `table`, merging the staged samples
    /// into `meter` when there are enough (in the batch's transaction, so a merge is
    /// all or nothing).
    pub(super) fn recorded(
        &mut self,
        tx: &Transaction<'_>,
        table: Table,
        stored: u64,
    ) -> rusqlite::Result<()> {
        match table {
            Table::Meter => {
                if let Some(n) = self.meter_rows.as_mut() {
                    *n += stored;
                }
            }
            Table::Recent => {
                let staged = self.staged_rows(tx)? + stored;
                self.staged = Some(staged);
                if staged >= self.merge_at {
                    merge(tx)?;
                    self.staged = Some(0);
                    if let Some(n) = self.meter_rows.as_mut() {
                        *n += staged;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Moves every staged sample into `meter`, in series order. Ids are kept (they give
/// the insertion order queries break ties by).
fn merge(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    let started = std::time::Instant::now();
    // `WHERE true`: SQLite needs a WHERE before an upsert clause on INSERT … SELECT.
    // No conflict is expected (a sample is staged only when absent from `meter`).
    let moved = tx.execute(
        &format!(
            "INSERT INTO meter ({COLUMNS}) SELECT {COLUMNS} FROM meter_recent WHERE true \
             ORDER BY counter_name, resource_id, timestamp ON CONFLICT (message_id) DO NOTHING"
        ),
        [],
    )?;
    tx.execute("DELETE FROM meter_recent", [])?;
    tracing::debug!(target: "ceilo::storage", moved, took_ms = started.elapsed().as_millis() as u64, "staged samples merged into the meter table");
    Ok(())
}

/// The first id a new batch may use: above every id of both tables.
pub(super) fn next_id(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.query_row(
        "SELECT max(coalesce((SELECT max(id) FROM meter), 0), \
                    coalesce((SELECT max(id) FROM meter_recent), 0)) + 1",
        [],
        |r| r.get(0),
    )
}

/// Which tables a read must cover.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Sources {
    MeterOnly,
    Both,
}

impl Sources {
    /// Probes `meter_recent` (call inside the read transaction).
    pub(super) fn probe(c: &Connection) -> rusqlite::Result<Sources> {
        let any: bool = c
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM meter_recent)")?
            .query_row([], |r| r.get(0))?;
        Ok(if any {
            Sources::Both
        } else {
            Sources::MeterOnly
        })
    }

    /// ` FROM …` reading `columns` of the samples that match `filter` (a WHERE clause
    /// with its leading space, or empty), from `meter` alone or from both tables.
    pub(super) fn from(self, columns: &str, filter: &str) -> String {
        match self {
            Sources::MeterOnly => format!(" FROM meter{filter}"),
            Sources::Both => format!(
                " FROM (SELECT {columns} FROM meter{filter} \
                 UNION ALL SELECT {columns} FROM meter_recent{filter})"
            ),
        }
    }

    /// The filter's arguments, once per table read.
    pub(super) fn args(self, args: &[SqlValue]) -> Vec<SqlValue> {
        match self {
            Sources::MeterOnly => args.to_vec(),
            Sources::Both => args.iter().chain(args).cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Connection {
        let c = Connection::open_in_memory().expect("memory db");
        c.execute_batch(&SCHEMA.replace("meter_recent", "meter"))
            .expect("meter");
        c.execute_batch(SCHEMA).expect("recent");
        c
    }

    fn insert(c: &Connection, table: Table, id: i64, name: &str) {
        c.execute(
            &format!(
                "INSERT INTO {} (id, message_id, counter_name, counter_type, counter_unit, \
                 counter_volume, resource_id, source, timestamp, recorded_at, resource_metadata) \
                 VALUES (?1, ?1, ?2, 'gauge', '%', 1.0, 'r', 's', ?1, 0, '{{}}')",
                match table {
                    Table::Meter => "meter",
                    Table::Recent => "meter_recent",
                }
            ),
            rusqlite::params![id, name],
        )
        .expect("insert");
    }

    #[test]
    fn small_stores_write_to_meter_then_stage_and_merge() {
        let mut c = store();
        let mut staging = Staging::new(3, 2);
        for id in 1..=8 {
            let tx = c.transaction().expect("tx");
            let table = staging.table(&tx).expect("table");
            assert_eq!(table, if id <= 3 { Table::Meter } else { Table::Recent });
            insert(&tx, table, id, "m");
            staging.recorded(&tx, table, 1).expect("recorded");
            tx.commit().expect("commit");
        }
        let count = |t: &str| -> i64 {
            c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0))
                .expect("count")
        };
        // 3 direct, then merges at 2 staged: 4+5 and 6+7 merged, 8 staged.
        assert_eq!((count("meter"), count("meter_recent")), (7, 1));
        // A writer that lost track asks the database and agrees.
        staging.forget();
        let tx = c.transaction().expect("tx");
        assert_eq!(staging.table(&tx).expect("table"), Table::Recent);
        assert_eq!(next_id(&tx).expect("next id"), 9);
    }

    #[test]
    fn readers_cover_the_staging_table_only_when_it_holds_samples() {
        let c = store();
        assert_eq!(Sources::probe(&c).expect("probe"), Sources::MeterOnly);
        insert(&c, Table::Recent, 1, "m");
        let s = Sources::probe(&c).expect("probe");
        assert_eq!(s, Sources::Both);
        insert(&c, Table::Meter, 2, "m");
        let sql = format!(
            "SELECT count(*){}",
            s.from("counter_name", " WHERE counter_name = ?")
        );
        let n: i64 = c
            .query_row(
                &sql,
                rusqlite::params_from_iter(s.args(&[SqlValue::Text("m".into())])),
                |r| r.get(0),
            )
            .expect("count");
        assert_eq!(n, 2);
    }
}
