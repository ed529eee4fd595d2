//! Events in MongoDB: one document per event in `event` (`_id` the message id, as
//! Panko keys them), its traits an array of `{trait_name, trait_type, trait_value}`
//! (the type as Ceilometer's code; a time as integer microseconds), `generated_us`
//! for exact order and filters, `timestamp` as a date for TTL indexes and people,
//! and the raw notification as JSON text (its keys may hold `.` and `$`).

use futures_lite::StreamExt;
use mongodb::bson::{doc, Bson, DateTime as BsonDateTime, Document};
use mongodb::error::ErrorKind;
use mongodb::options::FindOptions;
use mongodb::Collection;

use super::events::{trait_type_of_code, EventQuery, TraitDescription};
use super::model::from_micros;
use super::mongo::DUPLICATE_KEY;
use super::WriteOutcome;
use crate::events::{Event, Trait, TraitType, TraitValue};

fn bson_value(v: &TraitValue) -> Bson {
    match v {
        TraitValue::Text(s) => Bson::String(s.clone()),
        TraitValue::Int(i) => Bson::Int64(*i),
        TraitValue::Float(f) => Bson::Double(*f),
        TraitValue::Datetime(t) => Bson::Int64(t.timestamp_micros()),
    }
}

fn to_document(e: &Event) -> Document {
    let traits: Vec<Bson> = e
        .traits
        .iter()
        .map(|t| {
            Bson::Document(doc! {
                "trait_name": &t.name,
                "trait_type": i32::from(t.value.trait_type().code()),
                "trait_value": bson_value(&t.value),
            })
        })
        .collect();
    doc! {
        "_id": &e.message_id,
        "event_type": &e.event_type,
        "generated_us": e.generated.timestamp_micros(),
        "timestamp": BsonDateTime::from_millis(e.generated.timestamp_millis()),
        "traits": traits,
        "raw": e.raw.to_string(),
    }
}

fn trait_of(d: &Document) -> Result<Trait, String> {
    let name = d
        .get_str("trait_name")
        .map_err(|e| format!("trait_name: {e}"))?;
    let code = match d.get("trait_type") {
        Some(Bson::Int32(i)) => i64::from(*i),
        Some(Bson::Int64(i)) => *i,
        other => return Err(format!("trait {name}: trait_type {other:?}")),
    };
    let t = trait_type_of_code(code).ok_or_else(|| format!("trait {name}: type {code}"))?;
    let value = match (t, d.get("trait_value")) {
        (TraitType::Text, Some(Bson::String(s))) => TraitValue::Text(s.clone()),
        (TraitType::Int, Some(Bson::Int64(i))) => TraitValue::Int(*i),
        (TraitType::Int, Some(Bson::Int32(i))) => TraitValue::Int(i64::from(*i)),
        (TraitType::Float, Some(Bson::Double(f))) => TraitValue::Float(*f),
        (TraitType::Datetime, Some(Bson::Int64(i))) => TraitValue::Datetime(from_micros(*i)),
        (t, v) => return Err(format!("trait {name}: a {t:?} trait holds {v:?}")),
    };
    Ok(Trait {
        name: name.to_owned(),
        value,
    })
}

fn event_of(d: &Document) -> Result<Event, String> {
    let message_id = d
        .get_str("_id")
        .map_err(|e| format!("_id: {e}"))?
        .to_owned();
    let event_type = d
        .get_str("event_type")
        .map_err(|e| format!("event {message_id}: event_type: {e}"))?
        .to_owned();
    let generated = d
        .get_i64("generated_us")
        .map_err(|e| format!("event {message_id}: generated_us: {e}"))?;
    let mut traits = d
        .get_array("traits")
        .map_err(|e| format!("event {message_id}: traits: {e}"))?
        .iter()
        .map(|t| match t {
            Bson::Document(t) => trait_of(t),
            other => Err(format!("a trait is {other:?}")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("event {message_id}: {e}"))?;
    traits.sort_by(|a, b| a.name.cmp(&b.name));
    let raw = serde_json::from_str(d.get_str("raw").unwrap_or("{}"))
        .map_err(|e| format!("event {message_id}: raw: {e}"))?;
    Ok(Event {
        message_id,
        event_type,
        generated: from_micros(generated),
        traits,
        raw,
    })
}

/// Inserts `events`; already stored ones count as duplicates. `Err` is an outage
/// (the caller retries the batch; what was stored then counts as duplicates).
pub(super) async fn record(
    c: &Collection<Document>,
    events: &[Event],
) -> Result<WriteOutcome, String> {
    let mut outcome = WriteOutcome::default();
    if events.is_empty() {
        return Ok(outcome);
    }
    let docs: Vec<Document> = events.iter().map(to_document).collect();
    match c.insert_many(docs).ordered(false).await {
        Ok(r) => outcome.stored = r.inserted_ids.len(),
        Err(e) => {
            let ErrorKind::InsertMany(ime) = e.kind.as_ref() else {
                return Err(e.to_string());
            };
            if let Some(wce) = &ime.write_concern_error {
                return Err(format!("write concern: {}", wce.message));
            }
            let errors = ime.write_errors.as_deref().unwrap_or_default();
            if let Some(other) = errors.iter().find(|we| we.code != DUPLICATE_KEY) {
                return Err(other.message.clone());
            }
            outcome.duplicates = errors.len();
            outcome.stored = events.len() - errors.len();
        }
    }
    Ok(outcome)
}

fn filter(q: &EventQuery) -> Document {
    let mut f = Document::new();
    if let Some(t) = &q.event_type {
        f.insert("event_type", t);
    }
    if let Some(m) = &q.message_id {
        f.insert("_id", m);
    }
    let mut generated = Document::new();
    if let Some(t) = q.start {
        generated.insert("$gte", t.timestamp_micros());
    }
    if let Some(t) = q.end {
        generated.insert("$lte", t.timestamp_micros());
    }
    if !generated.is_empty() {
        f.insert("generated_us", generated);
    }
    let mut all: Vec<Bson> = q
        .traits
        .iter()
        .map(|t| {
            Bson::Document(doc! { "traits": { "$elemMatch": {
                "trait_name": &t.name,
                "trait_type": i32::from(t.value.trait_type().code()),
                "trait_value": { t.op.mongo(): bson_value(&t.value) },
            } } })
        })
        .collect();
    if let Some(p) = &q.admin_project {
        all.push(Bson::Document(doc! { "$or": [
            { "traits.trait_name": { "$ne": "project_id" } },
            { "traits": { "$elemMatch": { "trait_name": "project_id", "trait_value": p } } },
        ] }));
    }
    if !all.is_empty() {
        f.insert("$and", all);
    }
    f
}

/// The events of `q`, oldest first.
pub(super) async fn query(
    c: &Collection<Document>,
    q: &EventQuery,
) -> Result<Vec<Result<Event, String>>, String> {
    let options = FindOptions::builder()
        .sort(doc! { "generated_us": 1, "_id": 1 })
        .limit(q.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX)))
        .build();
    let mut cursor = c
        .find(filter(q))
        .with_options(options)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    while let Some(d) = cursor.next().await {
        out.push(event_of(&d.map_err(|e| e.to_string())?));
    }
    Ok(out)
}

pub(super) async fn event_types(c: &Collection<Document>) -> Result<Vec<String>, String> {
    let mut types: Vec<String> = c
        .distinct("event_type", doc! {})
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter_map(|b| match b {
            Bson::String(s) => Some(s),
            _ => None,
        })
        .collect();
    types.sort();
    types.dedup();
    Ok(types)
}

/// Every trait of the stored events of `event_type`, oldest event first.
pub(super) async fn traits_of_type(
    c: &Collection<Document>,
    event_type: &str,
) -> Result<Vec<Result<Trait, String>>, String> {
    let q = EventQuery {
        event_type: Some(event_type.to_owned()),
        ..EventQuery::default()
    };
    let mut out = Vec::new();
    for e in query(c, &q).await? {
        match e {
            Ok(e) => out.extend(e.traits.into_iter().map(Ok)),
            Err(e) => out.push(Err(e)),
        }
    }
    Ok(out)
}

/// The (name, type) pairs of `traits`, unique, in the order of
/// [`Storage::trait_descriptions`](crate::storage::Storage::trait_descriptions).
pub(super) fn descriptions(traits: Vec<Trait>) -> Vec<TraitDescription> {
    let mut d: Vec<TraitDescription> = traits
        .into_iter()
        .map(|t| TraitDescription {
            trait_type: t.value.trait_type(),
            name: t.name,
        })
        .collect();
    d.sort_by(|a, b| (a.trait_type.code(), &a.name).cmp(&(b.trait_type.code(), &b.name)));
    d.dedup();
    d
}
