//! `amqp://` publisher: signs samples, batches them into JSON-array messages and
//! publishes them to RabbitMQ persistent, `mandatory`, with publisher confirms. While
//! the broker is away samples wait in a bounded buffer and are sent again after
//! reconnection; a full buffer blocks the pipeline (`policy=queue`, the default) or
//! drops the oldest samples (`policy=drop`), every drop counted and logged.
//!
//! `amqp://user:pass@host:port/vhost?exchange=ceilo&routing_key=metering.sample&queue=metering.sample&batch_size=100&linger_ms=50&buffer=100000&policy=queue&flush_timeout=10`
//! — every option has that default; the topology is
//! [`ceilo_plugin_api::topology`]. `spool=DIR` (default: `amqp-spool` under the
//! host's data directory; `spool=` for none) keeps every sample on disk until the
//! broker confirms it, so a publisher killed during an outage loses nothing (see
//! `spool`). `notifier://` and `rpc://` are the same publisher writing Ceilometer's
//! notifications instead (see `notifier`).

mod buffer;
mod config;
mod notifier;
mod sender;
mod spool;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use ceilo_plugin_api::{
    log_info, log_warn, signing, Context, Counter, Parameters, Plugin, PluginError, Publisher,
    Sample,
};

use buffer::Buffer;
use config::{Config, SpoolSetting};
use sender::Shared;

/// Publishes samples to RabbitMQ.
pub struct AmqpPublisher {
    config: Config,
    secret: Option<String>,
    shared: Arc<Shared>,
}

impl Plugin for AmqpPublisher {
    const NAME: &'static str = "amqp";
    const DESCRIPTION: &'static str =
        "amqp://user:pass@host/vhost?… — signed samples to RabbitMQ with confirms, buffered while the broker is away";

    fn create(parameters: &Parameters, context: &Context) -> Result<Self, PluginError> {
        let raw: String = parameters
            .get("url")?
            .ok_or_else(|| PluginError::invalid_parameters("missing `url` (amqp://host/vhost)"))?;
        let config = Config::parse_any(&raw)?;
        let spool_dir = match (&config.spool, &context.data_dir) {
            _ if context.validating => None,
            (SpoolSetting::Off, _) | (SpoolSetting::Default, None) => None,
            (SpoolSetting::Default, Some(data)) => Some(data.join("amqp-spool")),
            (SpoolSetting::Dir(d), _) => Some(d.clone()),
        };
        let spool = match spool_dir {
            None => None,
            Some(dir) => {
                let (spool, replayed) =
                    spool::Spool::open(&dir, &config.destination).map_err(|e| {
                        PluginError::unavailable(format!(
                            "{e} (give spool=DIR for another directory, or spool= for none)"
                        ))
                    })?;
                if !replayed.is_empty() {
                    log_info!(
                        "amqp publisher: {} unconfirmed sample(s) replayed from {} for {}",
                        replayed.len(),
                        spool.path().display(),
                        config.shown
                    );
                }
                Some((spool, replayed))
            }
        };
        let shared = Arc::new(Shared {
            buffer: Buffer::with_spool(config.buffer, config.policy, spool),
            stop: AtomicBool::new(false),
            retries: AtomicU64::new(0),
            broker_down: AtomicBool::new(false),
        });
        let (c, s) = (config.clone(), shared.clone());
        std::thread::Builder::new()
            .name("ceilo-amqp".into())
            .spawn(move || sender::run(c, s))
            .map_err(|e| {
                PluginError::unavailable(format!("cannot start the sender thread: {e}"))
            })?;
        Ok(AmqpPublisher {
            config,
            secret: context.telemetry_secret().map(str::to_owned),
            shared,
        })
    }
}

impl Publisher for AmqpPublisher {
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
        let mut items = Vec::with_capacity(batch.len());
        for s in batch {
            let bytes = match (&self.secret, &self.config.notifier) {
                (secret, Some(_)) => {
                    serde_json::to_vec(&signing::ceilometer::meter_message(s, secret.as_deref())?)
                }
                // Signed as the bytes stand, so a collector verifies them unparsed.
                (Some(secret), None) => Ok(signing::signed_bytes(s, secret)?),
                (None, None) => serde_json::to_vec(s),
            };
            items.push(bytes.map_err(|e| PluginError::invalid_input(e.to_string()))?);
        }
        let dropped = self.shared.buffer.push(items);
        if dropped > 0 {
            log_warn!(
                "amqp publisher: buffer full ({} samples) with {} unreachable: dropped {dropped} oldest sample(s) (policy=drop)",
                self.config.buffer,
                self.config.shown
            );
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), PluginError> {
        let buffer = &self.shared.buffer;
        // With the broker known to be away, waiting would only stall the pipeline.
        let down = self.shared.broker_down.load(Ordering::Relaxed);
        if buffer.counts().buffered == 0 || (!down && buffer.wait_empty(self.config.flush_timeout))
        {
            return Ok(());
        }
        Err(PluginError::unavailable(format!(
            "{} sample(s) still waiting for {} ({}); they stay buffered",
            buffer.counts().buffered,
            self.config.shown,
            if down {
                "the broker is unreachable".to_owned()
            } else {
                format!("not confirmed within {:?}", self.config.flush_timeout)
            }
        )))
    }

    fn stats(&self) -> Vec<Counter> {
        let c = self.shared.buffer.counts();
        vec![
            Counter::new("published", c.published),
            Counter::new("buffered", c.buffered),
            Counter::new("dropped", c.dropped),
            Counter::new("retried", self.shared.retries.load(Ordering::Relaxed)),
        ]
    }
}

impl Drop for AmqpPublisher {
    fn drop(&mut self) {
        // The sender drains what is buffered, then stops.
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// The same publisher under another URL scheme (publishers are chosen by scheme).
macro_rules! alias_publisher {
    ($(#[$doc:meta])* $ty:ident, $name:literal, $description:literal) => {
        $(#[$doc])*
        pub struct $ty(AmqpPublisher);

        impl Plugin for $ty {
            const NAME: &'static str = $name;
            const DESCRIPTION: &'static str = $description;

            fn create(parameters: &Parameters, context: &Context) -> Result<Self, PluginError> {
                AmqpPublisher::create(parameters, context).map($ty)
            }
        }

        impl Publisher for $ty {
            fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
                self.0.publish(batch)
            }
            fn flush(&mut self) -> Result<(), PluginError> {
                self.0.flush()
            }
            fn stats(&self) -> Vec<Counter> {
                self.0.stats()
            }
        }
    };
}

alias_publisher!(
    /// `amqps://`: the same publisher over TLS (rustls; the system's roots, or the CA
    /// in `cacertfile=PATH`).
    AmqpsPublisher,
    "amqps",
    "amqps://user:pass@host/vhost?cacertfile=… — amqp:// over TLS"
);

alias_publisher!(
    /// `notifier://`: samples as Ceilometer's oslo.messaging notifications (see
    /// `notifier`).
    NotifierPublisher,
    "notifier",
    "notifier://user:pass@host/vhost?topic=metering — samples as Ceilometer's notifications, signed by its rules"
);

alias_publisher!(
    /// `rpc://`: Ceilometer 2014.1's name for its notifier publisher.
    RpcPublisher,
    "rpc",
    "rpc://… — Ceilometer's old name for notifier://"
);

ceilo_plugin_api::export_plugins! {
    publishers: [AmqpPublisher, AmqpsPublisher, NotifierPublisher, RpcPublisher],
}
