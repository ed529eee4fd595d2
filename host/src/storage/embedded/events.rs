//! Events in the embedded store: one row per event (unique message id) and one per
//! trait, its value in one column whose SQLite type follows the trait's (text,
//! integer, real; a time as integer microseconds), so that a filter compares in the
//! trait's own type.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::Value;

use super::super::events::{trait_type_of_code, EventQuery, TraitDescription};
use super::super::model::from_micros;
use super::super::WriteOutcome;
use crate::events::{Event, Trait, TraitType, TraitValue};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS event (
    id INTEGER PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    generated INTEGER NOT NULL,
    raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS event_generated ON event (generated, message_id);
CREATE INDEX IF NOT EXISTS event_type_generated ON event (event_type, generated);
-- type: Ceilometer's codes (1 text, 2 int, 3 float, 4 datetime).
CREATE TABLE IF NOT EXISTS event_trait (
    event_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    type INTEGER NOT NULL,
    value,
    PRIMARY KEY (event_id, name)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS event_trait_value ON event_trait (name, type, value);
";

fn sql_value(v: &TraitValue) -> SqlValue {
    match v {
        TraitValue::Text(s) => SqlValue::Text(s.clone()),
        TraitValue::Int(i) => SqlValue::Integer(*i),
        TraitValue::Float(f) => SqlValue::Real(*f),
        TraitValue::Datetime(t) => SqlValue::Integer(t.timestamp_micros()),
    }
}

fn trait_value(code: i64, v: SqlValue) -> Result<TraitValue, String> {
    let t = trait_type_of_code(code).ok_or_else(|| format!("trait type {code} is unknown"))?;
    Ok(match (t, v) {
        (TraitType::Text, SqlValue::Text(s)) => TraitValue::Text(s),
        (TraitType::Int, SqlValue::Integer(i)) => TraitValue::Int(i),
        (TraitType::Float, SqlValue::Real(f)) => TraitValue::Float(f),
        (TraitType::Float, SqlValue::Integer(i)) => TraitValue::Float(i as f64),
        (TraitType::Datetime, SqlValue::Integer(i)) => TraitValue::Datetime(from_micros(i)),
        (t, v) => return Err(format!("a {t:?} trait holds {v:?}")),
    })
}

/// Stores `events` in one transaction.
pub(super) fn record(c: &mut Connection, events: &[Event]) -> rusqlite::Result<WriteOutcome> {
    let tx = c.transaction()?;
    let mut outcome = WriteOutcome::default();
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO event (message_id, event_type, generated, raw) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (message_id) DO NOTHING",
        )?;
        let mut add_trait = tx.prepare_cached(
            "INSERT OR REPLACE INTO event_trait (event_id, name, type, value) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for e in events {
            let n = insert.execute(params![
                e.message_id,
                e.event_type,
                e.generated.timestamp_micros(),
                e.raw.to_string()
            ])?;
            if n == 0 {
                outcome.duplicates += 1;
                continue;
            }
            outcome.stored += 1;
            let id = tx.last_insert_rowid();
            for t in &e.traits {
                add_trait.execute(params![
                    id,
                    t.name,
                    i64::from(t.value.trait_type().code()),
                    sql_value(&t.value)
                ])?;
            }
        }
    }
    tx.commit()?;
    Ok(outcome)
}

/// The WHERE clause and arguments of `q`.
fn where_clause(q: &EventQuery) -> (String, Vec<SqlValue>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    if let Some(t) = &q.event_type {
        clauses.push("e.event_type = ?".into());
        args.push(SqlValue::Text(t.clone()));
    }
    if let Some(m) = &q.message_id {
        clauses.push("e.message_id = ?".into());
        args.push(SqlValue::Text(m.clone()));
    }
    if let Some(t) = q.start {
        clauses.push("e.generated >= ?".into());
        args.push(SqlValue::Integer(t.timestamp_micros()));
    }
    if let Some(t) = q.end {
        clauses.push("e.generated <= ?".into());
        args.push(SqlValue::Integer(t.timestamp_micros()));
    }
    for f in &q.traits {
        clauses.push(format!(
            "EXISTS (SELECT 1 FROM event_trait t WHERE t.event_id = e.id AND t.name = ? \
             AND t.type = ? AND t.value {} ?)",
            f.op.sql()
        ));
        args.push(SqlValue::Text(f.name.clone()));
        args.push(SqlValue::Integer(i64::from(f.value.trait_type().code())));
        args.push(sql_value(&f.value));
    }
    if let Some(p) = &q.admin_project {
        clauses.push(
            "(NOT EXISTS (SELECT 1 FROM event_trait t WHERE t.event_id = e.id AND t.name = 'project_id') \
             OR EXISTS (SELECT 1 FROM event_trait t WHERE t.event_id = e.id AND t.name = 'project_id' \
             AND t.type = 1 AND t.value = ?))"
                .into(),
        );
        args.push(SqlValue::Text(p.clone()));
    }
    if clauses.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", clauses.join(" AND ")), args)
    }
}

/// The events of `q` (or, per event, why it cannot be read).
pub(super) fn query(
    c: &mut Connection,
    q: &EventQuery,
) -> rusqlite::Result<Vec<Result<Event, String>>> {
    let tx = c.transaction()?;
    let (filter, args) = where_clause(q);
    let mut sql = format!(
        "SELECT e.id, e.message_id, e.event_type, e.generated, e.raw FROM event e{filter} \
         ORDER BY e.generated, e.message_id"
    );
    if let Some(l) = q.limit {
        sql.push_str(&format!(" LIMIT {l}"));
    }
    let mut stmt = tx.prepare_cached(&sql)?;
    let rows: Vec<(i64, String, String, i64, String)> = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut traits_of = tx.prepare_cached(
        "SELECT name, type, value FROM event_trait WHERE event_id = ?1 ORDER BY name",
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, message_id, event_type, generated, raw) in rows {
        let traits: Vec<Result<Trait, String>> = traits_of
            .query_map([id], |r| {
                let name: String = r.get(0)?;
                Ok(trait_value(r.get(1)?, r.get(2)?).map(|value| Trait { name, value }))
            })?
            .collect::<rusqlite::Result<_>>()?;
        out.push(
            traits
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .and_then(|traits| {
                    let raw: Value = serde_json::from_str(&raw)
                        .map_err(|e| format!("event {message_id}: raw: {e}"))?;
                    Ok(Event {
                        message_id,
                        event_type,
                        generated: from_micros(generated),
                        traits,
                        raw,
                    })
                }),
        );
    }
    Ok(out)
}

pub(super) fn event_types(c: &Connection) -> rusqlite::Result<Vec<String>> {
    c.prepare_cached("SELECT DISTINCT event_type FROM event ORDER BY event_type")?
        .query_map([], |r| r.get(0))?
        .collect()
}

pub(super) fn trait_descriptions(
    c: &Connection,
    event_type: &str,
) -> rusqlite::Result<Vec<Result<TraitDescription, String>>> {
    c.prepare_cached(
        "SELECT DISTINCT t.name, t.type FROM event_trait t JOIN event e ON e.id = t.event_id \
         WHERE e.event_type = ?1 ORDER BY t.type, t.name",
    )?
    .query_map([event_type], |r| {
        let name: String = r.get(0)?;
        let code: i64 = r.get(1)?;
        Ok(trait_type_of_code(code)
            .map(|trait_type| TraitDescription { name, trait_type })
            .ok_or_else(|| format!("trait type {code} is unknown")))
    })?
    .collect()
}

pub(super) fn trait_values(
    c: &Connection,
    event_type: &str,
    name: &str,
) -> rusqlite::Result<Vec<Result<Trait, String>>> {
    c.prepare_cached(
        "SELECT t.name, t.type, t.value FROM event_trait t JOIN event e ON e.id = t.event_id \
         WHERE e.event_type = ?1 AND t.name = ?2 ORDER BY e.generated, e.message_id",
    )?
    .query_map([event_type, name], |r| {
        let name: String = r.get(0)?;
        Ok(trait_value(r.get(1)?, r.get(2)?).map(|value| Trait { name, value }))
    })?
    .collect()
}

/// Removes events generated before `cutoff` (and their traits).
pub(super) fn expire_before(c: &mut Connection, cutoff: i64) -> rusqlite::Result<u64> {
    let tx = c.transaction()?;
    let ids: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM event WHERE generated < ?1 LIMIT 1",
            [cutoff],
            |r| r.get(0),
        )
        .optional()?;
    if ids.is_none() {
        return Ok(0);
    }
    tx.execute(
        "DELETE FROM event_trait WHERE event_id IN (SELECT id FROM event WHERE generated < ?1)",
        [cutoff],
    )?;
    let n = tx.execute("DELETE FROM event WHERE generated < ?1", [cutoff])?;
    tx.commit()?;
    Ok(n as u64)
}
