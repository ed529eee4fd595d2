//! `memory`: `memory.usage` (total − available) and `memory.total`, in MB.

use ceilo_plugin_api::{
    Context, Parameters, Plugin, PluginError, Poller, Sample, SampleBatch, SampleType,
};
use procfs::{Current, Meminfo};
use serde_json::json;

use crate::host::{hostname, unavailable};

/// Polls `/proc/meminfo`.
pub struct Memory {
    host: String,
}

const MB: f64 = 1024.0 * 1024.0;

impl Plugin for Memory {
    const NAME: &'static str = "memory";
    const DESCRIPTION: &'static str = "memory.usage, memory.total: MB, from /proc/meminfo";
    fn create(parameters: &Parameters, _: &Context) -> Result<Self, PluginError> {
        crate::no_parameters(Self::NAME, parameters)?;
        Ok(Memory { host: hostname() })
    }
}

impl Poller for Memory {
    fn meters(&self) -> Vec<String> {
        vec!["memory.usage".into(), "memory.total".into()]
    }
    fn poll(&mut self, _: &[String]) -> Result<SampleBatch, PluginError> {
        let m = Meminfo::current().map_err(|e| unavailable("/proc/meminfo", e))?;
        // Kernels before 3.14 have no MemAvailable: estimate it as free + caches.
        let available = m.mem_available.unwrap_or(m.mem_free + m.cached + m.buffers);
        let total = m.mem_total as f64 / MB;
        let used = m.mem_total.saturating_sub(available) as f64 / MB;
        let md = json!({"host": self.host});
        Ok(vec![
            Sample::new(
                "memory.usage",
                SampleType::Gauge,
                "MB",
                used,
                self.host.as_str(),
            )
            .with_resource_metadata(md.clone()),
            Sample::new(
                "memory.total",
                SampleType::Gauge,
                "MB",
                total,
                self.host.as_str(),
            )
            .with_resource_metadata(md),
        ]
        .into())
    }
}
