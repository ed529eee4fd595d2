//! `event_pipeline.yaml`, Ceilometer's format: sources pick events by type (`events`,
//! fnmatch patterns with `!` exclusions, the rules of a source's `meters`) and name
//! their sinks; sinks list publishers. Every error is located and collected, as for
//! `pipeline.yaml`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

use super::config::{PublisherConfig, DIRECT_SCHEME};
use super::error::ConfigErrors;
use super::meters::MeterFilter;
use super::validator::{join, kind, read_text, Validator};
use crate::loader::closest;
use crate::redact::mask_url;

/// The host's event file output (`file:` in an event sink).
pub const EVENT_FILE_SCHEME: &str = "file";

/// A validated event pipeline.
#[derive(Debug, Clone)]
pub struct EventPipelineConfig {
    /// The file it came from.
    pub file: PathBuf,
    /// Sources, in file order.
    pub sources: Vec<EventSourceConfig>,
    /// Sinks, in file order.
    pub sinks: Vec<EventSinkConfig>,
}

impl EventPipelineConfig {
    /// Whether a sink stores events itself (`direct://`): the store must be opened.
    pub fn uses_direct(&self) -> bool {
        self.sinks
            .iter()
            .flat_map(|s| &s.publishers)
            .any(|p| p.scheme == DIRECT_SCHEME)
    }
}

/// An event source: which event types go to which sinks.
#[derive(Debug, Clone)]
pub struct EventSourceConfig {
    /// Unique name.
    pub name: String,
    /// The event types it takes.
    pub events: MeterFilter,
    /// Sink names.
    pub sinks: Vec<String>,
}

/// An event sink: its publishers (events have no transformers).
#[derive(Debug, Clone, PartialEq)]
pub struct EventSinkConfig {
    /// Unique name.
    pub name: String,
    /// Each gets every event the sink gets.
    pub publishers: Vec<PublisherConfig>,
}

/// Reads and validates an event pipeline file.
pub fn load_event_pipeline(file: &Path) -> Result<EventPipelineConfig, ConfigErrors> {
    let text = read_text(
        file,
        "event pipeline file",
        "give another with --event-pipeline or CEILO_EVENT_PIPELINE",
    )?;
    parse_event_pipeline(file, &text)
}

/// Validates event pipeline text (`file` is used in messages).
pub fn parse_event_pipeline(file: &Path, text: &str) -> Result<EventPipelineConfig, ConfigErrors> {
    let (mut v, root) = Validator::open(file, text)?;
    let mut config = EventPipelineConfig {
        file: file.to_owned(),
        sources: Vec::new(),
        sinks: Vec::new(),
    };
    if let Some(map) = root.as_mapping() {
        v.unknown_keys(map, "", None, &["sources", "sinks"]);
        let sources = v.list(map, "sources", "", None, true);
        let sinks = v.list(map, "sinks", "", None, true);
        v.duplicates(&sources, "sources", "source");
        let sink_names = v.duplicates(&sinks, "sinks", "sink");
        for (i, item) in sinks.iter().enumerate() {
            if let Some(sink) = v.event_sink(item, &format!("sinks[{i}]")) {
                config.sinks.push(sink);
            }
        }
        for (i, item) in sources.iter().enumerate() {
            if let Some(source) = v.event_source(item, &format!("sources[{i}]"), &sink_names) {
                config.sources.push(source);
            }
        }
    } else {
        v.err(
            "",
            None,
            "the file must be a mapping with `sources` and `sinks` lists",
        );
    }
    v.finish()?;
    Ok(config)
}

impl Validator {
    fn event_source(
        &mut self,
        item: &Value,
        path: &str,
        sinks: &HashSet<String>,
    ) -> Option<EventSourceConfig> {
        let Some(map) = item.as_mapping() else {
            self.err(
                path,
                None,
                format!("a source must be a mapping, found {}", kind(item)),
            );
            return None;
        };
        let name = self.name(map, path, "source");
        let ctx_owned = name.as_ref().map(|n| format!("source `{n}`"));
        let ctx = ctx_owned.as_deref();
        self.unknown_keys(map, path, ctx, &["name", "events", "sinks"]);
        let raw = self.list(map, "events", path, ctx, true);
        let patterns = self.strings(&raw, &join(path, "events"), ctx);
        // A missing or non-list `events` is reported by `list`; an empty one here.
        let events = if !map.get("events").is_some_and(Value::is_sequence) {
            None
        } else {
            match MeterFilter::of("event", &patterns) {
                Ok(f) => Some(f),
                Err(e) => {
                    self.err(&join(path, "events"), ctx, e);
                    None
                }
            }
        };
        let sink_names = self.sink_refs(map, path, ctx, sinks);
        Some(EventSourceConfig {
            name: name?,
            events: events?,
            sinks: sink_names,
        })
    }

    fn event_sink(&mut self, item: &Value, path: &str) -> Option<EventSinkConfig> {
        let Some(map) = item.as_mapping() else {
            self.err(
                path,
                None,
                format!("a sink must be a mapping, found {}", kind(item)),
            );
            return None;
        };
        let name = self.name(map, path, "sink");
        let ctx_owned = name.as_ref().map(|n| format!("sink `{n}`"));
        let ctx = ctx_owned.as_deref();
        self.unknown_keys(map, path, ctx, &["name", "transformers", "publishers"]);
        // Ceilometer's shipped files carry an empty `transformers:`; events have none.
        if !self.list(map, "transformers", path, ctx, false).is_empty() {
            self.err(
                &join(path, "transformers"),
                ctx,
                "event sinks take no transformers (Ceilometer ignores them; ceilo says so): remove the list",
            );
        }
        let items = self.list(map, "publishers", path, ctx, false);
        if items.is_empty() {
            self.err(
                path,
                ctx,
                "no publishers: list at least one publisher URL under `publishers` (e.g. direct:// or file:events.json)",
            );
        }
        let urls = self.strings(&items, &join(path, "publishers"), ctx);
        let mut publishers = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let at = format!("{path}.publishers[{i}]");
            let scheme = url.split(':').next().unwrap_or("").to_owned();
            if scheme.is_empty() || !url.contains(':') {
                self.err(&at, ctx, format!("`{}` is not a publisher URL (scheme://…, e.g. direct:// or file:events.json)", mask_url(url)));
                continue;
            }
            let problem = match scheme.as_str() {
                DIRECT_SCHEME if url.trim_end_matches('/') != "direct:" => Some(format!("`{url}`: the direct publisher takes no path or options; write `direct://` (the store is chosen by --storage / CEILO_STORAGE_URL)")),
                DIRECT_SCHEME | EVENT_FILE_SCHEME => None,
                // The broker may come from the agent (`notifier://`): checked at wiring.
                "notifier" | "rpc" | "amqp" | "amqps" => {
                    crate::events::notifier::NotifierTarget::parse(url, Some("amqp://localhost/"))
                        .err()
                }
                "gnocchi" | "panko" | "database" => Some(format!("`{}`: ceilo stores events itself: write `direct://` (the store is chosen by --storage / CEILO_STORAGE_URL)", mask_url(url))),
                other => {
                    let known = [
                        DIRECT_SCHEME.to_owned(),
                        EVENT_FILE_SCHEME.to_owned(),
                        "notifier".to_owned(),
                        "amqp".to_owned(),
                    ];
                    let guess = closest(other, &known)
                        .map(|c| format!("did you mean `{c}`? "))
                        .unwrap_or_default();
                    Some(format!("unknown event publisher `{other}` in `{}` ({guess}event publishers: direct, file, notifier, amqp)", mask_url(url)))
                }
            };
            match problem {
                Some(p) => self.err(&at, ctx, p),
                None => publishers.push(PublisherConfig {
                    url: url.to_owned(),
                    scheme,
                }),
            }
        }
        Some(EventSinkConfig {
            name: name?,
            publishers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<EventPipelineConfig, String> {
        parse_event_pipeline(Path::new("event_pipeline.yaml"), text).map_err(|e| e.to_string())
    }

    #[test]
    fn ceilometer_format_with_exclusions() {
        let c = parse(
            "---\nsources:\n  - name: s\n    events: ['!compute.*']\n    sinks: [k]\nsinks:\n  - name: k\n    transformers:\n    publishers: [direct://, 'file:events.json']\n",
        )
        .expect("valid");
        assert!(c.uses_direct());
        let f = &c.sources[0].events;
        assert!(!f.allows("compute.instance.create.end"));
        assert!(f.allows("volume.create.end"));
        assert_eq!(c.sinks[0].publishers.len(), 2);
    }

    #[test]
    fn errors_are_located_and_say_what_to_do() {
        let e = parse(
            "sources:\n  - name: s\n    events: ['a', '!b']\n    sinks: [nope]\nsinks:\n  - name: k\n    transformers: [{name: x}]\n    publishers: ['notifier://?per_meter_topic=1', 'gnocchi://', 'fil:x']\n",
        )
        .expect_err("invalid");
        for needle in [
            "event_pipeline.yaml:3:",
            "both included and excluded events",
            "sink `nope` is not defined",
            "event sinks take no transformers",
            "unknown option `per_meter_topic`",
            "ceilo stores events itself",
            "did you mean `file`?",
        ] {
            assert!(e.contains(needle), "{needle}: {e}");
        }
        let e = parse("sources:\n  - name: s\n    sinks: [k]\nsinks:\n  - name: k\n    publishers: [direct://]\n")
            .expect_err("no events");
        assert!(e.contains("required field `events`"), "{e}");
    }
}
