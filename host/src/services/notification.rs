//! The notification agent: consumes oslo.messaging notifications from RabbitMQ,
//! dispatches each to the handler plugins whose `event_type` patterns match, sends the
//! samples through the pipeline, and acks a message only once its samples are handed
//! to the publishers. A message that is not a notification (not JSON, no
//! `event_type`) is logged with its id and rejected to the dead-letter queue — never
//! redelivered forever. Several agents on one queue share the load.
//!
//! With an event pipeline, each notification also becomes its event (by the event
//! definitions), and a batch is acked only once its events, too, reached their
//! outputs; if an output does not take them, the session ends unacked and the
//! batch is redelivered after the reconnect.
//!
//! Topology: the queue `ceilo.<topic>` (durable, dead-lettering to
//! `ceilo.<topic>.dlx` → `ceilo.<topic>.dead`) is bound with routing key `<topic>`
//! to each control exchange (topic exchanges, declared non-durable as oslo.messaging
//! declares them by default).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ceilo_plugin_api::SampleBatch;
use futures_lite::StreamExt;
use glob::Pattern;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::ExchangeKind;
use serde_json::Value;
use tokio::sync::watch;

use crate::events::{ceilometer_shape, Conversion, Converter, EventPipeline};
use crate::loader::NotificationInstance;
use crate::pipeline::{Runtime, Sink};
use crate::redact::mask_url;
use crate::services::reconnect::Reconnect;

/// Where and how to consume.
#[derive(Debug, Clone)]
pub struct NotificationSettings {
    /// The broker (may hold a password: shown masked).
    pub amqp_url: String,
    /// Control exchanges to bind to (`nova`, `cinder`, …).
    pub exchanges: Vec<String>,
    /// The notification topic, e.g. `notifications.info`.
    pub topic: String,
    /// Unacknowledged messages in flight.
    pub prefetch: u16,
}

impl NotificationSettings {
    /// The queue this agent (and its peers) consume.
    pub fn queue(&self) -> String {
        format!("ceilo.{}", self.topic)
    }
    /// Where rejected messages end up.
    pub fn dead_letter_queue(&self) -> String {
        format!("ceilo.{}.dead", self.topic)
    }
}

/// A handler instance with its compiled event type patterns.
pub struct Handler {
    patterns: Vec<Pattern>,
    instance: NotificationInstance,
}

impl Handler {
    /// Wraps an instance; its patterns are asked once.
    pub fn new(mut instance: NotificationInstance) -> Result<Handler, String> {
        let types = instance.event_types().map_err(|e| e.to_string())?;
        let patterns = types
            .iter()
            .map(|t| {
                Pattern::new(t).map_err(|e| format!("{}: event type `{t}`: {e}", instance.name()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Handler { patterns, instance })
    }
    fn wants(&self, event_type: &str) -> bool {
        self.patterns.iter().any(|p| p.matches(event_type))
    }
}

/// New handlers and pipeline for a running notification agent (a live reload), taken
/// between two batches; the old sinks the new pipeline does not keep are flushed.
pub struct Swap {
    /// The new pipeline.
    pub runtime: Runtime,
    /// The new handlers.
    pub handlers: Vec<Handler>,
    /// Told once they are in use.
    pub applied: tokio::sync::oneshot::Sender<()>,
}

/// What makes and publishes events (none: samples only).
pub struct EventWork {
    /// Notifications to events.
    pub converter: Converter,
    /// Events to their outputs.
    pub pipeline: EventPipeline,
}

/// Runs until `shutdown`; reconnects with backoff whenever the broker goes away.
/// Takes new handlers and pipelines from `swaps` (live reloads).
pub async fn run(
    settings: NotificationSettings,
    handlers: Vec<Handler>,
    runtime: Runtime,
    events: Option<EventWork>,
    mut shutdown: watch::Receiver<bool>,
    swaps: Option<tokio::sync::mpsc::Receiver<Swap>>,
) {
    let shown = mask_url(&settings.amqp_url);
    let state = Arc::new(Mutex::new(Work {
        handlers,
        runtime,
        events,
    }));
    let swapper = swaps.map(|rx| tokio::spawn(take_swaps(rx, state.clone())));
    let mut reconnect = Reconnect::default();
    while !*shutdown.borrow() {
        let result = tokio::select! {
            r = session(&settings, state.clone()) => r,
            _ = shutdown.changed() => break,
        };
        match result {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(target: "ceilo::notification", "{shown}: {e}; reconnecting in {:?}", reconnect.delay());
                if !reconnect.wait(&mut shutdown).await {
                    break;
                }
            }
        }
    }
    if let Some(s) = swapper {
        s.abort();
    }
    tracing::info!(target: "ceilo::notification", "shutting down: flushing transformers and publishers");
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(w) = state.lock() {
            for sink in &w.runtime.sinks {
                if let Ok(mut s) = sink.lock() {
                    s.flush();
                }
            }
        }
    })
    .await;
}

/// Applies each swap under the lock batches are handled under: between two batches.
async fn take_swaps(mut rx: tokio::sync::mpsc::Receiver<Swap>, state: Arc<Mutex<Work>>) {
    while let Some(swap) = rx.recv().await {
        let state = state.clone();
        let Swap {
            runtime,
            handlers,
            applied,
        } = swap;
        let done = tokio::task::spawn_blocking(move || {
            let Ok(mut w) = state.lock() else { return };
            let old = std::mem::replace(&mut w.runtime, runtime);
            w.handlers = handlers;
            for sink in old
                .sinks
                .iter()
                .filter(|s| !w.runtime.sinks.iter().any(|n| Arc::ptr_eq(n, s)))
            {
                if let Ok(mut s) = sink.lock() {
                    s.flush();
                }
            }
        })
        .await;
        if done.is_ok() {
            let _ = applied.send(());
        }
    }
}

struct Work {
    handlers: Vec<Handler>,
    runtime: Runtime,
    events: Option<EventWork>,
}

/// Why a consuming session ended.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error(transparent)]
    Broker(#[from] crate::services::broker::BrokerError),
    #[error("the broker cancelled the consumer")]
    Cancelled,
    #[error("events not published, the batch goes back to the queue: {0}")]
    Events(String),
}

async fn session(
    settings: &NotificationSettings,
    state: Arc<Mutex<Work>>,
) -> Result<(), SessionError> {
    let conn = crate::services::broker::connect(&settings.amqp_url).await?;
    let ch = conn.create_channel().await?;
    let queue = settings.queue();
    let dlx = format!("ceilo.{}.dlx", settings.topic);
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    ch.exchange_declare(
        dlx.as_str().into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        settings.dead_letter_queue().as_str().into(),
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        settings.dead_letter_queue().as_str().into(),
        dlx.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(dlx.as_str().into()),
    );
    ch.queue_declare(queue.as_str().into(), durable, args)
        .await?;
    for exchange in &settings.exchanges {
        ch.exchange_declare(
            exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
        ch.queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            settings.topic.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    }
    ch.basic_qos(settings.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = ch
        .basic_consume(
            queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(
        target: "ceilo::notification",
        "consuming {queue} (bound to {} with `{}`) on {}",
        settings.exchanges.join(", "),
        settings.topic,
        mask_url(&settings.amqp_url)
    );
    loop {
        // A batch: what is ready now, up to the prefetch, after the first message.
        let Some(first) = consumer.next().await else {
            return Err(SessionError::Cancelled);
        };
        let mut batch = vec![first?];
        while batch.len() < settings.prefetch as usize {
            match tokio::time::timeout(Duration::from_millis(20), consumer.next()).await {
                Ok(Some(d)) => batch.push(d?),
                _ => break,
            }
        }
        let bodies: Vec<(Option<String>, Vec<u8>)> = batch
            .iter()
            .map(|d| (message_id(d), d.data.clone()))
            .collect();
        let work = state.clone();
        let outcomes = tokio::task::spawn_blocking(move || match work.lock() {
            Ok(mut w) => handle_batch(&mut w, bodies),
            Err(_) => Ok(Vec::new()),
        })
        .await
        .unwrap_or_else(|_| Ok(Vec::new()))
        .map_err(SessionError::Events)?;
        // One ack for the whole batch when every message went through; otherwise one
        // by one, rejecting the malformed ones.
        if outcomes.len() == batch.len() && outcomes.iter().all(Result::is_ok) {
            if let Some(last) = batch.last() {
                last.ack(BasicAckOptions { multiple: true }).await?;
            }
            continue;
        }
        for (delivery, outcome) in batch
            .iter()
            .zip(outcomes.iter().map(Some).chain(std::iter::repeat(None)))
        {
            match outcome {
                Some(Ok(())) => {
                    delivery.ack(BasicAckOptions::default()).await?;
                }
                Some(Err(reason)) => {
                    tracing::warn!(
                        target: "ceilo::notification",
                        message_id = message_id(delivery).unwrap_or_default(),
                        "malformed notification rejected to {}: {reason}",
                        settings.dead_letter_queue()
                    );
                    delivery
                        .reject(BasicRejectOptions { requeue: false })
                        .await?;
                }
                // Processing failed as a whole: leave it to be redelivered.
                None => {}
            }
        }
    }
}

fn message_id(d: &Delivery) -> Option<String> {
    d.properties.message_id().as_ref().map(|s| s.to_string())
}

/// Decodes, dispatches and publishes a batch; one outcome per message (`Err`:
/// reject). `Err` as a whole: the batch's events were not published.
fn handle_batch(
    w: &mut Work,
    bodies: Vec<(Option<String>, Vec<u8>)>,
) -> Result<Vec<Result<(), String>>, String> {
    let mut outcomes = Vec::with_capacity(bodies.len());
    let mut events = Vec::new();
    for (_id, body) in bodies {
        let (notification, enveloped) = match decode(&body) {
            Ok(n) => n,
            Err(reason) => {
                outcomes.push(Err(reason));
                continue;
            }
        };
        let event_type = notification
            .get("event_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        // The body as received when it is the notification itself (no re-encoding).
        let text = match (enveloped, String::from_utf8(body)) {
            (false, Ok(text)) => text,
            _ => notification.to_string(),
        };
        let mut samples = SampleBatch::new();
        for h in w.handlers.iter_mut().filter(|h| h.wants(&event_type)) {
            match h.instance.handle(&text) {
                Ok(s) => samples.extend(s),
                Err(e) => tracing::warn!(target: "ceilo::notification", event_type, "{e}"),
            }
        }
        if !samples.is_empty() {
            route(&w.runtime, samples);
        }
        if let Some(ew) = &w.events {
            if let Some(e) = to_event(&ew.converter, &notification, &event_type) {
                events.push(e);
            }
        }
        outcomes.push(Ok(()));
    }
    for sink in &w.runtime.sinks {
        if let Ok(mut s) = sink.lock() {
            s.flush();
        }
    }
    if let (Some(ew), false) = (&mut w.events, events.is_empty()) {
        ew.pipeline.publish(&events)?;
    }
    Ok(outcomes)
}

/// The event of a notification, if it makes one. A notification that cannot be an
/// event (no message id or timestamp) is logged and still acked: its samples went
/// through (Ceilometer's `ack_on_event_error`, on by default).
fn to_event(
    converter: &Converter,
    notification: &Value,
    event_type: &str,
) -> Option<crate::events::Event> {
    let priority = notification
        .get("priority")
        .and_then(Value::as_str)
        .unwrap_or("info")
        .to_ascii_lowercase();
    match converter.convert(&priority, &ceilometer_shape(notification)) {
        Ok(Conversion::Event(e, left_out)) => {
            for why in left_out {
                tracing::warn!(target: "ceilo::events", event_type, message_id = %e.message_id, "trait left out: {why}");
            }
            Some(e)
        }
        Ok(Conversion::Unmatched) => None,
        Err(why) => {
            tracing::warn!(target: "ceilo::events", event_type, "no event made: {why}");
            None
        }
    }
}

/// Samples to every source whose meters they pass, then to its sinks.
fn route(runtime: &Runtime, samples: SampleBatch) {
    for source in &runtime.sources {
        let selected: SampleBatch = samples
            .iter()
            .filter({
                let mut allowed = source.filter.sample_predicate();
                move |s| allowed(s)
            })
            .cloned()
            .collect();
        if !selected.is_empty() {
            process(&source.sinks, selected);
        }
    }
}

fn process(sinks: &[Arc<Mutex<Sink>>], batch: SampleBatch) {
    for sink in sinks {
        if let Ok(mut s) = sink.lock() {
            s.process(batch.clone());
        }
    }
}

/// The notification in a message body, plain or inside an `oslo.message` v2.0
/// envelope (then `true`). Errors say why it is not one.
pub fn decode(body: &[u8]) -> Result<(Value, bool), String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let enveloped = v.get("oslo.message").is_some();
    let v = match v.get("oslo.message") {
        Some(Value::String(inner)) => {
            let version = v.get("oslo.version").and_then(Value::as_str).unwrap_or("?");
            if version != "2.0" {
                return Err(format!(
                    "unsupported oslo.message envelope version {version}"
                ));
            }
            serde_json::from_str(inner).map_err(|e| format!("oslo.message is not JSON: {e}"))?
        }
        _ => v,
    };
    match v.get("event_type") {
        Some(Value::String(_)) => Ok((v, enveloped)),
        Some(_) => Err("`event_type` is not a string".into()),
        None => Err("no `event_type`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plain_and_enveloped_notifications() {
        let plain = br#"{"event_type": "compute.instance.exists", "payload": {}}"#;
        let (v, enveloped) = decode(plain).unwrap();
        assert_eq!(
            (v["event_type"].as_str(), enveloped),
            (Some("compute.instance.exists"), false)
        );
        let inner = serde_json::json!({"event_type": "volume.create.end", "payload": {"size": 1}})
            .to_string();
        let env = serde_json::json!({"oslo.version": "2.0", "oslo.message": inner}).to_string();
        let (v, enveloped) = decode(env.as_bytes()).unwrap();
        assert_eq!((v["payload"]["size"].as_i64(), enveloped), (Some(1), true));
        assert!(decode(b"garbage").unwrap_err().starts_with("not JSON"));
        assert_eq!(
            decode(br#"{"payload": {}}"#).unwrap_err(),
            "no `event_type`"
        );
        let bad = serde_json::json!({"oslo.version": "3.0", "oslo.message": "{}"}).to_string();
        assert!(decode(bad.as_bytes()).unwrap_err().contains("version 3.0"));
    }
}
