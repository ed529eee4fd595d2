//! What the stores keep of events and how they are asked for them (Panko's event
//! storage: events with typed traits; filters on type, message id, time and traits).

use chrono::{DateTime, Utc};

use super::Op;
use crate::events::{TraitType, TraitValue};

/// Which events (all given conditions hold); ordered by `generated`, then message id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventQuery {
    /// `event_type` equals.
    pub event_type: Option<String>,
    /// `message_id` equals.
    pub message_id: Option<String>,
    /// `generated` at or after.
    pub start: Option<DateTime<Utc>>,
    /// `generated` at or before.
    pub end: Option<DateTime<Utc>>,
    /// Each: the event has a trait of that name and type whose value compares so.
    pub traits: Vec<TraitFilter>,
    /// An admin's view without `all_tenants`: events with no `project_id` trait, or
    /// whose `project_id` is this project.
    pub admin_project: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
}

/// A condition on one trait.
#[derive(Debug, Clone, PartialEq)]
pub struct TraitFilter {
    /// The trait's name.
    pub name: String,
    /// How it compares.
    pub op: Op,
    /// With what (its type is the trait's type compared).
    pub value: TraitValue,
}

/// A trait name of an event type, with the type its values were stored as.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TraitDescription {
    /// The trait's name.
    pub name: String,
    /// Its type.
    pub trait_type: TraitType,
}

/// The name Ceilometer's storage gives trait type `code` (1–4).
pub fn trait_type_of_code(code: i64) -> Option<TraitType> {
    match code {
        1 => Some(TraitType::Text),
        2 => Some(TraitType::Int),
        3 => Some(TraitType::Float),
        4 => Some(TraitType::Datetime),
        _ => None,
    }
}
