//! An example third-party plugin library: an `uptime` poller, a `rename`
//! transformer and a `size_class` trait plugin (plugin ABI 1.3). Build with `cargo build --release`, then copy
//! `target/release/libacme_ceilo_plugins.so` into ceilo's plugin directory.

use ceilo_plugin_api::*;

/// `uptime`: time since boot, from `/proc/uptime`.
///
/// Parameters (ceilo's `--plugin-config`, section `pollers:`):
/// - `resource_id`: the resource the samples are about (default `localhost`);
/// - `unit`: `s` (default), `min` or `h`.
///
/// ```yaml
/// pollers:
///   uptime: {resource_id: web-1, unit: min}
/// ```
pub struct Uptime {
    host: String,
    unit: &'static str,
    divisor: f64,
}

impl Plugin for Uptime {
    const NAME: &'static str = "uptime";
    const DESCRIPTION: &'static str = "seconds since boot (example third-party plugin)";

    fn create(params: &Parameters, _ctx: &Context) -> Result<Self, PluginError> {
        let host = params
            .get::<String>("resource_id")?
            .unwrap_or_else(|| "localhost".into());
        let (unit, divisor) = match params.get::<String>("unit")?.as_deref() {
            None | Some("s") => ("s", 1.0),
            Some("min") => ("min", 60.0),
            Some("h") => ("h", 3600.0),
            Some(other) => {
                return Err(PluginError::invalid_parameters(format!(
                    "`unit` must be s, min or h, not `{other}`"
                )))
            }
        };
        Ok(Uptime {
            host,
            unit,
            divisor,
        })
    }
}

impl Poller for Uptime {
    fn meters(&self) -> Vec<String> {
        vec!["uptime".into()]
    }

    fn poll(&mut self, _resources: &[String]) -> Result<SampleBatch, PluginError> {
        let text = std::fs::read_to_string("/proc/uptime")
            .map_err(|e| PluginError::unavailable(format!("/proc/uptime: {e}")))?;
        let secs: f64 = text
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                PluginError::new(format!("/proc/uptime: unexpected `{}`", text.trim()))
            })?;
        // The build's version in the metadata: which library produced a sample shows
        // in the output when a new build replaces the old one in a running agent.
        let sample = Sample::new(
            "uptime",
            SampleType::Cumulative,
            self.unit,
            secs / self.divisor,
            self.host.as_str(),
        )
        .with_resource_metadata(serde_json::json!({
            "plugin_version": env!("CARGO_PKG_VERSION"),
        }));
        Ok(vec![sample].into())
    }
}

/// `rename`: gives every sample the meter name in parameter `to`.
pub struct Rename {
    to: String,
}

impl Plugin for Rename {
    const NAME: &'static str = "rename";
    const DESCRIPTION: &'static str = "renames samples to `to` (example third-party plugin)";

    fn create(params: &Parameters, _ctx: &Context) -> Result<Self, PluginError> {
        let to = params.get::<String>("to")?.ok_or_else(|| {
            PluginError::invalid_parameters("`to` is required: the new meter name")
        })?;
        Ok(Rename { to })
    }
}

impl Transformer for Rename {
    fn handle(&mut self, mut sample: Sample, out: &mut SampleBatch) -> Result<(), PluginError> {
        sample.set_name(self.to.as_str());
        out.push(sample);
        Ok(())
    }
}

/// `size_class`: an event trait naming a size class by the first number its fields
/// matched, against the thresholds in parameter `classes` (`{name: upper bound}`,
/// tried from the smallest bound; larger than all: `huge`).
///
/// ```yaml
/// - event_type: compute.instance.*
///   traits:
///     size_class:
///       fields: payload.memory_mb
///       plugin: {name: size_class, parameters: {classes: {small: 2048, large: 16384}}}
/// ```
pub struct SizeClass {
    classes: Vec<(f64, String)>,
}

impl Plugin for SizeClass {
    const NAME: &'static str = "size_class";
    const DESCRIPTION: &'static str =
        "names a size class by thresholds (example third-party trait plugin)";

    fn create(params: &Parameters, _ctx: &Context) -> Result<Self, PluginError> {
        let given: std::collections::BTreeMap<String, f64> =
            params.get("classes")?.ok_or_else(|| {
                PluginError::invalid_parameters("`classes` is required: {name: upper bound}")
            })?;
        let mut classes: Vec<(f64, String)> = given.into_iter().map(|(n, b)| (b, n)).collect();
        classes.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ok(SizeClass { classes })
    }
}

impl TraitPlugin for SizeClass {
    fn trait_values(
        &mut self,
        matches: &[TraitMatch],
    ) -> Result<Vec<serde_json::Value>, PluginError> {
        let Some(n) = matches.iter().find_map(|m| m.value.as_f64()) else {
            return Ok(Vec::new());
        };
        let class = self
            .classes
            .iter()
            .find(|(bound, _)| n <= *bound)
            .map_or("huge", |(_, name)| name.as_str());
        Ok(vec![serde_json::Value::from(class)])
    }
}

export_plugins! {
    pollers: [Uptime],
    transformers: [Rename],
    trait_plugins: [SizeClass],
}
