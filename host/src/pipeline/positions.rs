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

/// Lines as an editor counts them: YAML parsers also break lines at `\r`, U+0085,
/// U+2028 and U+2029, which editors show on one line; positions are recomputed from
/// the parsers' offsets so that they point where the operator looks.
pub struct Lines<'a> {
    text: &'a str,
    /// Character offset of each line's start.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    /// Indexes `text`.
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.chars()
                .enumerate()
                .filter(|(_, c)| *c == '\n')
                .map(|(i, _)| i + 1),
        );
        Lines { text, starts }
    }

    /// The position of the character at `index` (past the end: just after it).
    pub fn at_char(&self, index: usize) -> Pos {
        let line = self.starts.partition_point(|&s| s <= index).max(1);
        Pos {
            line,
            column: index - self.starts[line - 1] + 1,
        }
    }

    /// The position of byte `index` (clamped into the text).
    pub fn at_byte(&self, index: usize) -> Pos {
        let mut b = index.min(self.text.len());
        while !self.text.is_char_boundary(b) {
            b -= 1;
        }
        self.at_char(self.text[..b].chars().count())
    }
}

/// Node positions by path.
#[derive(Debug, Default)]
pub struct Positions {
    values: HashMap<String, Pos>,
    /// Where each mapping key is, by the path of its value: the place of a value that
    /// has none of its own (an empty `{}`).
    keys: HashMap<String, Pos>,
}

impl Positions {
    /// Indexes `text`; a document that does not parse yields no positions (the
    /// syntax error is reported separately).
    pub fn index(text: &str) -> Positions {
        let lines = Lines::new(text);
        let mut b = Builder {
            stack: Vec::new(),
            values: HashMap::new(),
            keys: HashMap::new(),
            lines: &lines,
        };
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut b, false).is_err() {
            return Positions::default();
        }
        Positions {
            values: b.values,
            keys: b.keys,
        }
    }

    /// The position of the key whose value is at `path` (else as [`Positions::get`]).
    pub fn key(&self, path: &str) -> Option<Pos> {
        self.keys.get(path).copied().or_else(|| self.get(path))
    }

    /// The position of the node at `path` (or of its key), or of its nearest ancestor
    /// that has one.
    pub fn get(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.values.get(p).or_else(|| self.keys.get(p)) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
        }
    }
}

/// Bounds a configuration file must keep before it is parsed in full.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Deepest nesting of mappings and sequences.
    pub depth: usize,
    /// Most nodes the document may stand for once aliases are expanded.
    pub expanded_nodes: u64,
}

/// The first place where `text` breaks `limits`, or holds more than one document,
/// with what is wrong. Reads events only up to there (linear, whatever the file), so
/// a hostile file never reaches the parts that are quadratic in depth or expand
/// aliases. `None`: within bounds, or a syntax error (the full parse reports it).
pub fn prescan(text: &str, limits: Limits) -> Option<(Pos, String)> {
    if let Some(pos) = flow_too_deep(text, limits.depth) {
        return Some((pos, too_deep(limits.depth)));
    }
    let mut parser = Parser::new_from_str(text);
    let lines = Lines::new(text);
    let pos = |m: &Marker| lines.at_char(m.index());
    // Open collections: (anchor id, expanded count when it started).
    let mut open: Vec<(usize, u64)> = Vec::new();
    // Expanded size of each anchored node, by anchor id.
    let mut sizes: HashMap<usize, u64> = HashMap::new();
    let mut expanded = 0u64;
    let mut documents = 0usize;
    loop {
        let (event, mark) = parser.next_token().ok()?;
        match event {
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Some((
                        pos(&mark),
                        "a second YAML document (after `---`): a pipeline file holds one".into(),
                    ));
                }
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                open.push((anchor, expanded));
                expanded += 1;
                if open.len() > limits.depth {
                    return Some((pos(&mark), too_deep(limits.depth)));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, started)) = open.pop() {
                    if anchor > 0 {
                        sizes.insert(anchor, expanded - started);
                    }
                }
            }
            Event::Scalar(_, _, anchor, _) => {
                expanded += 1;
                if anchor > 0 {
                    sizes.insert(anchor, 1);
                }
            }
            Event::Alias(id) => {
                expanded = expanded.saturating_add(sizes.get(&id).copied().unwrap_or(1));
            }
            Event::StreamEnd => return None,
            _ => {}
        }
        if expanded > limits.expanded_nodes {
            return Some((
                pos(&mark),
                format!(
                    "aliases here expand the file past {} values (an alias bomb?): write the values out, or use fewer nested aliases",
                    limits.expanded_nodes
                ),
            ));
        }
    }
}

fn too_deep(depth: usize) -> String {
    format!(
        "nested more than {depth} levels deep: a pipeline is a few levels deep; look for unclosed or runaway brackets here"
    )
}

/// Where flow brackets (`[`, `{`) first nest deeper than `max`, by a plain scan of
/// the characters (quotes and comments skipped): the YAML scanner's look-ahead is
/// quadratic in flow depth, so this runs before it.
fn flow_too_deep(text: &str, max: usize) -> Option<Pos> {
    let (mut line, mut column) = (1usize, 0usize);
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    let mut prev = '\n';
    for c in text.chars() {
        if c == '\n' {
            line += 1;
            column = 0;
            comment = false;
            prev = c;
            continue;
        }
        column += 1;
        if comment {
            continue;
        }
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '"' | '\'' => quote = Some(c),
                '#' if prev.is_whitespace() => comment = true,
                '[' | '{' => {
                    depth += 1;
                    if depth > max {
                        return Some(Pos { line, column });
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
        prev = c;
    }
    None
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

struct Builder<'a> {
    stack: Vec<Frame>,
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
    lines: &'a Lines<'a>,
}

impl Builder<'_> {
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

impl MarkedEventReceiver for Builder<'_> {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = self.lines.at_char(mark.index());
        match ev {
            Event::Scalar(v, ..) => match self.node_path(Some(&v)) {
                Some(p) => {
                    self.values.entry(p).or_insert(pos);
                }
                // A block mapping is placed at its first key (its start event is not).
                None => {
                    if let Some(Frame::Map { path, .. }) = self.stack.last() {
                        self.values.entry(path.clone()).or_insert(pos);
                        let key = if path.is_empty() {
                            v.clone()
                        } else {
                            format!("{path}.{v}")
                        };
                        self.keys.entry(key).or_insert(pos);
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
    fn lines_are_counted_as_editors_show_them() {
        // U+2028 and a lone CR break lines for YAML, not in an editor.
        let text = "a: \u{2028}b\r\nc: é\rd\n";
        let l = Lines::new(text);
        assert_eq!(l.at_char(0), Pos { line: 1, column: 1 });
        assert_eq!(l.at_char(7), Pos { line: 2, column: 1 });
        assert_eq!(
            l.at_byte(text.find('d').unwrap()),
            Pos { line: 2, column: 6 }
        );
        assert_eq!(l.at_byte(usize::MAX), Pos { line: 3, column: 1 });
        let p = Positions::index("x:\u{2028}  y: 1\nz: 2\n");
        assert_eq!(p.get("z"), Some(Pos { line: 2, column: 4 }));
    }

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
