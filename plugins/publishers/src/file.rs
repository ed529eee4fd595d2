//! `file:///abs/path?max_bytes=N&backup_count=K`, or `file:relative/path?…` (under the
//! host's data directory): samples as JSON lines, rotated by size
//! like Python's RotatingFileHandler (which Ceilometer's file publisher uses): when a
//! write would take the file past `max_bytes`, `PATH.K-1` → `PATH.K`, …, `PATH` →
//! `PATH.1`, and a new `PATH` is started. Rotation needs both parameters above 0.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use ceilo_plugin_api::{Context, Parameters, Plugin, PluginError, Publisher, Sample};

/// Appends samples to a file, one JSON object per line.
pub struct FilePublisher {
    path: PathBuf,
    max_bytes: u64,
    backup_count: u32,
    out: BufWriter<File>,
    size: u64,
}

impl Plugin for FilePublisher {
    const NAME: &'static str = "file";
    const DESCRIPTION: &'static str =
        "file:///path?max_bytes=N&backup_count=K — JSON lines, rotated by size";

    fn create(parameters: &Parameters, context: &Context) -> Result<Self, PluginError> {
        let raw: String = parameters
            .get("url")?
            .ok_or_else(|| PluginError::invalid_parameters("missing `url` (file:///path)"))?;
        let rest = raw.strip_prefix("file:").ok_or_else(|| {
            PluginError::invalid_parameters(format!("`{raw}` is not a file: URL"))
        })?;
        let (path_part, query) = rest.split_once('?').unwrap_or((rest, ""));
        let path = if let Some(abs) = path_part.strip_prefix("//") {
            // file://[host]/path: only the local host.
            let url = url::Url::parse(&raw).map_err(|e| {
                PluginError::invalid_parameters(format!("`{raw}` is not a URL: {e}"))
            })?;
            if !abs.starts_with('/') && url.host_str().is_some_and(|h| h != "localhost") {
                return Err(PluginError::invalid_parameters(format!(
                    "`{raw}` names host `{}`: write file:///absolute/path or file:relative/path",
                    url.host_str().unwrap_or_default()
                )));
            }
            PathBuf::from(url.path())
        } else {
            let rel = PathBuf::from(path_part);
            match &context.data_dir {
                Some(dir) if rel.is_relative() => dir.join(rel),
                _ => rel,
            }
        };
        if path.as_os_str().is_empty() || path == Path::new("/") {
            return Err(PluginError::invalid_parameters(format!(
                "`{raw}` names no file: write file:///absolute/path/samples.json or file:samples.json"
            )));
        }
        let mut max_bytes = 0u64;
        let mut backup_count = 0u32;
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let bad = |what: &str| {
                PluginError::invalid_parameters(format!("`{key}={value}` in `{raw}`: {what}"))
            };
            match key.as_ref() {
                "max_bytes" => {
                    max_bytes = value.parse().map_err(|_| bad("expected a byte count"))?
                }
                "backup_count" => {
                    backup_count = value.parse().map_err(|_| bad("expected a file count"))?
                }
                _ => return Err(bad("unknown option (known: max_bytes, backup_count)")),
            }
        }
        let (out, size) = open(&path)?;
        Ok(FilePublisher {
            path,
            max_bytes,
            backup_count,
            out,
            size,
        })
    }
}

fn open(path: &Path) -> Result<(BufWriter<File>, u64), PluginError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            PluginError::unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| PluginError::unavailable(format!("cannot open {}: {e}", path.display())))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((BufWriter::new(file), size))
}

impl FilePublisher {
    fn rotates(&self) -> bool {
        self.max_bytes > 0 && self.backup_count > 0
    }

    fn rotate(&mut self) -> Result<(), PluginError> {
        self.out.flush().map_err(|e| self.io_error(e))?;
        let numbered = |n: u32| PathBuf::from(format!("{}.{n}", self.path.display()));
        for n in (1..self.backup_count).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1)).map_err(|e| self.io_error(e))?;
            }
        }
        std::fs::rename(&self.path, numbered(1)).map_err(|e| self.io_error(e))?;
        let (out, size) = open(&self.path)?;
        self.out = out;
        self.size = size;
        Ok(())
    }

    fn io_error(&self, e: std::io::Error) -> PluginError {
        PluginError::unavailable(format!("{}: {e}", self.path.display()))
    }
}

impl Publisher for FilePublisher {
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
        for sample in batch {
            let mut line = serde_json::to_string(sample).map_err(|e| {
                PluginError::invalid_input(format!("sample {}: {e}", sample.message_id()))
            })?;
            line.push('\n');
            if self.rotates() && self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
                self.rotate()?;
            }
            self.out
                .write_all(line.as_bytes())
                .map_err(|e| self.io_error(e))?;
            self.size += line.len() as u64;
        }
        // Hand the batch to the OS before saying it is published.
        self.out.flush().map_err(|e| self.io_error(e))
    }

    fn flush(&mut self) -> Result<(), PluginError> {
        self.out.flush().map_err(|e| self.io_error(e))?;
        self.out.get_ref().sync_data().map_err(|e| self.io_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceilo_plugin_api::SampleType;

    fn publisher(url: &str) -> Result<FilePublisher, PluginError> {
        let p = Parameters::from_json(&serde_json::json!({ "url": url }).to_string()).unwrap();
        FilePublisher::create(&p, &Context::default())
    }

    fn batch(n: usize) -> Vec<Sample> {
        (0..n)
            .map(|i| Sample::new("m", SampleType::Gauge, "u", i as f64, "r"))
            .collect()
    }

    #[test]
    fn writes_json_lines_that_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/samples.json");
        let mut p = publisher(&format!("file://{}", path.display())).unwrap();
        let samples = batch(3);
        p.publish(&samples).unwrap();
        p.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let back: Vec<Sample> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, samples);
    }

    #[test]
    fn rotates_by_size_keeping_backup_count_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        let mut p = publisher(&format!(
            "file://{}?max_bytes=600&backup_count=2",
            path.display()
        ))
        .unwrap();
        for _ in 0..10 {
            p.publish(&batch(1)).unwrap();
        }
        let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
        assert!(size(&path) <= 600 && size(&path) > 0);
        let one = PathBuf::from(format!("{}.1", path.display()));
        let two = PathBuf::from(format!("{}.2", path.display()));
        let three = PathBuf::from(format!("{}.3", path.display()));
        assert!(size(&one) > 0 && size(&one) <= 600);
        assert!(size(&two) > 0);
        assert!(!three.exists(), "only backup_count files are kept");
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        let err = publisher("file://").err().unwrap();
        assert!(err.message().contains("names no file"), "{err}");
        let err = publisher("file:///tmp/x?max_bytes=lots").err().unwrap();
        assert!(err.message().contains("expected a byte count"), "{err}");
        let err = publisher("file:///tmp/x?rotate=1").err().unwrap();
        assert!(err.message().contains("unknown option"), "{err}");
        let err = publisher("file://elsewhere/x").err().unwrap();
        assert!(err.message().contains("names host `elsewhere`"), "{err}");
    }

    #[test]
    fn relative_paths_land_in_the_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let p = Parameters::from_json(r#"{"url": "file:sub/s.json?max_bytes=100&backup_count=1"}"#)
            .unwrap();
        let mut f = FilePublisher::create(&p, &Context::new("file", "t").with_data_dir(dir.path()))
            .unwrap();
        f.publish(&batch(1)).unwrap();
        assert!(dir.path().join("sub/s.json").is_file());
        assert_eq!((f.max_bytes, f.backup_count), (100, 1));
    }
}
