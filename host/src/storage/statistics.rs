//! Statistics over samples, computed by the store (SQL in the embedded store, an
//! aggregation pipeline in MongoDB), with Ceilometer's semantics: optional periods
//! aligned to the query's start (or the first matching sample), grouping by sample
//! fields or resource metadata, and selectable extra aggregates.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::SampleQuery;

/// A field statistics can be grouped by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// `resource_id`.
    ResourceId,
    /// `project_id`.
    ProjectId,
    /// `user_id`.
    UserId,
    /// `source`.
    Source,
    /// `resource_metadata.<path>` (dots separate nested keys).
    Metadata(String),
}

impl GroupBy {
    /// Parses a `groupby` value as the API receives it.
    pub fn parse(text: &str) -> Result<GroupBy, String> {
        match text {
            "resource_id" => Ok(GroupBy::ResourceId),
            "project_id" => Ok(GroupBy::ProjectId),
            "user_id" => Ok(GroupBy::UserId),
            "source" => Ok(GroupBy::Source),
            other => match other.strip_prefix("resource_metadata.") {
                Some(path) => match super::metadata_keys::path_problem(path) {
                    None => Ok(GroupBy::Metadata(path.to_owned())),
                    Some(why) => Err(format!(
                        "cannot group by `{}`: {why}",
                        crate::redact::shorten(other, 80)
                    )),
                },
                None => Err(format!(
                    "cannot group by `{}` (expected resource_id, project_id, user_id, source or resource_metadata.<key>)",
                    crate::redact::shorten(other, 80)
                )),
            },
        }
    }

    /// The name as it appears in the `groupby` object of a result.
    pub fn name(&self) -> String {
        match self {
            GroupBy::ResourceId => "resource_id".into(),
            GroupBy::ProjectId => "project_id".into(),
            GroupBy::UserId => "user_id".into(),
            GroupBy::Source => "source".into(),
            GroupBy::Metadata(p) => format!("resource_metadata.{p}"),
        }
    }

    /// The stored column (both stores use Ceilometer's names).
    pub(crate) fn column(&self) -> Option<&'static str> {
        match self {
            GroupBy::ResourceId => Some("resource_id"),
            GroupBy::ProjectId => Some("project_id"),
            GroupBy::UserId => Some("user_id"),
            GroupBy::Source => Some("source"),
            GroupBy::Metadata(_) => None,
        }
    }
}

/// An aggregate beyond the standard five (count, min, max, sum, avg).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Aggregate {
    /// Population standard deviation of the volumes.
    Stddev,
    /// Number of distinct values of a field (`resource_id`, `project_id`, `user_id`).
    Cardinality(GroupBy),
}

impl Aggregate {
    /// Parses `aggregate.func` / `aggregate.param`.
    pub fn parse(func: &str, param: Option<&str>) -> Result<Aggregate, String> {
        match (func, param) {
            ("stddev", None) => Ok(Aggregate::Stddev),
            ("stddev", Some(p)) => Err(format!("aggregate stddev takes no parameter (got `{p}`)")),
            ("cardinality", Some(p)) => match GroupBy::parse(p)? {
                g @ (GroupBy::ResourceId | GroupBy::ProjectId | GroupBy::UserId | GroupBy::Source) => {
                    Ok(Aggregate::Cardinality(g))
                }
                GroupBy::Metadata(_) => Err("cardinality counts resource_id, project_id, user_id or source".into()),
            },
            ("cardinality", None) => Err("aggregate cardinality needs a parameter: resource_id, project_id, user_id or source".into()),
            (other, _) => Err(format!("unknown aggregate `{other}` (expected stddev or cardinality; min, max, sum, avg and count are always computed)")),
        }
    }

    /// Its key in a result's `aggregate` object (`stddev`, `cardinality/resource_id`).
    pub fn key(&self) -> String {
        match self {
            Aggregate::Stddev => "stddev".into(),
            Aggregate::Cardinality(g) => format!("cardinality/{}", g.name()),
        }
    }
}

/// What to compute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatisticsQuery {
    /// Which samples (its `meter` must be set; `limit` is ignored).
    pub filter: SampleQuery,
    /// Period length in seconds (none: one period over everything).
    pub period: Option<u64>,
    /// Group by these, in order.
    pub groupby: Vec<GroupBy>,
    /// Extra aggregates.
    pub aggregates: Vec<Aggregate>,
}

/// One row of statistics: one period of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Statistics {
    /// The samples' unit.
    pub unit: String,
    /// Samples counted.
    pub count: u64,
    /// Smallest volume.
    pub min: f64,
    /// Largest volume.
    pub max: f64,
    /// Sum of volumes.
    pub sum: f64,
    /// Mean volume.
    pub avg: f64,
    /// Oldest sample's timestamp.
    pub duration_start: DateTime<Utc>,
    /// Newest sample's timestamp.
    pub duration_end: DateTime<Utc>,
    /// Period length in seconds (0: no period).
    pub period: u64,
    /// Period start (without a period: the oldest sample).
    pub period_start: DateTime<Utc>,
    /// Period end (without a period: the newest sample).
    pub period_end: DateTime<Utc>,
    /// Group values, by group name (none without `groupby`).
    pub groupby: Option<BTreeMap<String, Value>>,
    /// Extra aggregates, by key.
    pub aggregate: BTreeMap<String, f64>,
}

impl Statistics {
    /// `duration_end - duration_start` in seconds.
    pub fn duration(&self) -> f64 {
        (self.duration_end - self.duration_start)
            .num_microseconds()
            .map(|us| us as f64 / 1e6)
            .unwrap_or(0.0)
    }
}

/// Puts results in Ceilometer's shape and order (its MongoDB driver):
/// - without a period every row's `period_start` is where the query starts, else the
///   first matching sample of all (not of the row's group);
/// - rows by period start; rows of one period with the newest first sample first (the
///   order MongoDB's `$group` gives over samples sorted by time), then by group values
///   so that the order is total.
pub(crate) fn finish(stats: &mut [Statistics], q: &StatisticsQuery) {
    if q.period.is_none() {
        let first = q
            .filter
            .start
            .or_else(|| stats.iter().map(|s| s.duration_start).min());
        if let Some(first) = first {
            for s in stats.iter_mut() {
                s.period_start = first;
            }
        }
    }
    let names: Vec<String> = q.groupby.iter().map(GroupBy::name).collect();
    let key = |s: &Statistics| -> Vec<String> {
        names
            .iter()
            .map(|n| {
                s.groupby
                    .as_ref()
                    .and_then(|g| g.get(n))
                    .map(Value::to_string)
                    .unwrap_or_default()
            })
            .collect()
    };
    stats.sort_by(|a, b| {
        a.period_start
            .cmp(&b.period_start)
            .then_with(|| b.duration_start.cmp(&a.duration_start))
            .then_with(|| key(a).cmp(&key(b)))
    });
}

/// Period bounds for bucket `index` of `period` seconds from `origin_us`.
pub(crate) fn period_bounds(origin_us: i64, period: u64, index: i64) -> (i64, i64) {
    let len = (period as i64).saturating_mul(1_000_000);
    let start = origin_us.saturating_add(index.saturating_mul(len));
    (start, start.saturating_add(len))
}

/// Population standard deviation from count, sum and sum of squares.
pub(crate) fn stddev(count: u64, sum: f64, sum_sq: f64) -> f64 {
    if count == 0 {
        return 0.0;
    }
    let n = count as f64;
    let mean = sum / n;
    (sum_sq / n - mean * mean).max(0.0).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_groupby_and_aggregates_with_clear_errors() {
        assert_eq!(GroupBy::parse("resource_id"), Ok(GroupBy::ResourceId));
        assert_eq!(
            GroupBy::parse("resource_metadata.flavor.name"),
            Ok(GroupBy::Metadata("flavor.name".into()))
        );
        assert!(GroupBy::parse("counter_volume")
            .unwrap_err()
            .contains("cannot group by"));
        assert!(GroupBy::parse("resource_metadata.").is_err());
        assert_eq!(Aggregate::parse("stddev", None), Ok(Aggregate::Stddev));
        assert_eq!(
            Aggregate::parse("cardinality", Some("resource_id")).map(|a| a.key()),
            Ok("cardinality/resource_id".into())
        );
        assert!(Aggregate::parse("cardinality", None).is_err());
        assert!(Aggregate::parse("median", None)
            .unwrap_err()
            .contains("unknown aggregate"));
    }

    #[test]
    fn stddev_is_the_population_one() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, population stddev 2.
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let (s, sq) = (v.iter().sum::<f64>(), v.iter().map(|x| x * x).sum::<f64>());
        assert!((stddev(8, s, sq) - 2.0).abs() < 1e-12);
        assert_eq!(period_bounds(1_000_000, 60, 2), (121_000_000, 181_000_000));
    }
}
