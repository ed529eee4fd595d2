//! `network`: bytes and packets received and sent per interface since boot
//! (cumulative), from `/proc/net/dev`, loopback excluded; resource id
//! `<host>-<interface>`.

use ceilo_plugin_api::{
    Context, Parameters, Plugin, PluginError, Poller, Sample, SampleBatch, SampleType,
};
use serde_json::json;

use crate::host::{hostname, monotonic_seconds, unavailable};

/// Polls `/proc/net/dev`.
pub struct Network {
    host: String,
}

impl Plugin for Network {
    const NAME: &'static str = "network";
    const DESCRIPTION: &'static str =
        "network.incoming/outgoing.bytes and .packets per interface (cumulative)";
    fn create(parameters: &Parameters, _: &Context) -> Result<Self, PluginError> {
        crate::no_parameters(Self::NAME, parameters)?;
        Ok(Network { host: hostname() })
    }
}

impl Poller for Network {
    fn meters(&self) -> Vec<String> {
        [
            "network.incoming.bytes",
            "network.outgoing.bytes",
            "network.incoming.packets",
            "network.outgoing.packets",
        ]
        .map(String::from)
        .to_vec()
    }
    fn poll(&mut self, _: &[String]) -> Result<SampleBatch, PluginError> {
        let devs = procfs::net::dev_status().map_err(|e| unavailable("/proc/net/dev", e))?;
        let now = monotonic_seconds();
        let mut names: Vec<&String> = devs.keys().filter(|n| n.as_str() != "lo").collect();
        names.sort();
        let mut out = SampleBatch::new();
        for name in names {
            let d = &devs[name];
            let rid = format!("{}-{}", self.host, name);
            let md = json!({"host": self.host, "name": name});
            for (meter, unit, v) in [
                ("network.incoming.bytes", "B", d.recv_bytes),
                ("network.outgoing.bytes", "B", d.sent_bytes),
                ("network.incoming.packets", "packet", d.recv_packets),
                ("network.outgoing.packets", "packet", d.sent_packets),
            ] {
                out.push(
                    Sample::new(meter, SampleType::Cumulative, unit, v as f64, rid.as_str())
                        .with_resource_metadata(md.clone())
                        .with_monotonic_time(now),
                );
            }
        }
        Ok(out)
    }
}
