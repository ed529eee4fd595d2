//! `bitfield`: an integer with a bit set for each flag whose path matched (with the
//! flag's value, when it gives one).

use ceilo_plugin_api::*;
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Deserialize)]
struct Flag {
    path: String,
    bit: u32,
    value: Option<Value>,
}

/// Sets bits by what matched.
#[derive(Debug)]
pub struct Bitfield {
    initial: i64,
    flags: Vec<Flag>,
}

impl Plugin for Bitfield {
    const NAME: &'static str = "bitfield";
    const DESCRIPTION: &'static str =
        "an integer of flags: parameters initial_bitfield (0), flags [{path, bit, value}]";

    fn create(p: &Parameters, _: &Context) -> Result<Self, PluginError> {
        let flags: Vec<Flag> = p.get("flags")?.unwrap_or_default();
        if let Some(f) = flags.iter().find(|f| f.bit > 62) {
            return Err(PluginError::invalid_parameters(format!(
                "flag for `{}`: bit {} is out of range (0–62)",
                f.path, f.bit
            )));
        }
        Ok(Bitfield {
            initial: p.get("initial_bitfield")?.unwrap_or(0),
            flags,
        })
    }
}

impl TraitPlugin for Bitfield {
    fn trait_values(&mut self, matches: &[TraitMatch]) -> Result<Vec<Value>, PluginError> {
        // As a Python dict of the matches: a path matched twice keeps its last value.
        let value_at = |path: &str| matches.iter().rev().find(|m| m.path == path);
        let mut bits = self.initial;
        for f in &self.flags {
            let Some(m) = value_at(&f.path) else { continue };
            if f.value.as_ref().is_none_or(|want| *want == m.value) {
                bits |= 1 << f.bit;
            }
        }
        Ok(vec![Value::from(bits)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plugin(initial: i64) -> Bitfield {
        let params = json!({"initial_bitfield": initial, "flags": [
            {"path": "payload.foo", "bit": 0, "value": 42},
            {"path": "payload.foo", "bit": 1, "value": 12},
            {"path": "payload.thud", "bit": 1, "value": 23},
            {"path": "thingy.boink", "bit": 4},
            {"path": "thingy.quux", "bit": 6, "value": "wokka"},
            {"path": "payload.bar", "bit": 10, "value": "test"},
        ]});
        Bitfield::create(
            &Parameters::from_json(&params.to_string()).unwrap(),
            &Context::default(),
        )
        .unwrap()
    }

    // Ceilometer's test_trait_plugins.TestBitfieldPlugin, restated.
    #[test]
    fn sets_bits_as_ceilometer() {
        let m = |p: &str, v: Value| TraitMatch::new(p, v);
        let matches = [
            m("payload.foo", json!(12)),
            m("payload.bar", json!("test")),
            m("thingy.boink", json!("testagain")),
        ];
        assert_eq!(plugin(0).trait_values(&matches).unwrap(), [json!(0x412)]);
        assert_eq!(
            plugin(0x2000).trait_values(&matches).unwrap(),
            [json!(0x2412)]
        );
        assert_eq!(plugin(0).trait_values(&[]).unwrap(), [json!(0)]);
        let multi = [
            m("payload.foo", json!(12)),
            m("payload.thud", json!(23)),
            m("payload.bar", json!("test")),
            m("thingy.boink", json!("testagain")),
        ];
        assert_eq!(plugin(0).trait_values(&multi).unwrap(), [json!(0x412)]);
    }
}
