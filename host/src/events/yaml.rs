//! Definition files as PyYAML reads them, which is what Ceilometer's files are
//! written for: a key given twice keeps its last value (Ceilometer 8.1.5's
//! `event_definitions.yaml` repeats `state` in one definition), anchors and aliases,
//! and `<<` merges (keys of the mapping itself win; of several merged mappings, the
//! first listed wins). serde_yaml and yaml-rust2's loader refuse duplicate keys, so
//! this builds the document from yaml-rust2's parser events.

use std::collections::HashMap;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::Yaml;

use crate::pipeline::positions::Lines;
use crate::pipeline::Pos;

/// Why a text is not a YAML document, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Where, when known.
    pub pos: Option<Pos>,
    /// What.
    pub message: String,
}

/// The first document of `text` (null when there is none).
pub fn load(text: &str) -> Result<Value, YamlError> {
    let lines = Lines::new(text);
    let mut b = Builder {
        stack: Vec::new(),
        anchors: HashMap::new(),
        docs: Vec::new(),
        error: None,
        lines: &lines,
    };
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut b, false).map_err(|e| YamlError {
        pos: Some(lines.at_char(e.marker().index())),
        message: e.info().to_owned(),
    })?;
    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(b.docs.into_iter().next().unwrap_or(Value::Null))
}

enum Frame {
    Seq {
        items: Vec<Value>,
        anchor: usize,
    },
    Map {
        entries: Map<String, Value>,
        key: Option<String>,
        /// `<<` values, in the order given.
        merges: Vec<Value>,
        anchor: usize,
    },
}

struct Builder<'a> {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    docs: Vec<Value>,
    error: Option<YamlError>,
    lines: &'a Lines<'a>,
}

impl Builder<'_> {
    fn fail(&mut self, mark: Marker, message: String) {
        if self.error.is_none() {
            self.error = Some(YamlError {
                pos: Some(self.lines.at_char(mark.index())),
                message,
            });
        }
    }

    fn push_value(&mut self, v: Value, anchor: usize, mark: Marker) {
        if anchor > 0 {
            self.anchors.insert(anchor, v.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(v),
            Some(Frame::Seq { items, .. }) => items.push(v),
            Some(Frame::Map {
                entries,
                key,
                merges,
                ..
            }) => match key.take() {
                None => match v {
                    Value::String(k) => *key = Some(k),
                    Value::Number(n) => *key = Some(n.to_string()),
                    Value::Bool(b) => *key = Some(b.to_string()),
                    Value::Null => *key = Some("null".into()),
                    _ => self.fail(mark, "a mapping key must be a scalar".into()),
                },
                Some(k) if k == "<<" => merges.push(v),
                // A repeated key: the last value wins, in the first one's place.
                Some(k) => {
                    entries.insert(k, v);
                }
            },
        }
    }
}

/// `merges` applied under `entries` (PyYAML's order: the mapping's own keys win,
/// then the first merged mapping, then the next…).
fn merged(entries: Map<String, Value>, merges: Vec<Value>) -> Result<Map<String, Value>, String> {
    if merges.is_empty() {
        return Ok(entries);
    }
    let mut sources: Vec<Map<String, Value>> = Vec::new();
    for m in merges {
        match m {
            Value::Object(o) => sources.push(o),
            Value::Array(list) => {
                for item in list {
                    match item {
                        Value::Object(o) => sources.push(o),
                        _ => return Err("`<<` merges mappings only".into()),
                    }
                }
            }
            _ => return Err("`<<` merges mappings only".into()),
        }
    }
    let mut out = Map::new();
    for src in sources {
        for (k, v) in src {
            out.entry(k).or_insert(v);
        }
    }
    for (k, v) in entries {
        out.insert(k, v);
    }
    Ok(out)
}

fn scalar(v: String, style: TScalarStyle) -> Value {
    if style != TScalarStyle::Plain {
        return Value::String(v);
    }
    match Yaml::from_str(&v) {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Integer(i) => Value::from(i),
        Yaml::Real(r) => r
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or(Value::String(v), Value::Number),
        _ => Value::String(v),
    }
}

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(v, style, anchor, _) => {
                let value = scalar(v, style);
                self.push_value(value, anchor, mark);
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(v) => self.push_value(v, 0, mark),
                None => self.fail(mark, "an alias refers to an unknown anchor".into()),
            },
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                items: Vec::new(),
                anchor,
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                entries: Map::new(),
                key: None,
                merges: Vec::new(),
                anchor,
            }),
            Event::SequenceEnd => {
                if let Some(Frame::Seq { items, anchor }) = self.stack.pop() {
                    self.push_value(Value::Array(items), anchor, mark);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map {
                    entries,
                    merges,
                    anchor,
                    ..
                }) = self.stack.pop()
                {
                    match merged(entries, merges) {
                        Ok(m) => self.push_value(Value::Object(m), anchor, mark),
                        Err(e) => self.fail(mark, e),
                    }
                }
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_as_pyyaml_does() {
        let text = "base: &b\n  x: 1\n  y: 2\nother: &o\n  y: 3\n  z: 4\nd:\n  <<: [*b, *o]\n  x: 9\n  k: yes\n  k: 'last'\nn: ~\nf: 1.5\nq: '12'\n";
        let v = load(text).expect("loads");
        assert_eq!(v["d"], json!({"x": 9, "y": 2, "z": 4, "k": "last"}));
        assert_eq!(v["n"], Value::Null);
        assert_eq!(v["f"], json!(1.5));
        assert_eq!(v["q"], json!("12"));
        let keys: Vec<&String> = v["d"].as_object().expect("map").keys().collect();
        assert_eq!(keys, ["x", "y", "z", "k"]);
    }

    #[test]
    fn syntax_errors_say_where() {
        let e = load("a: [1,\nb: 2\n").expect_err("not YAML");
        assert!(e.pos.is_some(), "{e:?}");
        let e = load("a:\n  <<: 3\n").expect_err("bad merge");
        assert!(e.message.contains("merges mappings"), "{e:?}");
    }
}
