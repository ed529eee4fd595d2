//! What every remote publisher does besides encoding: `publish` puts samples in the
//! bounded buffer and returns; a sender thread takes batches, has the publisher's
//! [`Encoder`] turn each into requests, and sends them in order by its [`Transport`]
//! (an HTTP POST, or a frame on a TCP connection). A request that fails
//! in a way that may pass (no connection, timeout, 408, 429, 5xx) is tried again at
//! once up to `max_retries` times, then the endpoint counts as down: the batch stays
//! buffered and is tried again with backoff (200 ms doubling to 10 s) until it goes
//! through, so nothing within the buffer is lost. A request the endpoint refuses
//! (another 4xx) is logged with the answer and counted as rejected: sending it again
//! cannot help. Requests of a batch that went through are not sent again.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ceilo_plugin_api::{log_error, log_info, log_warn, Counter, PluginError, Sample};

use crate::buffer::Buffer;
use crate::client::{Failure, Request};
use crate::options::Options;

const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Turns a batch of samples into the requests that carry them.
pub trait Encoder: Send + 'static {
    fn encode(&mut self, batch: &[Sample]) -> Vec<Request>;
}

/// Sends one request to the endpoint.
pub trait Transport: Send + 'static {
    fn send(&mut self, request: &Request) -> Result<(), Failure>;
}

struct Shared {
    buffer: Buffer,
    stop: AtomicBool,
    down: AtomicBool,
    /// Requests sent again after a failure.
    retried: AtomicU64,
    /// Requests that failed (each attempt).
    failed_requests: AtomicU64,
    requests: AtomicU64,
}

/// The buffer, the sender thread and the counters of one publisher instance.
pub struct Delivery {
    name: &'static str,
    options: Options,
    shared: Arc<Shared>,
}

impl Delivery {
    /// Starts the sender thread for `options` with `encoder` and `transport`
    /// (none while validating). `name` is the publisher's, for logs.
    pub fn start(
        name: &'static str,
        options: Options,
        encoder: impl Encoder,
        transport: impl Transport,
        validating: bool,
    ) -> Result<Delivery, PluginError> {
        let shared = Arc::new(Shared {
            buffer: Buffer::new(options.buffer, options.policy),
            stop: AtomicBool::new(false),
            down: AtomicBool::new(false),
            retried: AtomicU64::new(0),
            failed_requests: AtomicU64::new(0),
            requests: AtomicU64::new(0),
        });
        if !validating {
            let (s, o) = (shared.clone(), options.clone());
            std::thread::Builder::new()
                .name(format!("ceilo-{name}"))
                .spawn(move || run(name, o, transport, encoder, s))
                .map_err(|e| {
                    PluginError::unavailable(format!("cannot start the sender thread: {e}"))
                })?;
        }
        Ok(Delivery {
            name,
            options,
            shared,
        })
    }

    pub fn publish(&self, batch: &[Sample]) {
        let dropped = self.shared.buffer.push(batch);
        if dropped > 0 {
            log_warn!(
                "{} publisher: buffer full ({} samples) with {} unreachable: dropped {dropped} oldest sample(s) (policy=drop)",
                self.name,
                self.options.buffer,
                self.options.shown
            );
        }
    }

    pub fn flush(&self) -> Result<(), PluginError> {
        let buffer = &self.shared.buffer;
        // With the endpoint known to be away, waiting would only stall the pipeline.
        let down = self.shared.down.load(Ordering::Relaxed);
        if buffer.counts().buffered == 0 || (!down && buffer.wait_empty(self.options.flush_timeout))
        {
            return Ok(());
        }
        Err(PluginError::unavailable(format!(
            "{} sample(s) still waiting for {} ({}); they stay buffered",
            buffer.counts().buffered,
            self.options.shown,
            if down {
                "the endpoint is unreachable".to_owned()
            } else {
                format!("not sent within {:?}", self.options.flush_timeout)
            }
        )))
    }

    pub fn stats(&self) -> Vec<Counter> {
        let c = self.shared.buffer.counts();
        let n = |a: &AtomicU64| a.load(Ordering::Relaxed);
        vec![
            Counter::new("published", c.published),
            Counter::new("buffered", c.buffered),
            Counter::new("dropped", c.dropped),
            Counter::new("rejected", c.rejected),
            Counter::new("retried", n(&self.shared.retried)),
            Counter::new("requests", n(&self.shared.requests)),
            Counter::new("failed_requests", n(&self.shared.failed_requests)),
        ]
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        // The sender sends what is buffered, then stops.
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// The sender thread: runs until told to stop and the buffer is empty.
fn run(
    name: &str,
    options: Options,
    mut transport: impl Transport,
    mut encoder: impl Encoder,
    shared: Arc<Shared>,
) {
    let buffer = &shared.buffer;
    let mut stopping_since: Option<Instant> = None;
    loop {
        let stop = shared.stop.load(Ordering::Relaxed);
        if stop && buffer.counts().buffered == 0 {
            return;
        }
        let Some(batch) = buffer.take_batch(options.batch_size, Duration::from_millis(200)) else {
            continue;
        };
        let requests = encoder.encode(&batch);
        let mut rejected = 0;
        let mut backoff = MIN_BACKOFF;
        let mut attempts = 0u32;
        let mut i = 0;
        while i < requests.len() {
            shared.requests.fetch_add(1, Ordering::Relaxed);
            match transport.send(&requests[i]) {
                Ok(()) => {
                    if shared.down.swap(false, Ordering::Relaxed) {
                        log_info!("{name} publisher: {} takes samples again", options.shown);
                    }
                    i += 1;
                    attempts = 0;
                    backoff = MIN_BACKOFF;
                }
                Err(Failure::Rejected(why)) => {
                    log_error!(
                        "{name} publisher: {why}; the {} sample(s) of that request are dropped (sending them again cannot help)",
                        requests[i].samples
                    );
                    rejected += requests[i].samples;
                    i += 1;
                    attempts = 0;
                }
                Err(Failure::Transient(why)) => {
                    shared.failed_requests.fetch_add(1, Ordering::Relaxed);
                    shared.retried.fetch_add(1, Ordering::Relaxed);
                    attempts += 1;
                    if attempts > options.max_retries {
                        let was_down = shared.down.swap(true, Ordering::Relaxed);
                        if !was_down || attempts % 30 == 0 {
                            log_warn!(
                                "{name} publisher: {why}; {} sample(s) kept, trying again in {backoff:?}",
                                buffer.counts().buffered
                            );
                        }
                        if shared.stop.load(Ordering::Relaxed) {
                            // The publisher is gone (shutdown or reload): give up
                            // after its flush timeout rather than retry forever.
                            let since = *stopping_since.get_or_insert_with(Instant::now);
                            if since.elapsed() >= options.flush_timeout {
                                let lost = buffer.abandon();
                                log_error!(
                                    "{name} publisher: removed while {} is unreachable: {lost} sample(s) given up after {:?}",
                                    options.shown,
                                    options.flush_timeout
                                );
                                return;
                            }
                        }
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
        }
        buffer.commit(batch.len(), rejected);
    }
}
