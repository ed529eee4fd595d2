//! What no ceilo store can hold, checked before a write (and by the API before a
//! sample enters the pipeline), so that one such sample is refused alone instead of
//! failing its whole batch on every retry.
//!
//! Both stores refuse the same samples, so moving from one store to the other never
//! changes what is kept: a metadata key holding NUL (BSON field names are C strings)
//! and a sample whose MongoDB document would pass the 16 MiB BSON limit.

use std::borrow::Cow;

use ceilo_plugin_api::Sample;
use serde_json::Value;

use super::model::Refusal;
use crate::redact::shorten;

/// MongoDB's largest document (`maxBsonObjectSize`).
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// Below this much JSON the BSON document cannot reach the limit (BSON spends under
/// 17 bytes per JSON byte, the worst being arrays of one-digit numbers), so the exact
/// size is only computed above it.
const EXACT_SIZE_ABOVE: usize = MAX_DOCUMENT_BYTES / 17;

/// Why `s` cannot be stored by any ceilo store, if it cannot; the reason says what to
/// change.
pub fn unstorable(s: &Sample) -> Option<String> {
    let json = s.resource_metadata_json();
    // JSON text carries NUL only as the escape `\u0000`: parse only when it is there.
    if json.contains("\\u0000") {
        if let Ok(v) = serde_json::from_str::<Value>(json) {
            if let Some(path) = nul_key(&v, String::new()) {
                return Some(format!(
                    "resource_metadata key `{}` holds a NUL character, which MongoDB cannot store as a field name; rename the key",
                    shorten(&path.replace('\0', "\\u0000"), 80)
                ));
            }
        }
    }
    let rough = json.len()
        + s.name().len()
        + s.unit().len()
        + s.resource_id().len()
        + s.source().len()
        + s.message_id().len()
        + s.user_id().map_or(0, str::len)
        + s.project_id().map_or(0, str::len);
    if rough > EXACT_SIZE_ABOVE {
        let size = super::mongo::document_size(s);
        if size.is_none_or(|n| n > MAX_DOCUMENT_BYTES) {
            let shown = size.map_or_else(|| "an unknown size".to_owned(), |n| format!("{n} bytes"));
            return Some(format!(
                "the sample's document would be {shown}, over MongoDB's limit of {MAX_DOCUMENT_BYTES} bytes; keep large data out of resource_metadata"
            ));
        }
    }
    None
}

/// Splits a batch into what can be stored (the batch itself, not copied, when all of
/// it can) and the refusals, indexed in `samples`.
pub(super) fn screen(samples: &[Sample]) -> (Cow<'_, [Sample]>, Vec<Refusal>) {
    let refused: Vec<Refusal> = samples
        .iter()
        .enumerate()
        .filter_map(|(index, s)| unstorable(s).map(|reason| Refusal { index, reason }))
        .collect();
    if refused.is_empty() {
        return (Cow::Borrowed(samples), refused);
    }
    // Refusals are in batch order: walk both once.
    let mut next = refused.iter().map(|r| r.index).peekable();
    let kept = samples
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            if next.peek() == Some(i) {
                next.next();
                false
            } else {
                true
            }
        })
        .map(|(_, s)| s.clone())
        .collect();
    (Cow::Owned(kept), refused)
}

/// The dotted path of the first key holding NUL, at any depth (arrays included).
fn nul_key(v: &Value, at: String) -> Option<String> {
    let join = |k: &str| {
        if at.is_empty() {
            k.to_owned()
        } else {
            format!("{at}.{k}")
        }
    };
    match v {
        Value::Object(m) => m.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                Some(join(k))
            } else {
                nul_key(v, join(k))
            }
        }),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .find_map(|(i, v)| nul_key(v, join(&i.to_string()))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceilo_plugin_api::SampleType;
    use serde_json::json;

    fn with_metadata(m: Value) -> Sample {
        let mut s = Sample::new("m", SampleType::Gauge, "u", 1.0, "r");
        if let Value::Object(m) = m {
            s.set_resource_metadata(m);
        }
        s
    }

    #[test]
    fn nul_in_a_key_at_any_depth_is_refused_with_its_path() {
        let why = unstorable(&with_metadata(json!({"a\u{0}b": 1}))).unwrap();
        assert!(why.contains("`a\\u0000b`"), "{why}");
        let why = unstorable(&with_metadata(json!({"x": [{"ok": 1}, {"k\u{0}": 2}]}))).unwrap();
        assert!(why.contains("`x.1.k\\u0000`"), "{why}");
        // NUL in a value is fine: BSON strings carry it.
        assert_eq!(unstorable(&with_metadata(json!({"a": "x\u{0}y"}))), None);
    }

    #[test]
    fn documents_over_the_bson_limit_are_refused() {
        let big = "x".repeat(MAX_DOCUMENT_BYTES);
        let why = unstorable(&with_metadata(json!({ "blob": big }))).unwrap();
        assert!(why.contains("over MongoDB's limit"), "{why}");
        assert!(why.len() < 300);
        // Large but under the limit: kept.
        let fits = "x".repeat(MAX_DOCUMENT_BYTES / 2);
        assert_eq!(unstorable(&with_metadata(json!({ "blob": fits }))), None);
        // Small JSON, large BSON: a long array of one-digit numbers.
        let digits = vec![1; MAX_DOCUMENT_BYTES / 8];
        assert!(unstorable(&with_metadata(json!({ "a": digits }))).is_some());
    }
}
