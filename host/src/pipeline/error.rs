//! A configuration error, located: file, line, column, the source or sink, what is
//! wrong and what to do.

use std::fmt;
use std::path::PathBuf;

use super::positions::Pos;

/// One problem in `pipeline.yaml`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// Where, when the YAML says.
    pub pos: Option<Pos>,
    /// `source cpu_source`, `sink cpu_sink, transformer 1`…
    pub context: Option<String>,
    /// What is wrong, and what to do about it.
    pub message: String,
}

impl ConfigError {
    /// A warning (reported with the errors when there are errors; an error itself only
    /// under `--strict`).
    pub fn is_warning(&self) -> bool {
        self.message.starts_with("warning: ")
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.pos {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        write!(f, ": ")?;
        if let Some(c) = &self.context {
            write!(f, "{}: ", clip_quotes(c))?;
        }
        f.write_str(&clip_quotes(&self.message))
    }
}

/// The longest value quoted whole in an error (characters).
const QUOTE_MAX: usize = 80;
/// The longest message shown whole, whatever it quotes.
const MESSAGE_MAX: usize = 1000;

/// `text` with every `quoted` value over [`QUOTE_MAX`] characters cut (`…`), and the
/// whole cut at [`MESSAGE_MAX`]: a name or URL of any size in the file still gives a
/// one-line error that keeps its hint.
fn clip_quotes(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MESSAGE_MAX + 8));
    let mut parts = text.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, part) in parts.enumerate() {
        out.push('`');
        if i % 2 == 0 {
            out.push_str(&crate::redact::shorten(part, QUOTE_MAX));
        } else {
            out.push_str(part);
        }
    }
    crate::redact::shorten(&out, MESSAGE_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_quoted_values_are_cut_and_the_hint_kept() {
        let long = "m".repeat(100_000);
        let e = ConfigError {
            file: "p.yaml".into(),
            pos: Some(Pos { line: 4, column: 7 }),
            context: Some(format!("source `{long}`")),
            message: format!("unknown sink `{long}` (define it under `sinks`)"),
        };
        let line = e.to_string();
        assert!(line.len() < 400, "{} bytes", line.len());
        assert!(line.starts_with("p.yaml:4:7: source `mmm"), "{line}");
        assert!(line.ends_with("…` (define it under `sinks`)"), "{line}");
        assert_eq!(clip_quotes("a `b` c"), "a `b` c");
        let huge = "x".repeat(5000);
        assert_eq!(clip_quotes(&huge).chars().count(), MESSAGE_MAX + 1);
    }
}

/// All problems found in a file.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let warnings = self.0.iter().filter(|e| e.is_warning()).count();
        let n = self.0.len() - warnings;
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        match warnings {
            0 => writeln!(f, "{n} error{} in the pipeline configuration:", plural(n))?,
            w => writeln!(
                f,
                "{n} error{} and {w} warning{} in the pipeline configuration:",
                plural(n),
                plural(w)
            )?,
        }
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}
