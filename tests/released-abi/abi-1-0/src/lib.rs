//! Plugins built for plugin ABI 1.0 against the released plugin-api copy: the
//! library exports 1.0's root module and vtables (no `init`, no publisher `stats`).

use ceilo_plugin_api::*;

/// `old_counter`: meter `old.counter`, one cumulative sample per poll.
pub struct OldCounter {
    polls: u64,
}

impl Plugin for OldCounter {
    const NAME: &'static str = "old_counter";
    const DESCRIPTION: &'static str = "built for ABI 1.0 against the released plugin-api";
    fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> {
        Ok(OldCounter { polls: 0 })
    }
}

impl Poller for OldCounter {
    fn meters(&self) -> Vec<String> {
        vec!["old.counter".into()]
    }
    fn poll(&mut self, _: &[String]) -> Result<SampleBatch, PluginError> {
        self.polls += 1;
        Ok(vec![Sample::new(
            "old.counter",
            SampleType::Cumulative,
            "poll",
            self.polls as f64,
            "released-1.0",
        )]
        .into())
    }
}

/// `old_counting`: counts what it is given, in the file named by `path`.
pub struct CountingPublisher {
    path: String,
    seen: u64,
}

impl Plugin for CountingPublisher {
    const NAME: &'static str = "old_counting";
    const DESCRIPTION: &'static str = "built for ABI 1.0: counts samples into a file";
    fn create(p: &Parameters, _: &Context) -> Result<Self, PluginError> {
        let path = match p.get::<String>("path")? {
            Some(path) => path,
            None => p
                .get::<String>("url")?
                .and_then(|u| u.strip_prefix("old_counting://").map(str::to_owned))
                .filter(|p| !p.is_empty())
                .ok_or_else(|| PluginError::invalid_parameters("`path` is required"))?,
        };
        Ok(CountingPublisher { path, seen: 0 })
    }
}

impl Publisher for CountingPublisher {
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
        self.seen += batch.len() as u64;
        std::fs::write(&self.path, self.seen.to_string())
            .map_err(|e| PluginError::new(e.to_string()))
    }
    fn stats(&self) -> Vec<Counter> {
        // Never reachable through ABI 1.0: the host must not see this.
        vec![Counter::new("seen", self.seen)]
    }
}

/// `old_double`: doubles volumes.
pub struct Double;

impl Plugin for Double {
    const NAME: &'static str = "old_double";
    const DESCRIPTION: &'static str = "built for ABI 1.0: doubles volumes";
    fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> {
        Ok(Double)
    }
}

impl Transformer for Double {
    fn handle(&mut self, mut s: Sample, out: &mut SampleBatch) -> Result<(), PluginError> {
        s.set_volume(s.volume() * 2.0);
        out.push(s);
        Ok(())
    }
}

ceilo_plugin_api::__export_plugins_for_abi! { v1_0;
    pollers: [OldCounter],
    publishers: [CountingPublisher],
    transformers: [Double],
}
