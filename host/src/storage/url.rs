//! Storage URLs: `mongodb://…/dbname`, `sqlite:///abs/path.db`, `sqlite:rel.db`.

use std::path::{Path, PathBuf};

use super::StorageError;
use crate::redact::mask_url;

/// The embedded store's file name under the data directory, when no URL is given.
pub const DEFAULT_EMBEDDED_FILE: &str = "ceilo.db";

/// A parsed storage URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// The embedded store's file.
    Embedded(PathBuf),
    /// A MongoDB deployment and the database to use.
    Mongo {
        /// The connection string as given.
        url: String,
        /// The database named in its path.
        database: String,
    },
}

impl StorageUrl {
    /// Parses `url` (none: the embedded default in `data_dir`). Relative
    /// `sqlite:` paths are under `data_dir`.
    pub fn parse(url: Option<&str>, data_dir: &Path) -> Result<StorageUrl, StorageError> {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(StorageUrl::Embedded(data_dir.join(DEFAULT_EMBEDDED_FILE)));
        };
        let bad = |reason: &str| StorageError::Url {
            url: mask_url(url),
            reason: reason.to_owned(),
        };
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(bad(
                    "no file: use sqlite:///absolute/path.db or sqlite:name.db (under --data-dir)",
                ));
            }
            let path = Path::new(path);
            return Ok(StorageUrl::Embedded(if path.is_absolute() {
                path.to_owned()
            } else {
                data_dir.join(path)
            }));
        }
        if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
            let parsed = ::url::Url::parse(url).map_err(|e| bad(&format!("not a URL: {e}")))?;
            let database = parsed.path().trim_start_matches('/').to_owned();
            if database.is_empty() || database.contains('/') {
                return Err(bad(
                    "name the database in the path, e.g. mongodb://127.0.0.1:27017/ceilometer",
                ));
            }
            return Ok(StorageUrl::Mongo {
                url: url.to_owned(),
                database,
            });
        }
        Err(bad(
            "unknown scheme (expected mongodb://host:port/dbname or sqlite:///path/to/file.db)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_two_stores_and_the_default() {
        let d = Path::new("/data");
        assert_eq!(
            StorageUrl::parse(None, d).unwrap(),
            StorageUrl::Embedded("/data/ceilo.db".into())
        );
        assert_eq!(
            StorageUrl::parse(Some("sqlite:x.db"), d).unwrap(),
            StorageUrl::Embedded("/data/x.db".into())
        );
        assert_eq!(
            StorageUrl::parse(Some("sqlite:///var/x.db"), d).unwrap(),
            StorageUrl::Embedded("/var/x.db".into())
        );
        match StorageUrl::parse(Some("mongodb://u:secret@h:1/metering?w=1"), d).unwrap() {
            StorageUrl::Mongo { database, .. } => assert_eq!(database, "metering"),
            other => panic!("{other:?}"),
        }
        let e = StorageUrl::parse(Some("mongodb://u:secret@h:1"), d).unwrap_err();
        assert!(e.to_string().contains("name the database"), "{e}");
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!(StorageUrl::parse(Some("postgres://h/db"), d).is_err());
    }
}
