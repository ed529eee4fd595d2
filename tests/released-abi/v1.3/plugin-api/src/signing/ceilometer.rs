//! Ceilometer's own message format and signature scheme, for mixed fleets: what
//! Ceilometer's publishers send (a *meter message*: `counter_name`, `counter_volume`…)
//! and how they sign it, so that ceilo verifies what Ceilometer agents publish and
//! Ceilometer verifies what ceilo publishes, with the same telemetry secret.
//!
//! The signature is the hex HMAC-SHA256 of the message's fields in sorted order, each
//! as its name then its value written as Python 3's `str()` writes it (nested mappings
//! flattened to `outer:inner` names; lists written as Python writes a list whose text
//! was encoded to bytes, `[b'x', 1.5]`; `None`, `True`, floats in Python's shortest
//! form such as `1e+16`). The rules are those of `ceilometer/publisher/utils.py`;
//! ceilo's own scheme ([`super`]) is canonical JSON instead.
//!
//! ```
//! use ceilo_plugin_api::{Sample, SampleType};
//! use ceilo_plugin_api::signing::ceilometer::{meter_message, sample_from_meter_message, verify};
//!
//! let s = Sample::new("cpu", SampleType::Cumulative, "ns", 1e9, "vm-1")
//!     .with_project_id("p1");
//! let msg = meter_message(&s, Some("secret")).unwrap();
//! assert_eq!(msg["counter_name"], "cpu");
//! assert!(verify(&msg, "secret"));
//! assert!(!verify(&msg, "another secret"));
//! let back = sample_from_meter_message(&msg).unwrap();
//! assert_eq!((back.name(), back.volume(), back.project_id()), ("cpu", 1e9, Some("p1")));
//! ```

use hmac::Mac;
use serde_json::{Map, Value};

use super::{mac, SIGNATURE_FIELD};
use crate::sample::{format_timestamp, parse_timestamp};
use crate::{PluginError, Sample, SampleParts, SampleType};

/// Ceilometer's signature of a meter message (its own signature field ignored); empty
/// for an empty secret, as in Ceilometer.
pub fn signature(message: &Value, secret: &str) -> String {
    if secret.is_empty() {
        return String::new();
    }
    hex::encode(keyed(message, secret).finalize().into_bytes())
}

/// Whether a meter message carries Ceilometer's signature for `secret`, compared in
/// constant time.
pub fn verify(message: &Value, secret: &str) -> bool {
    let Some(sig) = message.get(SIGNATURE_FIELD).and_then(Value::as_str) else {
        return false;
    };
    let Ok(given) = hex::decode(sig) else {
        return false;
    };
    message.is_object() && keyed(message, secret).verify_slice(&given).is_ok()
}

/// The HMAC over the pairs Ceilometer signs, in its order.
fn keyed(message: &Value, secret: &str) -> super::HmacSha256 {
    let mut m = mac(secret);
    if let Value::Object(fields) = message {
        for (name, value) in keypairs(fields) {
            if name != SIGNATURE_FIELD {
                m.update(name.as_bytes());
                m.update(value.as_bytes());
            }
        }
    }
    m
}

/// A sample as Ceilometer's publishers send it, signed by Ceilometer's rules (no
/// secret: an empty signature, as Ceilometer sends unsigned).
pub fn meter_message(sample: &Sample, secret: Option<&str>) -> Result<Value, PluginError> {
    let metadata: Value = serde_json::from_str(sample.resource_metadata_json())
        .map_err(|e| PluginError::invalid_input(format!("resource_metadata: {e}")))?;
    let opt = |v: Option<&str>| v.map_or(Value::Null, |s| Value::String(s.to_owned()));
    let mut m = Map::new();
    m.insert("source".into(), sample.source().into());
    m.insert("counter_name".into(), sample.name().into());
    m.insert("counter_type".into(), sample.sample_type().as_str().into());
    m.insert("counter_unit".into(), sample.unit().into());
    m.insert("counter_volume".into(), number(sample.volume()));
    m.insert("user_id".into(), opt(sample.user_id()));
    m.insert("user_name".into(), Value::Null);
    m.insert("project_id".into(), opt(sample.project_id()));
    m.insert("project_name".into(), Value::Null);
    m.insert("resource_id".into(), sample.resource_id().into());
    m.insert(
        "timestamp".into(),
        format_timestamp(sample.timestamp()).into(),
    );
    m.insert("resource_metadata".into(), metadata);
    m.insert("message_id".into(), sample.message_id().into());
    m.insert(
        "monotonic_time".into(),
        sample.monotonic_time().map_or(Value::Null, number),
    );
    let mut msg = Value::Object(m);
    let sig = signature(&msg, secret.unwrap_or(""));
    msg[SIGNATURE_FIELD] = Value::String(sig);
    Ok(msg)
}

/// A sample from a meter message (Ceilometer's field names; `user_name` and
/// `project_name`, which ceilo's model has no place for, are left out; a missing
/// `source` is Ceilometer's `openstack`).
pub fn sample_from_meter_message(message: &Value) -> Result<Sample, String> {
    let text = |k: &str| -> Result<String, String> {
        match message.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            Some(other) => Err(format!("`{k}` must be text, found {other}")),
            None => Err(format!("`{k}` is missing")),
        }
    };
    let opt_text = |k: &str| -> Result<Option<String>, String> {
        match message.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(format!("`{k}` must be text or null, found {other}")),
        }
    };
    let sample_type: SampleType = text("counter_type")?.parse().map_err(|e| format!("{e}"))?;
    let volume = match message.get("counter_volume") {
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| format!("`counter_volume` `{s}` is not a number"))?,
        other => {
            return Err(format!(
                "`counter_volume` must be a number, found {other:?}"
            ))
        }
    };
    let timestamp = parse_timestamp(&text("timestamp")?)?;
    let metadata = match message.get("resource_metadata") {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(v @ Value::Object(_)) => v.to_string(),
        Some(other) => {
            return Err(format!(
                "`resource_metadata` must be a mapping, found {other}"
            ))
        }
    };
    let monotonic_time = match message.get("monotonic_time") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(other) => return Err(format!("`monotonic_time` must be a number, found {other}")),
    };
    Sample::from_parts(SampleParts {
        name: text("counter_name")?,
        sample_type,
        unit: text("counter_unit")?,
        volume,
        user_id: opt_text("user_id")?,
        project_id: opt_text("project_id")?,
        resource_id: text("resource_id")?,
        timestamp_micros: timestamp.timestamp_micros(),
        resource_metadata_json: metadata,
        source: opt_text("source")?.unwrap_or_else(|| "openstack".to_owned()),
        message_id: text("message_id")?,
        monotonic_time,
    })
    .map_err(|e| e.message().to_owned())
}

/// Whether a JSON object is a meter message (rather than a ceilo wire sample).
pub fn is_meter_message(value: &Value) -> bool {
    value.get("counter_name").is_some()
}

/// A float as JSON: whole values stay floats (`1.0`), as Python's `json` writes them,
/// so that both sides read the same `str()`.
fn number(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// The (name, text) pairs Ceilometer signs, in its order: keys sorted, mappings
/// flattened to `outer:inner` (an empty one contributes nothing), everything else as
/// Python's `str()` of the value (lists with their text as bytes).
fn keypairs(fields: &Map<String, Value>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    flatten(fields, "", &mut out);
    out
}

fn flatten(fields: &Map<String, Value>, prefix: &str, out: &mut Vec<(String, String)>) {
    let mut keys: Vec<&String> = fields.keys().collect();
    keys.sort();
    for k in keys {
        let name = format!("{prefix}{k}");
        match &fields[k] {
            Value::Object(inner) => flatten(inner, &format!("{name}:"), out),
            Value::Array(items) => {
                let mut text = String::new();
                repr_list(items, &mut text);
                out.push((name, text));
            }
            Value::String(s) => out.push((name, s.clone())),
            scalar => {
                let mut text = String::new();
                repr_decoded(scalar, &mut text);
                out.push((name, text));
            }
        }
    }
}

/// Python's `repr` of a list whose strings were encoded to bytes.
fn repr_list(items: &[Value], out: &mut String) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        repr_decoded(item, out);
    }
    out.push(']');
}

fn repr_decoded(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => repr_bytes(s.as_bytes(), out),
        Value::Array(items) => repr_list(items, out),
        Value::Object(m) => {
            // Rebuilt with sorted keys, as Ceilometer does before writing it.
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                repr_bytes(k.as_bytes(), out);
                out.push_str(": ");
                repr_decoded(&m[k], out);
            }
            out.push('}');
        }
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
            Some(f) => out.push_str(&python_float(f)),
            None => out.push_str(&n.to_string()),
        },
    }
}

/// Python's `repr(bytes)`: `b'…'`, double quotes only when the bytes hold a single
/// quote and no double one; `\\`, the quote, `\t`, `\n`, `\r` escaped, other bytes
/// outside printable ASCII as `\xhh`.
fn repr_bytes(b: &[u8], out: &mut String) {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    out.push('b');
    out.push(quote);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            c if c as char == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(c as char),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote);
}

/// Python 3's `repr(float)`: the shortest digits that read back the same, written
/// plainly for decimal exponents from -4 to 15 (`0.0001`, `1e+16`, `1.5e-05`, `3.0`).
pub fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `d.ddde±x`.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let text = if exp >= 0 {
            let point = exp as usize + 1;
            if digits.len() <= point {
                format!("{digits}{}.0", "0".repeat(point - digits.len()))
            } else {
                format!("{}.{}", &digits[..point], &digits[point..])
            }
        } else {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        };
        format!("{sign}{text}")
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_as_python_writes_them() {
        for (f, py) in [
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789.125, "123456789.125"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.5e300, "-2.5e+300"),
            (f64::NAN, "nan"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(python_float(f), py, "{f}");
        }
    }

    #[test]
    fn pairs_are_flattened_sorted_and_written_as_python_does() {
        let msg = json!({
            "b": {"y": 1, "x": {"deep": true}, "empty": {}},
            "a": [ "it's", {"k": "v", "a": null}, 2.0, [1] ],
            "c": null,
            "d": "text",
            "e": 3.5,
        });
        let pairs = keypairs(msg.as_object().unwrap());
        let want = [
            ("a", r#"[b"it's", {b'a': None, b'k': b'v'}, 2.0, [1]]"#),
            ("b:x:deep", "True"),
            ("b:y", "1"),
            ("c", "None"),
            ("d", "text"),
            ("e", "3.5"),
        ];
        let got: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(got, want);
        let mut out = String::new();
        repr_bytes("é\\\n'\"".as_bytes(), &mut out);
        assert_eq!(out, r#"b'\xc3\xa9\\\n\'"'"#);
    }

    #[test]
    fn a_signature_made_by_ceilometer_verifies() {
        // Ceilometer's compute_signature (ceilometer 27.0.0 on Python 3.11) gave this
        // signature for this message and the secret "not-so-secret".
        let mut msg = json!({
            "counter_name": "cpu", "counter_type": "cumulative", "counter_unit": "ns",
            "counter_volume": 1.0e16, "user_id": null, "project_id": "p",
            "resource_id": "r", "timestamp": "2026-12-02T18:00:00.000001",
            "resource_metadata": {"tags": ["a", "é", "it's"], "n": {"m": 0.00001, "t": true},
                                  "e": {}, "l": [{"z": 1, "a": [null, 2.5]}]},
            "message_id": "00000000-0000-0000-0000-000000000001", "source": "openstack",
            "monotonic_time": 12345.678,
            "message_signature": "2db00dc9b9cb273e010fc8b8355c75e05e6d597d63adf518ddfd48e5ccb40233"
        });
        assert!(verify(&msg, "not-so-secret"));
        assert_eq!(
            signature(&msg, "not-so-secret"),
            "2db00dc9b9cb273e010fc8b8355c75e05e6d597d63adf518ddfd48e5ccb40233"
        );
        assert!(!verify(&msg, "another"));
        msg["resource_metadata"]["n"]["m"] = json!(0.0001);
        assert!(!verify(&msg, "not-so-secret"), "a changed value fails");
        assert_eq!(signature(&msg, ""), "", "no secret, no signature");
    }
}
