//! Where each node of a YAML document is, so that configuration errors can name the
//! line and column. serde_yaml gives positions only for syntax errors; this walks the
//! document's events once (yaml-rust2) and records the start of every node by path
//! (`sources[0].interval`).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// Node positions by path.
#[derive(Debug, Default)]
pub struct Positions {
    values: HashMap<String, Pos>,
}

impl Positions {
    /// Indexes `text`; a document that does not parse yields no positions (the
    /// syntax error is reported separately).
    pub fn index(text: &str) -> Positions {
        let mut b = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut b, false).is_err() {
            return Positions::default();
        }
        Positions { values: b.values }
    }

    /// The position of the node at `path`, or of its nearest ancestor that has one.
    pub fn get(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.values.get(p) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    values: HashMap<String, Pos>,
}

impl Builder {
    /// The path of the node starting now, or `None` when this scalar is a mapping key
    /// (then remembered as the pending key).
    fn node_path(&mut self, scalar: Option<&str>) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                Some(p)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some(k) => Some(if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                }),
                None => {
                    *key = Some(scalar.unwrap_or("?").to_owned());
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos {
            line: mark.line(),
            column: mark.col() + 1,
        };
        match ev {
            Event::Scalar(v, ..) => match self.node_path(Some(&v)) {
                Some(p) => {
                    self.values.entry(p).or_insert(pos);
                }
                // A block mapping is placed at its first key (its start event is not).
                None => {
                    if let Some(Frame::Map { path, .. }) = self.stack.last() {
                        self.values.entry(path.clone()).or_insert(pos);
                    }
                }
            },
            Event::Alias(_) => {
                if let Some(p) = self.node_path(Some("*alias")) {
                    self.values.entry(p).or_insert(pos);
                }
            }
            Event::MappingStart(..) => {
                let p = self.node_path(None).unwrap_or_default();
                self.stack.push(Frame::Map { path: p, key: None });
            }
            Event::SequenceStart(..) => {
                let p = self.node_path(None).unwrap_or_default();
                self.values.entry(p.clone()).or_insert(pos);
                self.stack.push(Frame::Seq { path: p, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_positions() {
        let text = "sources:\n  - name: a\n    interval: 10\n    meters: [\"cpu\", \"!x\"]\nsinks:\n  - name: s\n";
        let p = Positions::index(text);
        assert_eq!(p.get("sources"), Some(Pos { line: 2, column: 3 }));
        assert_eq!(
            p.get("sources[0].interval"),
            Some(Pos {
                line: 3,
                column: 15
            })
        );
        assert_eq!(
            p.get("sources[0].meters[1]"),
            Some(Pos {
                line: 4,
                column: 21
            })
        );
        assert_eq!(
            p.get("sinks[0].name"),
            Some(Pos {
                line: 6,
                column: 11
            })
        );
        // a missing node falls back to its parent
        assert_eq!(
            p.get("sinks[0].publishers"),
            Some(Pos { line: 6, column: 5 })
        );
    }
}
