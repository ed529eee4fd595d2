//! A sink at run time: its own transformer instances, then its outputs.

use ceilo_plugin_api::SampleBatch;

use super::output::{Output, SharedOutput};
use crate::loader::{TransformOutput, TransformerInstance};

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
        let mut batch = batch;
        for t in &mut self.transformers {
            if batch.is_empty() {
                break;
            }
            let out = t.handle(batch);
            batch = take_output(&self.name, out, &mut report);
        }
        self.publish(batch, &mut report);
        crate::metrics::global().sink(&report);
        report
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
    if out.failed > 0 {
        report.failed += out.failed;
        if let Some(e) = &out.first_error {
            tracing::warn!(target: "ceilo::pipeline", sink, failed = out.failed, "{e}");
        }
    }
    out.samples
}
