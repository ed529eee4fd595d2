//! RFC 8785 (JCS) canonical JSON of a parsed value, written in one pass without
//! copying it: what a receiver verifies a signature over. Rules: object members
//! sorted by the UTF-16 code units of their names; strings escaped as ECMAScript's
//! `JSON.stringify` does (the same escapes serde_json writes: `\"`, `\\`, `\b`, `\f`,
//! `\n`, `\r`, `\t`, other control characters as `\u00xx`, the rest as is); numbers
//! as ECMAScript writes an IEEE double (`ryu-js`, as `serde_jcs` uses); no
//! whitespace. `serde_jcs` stays the reference in the tests; this is several times
//! faster, which matters to a collector verifying every sample it stores.

use serde_json::Value;

use crate::PluginError;

/// Appends the canonical form of `v` to `out`, leaving out the top-level member
/// named `skip` (the signature field) when `v` is an object.
pub(crate) fn write(out: &mut Vec<u8>, v: &Value, skip: Option<&str>) -> Result<(), PluginError> {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => {
            // JSON numbers are doubles in JCS; integers past 2^53 round as they do
            // in every ECMAScript reader.
            let f = n
                .as_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| PluginError::invalid_input("a number JSON cannot hold"))?;
            out.extend_from_slice(ryu_js::Buffer::new().format_finite(f).as_bytes());
        }
        Value::String(s) => string(out, s)?,
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(out, item, None)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map
                .iter()
                .filter(|(k, _)| Some(k.as_str()) != skip)
                .collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(out, k)?;
                out.push(b':');
                write(out, v, None)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn string(out: &mut Vec<u8>, s: &str) -> Result<(), PluginError> {
    serde_json::to_writer(&mut *out, s)
        .map_err(|e| PluginError::invalid_input(format!("cannot write a string: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ours(v: &Value) -> String {
        let mut out = Vec::new();
        write(&mut out, v, None).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn agrees_with_serde_jcs() {
        let cases = [
            json!({"volume": 1.0, "name": "a", "b": {"z": 1, "y": [1e21, 0.1, -0.0, 5e-7, 123456789012345678u64]}}),
            json!({"\u{e9}": 1, "e": 2, "\u{1f600}": 3, "\u{ffff}": 4, "": 5, "a\u{0}b": "\u{7f}\u{2028}\"\\\n\t\u{1}/"}),
            json!([
                null,
                true,
                false,
                9007199254740993i64,
                -1,
                1.5e300,
                1e-300,
                "x"
            ]),
            json!({"resource_metadata": {"nested": {"deeper": [{"k": "v"}, []]}}, "timestamp": "2026-01-01T00:00:00.000000"}),
        ];
        for v in &cases {
            assert_eq!(
                ours(v),
                String::from_utf8(serde_jcs::to_vec(v).unwrap()).unwrap(),
                "{v}"
            );
        }
    }

    #[test]
    fn the_skipped_member_is_left_out_at_the_top_only() {
        let v = json!({"message_signature": "x", "a": {"message_signature": "y"}});
        let mut out = Vec::new();
        write(&mut out, &v, Some("message_signature")).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"a":{"message_signature":"y"}}"#
        );
    }
}
