//! Plugin instances as the rest of the host sees them: version-independent, with every
//! plugin failure (a panic included) turned into a [`PluginCallError`] that names the
//! plugin and its library.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ceilo_plugin_api::{Counter, PluginError, Sample, SampleBatch, TraitMatch};

use super::{PluginCallError, PluginKind};

/// Who an instance is, for error messages and logs.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub kind: PluginKind,
    pub name: Arc<str>,
    pub library: Arc<Path>,
    pub isolated: bool,
}

impl Identity {
    fn error(&self, error: PluginError) -> PluginCallError {
        PluginCallError {
            kind: self.kind,
            name: self.name.to_string(),
            library: PathBuf::from(&*self.library),
            error,
        }
    }
}

/// What a transformer gives back for a batch.
#[derive(Debug, Default)]
pub struct TransformOutput {
    /// Samples out.
    pub samples: SampleBatch,
    /// Inputs that failed (they are not in `samples`).
    pub failed: u64,
    /// The first failure, naming the plugin; a panic (which cuts the batch short)
    /// takes precedence.
    pub first_error: Option<PluginCallError>,
}

/// Bounds on one poll.
#[derive(Debug, Clone, Copy)]
pub struct PollLimits {
    /// How long the poll may take; an isolated poller past it is killed (an in-process
    /// one cannot be, and is left to finish while its next polls are skipped).
    pub deadline: Option<std::time::Duration>,
    /// Samples kept from one poll; the rest are cut (and counted).
    pub max_samples: usize,
}

impl PollLimits {
    /// No deadline, no cap.
    pub const NONE: PollLimits = PollLimits {
        deadline: None,
        max_samples: usize::MAX,
    };
}

/// What one poll gave.
#[derive(Debug, Default)]
pub struct PollOutput {
    /// The samples kept.
    pub samples: SampleBatch,
    /// Samples cut by [`PollLimits::max_samples`].
    pub cut: u64,
}

impl PollOutput {
    /// Cuts `samples` to `max` samples.
    pub(crate) fn capped(mut samples: SampleBatch, max: usize) -> PollOutput {
        let cut = samples.len().saturating_sub(max) as u64;
        if cut > 0 {
            samples.truncate(max);
        }
        PollOutput { samples, cut }
    }
}

// The version-independent interfaces each ABI adapter implements.
pub(crate) trait PollerAbi: Send {
    fn meters(&mut self) -> Result<Vec<String>, PluginError>;
    fn poll(
        &mut self,
        resources: &[String],
        limits: &PollLimits,
    ) -> Result<PollOutput, PluginError>;
}
pub(crate) trait NotificationAbi: Send {
    fn event_types(&mut self) -> Result<Vec<String>, PluginError>;
    fn meters(&mut self) -> Result<Vec<String>, PluginError>;
    fn handle(&mut self, notification_json: &str) -> Result<SampleBatch, PluginError>;
}
pub(crate) struct RawTransformOutput {
    pub samples: SampleBatch,
    pub failed: u64,
    pub first_error: Option<PluginError>,
}
pub(crate) trait TransformerAbi: Send {
    fn handle(&mut self, batch: SampleBatch) -> RawTransformOutput;
    fn flush(&mut self) -> RawTransformOutput;
}
pub(crate) trait PublisherAbi: Send {
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError>;
    fn flush(&mut self) -> Result<(), PluginError>;
    /// False when the plugin's ABI has no stats entry point.
    fn has_stats(&self) -> bool;
    fn stats(&mut self) -> Result<Vec<Counter>, PluginError>;
}

pub(crate) trait TraitAbi: Send {
    /// Matches as JSON `[[path, value], …]` in, values as a JSON list out.
    fn trait_values(&mut self, matches_json: &str) -> Result<String, PluginError>;
}

macro_rules! instance_common {
    ($t:ident) => {
        impl $t {
            /// The plugin's name.
            pub fn name(&self) -> &str {
                &self.id.name
            }
            /// The library the plugin came from.
            pub fn library(&self) -> &Path {
                &self.id.library
            }
        }
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("name", &self.id.name)
                    .field("library", &self.id.library)
                    .finish()
            }
        }
    };
}

/// A poller instance.
pub struct PollerInstance {
    pub(crate) id: Identity,
    pub(crate) inner: Box<dyn PollerAbi>,
}
instance_common!(PollerInstance);

impl PollerInstance {
    /// The meter names the poller produces.
    pub fn meters(&mut self) -> Result<Vec<String>, PluginCallError> {
        self.inner.meters().map_err(|e| self.id.error(e))
    }
    /// One poll, unbounded.
    pub fn poll(&mut self, resources: &[String]) -> Result<SampleBatch, PluginCallError> {
        self.poll_within(resources, &PollLimits::NONE)
            .map(|o| o.samples)
    }
    /// One poll within `limits`.
    pub fn poll_within(
        &mut self,
        resources: &[String],
        limits: &PollLimits,
    ) -> Result<PollOutput, PluginCallError> {
        self.inner
            .poll(resources, limits)
            .map_err(|e| self.id.error(e))
    }
    /// Whether the poller runs in a worker process.
    pub fn is_isolated(&self) -> bool {
        self.id.isolated
    }
}

/// A notification handler instance.
pub struct NotificationInstance {
    pub(crate) id: Identity,
    pub(crate) inner: Box<dyn NotificationAbi>,
}
instance_common!(NotificationInstance);

impl NotificationInstance {
    /// The event type patterns the handler wants.
    pub fn event_types(&mut self) -> Result<Vec<String>, PluginCallError> {
        self.inner.event_types().map_err(|e| self.id.error(e))
    }
    /// The meters the handler can produce (empty: not known in advance).
    pub fn meters(&mut self) -> Result<Vec<String>, PluginCallError> {
        self.inner.meters().map_err(|e| self.id.error(e))
    }
    /// Samples for one notification (its JSON body).
    pub fn handle(&mut self, notification_json: &str) -> Result<SampleBatch, PluginCallError> {
        self.inner
            .handle(notification_json)
            .map_err(|e| self.id.error(e))
    }
}

/// A transformer instance.
pub struct TransformerInstance {
    pub(crate) id: Identity,
    pub(crate) inner: Box<dyn TransformerAbi>,
}
instance_common!(TransformerInstance);

impl TransformerInstance {
    /// Transforms a batch.
    pub fn handle(&mut self, batch: SampleBatch) -> TransformOutput {
        let raw = self.inner.handle(batch);
        self.output(raw)
    }
    /// Releases whatever the transformer holds back.
    pub fn flush(&mut self) -> TransformOutput {
        let raw = self.inner.flush();
        self.output(raw)
    }
    fn output(&self, raw: RawTransformOutput) -> TransformOutput {
        TransformOutput {
            samples: raw.samples,
            failed: raw.failed,
            first_error: raw.first_error.map(|e| self.id.error(e)),
        }
    }
}

/// A publisher instance.
pub struct PublisherInstance {
    pub(crate) id: Identity,
    pub(crate) inner: Box<dyn PublisherAbi>,
}
instance_common!(PublisherInstance);

impl PublisherInstance {
    /// Publishes a batch.
    pub fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginCallError> {
        self.inner.publish(batch).map_err(|e| self.id.error(e))
    }
    /// Flushes buffered samples.
    pub fn flush(&mut self) -> Result<(), PluginCallError> {
        self.inner.flush().map_err(|e| self.id.error(e))
    }
    /// The publisher's counters; empty for plugins built for ABI 1.0, which cannot
    /// report any.
    pub fn stats(&mut self) -> Result<Vec<Counter>, PluginCallError> {
        self.inner.stats().map_err(|e| self.id.error(e))
    }
    /// Whether the plugin can report counters (ABI ≥ 1.1).
    pub fn has_stats(&self) -> bool {
        self.inner.has_stats()
    }
}

/// A trait plugin instance (one per trait definition that names the plugin).
pub struct TraitPluginInstance {
    pub(crate) id: Identity,
    pub(crate) inner: Box<dyn TraitAbi>,
}
instance_common!(TraitPluginInstance);

impl TraitPluginInstance {
    /// The trait's candidate values for what its fields matched.
    pub fn trait_values(
        &mut self,
        matches: &[TraitMatch],
    ) -> Result<Vec<serde_json::Value>, PluginCallError> {
        let out = self
            .inner
            .trait_values(&TraitMatch::list_to_json(matches))
            .map_err(|e| self.id.error(e))?;
        match serde_json::from_str(&out) {
            Ok(serde_json::Value::Array(values)) => Ok(values),
            _ => Err(self.id.error(PluginError::new(
                "trait_values returned something other than a JSON list",
            ))),
        }
    }
    /// Whether the plugin runs in a worker process.
    pub fn is_isolated(&self) -> bool {
        self.id.isolated
    }
}
