//! `prometheus://host:port/metrics/job/JOB[/label/value…]`: samples as Prometheus
//! text to a Pushgateway, as Ceilometer's Prometheus publisher writes them. A meter's
//! name with `.` and `-` turned into `_` is the metric; `cumulative` is a counter,
//! `gauge` a gauge and `delta` untyped (Prometheus has no delta), each `# TYPE` line
//! once per request; every line carries `resource_id`, `user_id` and `project_id`.
//! Without grouping labels after the job, samples are pushed per resource (to
//! `…/resource_id/ID`), so that one resource's push does not replace another's
//! series of the same metric; with them, one push per batch.
//!
//! Where ceilo differs: a metric's lines are written together and a series once (its
//! latest value) in each push, where Ceilometer writes samples in arrival order and
//! the Pushgateway refuses its push when a batch interleaves meters or holds one
//! series twice; label values are escaped (Ceilometer writes them raw, so a `"`
//! breaks its push); an absent user or project is an empty label rather than the
//! text `None`; characters a metric name cannot hold become `_`; a resource id with
//! `/` is sent in the Pushgateway's base64 form (`resource_id@base64/…`).

use std::fmt::Write as _;

use ceilo_plugin_api::{signing::ceilometer::python_float, Sample, SampleType};

use crate::client::Request;
use crate::delivery::Encoder;

/// The Prometheus encoder.
pub struct Prometheus {
    /// Grouping labels are in the URL: one push per batch.
    pub grouped: bool,
}

impl Prometheus {
    /// Whether `path` (`/metrics/job/JOB/…`) has grouping labels after the job.
    pub fn has_grouping(path: &str) -> bool {
        path.starts_with("/metrics/job/") && path.split('/').filter(|s| !s.is_empty()).count() > 3
    }
}

/// A meter name as a metric name.
pub fn metric_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) || out.is_empty() {
        out.insert(0, '_');
    }
    out
}

/// A label value in the text format's escaping.
pub fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A volume as the text format reads it (Python's float repr, as Ceilometer).
pub fn value_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        python_float(v)
    }
}

/// A metric's name, its `# TYPE` (none for delta) and its series (labels, value).
type Family = (String, Option<&'static str>, Vec<(String, f64)>);

/// One push's text: a metric's lines together under its `# TYPE` line (the text
/// format wants a family's lines in one block), families in the order they first
/// appear, and one line per series, the latest (the Pushgateway refuses a push
/// holding the same series twice; it keeps only the last value anyway).
#[derive(Default)]
struct Push {
    families: Vec<Family>,
    samples: usize,
}

impl Push {
    fn add(&mut self, s: &Sample) {
        let name = metric_name(s.name());
        let kind = match s.sample_type() {
            SampleType::Cumulative => Some("counter"),
            SampleType::Gauge => Some("gauge"),
            SampleType::Delta => None,
        };
        let labels = format!(
            "resource_id=\"{}\", user_id=\"{}\", project_id=\"{}\"",
            escape_label(s.resource_id()),
            escape_label(s.user_id().unwrap_or("")),
            escape_label(s.project_id().unwrap_or("")),
        );
        self.samples += 1;
        let family = match self.families.iter_mut().position(|f| f.0 == name) {
            Some(i) => &mut self.families[i],
            None => {
                self.families.push((name, kind, Vec::new()));
                self.families.last_mut().expect("just pushed")
            }
        };
        match family.2.iter_mut().find(|(l, _)| *l == labels) {
            Some(series) => series.1 = s.volume(),
            None => family.2.push((labels, s.volume())),
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for (name, kind, series) in &self.families {
            if let Some(kind) = kind {
                let _ = writeln!(out, "# TYPE {name} {kind}");
            }
            for (labels, value) in series {
                let _ = writeln!(out, "{name}{{{labels}}} {}", value_text(*value));
            }
        }
        out
    }

    fn request(&self, suffix: String) -> Request {
        Request {
            suffix,
            content_type: CONTENT_TYPE,
            body: self.text().into_bytes(),
            samples: self.samples,
            attachment: None,
        }
    }
}

/// The path segment for one resource's group.
pub fn resource_group(resource_id: &str) -> String {
    if resource_id.is_empty() || resource_id.contains('/') {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE.encode(resource_id);
        // The Pushgateway's form for values a path segment cannot hold.
        format!(
            "/resource_id@base64/{}",
            if b64.is_empty() { "=".into() } else { b64 }
        )
    } else {
        let quoted: String = url::form_urlencoded::byte_serialize(resource_id.as_bytes()).collect();
        format!("/resource_id/{}", quoted.replace('+', "%20"))
    }
}

const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

impl Encoder for Prometheus {
    fn encode(&mut self, batch: &[Sample]) -> Vec<Request> {
        if batch.is_empty() {
            return Vec::new();
        }
        if self.grouped {
            let mut push = Push::default();
            batch.iter().for_each(|s| push.add(s));
            return vec![push.request(String::new())];
        }
        // Per resource, in the order resources first appear.
        let mut pushes: Vec<(&str, Push)> = Vec::new();
        for s in batch {
            let rid = s.resource_id();
            match pushes.iter_mut().find(|(r, _)| *r == rid) {
                Some((_, p)) => p.add(s),
                None => {
                    let mut p = Push::default();
                    p.add(s);
                    pushes.push((rid, p));
                }
            }
        }
        pushes
            .into_iter()
            .map(|(rid, p)| p.request(resource_group(rid)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, t: SampleType, v: f64, rid: &str) -> Sample {
        Sample::new(name, t, "u", v, rid)
            .with_user_id("u1")
            .with_project_id("p1")
    }

    #[test]
    fn text_as_ceilometer_writes_it() {
        let batch = [
            sample("image.size", SampleType::Gauge, 1.0, "r1"),
            sample("image.size", SampleType::Gauge, 2.0, "r1"),
            sample(
                "network.incoming.bytes-rate",
                SampleType::Cumulative,
                3.5,
                "r1",
            ),
            sample("delta.thing", SampleType::Delta, 4.0, "r1"),
            sample("image.size", SampleType::Gauge, 5.0, "r2"),
        ];
        let r = Prometheus { grouped: true }.encode(&batch);
        assert_eq!((r.len(), r[0].samples), (1, 5));
        assert_eq!(
            String::from_utf8(r[0].body.clone()).unwrap(),
            "# TYPE image_size gauge\n\
             image_size{resource_id=\"r1\", user_id=\"u1\", project_id=\"p1\"} 2.0\n\
             image_size{resource_id=\"r2\", user_id=\"u1\", project_id=\"p1\"} 5.0\n\
             # TYPE network_incoming_bytes_rate counter\n\
             network_incoming_bytes_rate{resource_id=\"r1\", user_id=\"u1\", project_id=\"p1\"} 3.5\n\
             delta_thing{resource_id=\"r1\", user_id=\"u1\", project_id=\"p1\"} 4.0\n"
        );
    }

    #[test]
    fn without_grouping_labels_one_push_per_resource() {
        assert!(!Prometheus::has_grouping("/metrics/job/ceilometer"));
        assert!(Prometheus::has_grouping("/metrics/job/ceilometer/site/a"));
        let batch = [
            sample("m", SampleType::Gauge, 1.0, "a b"),
            sample("m", SampleType::Gauge, 2.0, "x/y"),
            sample("m", SampleType::Gauge, 3.0, "a b"),
        ];
        let r = Prometheus { grouped: false }.encode(&batch);
        let suffixes: Vec<&str> = r.iter().map(|r| r.suffix.as_str()).collect();
        assert_eq!(suffixes, ["/resource_id/a%20b", "/resource_id@base64/eC95"]);
        assert_eq!((r[0].samples, r[1].samples), (2, 1));
        assert!(String::from_utf8(r[0].body.clone())
            .unwrap()
            .starts_with("# TYPE m gauge\n"));
    }

    #[test]
    fn names_and_labels_are_made_valid() {
        assert_eq!(metric_name("disk.read/s"), "disk_read_s");
        assert_eq!(metric_name("1min"), "_1min");
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(
            (value_text(f64::NAN), value_text(1e22)),
            ("NaN".into(), "1e+22".into())
        );
    }
}
