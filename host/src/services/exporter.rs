//! The latest value of every polled meter, for Prometheus to scrape
//! (`--prometheus-listen`), as Ceilometer's polling agent exports them: a gauge
//! `ceilometer_<meter with . as _>` per meter, labelled as Ceilometer labels it — the
//! meter's first part as a label (valued with its third part, or the resource id),
//! `publisher="ceilometer"`, `type` (the second part), `counter`, `project`, `user`,
//! `unit`, `resource`, and from the resource metadata `vm_instance` (host),
//! `resource_name`, `server_group` (`none` when unset), `state`, `flavor_id`,
//! `flavor_name`, and the load-balancer and volume-service labels.
//!
//! Each poll of a poller replaces that poller's series, so a resource that is no
//! longer polled leaves the export with its poller's next poll (Ceilometer purges a
//! pollster's metric in the same way), and a poller a reload removes leaves at once. Where ceilo differs: a series keeps the labels
//! its own sample gives it (Ceilometer's client library needs one label set per
//! metric and fails otherwise), and a label name the meter name would repeat is
//! written once.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use ceilo_plugin_api::Sample;
use serde_json::{Map, Value};

/// One series: its metric, its rendered label set and its value.
type Series = (String, String, f64);

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Each poller's series, by (source, poller).
type Latest = Mutex<BTreeMap<(String, String), Vec<Series>>>;

fn latest() -> &'static Latest {
    static LATEST: OnceLock<Latest> = OnceLock::new();
    LATEST.get_or_init(Default::default)
}

/// Turns the export on (polls are recorded from then on).
pub fn enable() {
    ENABLED.store(true, Ordering::Relaxed);
}

/// Records what one poll of `poller` in `source` returned (a no-op unless enabled).
pub fn record(source: &str, poller: &str, samples: &[Sample]) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let series: Vec<Series> = samples
        .iter()
        .filter(|s| !s.volume().is_nan())
        .map(|s| (metric_name(s.name()), render_labels(&labels(s)), s.volume()))
        .collect();
    if let Ok(mut l) = latest().lock() {
        l.insert((source.to_owned(), poller.to_owned()), series);
    }
}

/// Forgets the series of every poller not in `polled` (source, poller): after a
/// reload, what is no longer polled leaves the export at once.
pub fn retain(polled: &[(String, String)]) {
    if let Ok(mut l) = latest().lock() {
        l.retain(|key, _| polled.contains(key));
    }
}

/// The export in Prometheus' text format.
pub fn render() -> String {
    let mut families: BTreeMap<&str, BTreeMap<&str, f64>> = BTreeMap::new();
    let Ok(l) = latest().lock() else {
        return String::new();
    };
    for series in l.values() {
        for (metric, labels, value) in series {
            families.entry(metric).or_default().insert(labels, *value);
        }
    }
    let mut out = String::new();
    for (metric, series) in families {
        let _ = writeln!(out, "# HELP {metric} \n# TYPE {metric} gauge");
        for (labels, value) in series {
            let _ = writeln!(out, "{metric}{{{labels}}} {}", number(value));
        }
    }
    out
}

fn number(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        ceilo_plugin_api::signing::ceilometer::python_float(v)
    }
}

/// `ceilometer_` and the meter's name, with what a metric name cannot hold as `_`.
pub fn metric_name(meter: &str) -> String {
    let mut out = String::from("ceilometer_");
    out.extend(meter.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            c
        } else {
            '_'
        }
    }));
    out
}

fn label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn text<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    m.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Ceilometer's labels of one sample, in its order.
pub fn labels(s: &Sample) -> Vec<(String, String)> {
    let name = s.name();
    let shards: Vec<&str> = name.split('.').collect();
    let mut l: Vec<(String, String)> = Vec::with_capacity(12);
    let value = if shards.len() > 2 {
        shards[2]
    } else {
        s.resource_id()
    };
    l.push((label_name(shards[0]), value.to_owned()));
    l.push(("publisher".into(), "ceilometer".into()));
    l.push((
        "type".into(),
        shards.get(1).copied().unwrap_or(shards[0]).to_owned(),
    ));
    if !name.is_empty() {
        l.push(("counter".into(), name.to_owned()));
    }
    if let Some(p) = s.project_id().filter(|p| !p.is_empty()) {
        l.push(("project".into(), p.to_owned()));
    }
    if let Some(u) = s.user_id().filter(|u| !u.is_empty()) {
        l.push(("user".into(), u.to_owned()));
    }
    if !s.unit().is_empty() {
        l.push(("unit".into(), s.unit().to_owned()));
    }
    if !s.resource_id().is_empty() {
        l.push(("resource".into(), s.resource_id().to_owned()));
    }
    let metadata = s.resource_metadata();
    if !metadata.is_empty() {
        if let Some(host) = text(&metadata, "host") {
            l.push(("vm_instance".into(), host.to_owned()));
        }
        match (text(&metadata, "display_name"), text(&metadata, "name")) {
            (Some(d), Some(n)) => l.push(("resource_name".into(), format!("{d}:{n}"))),
            (Some(v), None) | (None, Some(v)) => l.push(("resource_name".into(), v.to_owned())),
            (None, None) => {}
        }
        let group = metadata
            .get("user_metadata")
            .and_then(Value::as_object)
            .and_then(|u| text(u, "server_group"))
            .unwrap_or("none");
        l.push(("server_group".into(), group.to_owned()));
        if let Some(state) = text(&metadata, "alarm_state") {
            l.push(("state".into(), state.to_owned()));
        }
        if name.starts_with("loadbalancer") {
            let az = text(&metadata, "availability_zone").unwrap_or("");
            l.push(("availability_zone".into(), az.to_owned()));
        }
        if name == "volume.service.health" {
            for key in ["binary", "zone", "status"] {
                l.push((key.into(), text(&metadata, key).unwrap_or("").to_owned()));
            }
        }
        if let Some(flavor) = metadata.get("flavor").and_then(Value::as_object) {
            if let Some(id) = text(flavor, "id") {
                l.push(("flavor_id".into(), id.to_owned()));
            }
            if let Some(n) = text(flavor, "name") {
                l.push(("flavor_name".into(), n.to_owned()));
            }
        }
    }
    // A label name may appear once (the meter's first part may be `type`, say).
    let mut seen = std::collections::HashSet::new();
    l.retain(|(k, _)| seen.insert(k.clone()));
    l
}

fn render_labels(labels: &[(String, String)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceilo_plugin_api::SampleType;
    use serde_json::json;

    fn sample(name: &str, rid: &str, metadata: Value) -> Sample {
        let mut s = Sample::new(name, SampleType::Gauge, "%", 12.5, rid)
            .with_project_id("p1")
            .with_user_id("u1");
        if let Value::Object(m) = metadata {
            s.set_resource_metadata(m);
        }
        s
    }

    fn names(l: &[(String, String)]) -> Vec<&str> {
        l.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn labels_as_ceilometer_makes_them() {
        let s = sample(
            "disk.device.read.bytes",
            "vm-1-vda",
            json!({"host": "compute-1", "display_name": "web", "name": "instance-01",
                   "flavor": {"id": "f1", "name": "m1.small"}}),
        );
        let l = labels(&s);
        assert_eq!(
            names(&l),
            [
                "disk",
                "publisher",
                "type",
                "counter",
                "project",
                "user",
                "unit",
                "resource",
                "vm_instance",
                "resource_name",
                "server_group",
                "flavor_id",
                "flavor_name"
            ]
        );
        assert_eq!(l[0].1, "read", "the third part of the meter's name");
        assert_eq!(l[2].1, "device");
        assert_eq!(l[9].1, "web:instance-01");
        assert_eq!(l[10].1, "none");
        let cpu = labels(&sample("cpu", "vm-1", json!({})));
        assert_eq!(
            names(&cpu),
            [
                "cpu",
                "publisher",
                "type",
                "counter",
                "project",
                "user",
                "unit",
                "resource"
            ]
        );
        assert_eq!((cpu[0].1.as_str(), cpu[2].1.as_str()), ("vm-1", "cpu"));
    }

    #[test]
    fn a_poll_replaces_its_pollers_series() {
        enable();
        record(
            "src",
            "p",
            &[
                sample("load.1", "h1", json!({})),
                sample("load.1", "h2", json!({})),
            ],
        );
        let text = render();
        assert!(text.contains("# TYPE ceilometer_load_1 gauge"), "{text}");
        assert!(
            text.contains("resource=\"h2\"") && text.contains("} 12.5\n"),
            "{text}"
        );
        record("src", "p", &[sample("load.1", "h1", json!({}))]);
        assert!(
            !render().contains("resource=\"h2\""),
            "h2 is no longer polled"
        );
        assert_eq!(
            metric_name("network.incoming.bytes-rate"),
            "ceilometer_network_incoming_bytes_rate"
        );
    }
}
