//! Sample signatures (feature `signing`): `message_signature` is the hex HMAC-SHA256,
//! keyed by the telemetry secret, of the sample's canonical form — its wire JSON
//! without `message_signature`, canonicalised by RFC 8785 (JCS: keys sorted, no
//! whitespace, numbers in ECMAScript's shortest round-trip form). Any implementation
//! that can write JCS can sign and verify ceilo samples. ceilo's publishers send each
//! sample as its canonical form with the signature appended last ([`signed_bytes`]),
//! which a receiver verifies over the bytes as they arrive ([`verify_signed_bytes`]).
//!
//! ```
//! use ceilo_plugin_api::{Sample, SampleType};
//! use ceilo_plugin_api::signing::{signed_value, verify};
//!
//! let s = Sample::new("cpu", SampleType::Cumulative, "ns", 1e9, "host");
//! let mut wire = signed_value(&s, "secret").unwrap();
//! assert!(verify(&wire, "secret"));
//! assert!(!verify(&wire, "another secret"));
//! wire["volume"] = serde_json::json!(2e9);
//! assert!(!verify(&wire, "secret"), "a tampered sample fails");
//! ```

use std::cell::RefCell;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::{PluginError, Sample};

pub mod ceilometer;
mod jcs;

/// The wire field that carries the signature.
pub const SIGNATURE_FIELD: &str = "message_signature";

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// An HMAC keyed by `secret`. Keying hashes two padded key blocks, work that would
/// otherwise be repeated for every sample signed or verified: each thread keeps the
/// last secret's keyed state and copies it.
fn mac(secret: &str) -> HmacSha256 {
    thread_local! {
        static KEYED: RefCell<Option<(String, HmacSha256)>> = const { RefCell::new(None) };
    }
    let fresh = || {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        <HmacSha256 as Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!())
    };
    KEYED
        .try_with(|keyed| {
            let mut keyed = keyed.try_borrow_mut().ok()?;
            match &*keyed {
                Some((key, m)) if key.as_str() == secret => Some(m.clone()),
                _ => {
                    let m = fresh();
                    *keyed = Some((secret.to_owned(), m.clone()));
                    Some(m)
                }
            }
        })
        .ok()
        .flatten()
        .unwrap_or_else(fresh)
}

/// The canonical bytes of a wire object, without its signature field.
pub fn canonical_bytes(wire: &Value) -> Result<Vec<u8>, PluginError> {
    let mut out = Vec::with_capacity(512);
    jcs::write(&mut out, wire, Some(SIGNATURE_FIELD))
        .map_err(|e| PluginError::invalid_input(format!("cannot canonicalise the sample: {e}")))?;
    Ok(out)
}

/// The signature of a sample.
pub fn sign(sample: &Sample, secret: &str) -> Result<String, PluginError> {
    let wire =
        serde_json::to_value(sample).map_err(|e| PluginError::invalid_input(e.to_string()))?;
    sign_value(&wire, secret)
}

/// The signature of a wire object (its own signature field ignored).
pub fn sign_value(wire: &Value, secret: &str) -> Result<String, PluginError> {
    let mut m = mac(secret);
    m.update(&canonical_bytes(wire)?);
    Ok(hex::encode(m.finalize().into_bytes()))
}

/// The sample's wire form with `message_signature` set.
pub fn signed_value(sample: &Sample, secret: &str) -> Result<Value, PluginError> {
    let mut wire =
        serde_json::to_value(sample).map_err(|e| PluginError::invalid_input(e.to_string()))?;
    let sig = sign_value(&wire, secret)?;
    if let Value::Object(m) = &mut wire {
        m.insert(SIGNATURE_FIELD.to_owned(), Value::String(sig));
    }
    Ok(wire)
}

/// The sample's signed wire form as JSON bytes, serialised once: its canonical form
/// with `message_signature` appended (receivers read fields by name, so the signature's
/// place does not matter; `verify` re-canonicalises).
///
/// ```
/// use ceilo_plugin_api::{Sample, SampleType};
/// use ceilo_plugin_api::signing::{signed_bytes, verify};
/// let s = Sample::new("cpu", SampleType::Cumulative, "ns", 1e9, "host");
/// let wire: serde_json::Value = serde_json::from_slice(&signed_bytes(&s, "k").unwrap()).unwrap();
/// assert!(verify(&wire, "k"));
/// ```
pub fn signed_bytes(sample: &Sample, secret: &str) -> Result<Vec<u8>, PluginError> {
    let wire =
        serde_json::to_value(sample).map_err(|e| PluginError::invalid_input(e.to_string()))?;
    let mut bytes = canonical_bytes(&wire)?;
    let mut m = mac(secret);
    m.update(&bytes);
    let sig = hex::encode(m.finalize().into_bytes());
    if bytes.last() != Some(&b'}') {
        return Err(PluginError::invalid_input(
            "a sample's wire form is not a JSON object",
        ));
    }
    bytes.pop();
    bytes.extend_from_slice(b",\"");
    bytes.extend_from_slice(SIGNATURE_FIELD.as_bytes());
    bytes.extend_from_slice(b"\":\"");
    bytes.extend_from_slice(sig.as_bytes());
    bytes.extend_from_slice(b"\"}");
    Ok(bytes)
}

/// Whether a received wire object carries a valid signature for `secret`, compared in
/// constant time.
pub fn verify(wire: &Value, secret: &str) -> bool {
    let Some(sig) = wire.get(SIGNATURE_FIELD).and_then(Value::as_str) else {
        return false;
    };
    let Ok(expected) = hex::decode(sig) else {
        return false;
    };
    let Ok(bytes) = canonical_bytes(wire) else {
        return false;
    };
    let mut m = mac(secret);
    m.update(&bytes);
    m.verify_slice(&expected).is_ok()
}

/// Whether `raw`, the bytes of one received sample, are ceilo's signed wire form with a
/// valid signature for `secret`: the canonical form with `message_signature` appended as
/// the last member, as [`signed_bytes`] writes it. The signature is checked over the
/// bytes as received (all but that last member), so nothing is parsed or rewritten: a
/// receiver verifies a ceilo publisher's samples at the cost of the HMAC alone.
///
/// False for bytes in any other form (another sender's key order, spacing or number
/// spelling, the signature elsewhere), which may still be validly signed: check those
/// with [`verify`] on the parsed value. Bytes this accepts are exactly what a holder of
/// the secret signed, so whatever they parse to is authentic.
///
/// ```
/// use ceilo_plugin_api::{Sample, SampleType};
/// use ceilo_plugin_api::signing::{signed_bytes, verify_signed_bytes};
/// let s = Sample::new("cpu", SampleType::Cumulative, "ns", 1e9, "host");
/// let bytes = signed_bytes(&s, "k").unwrap();
/// assert!(verify_signed_bytes(&bytes, "k"));
/// assert!(!verify_signed_bytes(&bytes, "another secret"));
/// let spaced = String::from_utf8(bytes).unwrap().replacen(',', ", ", 1);
/// assert!(!verify_signed_bytes(spaced.as_bytes(), "k"), "not as signed: verify() decides");
/// ```
pub fn verify_signed_bytes(raw: &[u8], secret: &str) -> bool {
    // `,"message_signature":"` + 64 hex digits + `"}`.
    const HEX: usize = 64;
    let head_len = SIGNATURE_FIELD.len() + 5;
    let Some(start) = raw.len().checked_sub(head_len + HEX + 2) else {
        return false;
    };
    let (canonical_open, tail) = raw.split_at(start);
    let (head, rest) = tail.split_at(head_len);
    let (hex_digits, close) = rest.split_at(HEX);
    let head_ok = head.starts_with(b",\"")
        && head[2..].starts_with(SIGNATURE_FIELD.as_bytes())
        && head.ends_with(b"\":\"");
    let mut expected = [0u8; HEX / 2];
    if !head_ok
        || close != b"\"}"
        || canonical_open.first() != Some(&b'{')
        || hex::decode_to_slice(hex_digits, &mut expected).is_err()
    {
        return false;
    }
    let mut m = mac(secret);
    m.update(canonical_open);
    m.update(b"}");
    m.verify_slice(&expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_form_is_jcs() {
        let v = json!({"volume": 1.0, "name": "a", "b": {"z": 1, "y": [1e21, 0.1]}, SIGNATURE_FIELD: "x"});
        let bytes = canonical_bytes(&v).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"b":{"y":[1e+21,0.1],"z":1},"name":"a","volume":1}"#
        );
    }

    #[test]
    fn known_answer() {
        // HMAC-SHA256("secret", '{"a":1}'), computed independently (Python hmac).
        assert_eq!(
            sign_value(&json!({"a": 1}), "secret").unwrap(),
            "aa9e2e3575f5d7098b6caccd790888c36d5fdb63342a73bada2d6a51747a8494"
        );
    }

    #[test]
    fn signed_bytes_are_the_canonical_form_with_the_signature_last() {
        let s = Sample::new("m", crate::SampleType::Gauge, "u", 10.0, "r")
            .with_resource_metadata(json!({"z": [1.5, "\u{1f600}"], "a": null}));
        let bytes = signed_bytes(&s, "k").unwrap();
        let parsed: Value = serde_json::from_slice(&bytes).unwrap();
        let canonical = canonical_bytes(&parsed).unwrap();
        let sig = sign_value(&parsed, "k").unwrap();
        let expected = format!(
            "{},\"{SIGNATURE_FIELD}\":\"{sig}\"}}",
            std::str::from_utf8(&canonical[..canonical.len() - 1]).unwrap()
        );
        assert_eq!(String::from_utf8(bytes.clone()).unwrap(), expected);
        assert!(verify(&parsed, "k") && verify_signed_bytes(&bytes, "k"));
    }

    #[test]
    fn bytes_verify_only_whole_and_as_signed() {
        let s = Sample::new("m", crate::SampleType::Gauge, "u", 10.0, "r");
        let bytes = signed_bytes(&s, "k").unwrap();
        for end in 0..bytes.len() {
            assert!(!verify_signed_bytes(&bytes[..end], "k"), "cut at {end}");
            assert!(
                !verify_signed_bytes(&bytes[end + 1..], "k"),
                "from {}",
                end + 1
            );
        }
        // The digits' case is not part of what is signed.
        let upper = String::from_utf8(bytes.clone()).unwrap();
        let (body, sig) = upper.split_at(upper.len() - 66);
        assert!(verify_signed_bytes(
            format!("{body}{}", sig.to_uppercase()).as_bytes(),
            "k"
        ));
        // Without the signature last the bytes are not in this form.
        let wire = serde_json::to_vec(&signed_value(&s, "k").unwrap()).unwrap();
        assert!(!verify_signed_bytes(&wire, "k"));
        assert!(verify(&serde_json::from_slice(&wire).unwrap(), "k"));
    }

    #[test]
    fn key_order_and_number_spelling_do_not_matter() {
        let s = Sample::new("m", crate::SampleType::Gauge, "u", 10.0, "r");
        let wire = signed_value(&s, "k").unwrap();
        let text = serde_json::to_string(&wire)
            .unwrap()
            .replace("\"volume\":10.0", "\"volume\":1e1");
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert!(verify(&reparsed, "k"));
        assert!(!verify(&json!({"name": "m"}), "k"), "unsigned");
    }
}
