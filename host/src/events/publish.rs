//! Where an event sink's events go: the configured store (`direct://`) or a file of
//! JSON lines (`file:`), both the host's own. A batch is taken only once the output
//! has it (written and flushed, or durably stored), so that the notification agent
//! acks notifications only after their events are published.

use super::model::Event;
use crate::pipeline::direct::{ATTEMPTS, FIRST_PAUSE};
use crate::pipeline::retry::with_retries;
use crate::pipeline::StoreHandle;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A destination for an event sink's events.
pub trait EventOutput: Send {
    /// For logs: `direct:// (embedded store …)`.
    fn describe(&self) -> String;
    /// Takes a batch; an error means it was not taken (the notifications are
    /// redelivered).
    fn publish(&mut self, events: &[Event]) -> Result<(), String>;
}

/// `direct://`: events into the store, deduped there by message id.
pub struct DirectEvents {
    handle: StoreHandle,
}

impl DirectEvents {
    /// Stores into `handle`'s store.
    pub fn new(handle: StoreHandle) -> DirectEvents {
        DirectEvents { handle }
    }
}

impl EventOutput for DirectEvents {
    fn describe(&self) -> String {
        format!("direct:// ({})", self.handle.store.describe())
    }

    fn publish(&mut self, events: &[Event]) -> Result<(), String> {
        let store = self.handle.store.clone();
        let outcome = with_retries("direct://", ATTEMPTS, FIRST_PAUSE, || {
            self.handle
                .runtime
                .block_on(store.record_events(events))
                .map_err(|e| e.to_string())
        })?;
        for r in &outcome.refused {
            let id = events.get(r.index).map_or("(none)", |e| &e.message_id);
            tracing::warn!(target: "ceilo::events", message_id = %id, "direct://: event not stored: {}", r.reason);
        }
        Ok(())
    }
}

/// `file:PATH` (relative to the data directory) or `file:///absolute/path`: one event
/// per line, in Ceilometer's serialized form.
pub struct FileEvents {
    path: PathBuf,
    out: BufWriter<File>,
}

impl FileEvents {
    /// Opens (appending) the file `url` names; relative paths land in `data_dir`.
    pub fn open(url: &str, data_dir: &Path) -> Result<FileEvents, String> {
        let rest = url
            .strip_prefix("file:")
            .ok_or_else(|| format!("`{url}` is not a file: URL"))?;
        let (path_part, query) = rest.split_once('?').unwrap_or((rest, ""));
        if !query.is_empty() && query != "json" {
            return Err(format!(
                "`{url}`: the event file publisher takes no options (it always writes JSON lines; rotation is not supported for events)"
            ));
        }
        let path = match path_part.strip_prefix("//") {
            Some(abs) if abs.starts_with('/') => PathBuf::from(abs),
            Some(abs) => match abs.strip_prefix("localhost") {
                Some(p) if p.starts_with('/') => PathBuf::from(p),
                _ => {
                    return Err(format!(
                        "`{url}` names a host: write file:///absolute/path or file:relative/path"
                    ))
                }
            },
            None if Path::new(path_part).is_relative() => data_dir.join(path_part),
            None => PathBuf::from(path_part),
        };
        if path_part.trim_start_matches('/').is_empty() {
            return Err(format!(
                "`{url}` names no file: write file:events.json or file:///var/lib/ceilo/events.json"
            ));
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(FileEvents {
            path,
            out: BufWriter::new(file),
        })
    }
}

impl EventOutput for FileEvents {
    fn describe(&self) -> String {
        format!("file: ({})", self.path.display())
    }

    fn publish(&mut self, events: &[Event]) -> Result<(), String> {
        let written = events
            .iter()
            .try_for_each(|e| writeln!(self.out, "{}", e.to_ceilometer_json()))
            .and_then(|()| self.out.flush());
        written.map_err(|e| format!("cannot write {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Trait, TraitValue};

    #[test]
    fn the_file_output_writes_ceilometer_s_serialized_events() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut out = FileEvents::open("file:sub/events.json", dir.path()).expect("open");
        let e = Event {
            message_id: "m1".into(),
            event_type: "compute.instance.create.end".into(),
            generated: chrono::DateTime::parse_from_rfc3339("2013-08-08T21:06:37.803826Z")
                .expect("time")
                .with_timezone(&chrono::Utc),
            traits: vec![Trait {
                name: "memory_mb".into(),
                value: TraitValue::Int(512),
            }],
            raw: serde_json::json!({}),
        };
        out.publish(std::slice::from_ref(&e)).expect("publish");
        let text = std::fs::read_to_string(dir.path().join("sub/events.json")).expect("read");
        let v: serde_json::Value = serde_json::from_str(text.trim()).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"message_id": "m1", "event_type": "compute.instance.create.end",
                "generated": "2013-08-08T21:06:37.803826", "traits": [["memory_mb", 2, 512]], "raw": {}})
        );
        for bad in [
            "file:",
            "file://",
            "file://elsewhere/x",
            "file:x?max_bytes=1",
        ] {
            assert!(FileEvents::open(bad, dir.path()).is_err(), "{bad}");
        }
    }
}
