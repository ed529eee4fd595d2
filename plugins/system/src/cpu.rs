//! `cpu`: CPU time used by the host since boot (all CPUs, not idle or iowait), in ns,
//! cumulative, with `cpu_number` in the metadata — what `rate_of_change` turns into
//! `cpu_util`.

use ceilo_plugin_api::{
    Context, Parameters, Plugin, PluginError, Poller, Sample, SampleBatch, SampleType,
};
use procfs::{CurrentSI, KernelStats};
use serde_json::json;

use crate::host::{hostname, monotonic_seconds, unavailable};

/// Polls `/proc/stat`.
pub struct Cpu {
    host: String,
}

impl Plugin for Cpu {
    const NAME: &'static str = "cpu";
    const DESCRIPTION: &'static str =
        "cpu: CPU time used since boot, ns (cumulative), cpu_number in metadata";
    fn create(parameters: &Parameters, _: &Context) -> Result<Self, PluginError> {
        crate::no_parameters(Self::NAME, parameters)?;
        Ok(Cpu { host: hostname() })
    }
}

impl Poller for Cpu {
    fn meters(&self) -> Vec<String> {
        vec!["cpu".into()]
    }
    fn poll(&mut self, _: &[String]) -> Result<SampleBatch, PluginError> {
        let stats = KernelStats::current().map_err(|e| unavailable("/proc/stat", e))?;
        let t = &stats.total;
        let busy_ticks = t.user
            + t.nice
            + t.system
            + t.irq.unwrap_or(0)
            + t.softirq.unwrap_or(0)
            + t.steal.unwrap_or(0);
        let ns = busy_ticks as f64 * 1e9 / procfs::ticks_per_second() as f64;
        let s = Sample::new("cpu", SampleType::Cumulative, "ns", ns, self.host.as_str())
            .with_resource_metadata(json!({"cpu_number": stats.cpu_time.len(), "host": self.host}))
            .with_monotonic_time(monotonic_seconds());
        Ok(vec![s].into())
    }
}
