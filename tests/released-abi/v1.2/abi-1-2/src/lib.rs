//! Plugins of every kind, built for plugin ABI 1.2 against the released plugin-api 1.2
//! copy (`../plugin-api-1.2`), exactly as a third party built them when 1.2 was
//! released: with shared `Text`, `Sample::new_at` and `MetadataCache`.

use std::io::Write;

use ceilo_plugin_api::*;

/// `v12_counter`: meter `v12.counter`, one cumulative sample per poll, made from a
/// template sample it keeps (shared text, metadata set once).
pub struct Counter12 {
    polls: u64,
    template: Sample,
}

impl Plugin for Counter12 {
    const NAME: &'static str = "v12_counter";
    const DESCRIPTION: &'static str = "built for ABI 1.2 against the released plugin-api";
    fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> {
        let name: Text = "v12.counter".into();
        let template = Sample::new_at(
            name,
            SampleType::Cumulative,
            "poll",
            0.0,
            "released-1.2",
            chrono_now(),
        )
        .with_resource_metadata(serde_json::json!({"abi": "1.2", "factor": 2}));
        Ok(Counter12 { polls: 0, template })
    }
}

impl Poller for Counter12 {
    fn meters(&self) -> Vec<String> {
        vec!["v12.counter".into()]
    }
    fn poll(&mut self, _: &[String]) -> Result<SampleBatch, PluginError> {
        self.polls += 1;
        let mut s = self.template.clone();
        s.set_volume(self.polls as f64);
        s.set_timestamp(chrono_now());
        s.renew_message_id();
        Ok(vec![s].into())
    }
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

/// `v12_double`: multiplies volumes by the metadata's `factor` (2 when absent), read
/// through a `MetadataCache`.
#[derive(Default)]
pub struct Double12 {
    metadata: MetadataCache,
}

impl Plugin for Double12 {
    const NAME: &'static str = "v12_double";
    const DESCRIPTION: &'static str = "built for ABI 1.2: doubles volumes";
    fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> {
        Ok(Double12::default())
    }
}

impl Transformer for Double12 {
    fn handle(&mut self, mut s: Sample, out: &mut SampleBatch) -> Result<(), PluginError> {
        let factor = self
            .metadata
            .value(&s, "factor")
            .and_then(|v| v.as_f64())
            .unwrap_or(2.0);
        s.set_volume(s.volume() * factor);
        out.push(s);
        Ok(())
    }
}

/// `v12_lines://PATH`: appends `name volume` lines to PATH; counts in `stats`.
pub struct Lines12 {
    path: String,
    written: u64,
}

impl Plugin for Lines12 {
    const NAME: &'static str = "v12_lines";
    const DESCRIPTION: &'static str = "built for ABI 1.2: name and volume per line";
    fn create(p: &Parameters, _: &Context) -> Result<Self, PluginError> {
        let url = p.get::<String>("url")?.unwrap_or_default();
        let path = url
            .strip_prefix("v12_lines://")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| PluginError::invalid_parameters("write v12_lines:///abs/path"))?
            .to_owned();
        Ok(Lines12 { path, written: 0 })
    }
}

impl Publisher for Lines12 {
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| PluginError::new(e.to_string()))?;
        for s in batch {
            writeln!(f, "{} {} {}", s.name(), s.volume(), s.message_id())
                .map_err(|e| PluginError::new(e.to_string()))?;
        }
        self.written += batch.len() as u64;
        Ok(())
    }
    fn stats(&self) -> Vec<ceilo_plugin_api::Counter> {
        vec![ceilo_plugin_api::Counter::new("written", self.written)]
    }
}

/// `v12_echo`: one `v12.event` sample per `v12.*` notification.
pub struct Echo12;

impl Plugin for Echo12 {
    const NAME: &'static str = "v12_echo";
    const DESCRIPTION: &'static str = "built for ABI 1.2: a sample per v12.* notification";
    fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> {
        Ok(Echo12)
    }
}

impl NotificationHandler for Echo12 {
    fn event_types(&self) -> Vec<String> {
        vec!["v12.*".into()]
    }
    fn meters(&self) -> Vec<String> {
        vec!["v12.event".into()]
    }
    fn handle(&mut self, n: &Notification) -> Result<SampleBatch, PluginError> {
        let v = n
            .payload
            .get("value")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        Ok(vec![Sample::new("v12.event", SampleType::Gauge, "", v, "echo")].into())
    }
}

export_plugins! {
    pollers: [Counter12],
    transformers: [Double12],
    publishers: [Lines12],
    notification_handlers: [Echo12],
}
