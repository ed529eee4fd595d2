//! An example third-party plugin library: an `uptime` poller and a `rename`
//! transformer. Build with `cargo build --release`, then copy
//! `target/release/libacme_ceilo_plugins.so` into ceilo's plugin directory.

use ceilo_plugin_api::*;

/// `uptime`: seconds since boot, from `/proc/uptime`.
pub struct Uptime {
    host: String,
}

impl Plugin for Uptime {
    const NAME: &'static str = "uptime";
    const DESCRIPTION: &'static str = "seconds since boot (example third-party plugin)";

    fn create(params: &Parameters, _ctx: &Context) -> Result<Self, PluginError> {
        let host = params
            .get::<String>("resource_id")?
            .unwrap_or_else(|| "localhost".into());
        Ok(Uptime { host })
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
        let sample = Sample::new(
            "uptime",
            SampleType::Cumulative,
            "s",
            secs,
            self.host.as_str(),
        );
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
