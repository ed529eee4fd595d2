//! Built-in pollers: this machine's CPU, memory, disks, network and load from the real
//! `/proc`, and HTTP probes of the URLs a source lists in `resources`.

mod cpu;
mod disk;
mod host;
mod http;
mod load;
mod memory;
mod network;

pub use cpu::Cpu;
pub use disk::Disk;
pub use http::Http;
pub use load::Load;
pub use memory::Memory;
pub use network::Network;

use ceilo_plugin_api::{Parameters, PluginError};

fn no_parameters(plugin: &str, p: &Parameters) -> Result<(), PluginError> {
    match p.as_map().keys().next() {
        None => Ok(()),
        Some(k) => Err(PluginError::invalid_parameters(format!(
            "`{plugin}` takes no parameters (got `{k}`)"
        ))),
    }
}

ceilo_plugin_api::export_plugins! {
    pollers: [Cpu, Memory, Disk, Network, Load, Http],
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceilo_plugin_api::{Context, Plugin, Poller, SampleType};

    fn poll<P: Poller>() -> ceilo_plugin_api::SampleBatch {
        let mut p = P::create(&Parameters::default(), &Context::default()).unwrap();
        let meters = p.meters();
        let out = p.poll(&[]).unwrap();
        assert!(
            out.iter().all(|s| meters.iter().any(|m| m == s.name())),
            "only declared meters"
        );
        out
    }

    #[test]
    fn cpu_is_cumulative_ns_with_cpu_number() {
        let out = poll::<Cpu>();
        assert_eq!(out.len(), 1);
        let s = &out[0];
        assert_eq!(
            (s.name(), s.unit(), s.sample_type()),
            ("cpu", "ns", SampleType::Cumulative)
        );
        assert!(s.volume() > 0.0);
        assert!(
            s.metadata_value("cpu_number")
                .and_then(|v| v.as_u64())
                .unwrap()
                >= 1
        );
        assert!(s.monotonic_time().is_some());
    }

    #[test]
    fn memory_usage_is_below_total() {
        let out = poll::<Memory>();
        let usage = out
            .iter()
            .find(|s| s.name() == "memory.usage")
            .unwrap()
            .volume();
        let total = out
            .iter()
            .find(|s| s.name() == "memory.total")
            .unwrap()
            .volume();
        assert!(usage > 0.0 && usage <= total, "{usage} of {total} MB");
    }

    #[test]
    fn disks_and_interfaces_have_four_meters_each() {
        let disks = poll::<Disk>();
        assert_eq!(disks.len() % 4, 0);
        assert!(disks
            .iter()
            .all(|s| s.sample_type() == SampleType::Cumulative && s.resource_id().contains('-')));
        let net = poll::<Network>();
        assert_eq!(net.len() % 4, 0);
        assert!(net.iter().all(|s| !s.resource_id().ends_with("-lo")));
    }

    #[test]
    fn parameters_are_refused_where_none_are_taken() {
        let p = Parameters::from_json(r#"{"x": 1}"#).unwrap();
        let e = Cpu::create(&p, &Context::default()).err().unwrap();
        assert!(e.message().contains("`cpu` takes no parameters"), "{e}");
    }
}
