//! Where a sink's samples go: a publisher plugin, or (for `ceilo poll --once`) the
//! terminal. Later layers add the host's own `direct://` store here.

use std::io::Write;
use std::sync::{Arc, Mutex};

use ceilo_plugin_api::Sample;

use crate::loader::PublisherInstance;

/// A destination for a sink's samples.
pub trait Output: Send {
    /// For logs: `publisher file (file:samples.json)`.
    fn describe(&self) -> String;
    /// Takes a batch; an error means the batch was not taken.
    fn publish(&mut self, batch: &[Sample]) -> Result<(), String>;
    /// Pushes out anything buffered.
    fn flush(&mut self) -> Result<(), String>;
}

/// An output as a sink holds it: shared, so that a reload that changes a sink but not
/// this publisher hands the same instance (its connection, its buffer) to the sink's
/// new definition.
#[derive(Clone)]
pub struct SharedOutput(Arc<Mutex<Box<dyn Output>>>);

impl SharedOutput {
    /// Shares `output`.
    pub fn new(output: Box<dyn Output>) -> Self {
        SharedOutput(Arc::new(Mutex::new(output)))
    }

    /// Whether both are the same instance.
    pub fn same(&self, other: &SharedOutput) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Box<dyn Output>) -> Result<T, String>,
    ) -> Result<T, String> {
        match self.0.lock() {
            Ok(mut o) => f(&mut o),
            Err(_) => Err("this output is unusable after a panic in it".into()),
        }
    }
}

impl Output for SharedOutput {
    fn describe(&self) -> String {
        self.with(|o| Ok(o.describe()))
            .unwrap_or_else(|e| e.to_string())
    }
    fn publish(&mut self, batch: &[Sample]) -> Result<(), String> {
        self.with(|o| o.publish(batch))
    }
    fn flush(&mut self) -> Result<(), String> {
        self.with(|o| o.flush())
    }
}

/// A publisher plugin instance.
pub struct PluginOutput {
    /// The URL from `pipeline.yaml`.
    pub url: String,
    /// The instance.
    pub publisher: PublisherInstance,
}

impl Output for PluginOutput {
    fn describe(&self) -> String {
        format!(
            "publisher `{}` ({})",
            self.publisher.name(),
            crate::redact::mask_url(&self.url)
        )
    }
    fn publish(&mut self, batch: &[Sample]) -> Result<(), String> {
        self.publisher.publish(batch).map_err(|e| e.to_string())
    }
    fn flush(&mut self) -> Result<(), String> {
        self.publisher.flush().map_err(|e| e.to_string())
    }
}

/// Prints samples as JSON lines on stdout (`ceilo poll --once`).
pub struct StdoutOutput;

impl Output for StdoutOutput {
    fn describe(&self) -> String {
        "stdout".into()
    }
    fn publish(&mut self, batch: &[Sample]) -> Result<(), String> {
        let mut out = std::io::stdout().lock();
        for s in batch {
            let line = serde_json::to_string(s).map_err(|e| e.to_string())?;
            writeln!(out, "{line}").map_err(|e| e.to_string())?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<(), String> {
        std::io::stdout().flush().map_err(|e| e.to_string())
    }
}
