//! The four kinds of plugin, as a plugin author implements them.
//!
//! Each kind is an ordinary Rust trait; [`export_plugins!`](crate::export_plugins) turns
//! the implementing types into the library's stable ABI. Every call is made on one
//! thread at a time (the host never calls one instance concurrently), hence `&mut self`
//! and only `Send` is required.

use crate::{Context, Notification, Parameters, PluginError, Sample, SampleBatch};

/// What every plugin has: a name, a description and a constructor.
///
/// ```
/// use ceilo_plugin_api::{Context, Parameters, Plugin, PluginError};
///
/// struct Hello { greeting: String }
///
/// impl Plugin for Hello {
///     const NAME: &'static str = "hello";
///     const DESCRIPTION: &'static str = "says hello";
///     fn create(params: &Parameters, _ctx: &Context) -> Result<Self, PluginError> {
///         let greeting = params.get::<String>("greeting")?.unwrap_or_else(|| "hi".into());
///         Ok(Hello { greeting })
///     }
/// }
/// let h = Hello::create(&Parameters::default(), &Context::default()).unwrap();
/// assert_eq!(h.greeting, "hi");
/// ```
pub trait Plugin: Sized + Send + 'static {
    /// The name `pipeline.yaml` uses (for publishers: the URL scheme, e.g. `file`).
    /// Unique per kind across all loaded libraries.
    const NAME: &'static str;
    /// One line for `ceilo plugins`.
    const DESCRIPTION: &'static str;
    /// Builds an instance from its parameters. Reject bad parameters here, with
    /// [`PluginError::invalid_parameters`], so that `ceilo validate` reports them.
    fn create(parameters: &Parameters, context: &Context) -> Result<Self, PluginError>;
}

/// Produces samples when polled, every `interval` of each source that selects it.
///
/// A complete poller plugin:
///
/// ```
/// use ceilo_plugin_api::*;
///
/// pub struct Uptime;
///
/// impl Plugin for Uptime {
///     const NAME: &'static str = "uptime";
///     const DESCRIPTION: &'static str = "seconds since boot";
///     fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> { Ok(Uptime) }
/// }
///
/// impl Poller for Uptime {
///     fn meters(&self) -> Vec<String> { vec!["uptime".into()] }
///     fn poll(&mut self, _resources: &[String]) -> Result<SampleBatch, PluginError> {
///         let text = std::fs::read_to_string("/proc/uptime")
///             .map_err(|e| PluginError::unavailable(format!("/proc/uptime: {e}")))?;
///         let secs: f64 = text.split_whitespace().next().and_then(|s| s.parse().ok())
///             .ok_or_else(|| PluginError::new("/proc/uptime: unexpected format"))?;
///         Ok(vec![Sample::new("uptime", SampleType::Cumulative, "s", secs, "localhost")].into())
///     }
/// }
///
/// export_plugins! { pollers: [Uptime] }
/// ```
pub trait Poller: Plugin {
    /// The meter names this poller produces; a source's `meters` patterns select
    /// pollers by these names.
    fn meters(&self) -> Vec<String>;
    /// One poll. `resources` is the source's `resources` list (often empty).
    fn poll(&mut self, resources: &[String]) -> Result<SampleBatch, PluginError>;
}

/// Turns notifications from other services into samples.
///
/// ```
/// use ceilo_plugin_api::*;
///
/// pub struct VolumeSize;
///
/// impl Plugin for VolumeSize {
///     const NAME: &'static str = "volume_size";
///     const DESCRIPTION: &'static str = "volume.size from volume.* notifications";
///     fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> { Ok(VolumeSize) }
/// }
///
/// impl NotificationHandler for VolumeSize {
///     fn event_types(&self) -> Vec<String> { vec!["volume.*".into()] }
///     fn handle(&mut self, n: &Notification) -> Result<SampleBatch, PluginError> {
///         let size = n.payload["size"].as_f64()
///             .ok_or_else(|| PluginError::invalid_input("payload has no numeric `size`"))?;
///         let id = n.payload["volume_id"].as_str().unwrap_or("unknown");
///         Ok(vec![Sample::new("volume.size", SampleType::Gauge, "GB", size, id)].into())
///     }
/// }
///
/// export_plugins! { notification_handlers: [VolumeSize] }
/// ```
pub trait NotificationHandler: Plugin {
    /// The `event_type` patterns (shell globs, e.g. `compute.instance.*`) this handler
    /// wants.
    fn event_types(&self) -> Vec<String>;
    /// The meter names this handler can produce, so that `ceilo validate` can check
    /// sources' meters against them. Empty (the default): not known in advance.
    fn meters(&self) -> Vec<String> {
        Vec::new()
    }
    /// Samples for one notification whose event type matched.
    fn handle(&mut self, notification: &Notification) -> Result<SampleBatch, PluginError>;
}

/// Changes, drops, or derives samples on their way to the publishers. Stateful: one
/// instance per sink.
///
/// ```
/// use ceilo_plugin_api::*;
///
/// /// Multiplies every volume by `factor`.
/// pub struct Scale { factor: f64 }
///
/// impl Plugin for Scale {
///     const NAME: &'static str = "scale";
///     const DESCRIPTION: &'static str = "multiplies volumes by `factor`";
///     fn create(p: &Parameters, _: &Context) -> Result<Self, PluginError> {
///         let factor = p.get::<f64>("factor")?
///             .ok_or_else(|| PluginError::invalid_parameters("`factor` is required"))?;
///         Ok(Scale { factor })
///     }
/// }
///
/// impl Transformer for Scale {
///     fn handle(&mut self, mut s: Sample, out: &mut SampleBatch) -> Result<(), PluginError> {
///         s.set_volume(s.volume() * self.factor);
///         out.push(s);
///         Ok(())
///     }
/// }
///
/// export_plugins! { transformers: [Scale] }
/// ```
pub trait Transformer: Plugin {
    /// Handles one sample: push 0..n samples to `out`. An error drops this sample
    /// only; the rest of the batch is still handled.
    fn handle(&mut self, sample: Sample, out: &mut SampleBatch) -> Result<(), PluginError>;
    /// Called at the end of each poll cycle or notification batch: push whatever the
    /// transformer has been holding back.
    fn flush(&mut self, out: &mut SampleBatch) -> Result<(), PluginError> {
        let _ = out;
        Ok(())
    }
}

/// Sends samples out of the pipeline; chosen by the URL scheme of a sink's publisher
/// (`file:///var/lib/ceilo/samples.json` selects the publisher named `file`). The
/// whole URL is in the parameters under `"url"`.
///
/// ```
/// use ceilo_plugin_api::*;
/// use std::io::Write;
///
/// pub struct Stdout;
///
/// impl Plugin for Stdout {
///     const NAME: &'static str = "stdout";
///     const DESCRIPTION: &'static str = "prints samples as JSON lines";
///     fn create(_: &Parameters, _: &Context) -> Result<Self, PluginError> { Ok(Stdout) }
/// }
///
/// impl Publisher for Stdout {
///     fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
///         let mut out = std::io::stdout().lock();
///         for s in batch {
///             let line = serde_json::to_string(s).map_err(|e| PluginError::new(e.to_string()))?;
///             writeln!(out, "{line}").map_err(|e| PluginError::unavailable(e.to_string()))?;
///         }
///         Ok(())
///     }
/// }
///
/// export_plugins! { publishers: [Stdout] }
/// ```
pub trait Publisher: Plugin {
    /// Publishes a batch. `Ok` means the batch is the publisher's responsibility now;
    /// an error means none of it was taken and the host may offer it again.
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError>;
    /// Pushes out anything buffered; called at shutdown and after each cycle.
    fn flush(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
    /// The publisher's own counters (samples dropped, retried, buffered…) for the
    /// host's metrics. Added in ABI 1.1; a host reading a 1.0 plugin sees none.
    fn stats(&self) -> Vec<Counter> {
        Vec::new()
    }
}

/// A named counter reported by a plugin.
///
/// ```
/// use ceilo_plugin_api::Counter;
/// let c = Counter::new("dropped", 3);
/// assert_eq!((c.name(), c.value()), ("dropped", 3));
/// ```
pub use crate::abi::v1_2::Counter;
