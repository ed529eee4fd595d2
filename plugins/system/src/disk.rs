//! `disk`: bytes and requests read and written per block device since boot
//! (cumulative), from `/proc/diskstats`. Whole devices only (those under
//! `/sys/block`, without loop and ram devices); resource id `<host>-<device>`.

use std::collections::HashSet;

use ceilo_plugin_api::{
    Context, Parameters, Plugin, PluginError, Poller, Sample, SampleBatch, SampleType,
};
use serde_json::json;

use crate::host::{hostname, monotonic_seconds, unavailable};

/// Polls `/proc/diskstats`.
pub struct Disk {
    host: String,
}

const SECTOR: f64 = 512.0;

impl Plugin for Disk {
    const NAME: &'static str = "disk";
    const DESCRIPTION: &'static str =
        "disk.read.bytes, disk.write.bytes, disk.read.requests, disk.write.requests per block device (cumulative)";
    fn create(parameters: &Parameters, _: &Context) -> Result<Self, PluginError> {
        crate::no_parameters(Self::NAME, parameters)?;
        Ok(Disk { host: hostname() })
    }
}

fn whole_devices() -> Option<HashSet<String>> {
    let entries = std::fs::read_dir("/sys/block").ok()?;
    Some(
        entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with("loop") && !n.starts_with("ram"))
            .collect(),
    )
}

impl Poller for Disk {
    fn meters(&self) -> Vec<String> {
        [
            "disk.read.bytes",
            "disk.write.bytes",
            "disk.read.requests",
            "disk.write.requests",
        ]
        .map(String::from)
        .to_vec()
    }
    fn poll(&mut self, _: &[String]) -> Result<SampleBatch, PluginError> {
        let stats = procfs::diskstats().map_err(|e| unavailable("/proc/diskstats", e))?;
        let wanted = whole_devices();
        let now = monotonic_seconds();
        let mut out = SampleBatch::new();
        for d in stats {
            let keep = match &wanted {
                Some(set) => set.contains(&d.name),
                None => !d.name.starts_with("loop") && !d.name.starts_with("ram"),
            };
            if !keep {
                continue;
            }
            let rid = format!("{}-{}", self.host, d.name);
            let md = json!({"host": self.host, "device": d.name});
            for (meter, unit, v) in [
                ("disk.read.bytes", "B", d.sectors_read as f64 * SECTOR),
                ("disk.write.bytes", "B", d.sectors_written as f64 * SECTOR),
                ("disk.read.requests", "request", d.reads as f64),
                ("disk.write.requests", "request", d.writes as f64),
            ] {
                out.push(
                    Sample::new(meter, SampleType::Cumulative, unit, v, rid.as_str())
                        .with_resource_metadata(md.clone())
                        .with_monotonic_time(now),
                );
            }
        }
        Ok(out)
    }
}
