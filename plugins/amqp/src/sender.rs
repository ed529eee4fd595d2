//! The sender thread: owns the connection (and its own tokio runtime: no runtime
//! crosses the plugin boundary), declares the topology, publishes batches with
//! `mandatory` and publisher confirms, and reconnects with backoff whenever the
//! broker goes away. A batch counts as sent only when the broker acks it without
//! returning it (a returned message is unroutable: a failure).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ceilo_plugin_api::topology::{DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE};
use ceilo_plugin_api::{log_error, log_info, log_warn};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind, PublisherConfirm,
};

use crate::buffer::Buffer;
use crate::config::Config;

const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Messages awaiting their confirms at once.
const WINDOW: usize = 8;

/// What the plugin instance and its sender thread share.
pub struct Shared {
    /// Samples waiting for the broker.
    pub buffer: Buffer,
    /// Set when the instance is dropped: drain, then stop.
    pub stop: AtomicBool,
    /// Samples sent again after a failure.
    pub retries: AtomicU64,
    /// Set when the broker could not be reached or the connection was lost; cleared
    /// on connecting. (Not set while the first connection is still being made.)
    pub broker_down: AtomicBool,
}

/// Runs until `stop` is set and the buffer is empty (or the process ends).
pub fn run(config: Config, shared: Arc<Shared>) {
    let (buffer, stop, retries) = (&shared.buffer, &shared.stop, &shared.retries);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log_error!("amqp publisher: cannot start its runtime: {e}; nothing will be sent");
            return;
        }
    };
    let mut backoff = MIN_BACKOFF;
    let mut was_connected = false;
    let mut failures = 0u64;
    while !(stop.load(Ordering::Relaxed) && buffer.counts().buffered == 0) {
        let session = rt.block_on(connect(&config));
        let (conn, channel) = match session {
            Ok(s) => s,
            Err(e) => {
                failures += 1;
                if was_connected || failures == 1 || failures % 30 == 0 {
                    log_warn!(
                        "amqp publisher: cannot reach {} ({e}); {} sample(s) kept, retrying in {:?}",
                        config.shown,
                        buffer.counts().buffered,
                        backoff
                    );
                }
                was_connected = false;
                shared.broker_down.store(true, Ordering::Relaxed);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        log_info!("amqp publisher: connected to {}", config.shown);
        was_connected = true;
        shared.broker_down.store(false, Ordering::Relaxed);
        failures = 0;
        backoff = MIN_BACKOFF;
        // Up to WINDOW messages await their confirms at once; confirms come in order.
        let mut pending: VecDeque<(PublisherConfirm, usize)> = VecDeque::new();
        let lost = 'session: loop {
            if pending.is_empty() && stop.load(Ordering::Relaxed) && buffer.counts().buffered == 0 {
                break 'session None;
            }
            while pending.len() < WINDOW {
                let (linger, wait) = if pending.is_empty() {
                    (config.linger, Duration::from_millis(200))
                } else {
                    (Duration::ZERO, Duration::ZERO)
                };
                let Some((payload, n)) = buffer.take_batch(config.batch_size, linger, wait) else {
                    break;
                };
                match rt.block_on(send(&channel, &config, &payload)) {
                    Ok(confirm) => pending.push_back((confirm, n)),
                    Err(e) => break 'session Some(e),
                }
            }
            let Some((confirm, n)) = pending.pop_front() else {
                if !conn.status().connected() {
                    break 'session Some(
                        lapin::ErrorKind::InvalidConnectionState(lapin::ConnectionState::Closed)
                            .into(),
                    );
                }
                continue;
            };
            match rt.block_on(confirmed(confirm, &config)) {
                Ok(()) => buffer.commit(n),
                Err(Failure::Refused(why)) => {
                    let unsent = buffer.counts().buffered;
                    buffer.retry();
                    pending.clear();
                    retries.fetch_add(unsent, Ordering::Relaxed);
                    log_error!("amqp publisher: {why}; samples kept and retried in {backoff:?}");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(Failure::Connection(e)) => break 'session Some(e),
            }
        };
        if let Some(e) = lost {
            shared.broker_down.store(true, Ordering::Relaxed);
            buffer.retry();
            let unconfirmed: usize = pending.iter().map(|(_, n)| n).sum();
            retries.fetch_add(unconfirmed as u64, Ordering::Relaxed);
            log_warn!(
                "amqp publisher: lost {} ({e}); {unconfirmed} unconfirmed sample(s) will be sent again",
                config.shown
            );
        }
        let _ = rt.block_on(conn.close(200, "ceilo publisher reconnecting".into()));
    }
}

enum Failure {
    /// The broker answered but did not take the message.
    Refused(String),
    /// The connection or channel failed.
    Connection(lapin::Error),
}

async fn send(
    channel: &Channel,
    config: &Config,
    payload: &[u8],
) -> Result<PublisherConfirm, lapin::Error> {
    let wrapped;
    let payload = match &config.notifier {
        Some(n) => {
            wrapped = n.envelope(payload);
            &wrapped[..]
        }
        None => payload,
    };
    let props = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into());
    let opts = BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    };
    channel
        .basic_publish(
            config.exchange.as_str().into(),
            config.routing_key.as_str().into(),
            opts,
            payload,
            props,
        )
        .await
}

async fn confirmed(confirm: PublisherConfirm, config: &Config) -> Result<(), Failure> {
    let confirm = confirm.await.map_err(Failure::Connection)?;
    if !confirm.is_ack() {
        return Err(Failure::Refused(
            "the broker refused (nacked) a message".into(),
        ));
    }
    if confirm.take_message().is_some() {
        return Err(Failure::Refused(format!(
            "message unroutable: no queue is bound to exchange `{}` with routing key `{}`",
            config.exchange, config.routing_key
        )));
    }
    Ok(())
}

async fn connect(config: &Config) -> Result<(Connection, Channel), lapin::Error> {
    let tls = lapin::tcp::OwnedTLSConfig {
        identity: None,
        cert_chain: config.ca.clone(),
    };
    let conn = lapin::ConnectionBuilder::new()?
        .with_uri_str(config.broker.clone())
        .with_properties(ConnectionProperties::default())
        .with_tls_config(tls)
        .connect()
        .await?;
    let channel = conn.create_channel().await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    if let Some(n) = &config.notifier {
        declare_as_oslo(&channel, config, n.durable).await?;
        return Ok((conn, channel));
    }
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    channel
        .exchange_declare(
            config.exchange.as_str().into(),
            ExchangeKind::Topic,
            durable,
            FieldTable::default(),
        )
        .await?;
    if let Some(queue) = &config.queue {
        channel
            .exchange_declare(
                DEAD_LETTER_EXCHANGE.into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await?;
        let dq = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .queue_declare(DEAD_LETTER_QUEUE.into(), dq, FieldTable::default())
            .await?;
        channel
            .queue_bind(
                DEAD_LETTER_QUEUE.into(),
                DEAD_LETTER_EXCHANGE.into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut args = FieldTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(DEAD_LETTER_EXCHANGE.into()),
        );
        channel
            .queue_declare(queue.as_str().into(), dq, args)
            .await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                config.exchange.as_str().into(),
                config.routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok((conn, channel))
}

/// The exchange and queue as oslo.messaging's notifier declares them (topic exchange,
/// queue named after the routing key, both of the same durability, no arguments), so
/// that whichever side comes first, the other's declaration matches.
async fn declare_as_oslo(
    channel: &Channel,
    config: &Config,
    durable: bool,
) -> Result<(), lapin::Error> {
    channel
        .exchange_declare(
            config.exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    if let Some(queue) = &config.queue {
        channel
            .queue_declare(
                queue.as_str().into(),
                QueueDeclareOptions {
                    durable,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_bind(
                queue.as_str().into(),
                config.exchange.as_str().into(),
                config.routing_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}
