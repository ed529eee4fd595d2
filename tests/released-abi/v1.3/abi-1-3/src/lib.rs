//! Plugins built for plugin ABI 1.3 against the released plugin-api 1.3 copy
//! (`../plugin-api`), exactly as a third party built them when 1.3 was released: a
//! trait plugin (the kind 1.3 added) beside a poller of the 1.2 kinds.

use ceilo_plugin_api::*;

/// `v13_gauge`: meter `v13.gauge`, one sample per poll.
pub struct Gauge13;

impl Plugin for Gauge13 {
    const NAME: &'static str = "v13_gauge";
    const DESCRIPTION: &'static str = "built for ABI 1.3 against the released plugin-api";
    fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> {
        Ok(Gauge13)
    }
}

impl Poller for Gauge13 {
    fn meters(&self) -> Vec<String> {
        vec!["v13.gauge".into()]
    }
    fn poll(&mut self, _: &[String]) -> Result<SampleBatch, PluginError> {
        let s = Sample::new("v13.gauge", SampleType::Gauge, "u", 13.0, "released-1.3")
            .with_resource_metadata(serde_json::json!({"abi": "1.3"}));
        Ok(vec![s].into())
    }
}

/// `v13_join`: a trait plugin joining every matched value (as text) with the
/// parameter `with` (default `+`), prefixed by the paths' count.
pub struct Join13 {
    with: String,
}

impl Plugin for Join13 {
    const NAME: &'static str = "v13_join";
    const DESCRIPTION: &'static str = "trait plugin built for ABI 1.3 against the released plugin-api";
    fn create(p: &Parameters, _: &Context) -> Result<Self, PluginError> {
        Ok(Join13 {
            with: p.get("with")?.unwrap_or_else(|| "+".into()),
        })
    }
}

impl TraitPlugin for Join13 {
    fn trait_values(
        &mut self,
        matches: &[TraitMatch],
    ) -> Result<Vec<serde_json::Value>, PluginError> {
        if matches.is_empty() {
            return Ok(vec![serde_json::Value::Null]);
        }
        let parts: Vec<String> = matches
            .iter()
            .map(|m| match &m.value {
                serde_json::Value::String(s) => format!("{}={s}", m.path),
                other => format!("{}={other}", m.path),
            })
            .collect();
        Ok(vec![serde_json::Value::from(format!(
            "{}:{}",
            matches.len(),
            parts.join(&self.with)
        ))])
    }
}

export_plugins! {
    pollers: [Gauge13],
    trait_plugins: [Join13],
}
