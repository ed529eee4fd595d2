//! Numeric parameters as Ceilometer reads them: it passes each through Python's
//! `int()` or `float()`, so `size: "2"` and `retention_time: "60"` work in its pipeline
//! files; so they do here. Anything those would refuse is still a parameter error.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn int_of(v: &Value) -> Option<i64> {
    match v {
        // `int(2.7)` is 2.
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.2e18)
                .map(|f| f.trunc() as i64)
        }),
        // `int("2")`, `int(" -3 ")`, `int("1_000")`; not `int("2.5")`.
        Value::String(s) => s.trim().replace('_', "").parse().ok(),
        Value::Bool(b) => Some(i64::from(*b)),
        _ => None,
    }
}

fn float_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok().filter(|f: &f64| f.is_finite()),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn refused<E: serde::de::Error>(v: &Value, what: &str) -> E {
    use serde::de::Unexpected;
    let short: String;
    let unexpected = match v {
        Value::String(s) => {
            short = s.chars().take(80).collect();
            Unexpected::Str(&short)
        }
        Value::Number(n) => n
            .as_f64()
            .map_or(Unexpected::Other("number"), Unexpected::Float),
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
        Value::Null => Unexpected::Unit,
    };
    E::invalid_type(unexpected, &what)
}

/// An integer (`int()`).
pub fn int<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    int_of(&v).ok_or_else(|| refused(&v, "an integer (or one as text)"))
}

/// An optional whole number of at least 0 (`int()`).
pub fn opt_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match int_of(&v) {
            Some(n) if n >= 0 => Ok(Some(n as u64)),
            _ => Err(refused(&v, "a whole number of 0 or more (or one as text)")),
        },
    }
}

/// An optional number (`float()`).
pub fn opt_float<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => float_of(&v)
            .map(Some)
            .ok_or_else(|| refused(&v, "a number (or one as text)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct P {
        #[serde(deserialize_with = "int")]
        size: i64,
        #[serde(default, deserialize_with = "opt_count")]
        count: Option<u64>,
        #[serde(default, deserialize_with = "opt_float")]
        time: Option<f64>,
    }

    fn p(json: &str) -> Result<P, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn numbers_as_text_read_as_python_reads_them() {
        let v = p(r#"{"size": "2", "count": " 15 ", "time": "60.5"}"#).unwrap();
        assert_eq!((v.size, v.count, v.time), (2, Some(15), Some(60.5)));
        let v = p(r#"{"size": 2.7, "time": 3}"#).unwrap();
        assert_eq!((v.size, v.count, v.time), (2, None, Some(3.0)));
        assert!(p(r#"{"size": "2.5"}"#)
            .unwrap_err()
            .contains("expected an integer"));
        assert!(p(r#"{"size": "ten"}"#)
            .unwrap_err()
            .contains("invalid type: string \"ten\", expected an integer"));
        assert!(p(r#"{"size": 1, "count": -1}"#).is_err());
        assert!(p(r#"{"size": 1, "time": "soon"}"#)
            .unwrap_err()
            .contains("expected a number"));
    }
}
