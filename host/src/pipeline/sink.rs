//! A sink at run time: its own transformer instances, then its outputs.

use ceilo_plugin_api::SampleBatch;

use super::output::{Output, SharedOutput};
use crate::loader::{PluginCallError, TransformOutput, TransformerInstance};

/// How many samples of a larger batch go through in-process transformers at a time.
/// Past some thousands of samples a batch outgrows the core's cache between two
/// transformers (pipeline benchmark: 100 000 samples per poll took 1.7x the time per
/// sample of 1 000 when passed whole, 1.3x in slices of this size).
const TRANSFORM_CHUNK: usize = 1024;

/// Transformers then outputs, as `pipeline.yaml` wires them.
pub struct Sink {
    /// The sink's name.
    pub name: String,
    transformers: Vec<TransformerInstance>,
    outputs: Vec<SharedOutput>,
}

/// What happened to a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SinkReport {
    /// Samples handed to the outputs.
    pub published: u64,
    /// Samples transformers failed on.
    pub failed: u64,
    /// Outputs that refused a batch.
    pub publish_errors: u64,
}

impl Sink {
    /// A sink.
    pub fn new(
        name: String,
        transformers: Vec<TransformerInstance>,
        outputs: Vec<SharedOutput>,
    ) -> Self {
        Sink {
            name,
            transformers,
            outputs,
        }
    }

    /// Runs a batch through the transformers and publishes what comes out.
    pub fn process(&mut self, batch: SampleBatch) -> SinkReport {
        let mut report = SinkReport::default();
        let mut failures: Vec<Failures> = self
            .transformers
            .iter()
            .map(|_| Failures::default())
            .collect();
        // A large poll goes through the transformers a slice at a time, so each slice's
        // samples, their shared texts and the intermediate batches are still in cache at
        // the next step; the outputs still get one batch. Not when a transformer runs
        // in a worker, where each slice would cost a round trip.
        let sliced = batch.len() > TRANSFORM_CHUNK
            && !self.transformers.is_empty()
            && !self
                .transformers
                .iter()
                .any(TransformerInstance::is_isolated);
        let batch = if sliced {
            let mut transformed = SampleBatch::with_capacity(batch.len());
            let mut rest = batch.into_iter();
            loop {
                let slice: SampleBatch = rest.by_ref().take(TRANSFORM_CHUNK).collect();
                if slice.is_empty() {
                    break;
                }
                transformed.extend(self.transform(slice, &mut failures));
            }
            transformed
        } else {
            self.transform(batch, &mut failures)
        };
        for f in failures {
            report.failed += f.failed;
            log_failures(&self.name, f.failed, f.first.as_ref());
        }
        self.publish(batch, &mut report);
        crate::metrics::global().sink(&report);
        report
    }

    /// `batch` through every transformer in order, failures counted per transformer.
    fn transform(&mut self, mut batch: SampleBatch, failures: &mut [Failures]) -> SampleBatch {
        for (t, f) in self.transformers.iter_mut().zip(failures.iter_mut()) {
            if batch.is_empty() {
                break;
            }
            let out = t.handle(batch);
            f.failed += out.failed;
            if f.first.is_none() {
                f.first = out.first_error;
            }
            batch = out.samples;
        }
        batch
    }

    /// End of a cycle: flushes each transformer in order, running what it releases
    /// through the ones after it, publishes the result, then flushes the outputs.
    pub fn flush(&mut self) -> SinkReport {
        let mut report = SinkReport::default();
        let mut carried = SampleBatch::new();
        for t in &mut self.transformers {
            if !carried.is_empty() {
                let out = t.handle(carried);
                carried = take_output(&self.name, out, &mut report);
            }
            let released = t.flush();
            carried.extend(take_output(&self.name, released, &mut report));
        }
        self.publish(carried, &mut report);
        for o in &mut self.outputs {
            if let Err(e) = o.flush() {
                tracing::warn!(target: "ceilo::pipeline", sink = %self.name, "flushing {} failed: {e}", o.describe());
            }
        }
        crate::metrics::global().sink(&report);
        report
    }

    /// Its outputs, in `pipeline.yaml` order.
    pub fn outputs(&self) -> &[SharedOutput] {
        &self.outputs
    }

    fn publish(&mut self, batch: SampleBatch, report: &mut SinkReport) {
        if batch.is_empty() {
            return;
        }
        for o in &mut self.outputs {
            match o.publish(&batch) {
                Ok(()) => report.published += batch.len() as u64,
                Err(e) => {
                    report.publish_errors += 1;
                    tracing::error!(target: "ceilo::pipeline", sink = %self.name, "{} did not take {} sample(s): {e}", o.describe(), batch.len());
                }
            }
        }
    }
}

fn take_output(sink: &str, out: TransformOutput, report: &mut SinkReport) -> SampleBatch {
    report.failed += out.failed;
    log_failures(sink, out.failed, out.first_error.as_ref());
    out.samples
}

/// One transformer's failures over the slices of one batch, logged once.
#[derive(Default)]
struct Failures {
    failed: u64,
    first: Option<PluginCallError>,
}

fn log_failures(sink: &str, failed: u64, first: Option<&PluginCallError>) {
    if failed > 0 {
        if let Some(e) = first {
            tracing::warn!(target: "ceilo::pipeline", sink, failed, "{e}");
        }
    }
}
