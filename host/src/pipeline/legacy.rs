//! Ceilometer's original `pipeline.yaml` (2013.1 and 2013.2): a list of pipelines, each
//! `name`, `interval`, `counters` (2013.1) or `meters`, `resources`, `transformers`,
//! `publishers`. Ceilometer kept reading it for years as one source and one sink per
//! pipeline, both with the pipeline's name; ceilo converts it the same way, so that
//! the rest of validation is the one for today's format, and maps positions back.

use serde_yaml::{Mapping, Value};

/// The keys of an original pipeline that belong to its source; the rest of the known
/// ones go to its sink, anything else stays on the source, to be reported there.
const SINK_KEYS: [&str; 2] = ["transformers", "publishers"];

/// The file in today's shape, when it is in the original one (a list of mappings).
pub(super) fn convert(root: &Value) -> Option<Value> {
    let items = root.as_sequence()?;
    if items.is_empty() || !items.iter().all(Value::is_mapping) {
        return None;
    }
    let (mut sources, mut sinks) = (Vec::new(), Vec::new());
    for item in items {
        let map = item.as_mapping()?;
        let (mut source, mut sink) = (Mapping::new(), Mapping::new());
        let name = map.get("name").cloned();
        if let Some(n) = &name {
            source.insert("name".into(), n.clone());
            sink.insert("name".into(), n.clone());
        }
        for (k, v) in map {
            match k.as_str() {
                Some("name") => {}
                Some("counters") => {
                    source.insert("meters".into(), v.clone());
                }
                Some(key) if SINK_KEYS.contains(&key) => {
                    // `transformers:` left empty is YAML null: none.
                    if !v.is_null() {
                        sink.insert(k.clone(), v.clone());
                    }
                }
                _ => {
                    source.insert(k.clone(), v.clone());
                }
            }
        }
        if let Some(n) = name {
            source.insert("sinks".into(), Value::Sequence(vec![n]));
        }
        sources.push(Value::Mapping(source));
        sinks.push(Value::Mapping(sink));
    }
    let mut out = Mapping::new();
    out.insert("sources".into(), Value::Sequence(sources));
    out.insert("sinks".into(), Value::Sequence(sinks));
    Some(Value::Mapping(out))
}

/// Where a path of the converted file is in the original: `sources[i].x` and
/// `sinks[i].x` are `[i].x` (and `meters` may be written `counters`: the nearest
/// known ancestor answers then).
pub(super) fn original_path(path: &str, legacy: bool) -> String {
    if !legacy {
        return path.to_owned();
    }
    for list in ["sources", "sinks"] {
        if let Some(rest) = path.strip_prefix(list) {
            if rest.starts_with('[') {
                return rest.to_owned();
            }
        }
    }
    path.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_source_and_one_sink_per_pipeline() {
        let old: Value = serde_yaml::from_str(
            "---\n- name: p\n  interval: 60\n  counters: ['*']\n  transformers:\n  publishers: [log://]\n",
        )
        .unwrap();
        let new: Value = serde_yaml::from_str(
            "sources: [{name: p, interval: 60, meters: ['*'], sinks: [p]}]\nsinks: [{name: p, publishers: [log://]}]\n",
        )
        .unwrap();
        assert_eq!(convert(&old), Some(new));
        let today: Value = serde_yaml::from_str("sources: []\nsinks: []\n").unwrap();
        assert_eq!(convert(&today), None);
        assert_eq!(original_path("sources[1].meters[0]", true), "[1].meters[0]");
        assert_eq!(original_path("sinks[0]", true), "[0]");
        assert_eq!(original_path("sinks[0]", false), "sinks[0]");
    }
}
