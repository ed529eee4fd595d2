//! Isolated instances behind the same version-independent interfaces as in-process
//! ones, so the rest of the host cannot tell them apart.

use std::time::Duration;

use ceilo_plugin_api::{Counter, PluginError, Sample, SampleBatch};

use super::client::Isolated;
use super::protocol::{encode_publish, Reply, Request};
use crate::loader::instance::{
    NotificationAbi, PollLimits, PollOutput, PollerAbi, PublisherAbi, RawTransformOutput, TraitAbi,
    TransformerAbi,
};

fn unexpected(what: &str, r: Reply) -> PluginError {
    PluginError::new(format!("its worker answered `{what}` with {r:?}"))
}

impl Isolated {
    fn strings(&mut self, req: Request, what: &str) -> Result<Vec<String>, PluginError> {
        let t = self.call_timeout();
        match self.call(req.encode(), what, t)? {
            Reply::Strings(v) => Ok(v),
            r => Err(unexpected(what, r)),
        }
    }
    fn done(&mut self, body: Vec<u8>, what: &str) -> Result<(), PluginError> {
        let t = self.call_timeout();
        match self.call(body, what, t)? {
            Reply::Done => Ok(()),
            r => Err(unexpected(what, r)),
        }
    }
    /// A transformer call; when it never reaches the plugin, its `inputs` samples are
    /// lost to this sink and counted as failed.
    fn transform(&mut self, req: Request, what: &str, inputs: u64) -> RawTransformOutput {
        let t = self.call_timeout();
        match self.call(req.encode(), what, t) {
            Ok(Reply::Transformed {
                batch,
                failed,
                first_error,
            }) => RawTransformOutput {
                samples: batch,
                failed,
                first_error,
            },
            Ok(r) => failed_output(unexpected(what, r), inputs),
            Err(e) => failed_output(e, inputs),
        }
    }
}

/// A transformer call that never reached the plugin (a flush counts as one failure).
fn failed_output(e: PluginError, inputs: u64) -> RawTransformOutput {
    RawTransformOutput {
        samples: SampleBatch::new(),
        failed: inputs.max(1),
        first_error: Some(e),
    }
}

/// A poller in a worker.
pub(crate) struct IsolatedPoller(pub(crate) Isolated);

impl PollerAbi for IsolatedPoller {
    fn meters(&mut self) -> Result<Vec<String>, PluginError> {
        self.0.strings(Request::Meters, "meters")
    }
    fn poll(
        &mut self,
        resources: &[String],
        limits: &PollLimits,
    ) -> Result<PollOutput, PluginError> {
        let req = Request::Poll {
            resources: resources.to_vec(),
            max_samples: limits.max_samples as u64,
        };
        let timeout = limits.deadline.unwrap_or(Duration::MAX);
        match self.0.call(req.encode(), "poll", timeout)? {
            Reply::Polled { batch, cut } => Ok(PollOutput {
                samples: batch,
                cut,
            }),
            r => Err(unexpected("poll", r)),
        }
    }
}

/// A notification handler in a worker.
pub(crate) struct IsolatedNotification(pub(crate) Isolated);

impl NotificationAbi for IsolatedNotification {
    fn event_types(&mut self) -> Result<Vec<String>, PluginError> {
        self.0.strings(Request::EventTypes, "event_types")
    }
    fn meters(&mut self) -> Result<Vec<String>, PluginError> {
        self.0.strings(Request::Meters, "meters")
    }
    fn handle(&mut self, notification_json: &str) -> Result<SampleBatch, PluginError> {
        let req = Request::Handle {
            notification_json: notification_json.to_owned(),
        };
        let t = self.0.call_timeout();
        match self.0.call(req.encode(), "handle", t)? {
            Reply::Samples(b) => Ok(b),
            r => Err(unexpected("handle", r)),
        }
    }
}

/// A transformer in a worker. Its state lives in the worker: a restart starts it over.
pub(crate) struct IsolatedTransformer(pub(crate) Isolated);

impl TransformerAbi for IsolatedTransformer {
    fn handle(&mut self, batch: SampleBatch) -> RawTransformOutput {
        let n = batch.len() as u64;
        self.0.transform(Request::Transform { batch }, "handle", n)
    }
    fn flush(&mut self) -> RawTransformOutput {
        self.0.transform(Request::TransformFlush, "flush", 0)
    }
}

/// A publisher in a worker.
pub(crate) struct IsolatedPublisher(pub(crate) Isolated);

impl PublisherAbi for IsolatedPublisher {
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
        self.0.done(encode_publish(batch), "publish")
    }
    fn flush(&mut self) -> Result<(), PluginError> {
        self.0.done(Request::PublisherFlush.encode(), "flush")
    }
    fn has_stats(&self) -> bool {
        self.0.has_stats
    }
    fn stats(&mut self) -> Result<Vec<Counter>, PluginError> {
        if !self.0.has_stats {
            return Ok(Vec::new());
        }
        let t = self.0.call_timeout();
        match self.0.call(Request::Stats.encode(), "stats", t)? {
            Reply::Counters(c) => Ok(c),
            r => Err(unexpected("stats", r)),
        }
    }
}

/// A trait plugin in a worker.
pub(crate) struct IsolatedTrait(pub(crate) Isolated);

impl TraitAbi for IsolatedTrait {
    fn trait_values(&mut self, matches_json: &str) -> Result<String, PluginError> {
        let req = Request::TraitValues {
            matches_json: matches_json.to_owned(),
        };
        let mut out = self.0.strings(req, "trait_values")?;
        match (out.pop(), out.is_empty()) {
            (Some(values), true) => Ok(values),
            _ => Err(PluginError::new(
                "its worker answered `trait_values` with other than one value list",
            )),
        }
    }
}
