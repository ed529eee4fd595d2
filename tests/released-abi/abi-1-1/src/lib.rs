//! Plugins of every kind, built for plugin ABI 1.1 against the released plugin-api
//! copy (`../plugin-api`), exactly as a third party built them when 1.1 was released.

use std::io::Write;

use ceilo_plugin_api::*;

/// `released_counter`: meter `released.counter`, one cumulative sample per poll.
pub struct Counter11 {
    polls: u64,
}

impl Plugin for Counter11 {
    const NAME: &'static str = "released_counter";
    const DESCRIPTION: &'static str = "built for ABI 1.1 against the released plugin-api";
    fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> {
        Ok(Counter11 { polls: 0 })
    }
}

impl Poller for Counter11 {
    fn meters(&self) -> Vec<String> {
        vec!["released.counter".into()]
    }
    fn poll(&mut self, _: &[String]) -> Result<SampleBatch, PluginError> {
        self.polls += 1;
        let s = Sample::new(
            "released.counter",
            SampleType::Cumulative,
            "poll",
            self.polls as f64,
            "released-1.1",
        )
        .with_resource_metadata(serde_json::json!({"abi": "1.1"}));
        Ok(vec![s].into())
    }
}

/// `released_double`: doubles volumes.
pub struct Double11;

impl Plugin for Double11 {
    const NAME: &'static str = "released_double";
    const DESCRIPTION: &'static str = "built for ABI 1.1: doubles volumes";
    fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> {
        Ok(Double11)
    }
}

impl Transformer for Double11 {
    fn handle(&mut self, mut s: Sample, out: &mut SampleBatch) -> Result<(), PluginError> {
        s.set_volume(s.volume() * 2.0);
        out.push(s);
        Ok(())
    }
}

/// `released_lines://PATH`: appends `name volume` lines to PATH; counts in `stats`.
pub struct Lines11 {
    path: String,
    written: u64,
}

impl Plugin for Lines11 {
    const NAME: &'static str = "released_lines";
    const DESCRIPTION: &'static str = "built for ABI 1.1: name and volume per line";
    fn create(p: &Parameters, _: &Context) -> Result<Self, PluginError> {
        let url = p.get::<String>("url")?.unwrap_or_default();
        let path = url
            .strip_prefix("released_lines://")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| PluginError::invalid_parameters("write released_lines:///abs/path"))?
            .to_owned();
        Ok(Lines11 { path, written: 0 })
    }
}

impl Publisher for Lines11 {
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

/// `released_echo`: one `released.event` sample per `released.*` notification.
pub struct Echo11;

impl Plugin for Echo11 {
    const NAME: &'static str = "released_echo";
    const DESCRIPTION: &'static str = "built for ABI 1.1: a sample per released.* notification";
    fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> {
        Ok(Echo11)
    }
}

impl NotificationHandler for Echo11 {
    fn event_types(&self) -> Vec<String> {
        vec!["released.*".into()]
    }
    fn meters(&self) -> Vec<String> {
        vec!["released.event".into()]
    }
    fn handle(&mut self, n: &Notification) -> Result<SampleBatch, PluginError> {
        let v = n
            .payload
            .get("value")
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0);
        Ok(vec![Sample::new(
            "released.event",
            SampleType::Gauge,
            "",
            v,
            "echo",
        )]
        .into())
    }
}

export_plugins! {
    pollers: [Counter11],
    transformers: [Double11],
    publishers: [Lines11],
    notification_handlers: [Echo11],
}
