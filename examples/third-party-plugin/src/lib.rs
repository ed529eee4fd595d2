//! An example third-party plugin library: an `uptime` poller and a `rename`
//! transformer. Build with `cargo build --release`, then copy
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

export_plugins! {
    pollers: [Uptime],
    transformers: [Rename],
}
