//! Bounded property tests on what reads untrusted text: the pipeline loader, the
//! collector's message decoder and the transformer expression language. Each input
//! must be answered — accepted or refused with a position inside the input — without
//! a panic and within a time bound.
//!
//! The budget is proptest's (`PROPTEST_CASES`, 256 per property by default); a long
//! run: `PROPTEST_CASES=200000 cargo test -p ceilo-tests --test fuzz --release`.
//! (The API's query parser and the JSONPath dialect have the same kind of tests
//! beside their code, in `host` and `plugins/notifications`.)

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use ceilo_host::loader::PluginRegistry;
use ceilo_host::pipeline::{self, Catalog};
use ceilo_host::services::collector;
use ceilo_plugin_transformers::expr;
use proptest::prelude::*;

/// Far above what any of these inputs needs (they are a few KB at most), far below
/// what a quadratic blow-up takes.
const BOUND: Duration = Duration::from_secs(3);

/// Text made of `pieces`, up to `max` of them.
fn text_of(pieces: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(pieces), 0..max).prop_map(|v| v.concat())
}

const YAML_PIECES: &[&str] = &[
    "sources:",
    "sinks:",
    "\n",
    "  ",
    "    ",
    "- ",
    "name: ",
    "meters: ",
    "interval: ",
    "publishers: ",
    "transformers: ",
    "parameters: ",
    "resources: ",
    "[",
    "]",
    "{",
    "}",
    "\"",
    "'",
    ",",
    ":",
    "*",
    "!",
    "&a ",
    "*a",
    "<<: ",
    "---\n",
    "...\n",
    "#",
    "\t",
    "\\",
    "cpu",
    "s1",
    "k",
    "file://x",
    "direct://",
    "unit_conversion",
    "scale: ",
    "1",
    "-1",
    "1e999",
    "0x10",
    "~",
    "null",
    "true",
    "é",
    "\u{0}",
    "\u{feff}",
    "%",
    "? ",
    "|\n",
    ">\n",
];

const EXPR_PIECES: &[&str] = &[
    "(",
    ")",
    "+",
    "-",
    "*",
    "/",
    "**",
    "%",
    " ",
    "1",
    "0",
    "2.5",
    "1e308",
    "e",
    ".",
    "$(cpu)",
    "$(cpu).volume",
    "$(cpu).resource_metadata.cpu_number",
    "$(",
    "volume",
    "float",
    "int",
    "abs",
    "min",
    "max",
    "round",
    ",",
    "nan",
    "inf",
    "<",
    ">",
    "==",
    "and",
    "or",
    "not",
    "if",
    "else",
    "True",
    "'",
    "\"",
    "é",
    "\u{0}",
    "[",
    "]",
];

fn empty_catalog_check(text: &str) {
    let registry = PluginRegistry::default();
    let none = BTreeMap::new();
    let catalog = Catalog {
        registry: &registry,
        poller_meters: &none,
        handler_meters: &none,
        pollers_failed: true,
    };
    let started = Instant::now();
    let result = pipeline::parse(Path::new("fuzz.yaml"), text, &catalog);
    let took = started.elapsed();
    assert!(took < BOUND, "{took:?} on {} bytes", text.len());
    if let Err(errors) = result {
        assert!(!errors.0.is_empty(), "a refusal says why");
        let lines = text.split('\n').count().max(1);
        for e in &errors.0 {
            if let Some(p) = e.pos {
                assert!(
                    p.line >= 1 && p.line <= lines + 1 && p.column >= 1,
                    "position {}:{} outside the input ({lines} lines): {e}",
                    p.line,
                    p.column
                );
            }
            let shown = e.to_string();
            assert!(shown.contains("fuzz.yaml"), "names the file: {shown}");
            assert!(
                shown.len() < 2000,
                "quoted values are cut ({} chars)",
                shown.len()
            );
        }
    }
}

/// Random single-character edits of the repository's pipeline.yaml.
fn edited_pipeline() -> impl Strategy<Value = String> {
    let base = include_str!("../../pipeline.yaml");
    proptest::collection::vec(
        (
            0..base.len(),
            proptest::sample::select(YAML_PIECES),
            0..3usize,
        ),
        1..8,
    )
    .prop_map(move |edits| {
        let mut s = base.to_owned();
        for (at, piece, kind) in edits {
            let mut at = at.min(s.len());
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            match kind {
                0 => s.insert_str(at, piece),
                1 => {
                    let mut end = (at + piece.len()).min(s.len());
                    while !s.is_char_boundary(end) {
                        end -= 1;
                    }
                    s.replace_range(at..end, "");
                }
                _ => {
                    let mut end = (at + 1).min(s.len());
                    while !s.is_char_boundary(end) {
                        end += 1;
                    }
                    s.replace_range(at..end, piece);
                }
            }
        }
        s
    })
}

proptest! {
    #[test]
    fn pipeline_files_from_yaml_pieces(text in text_of(YAML_PIECES, 200)) {
        empty_catalog_check(&text);
    }

    #[test]
    fn edited_pipeline_files(text in edited_pipeline()) {
        empty_catalog_check(&text);
    }

    #[test]
    fn arbitrary_text_as_a_pipeline(text in any::<String>()) {
        empty_catalog_check(&text);
    }

    #[test]
    fn expressions(text in text_of(EXPR_PIECES, 120), meters in any::<bool>()) {
        let started = Instant::now();
        let result = expr::parse(&text, meters);
        prop_assert!(started.elapsed() < BOUND);
        if let Err(e) = result {
            prop_assert!(e.at <= text.len(), "offset {} past the end ({})", e.at, text.len());
            prop_assert!(!e.message.is_empty());
            prop_assert!(e.to_string().len() < 1000, "quoted text is cut");
        }
    }

    #[test]
    fn collector_messages(body in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let d = collector::decode(&body, "k");
        // Unsigned input never yields a sample to store.
        prop_assert!(d.samples.is_empty());
    }

    #[test]
    fn signed_samples_with_one_byte_changed(at in any::<proptest::sample::Index>(), byte in any::<u8>()) {
        let sample = ceilo_plugin_api::Sample::new(
            "cpu_util", ceilo_plugin_api::SampleType::Gauge, "%", 12.5, "vm-1",
        )
        .with_project_id("p")
        .with_resource_metadata(serde_json::json!({"flavor": {"vcpus": 2}, "name": "caf\u{e9}"}));
        let mut bytes = ceilo_plugin_api::signing::signed_bytes(&sample, "k").expect("sign");
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let body = [b"[".as_slice(), &bytes, b"]"].concat();
        let d = collector::decode(&body, "k");
        // Whatever the change, nothing but the sample as signed gets through (a
        // signature's hex digit in the other case still verifies: the same sample).
        for s in &d.samples {
            prop_assert_eq!(s, &sample);
        }
        if d.malformed.is_none() {
            prop_assert_eq!(d.samples.len() + d.refused.len(), 1);
        }
    }

    #[test]
    fn collector_messages_that_are_json(
        items in proptest::collection::vec(
            proptest::collection::btree_map(
                proptest::sample::select(&["counter_name", "counter_type", "counter_unit",
                    "counter_volume", "resource_id", "timestamp", "resource_metadata",
                    "message_id", "message_signature", "x"][..]),
                proptest::sample::select(&["1", "\"a\"", "null", "{}", "[]", "-1e999",
                    "\"gauge\"", "\"2026-13-40T99:00:00\"", "{\"a\\u0000\": 1}"][..]),
                0..10),
            0..20),
    ) {
        let body = format!(
            "[{}]",
            items
                .iter()
                .map(|m| format!(
                    "{{{}}}",
                    m.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect::<Vec<_>>().join(",")
                ))
                .collect::<Vec<_>>()
                .join(",")
        );
        // Without a secret signatures are not checked: every item is a sample or a
        // refusal, none lost.
        let d = collector::decode(body.as_bytes(), "");
        if d.malformed.is_none() {
            prop_assert_eq!(d.samples.len() + d.refused.len(), items.len());
            prop_assert_eq!(d.refused.len(), d.reasons.len());
        }
    }
}
