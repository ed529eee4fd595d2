//! `rate_of_change` (Ceilometer's RateOfChangeTransformer): per (name, resource) keeps
//! the previous sample and emits `scale × Δvolume / Δt`. The first sample of a
//! series is dropped; a sample older than the previous one is dropped (the previous
//! stays); a cumulative counter that went down was reset, so the current volume is the
//! growth; Δt comes from `monotonic_time` when both samples have it.

use std::collections::HashMap;

use ceilo_plugin_api::{
    log_debug, Context, Parameters, Plugin, PluginError, Sample, SampleBatch, SampleType, Text,
    Transformer,
};

use crate::conversion::{Conversion, Scale, SourceTarget};
use crate::expr::Expr;

/// Emits rates of change.
pub struct RateOfChange {
    conversion: Conversion,
    /// Per meter, resource → previous sample (nested so a lookup allocates nothing).
    meters: Vec<(Text, Series)>,
    /// Meter name → its place in `meters`.
    meter_index: Index,
    /// The place of the last sample's meter: a poll's samples come meter by meter, so
    /// most samples skip the meter lookup (a hash of the name) altogether.
    last_meter: usize,
}

/// foldhash: SipHash cost a twentieth of the chain on these short keys.
type Index = HashMap<Text, usize, foldhash::fast::RandomState>;

/// One meter's previous samples, kept in the order their resources were first seen.
/// A poller lists its resources in the same order every poll, so a sample's resource
/// is most often the one after the last sample's: found without hashing, and the
/// slots are read in order. (Looked up in a hash table, every sample's slot is a
/// random read: at 10 000 resources that cache miss was a third of the chain's time.)
#[derive(Default)]
struct Series {
    points: Vec<(Text, Point)>,
    /// Resource → its place in `points`, for a sample out of that order.
    index: Index,
    /// Where the next sample's resource is expected.
    next: usize,
}

impl Series {
    /// The previous sample of `resource`, if there is one.
    fn find(&mut self, resource: &Text) -> Option<&mut Point> {
        let at = match self.points.get(self.next) {
            // Equal shared texts compare by address, without reading the key's bytes.
            Some((key, _)) if key == resource => self.next,
            _ => *self.index.get(resource)?,
        };
        self.next = at + 1;
        self.points.get_mut(at).map(|(_, point)| point)
    }

    fn insert(&mut self, resource: &Text, point: Point) {
        self.index.insert(resource.clone(), self.points.len());
        self.points.push((resource.clone(), point));
        self.next = self.points.len();
    }
}

#[derive(Clone, Copy)]
struct Point {
    volume: f64,
    timestamp_us: i64,
    monotonic: Option<f64>,
}

impl Plugin for RateOfChange {
    const NAME: &'static str = "rate_of_change";
    const DESCRIPTION: &'static str =
        "rate of change per resource: scale × Δvolume / Δt (e.g. cpu → cpu_util)";

    fn create(parameters: &Parameters, _context: &Context) -> Result<Self, PluginError> {
        let c: SourceTarget = parameters.parse()?;
        Ok(RateOfChange {
            conversion: Conversion::new(c.source, c.target, Scale::Expr(Expr::Num(1.0)))?,
            meters: Vec::new(),
            meter_index: Index::default(),
            last_meter: 0,
        })
    }
}

impl Transformer for RateOfChange {
    fn handle(&mut self, s: Sample, out: &mut SampleBatch) -> Result<(), PluginError> {
        if !self.conversion.applies_to(&s) {
            out.push(s);
            return Ok(());
        }
        let now = Point {
            volume: s.volume(),
            timestamp_us: s.timestamp_micros(),
            monotonic: s.monotonic_time(),
        };
        // Looked up by the sample's own texts and kept as clones of them: a poller that
        // keeps its names and resource ids shares them, and equal shared texts compare
        // by address instead of reading the key's bytes (a cache miss per sample with
        // many resources).
        let series = &mut self.series_of(s.name_text()).1;
        let Some(slot) = series.find(s.resource_id_text()) else {
            series.insert(s.resource_id_text(), now);
            log_debug!(
                "rate_of_change: first sample of {} for {}, kept as reference",
                s.name(),
                s.resource_id()
            );
            return Ok(());
        };
        let prev = std::mem::replace(slot, now);
        let dt = match (prev.monotonic, now.monotonic) {
            (Some(a), Some(b)) => b - a,
            _ => (now.timestamp_us - prev.timestamp_us) as f64 / 1e6,
        };
        if dt < 0.0 {
            *slot = prev;
            return Err(PluginError::invalid_input(format!(
                "{} for {} is older than the previous sample: dropped",
                s.name(),
                s.resource_id()
            )));
        }
        let dv = if prev.volume <= now.volume || s.sample_type() != SampleType::Cumulative {
            now.volume - prev.volume
        } else {
            now.volume // counter reset: the current volume is a lower bound of growth
        };
        let rate = if dt == 0.0 { 0.0 } else { dv / dt };
        self.conversion.convert(s, rate, out)
    }
}

impl RateOfChange {
    /// The previous samples of meter `name`, made empty when it is new.
    fn series_of(&mut self, name: &Text) -> &mut (Text, Series) {
        let last_matches = self
            .meters
            .get(self.last_meter)
            .is_some_and(|(meter, _)| meter == name);
        if !last_matches {
            self.last_meter = match self.meter_index.get(name) {
                Some(&i) => i,
                None => {
                    self.meters.push((name.clone(), Series::default()));
                    self.meter_index.insert(name.clone(), self.meters.len() - 1);
                    self.meters.len() - 1
                }
            };
        }
        &mut self.meters[self.last_meter]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use serde_json::json;

    fn cpu_util() -> RateOfChange {
        let p = json!({"target": {"name": "cpu_util", "unit": "%", "type": "gauge",
            "scale": "100.0 / (10**9 * (resource_metadata.cpu_number or 1))"}});
        RateOfChange::create(
            &Parameters::from_json(&p.to_string()).unwrap(),
            &Context::default(),
        )
        .unwrap()
    }

    fn cpu(ns: f64, secs: i64, cpus: Option<u32>) -> Sample {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(secs);
        let md = cpus.map(|n| json!({"cpu_number": n})).unwrap_or(json!({}));
        Sample::new("cpu", SampleType::Cumulative, "ns", ns, "host")
            .with_timestamp(t)
            .with_resource_metadata(md)
    }

    fn feed(t: &mut RateOfChange, s: Sample) -> Result<Vec<f64>, PluginError> {
        let mut out = SampleBatch::new();
        t.handle(s, &mut out)?;
        Ok(out.iter().map(|s| s.volume()).collect())
    }

    #[test]
    fn first_sample_dropped_then_rate_scaled() {
        let mut t = cpu_util();
        assert_eq!(
            feed(&mut t, cpu(0.0, 0, Some(2))).unwrap(),
            Vec::<f64>::new()
        );
        // 10 s of two CPUs fully busy = 2e10 ns → 100 %
        let v = feed(&mut t, cpu(2e10, 10, Some(2))).unwrap();
        assert!((v[0] - 100.0).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn metadata_is_read_per_shared_text_and_again_when_it_changes() {
        let mut t = cpu_util();
        let two = cpu(0.0, 0, Some(2));
        feed(&mut t, two.clone()).unwrap();
        // A later poll sharing the first one's metadata text.
        let mut later = two
            .clone()
            .with_timestamp(two.timestamp() + Duration::seconds(10));
        later.set_volume(2e10);
        let v = feed(&mut t, later).unwrap();
        assert!((v[0] - 100.0).abs() < 1e-9, "{v:?}");
        // Resized to four CPUs: new metadata, read anew.
        let v = feed(&mut t, cpu(4e10, 20, Some(4))).unwrap();
        assert!((v[0] - 50.0).abs() < 1e-9, "{v:?}");
        // And a resource without it falls back to one.
        let v = feed(&mut t, cpu(5e10, 30, None)).unwrap();
        assert!((v[0] - 100.0).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn missing_cpu_number_defaults_to_one_through_or() {
        let mut t = cpu_util();
        feed(&mut t, cpu(0.0, 0, None)).unwrap();
        let v = feed(&mut t, cpu(5e9, 10, None)).unwrap();
        assert!((v[0] - 50.0).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn counter_reset_uses_current_volume() {
        let mut t = cpu_util();
        feed(&mut t, cpu(9e10, 0, Some(1))).unwrap();
        let v = feed(&mut t, cpu(1e9, 10, Some(1))).unwrap();
        assert!((v[0] - 10.0).abs() < 1e-9, "{v:?}");
    }

    #[test]
    fn negative_time_drops_and_keeps_the_previous() {
        let mut t = cpu_util();
        feed(&mut t, cpu(1e9, 10, Some(1))).unwrap();
        let err = feed(&mut t, cpu(2e9, 5, Some(1))).unwrap_err();
        assert!(err.message().contains("older than the previous"), "{err}");
        let v = feed(&mut t, cpu(3e9, 20, Some(1))).unwrap();
        assert!(
            (v[0] - 20.0).abs() < 1e-9,
            "measured against the sample at 10 s: {v:?}"
        );
    }

    #[test]
    fn monotonic_time_is_preferred_and_zero_dt_gives_zero() {
        let mut t = cpu_util();
        feed(&mut t, cpu(0.0, 0, Some(1)).with_monotonic_time(100.0)).unwrap();
        let v = feed(&mut t, cpu(1e9, 10, Some(1)).with_monotonic_time(102.0)).unwrap();
        assert!(
            (v[0] - 50.0).abs() < 1e-9,
            "Δt from monotonic time is 2 s: {v:?}"
        );
        let v = feed(&mut t, cpu(2e9, 10, Some(1)).with_monotonic_time(102.0)).unwrap();
        assert_eq!(v, [0.0]);
    }

    #[test]
    fn meters_interleaved_keep_their_own_series() {
        let mut t =
            RateOfChange::create(&Parameters::from_json("{}").unwrap(), &Context::default())
                .unwrap();
        let at = |name: &str, v: f64, secs: i64| {
            let ts = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(secs);
            Sample::new(name, SampleType::Gauge, "", v, "r").with_timestamp(ts)
        };
        // Meter a, then b, then a again (a meter seen before, not the last one).
        assert!(feed(&mut t, at("a", 0.0, 0)).unwrap().is_empty());
        assert!(feed(&mut t, at("b", 100.0, 0)).unwrap().is_empty());
        assert_eq!(feed(&mut t, at("a", 10.0, 10)).unwrap(), [1.0]);
        assert_eq!(feed(&mut t, at("b", 300.0, 10)).unwrap(), [20.0]);
        assert_eq!(feed(&mut t, at("b", 400.0, 20)).unwrap(), [10.0]);
        assert_eq!(feed(&mut t, at("a", 30.0, 20)).unwrap(), [2.0]);
    }

    #[test]
    fn resources_in_another_order_or_new_find_their_own_series() {
        let mut t =
            RateOfChange::create(&Parameters::from_json("{}").unwrap(), &Context::default())
                .unwrap();
        let ids: Vec<Text> = ["a", "b", "c", "d"].iter().map(|&r| r.into()).collect();
        let at = |r: &Text, v: f64, secs: i64| {
            let ts = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(secs);
            Sample::new("g", SampleType::Gauge, "", v, r.clone()).with_timestamp(ts)
        };
        for (i, r) in ids.iter().enumerate() {
            assert!(feed(&mut t, at(r, i as f64, 0)).unwrap().is_empty());
        }
        // Polled in the same order: each rate from its own resource's previous volume.
        for (i, r) in ids.iter().enumerate() {
            let v = feed(&mut t, at(r, 10.0 * (i + 1) as f64, 10)).unwrap();
            assert_eq!(v, [(10.0 * (i + 1) as f64 - i as f64) / 10.0], "{r}");
        }
        // Reversed, with a new resource in the middle, and "b" as a new, equal text.
        let b_again: Text = String::from("b").into();
        assert!(!Text::ptr_eq(&b_again, &ids[1]));
        assert_eq!(feed(&mut t, at(&ids[3], 60.0, 20)).unwrap(), [2.0]);
        assert_eq!(feed(&mut t, at(&ids[2], 50.0, 20)).unwrap(), [2.0]);
        assert!(feed(&mut t, at(&"e".into(), 7.0, 20)).unwrap().is_empty());
        assert_eq!(feed(&mut t, at(&b_again, 40.0, 20)).unwrap(), [2.0]);
        assert_eq!(feed(&mut t, at(&ids[0], 30.0, 20)).unwrap(), [2.0]);
        // And in the first order again, "e" now known.
        assert_eq!(feed(&mut t, at(&ids[0], 30.0, 30)).unwrap(), [0.0]);
        assert_eq!(feed(&mut t, at(&"e".into(), 17.0, 30)).unwrap(), [1.0]);
        assert_eq!(feed(&mut t, at(&ids[1], 50.0, 30)).unwrap(), [1.0]);
    }

    #[test]
    fn gauge_may_go_down_and_max_caps() {
        let p = json!({"target": {"max": 5}});
        let mut t = RateOfChange::create(
            &Parameters::from_json(&p.to_string()).unwrap(),
            &Context::default(),
        )
        .unwrap();
        let g = |v: f64, secs: i64| {
            let ts = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(secs);
            Sample::new("g", SampleType::Gauge, "", v, "r").with_timestamp(ts)
        };
        feed(&mut t, g(100.0, 0)).unwrap();
        assert_eq!(feed(&mut t, g(80.0, 10)).unwrap(), [-2.0]);
        assert_eq!(feed(&mut t, g(180.0, 20)).unwrap(), [5.0]);
    }
}
