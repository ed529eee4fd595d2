//! Metadata keys that MongoDB cannot hold as given (a `.` anywhere, a leading `$`) are
//! percent-escaped on the way in and restored on the way out, so metadata comes back
//! exactly as it was written and stays queryable by path. `%` itself is escaped so the
//! mapping is reversible.

use serde_json::{Map, Value};

/// Why a dotted metadata path (`flavor.name`) cannot be queried or grouped by, if it
/// cannot: an empty key, or a key with a `"`, a `\` or a control character (NUL
/// among them), which neither store's path syntax can carry the same way (SQLite's
/// JSON paths end a quoted key at the next `"`, and read `\` differently from one
/// version to the next; BSON field names cannot hold NUL).
pub fn path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() || path.split('.').any(str::is_empty) {
        return Some("a metadata path needs a key between every two dots");
    }
    if path
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return Some("metadata keys with `\"`, `\\` or control characters cannot be queried");
    }
    None
}

/// Escapes every key of an object, recursively (objects inside arrays too).
pub fn escape(v: &Value) -> Value {
    map_keys(v, &escape_key)
}

/// Restores keys escaped by [`escape`].
pub fn unescape(v: &Value) -> Value {
    map_keys(v, &unescape_key)
}

/// One key, escaped.
pub fn escape_key(k: &str) -> String {
    let mut out = String::with_capacity(k.len());
    for (i, c) in k.chars().enumerate() {
        match c {
            '%' => out.push_str("%25"),
            '.' => out.push_str("%2E"),
            '$' if i == 0 => out.push_str("%24"),
            c => out.push(c),
        }
    }
    out
}

fn unescape_key(k: &str) -> String {
    if !k.contains('%') {
        return k.to_owned();
    }
    k.replace("%2E", ".")
        .replace("%24", "$")
        .replace("%25", "%")
}

fn map_keys(v: &Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (f(k), map_keys(v, f)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| map_keys(v, f)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_dots_dollars_and_percents() {
        let v = json!({"a.b": 1, "$set": {"x.y": [{"$z": 2}]}, "50%": "%2E", "mid$dle": 3});
        let e = escape(&v);
        assert!(e.get("a%2Eb").is_some());
        assert!(e.get("%24set").is_some());
        assert!(e.get("50%25").is_some());
        assert!(e.get("mid$dle").is_some());
        assert_eq!(unescape(&e), v);
    }

    #[test]
    fn unqueryable_paths_are_named() {
        assert_eq!(path_problem("flavor.name"), None);
        assert_eq!(path_problem("ключ.ü"), None);
        for bad in ["", "a.", ".a", "a..b", "a\\", "a\u{0}", "a\"b", "x.\n"] {
            assert!(path_problem(bad).is_some(), "{bad:?}");
        }
    }
}
