//! The collector's event side: consumes event notifications (`notifier://` in an
//! event sink, ceilo's or Ceilometer's: exchange `ceilometer`, queue and routing key
//! `event.sample`, declared as oslo.messaging declares them) and stores the events.
//!
//! The same rules as for samples: a message is acked only once its events are
//! durably stored (redeliveries are deduped by message id); while the store is down
//! the messages stay unacked and the store is retried with backoff. A message that
//! carries no events, and an event whose signature does not verify or that cannot be
//! read, is dead-lettered (to `ceilo.dlx`, with the reason in a header) and logged
//! with its message id; the rest of its message is stored.

use std::sync::Arc;
use std::time::Duration;

use ceilo_plugin_api::topology::{DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE};
use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};
use serde_json::Value;
use tokio::sync::watch;

use crate::events::notifier::CEILOMETER_EXCHANGE;
use crate::events::Event;
use crate::redact::{mask_url, shorten};
use crate::services::reconnect::Reconnect;
use crate::storage::Storage;

/// How the event side consumes.
#[derive(Debug, Clone)]
pub struct EventCollectorSettings {
    /// The broker.
    pub amqp_url: String,
    /// Unacked messages in flight.
    pub prefetch: u16,
    /// The signing secret (empty: signatures are not checked).
    pub telemetry_secret: String,
    /// The queue (and routing key), `event.sample` by default.
    pub queue: String,
}

/// One message, decoded: its events, and those refused with why.
#[derive(Debug, Default)]
pub struct DecodedEvents {
    /// Events to store.
    pub events: Vec<Event>,
    /// Refused event messages, as received, each with the reason.
    pub refused: Vec<(Value, String)>,
    /// Why the message as a whole carries no events.
    pub malformed: Option<String>,
}

/// Decodes an event message body: an oslo.messaging notification (plain or in the
/// v2.0 envelope) whose payload is a list of event messages, or such a list alone.
/// With a secret, each event's Ceilometer signature must verify.
pub fn decode_events(body: &[u8], secret: &str) -> DecodedEvents {
    let mut out = DecodedEvents::default();
    let items = match serde_json::from_slice::<Value>(body)
        .map_err(|e| format!("not JSON: {e}"))
        .and_then(event_messages)
    {
        Ok(items) => items,
        Err(why) => {
            out.malformed = Some(why);
            return out;
        }
    };
    for item in items {
        if !secret.is_empty() && !ceilo_plugin_api::signing::ceilometer::verify(&item, secret) {
            out.refused.push((item, "signature does not verify".into()));
            continue;
        }
        match Event::from_ceilometer_json(&item) {
            Ok(e) => out.events.push(e),
            Err(why) => out.refused.push((item, format!("not an event: {why}"))),
        }
    }
    out
}

fn event_messages(message: Value) -> Result<Vec<Value>, String> {
    match crate::services::envelope::unwrap(message)? {
        Value::Array(items) => Ok(items),
        Value::Object(mut m) if m.contains_key("payload") => match m.remove("payload") {
            Some(Value::Array(items)) => Ok(items),
            Some(one @ Value::Object(_)) => Ok(vec![one]),
            _ => Err("a notification whose payload is not a list of events".into()),
        },
        one @ Value::Object(_) => Ok(vec![one]),
        _ => Err("not an event notification or a list of events".into()),
    }
}

/// Runs until `shutdown`, reconnecting with backoff.
pub async fn run(
    settings: EventCollectorSettings,
    store: Arc<dyn Storage>,
    mut shutdown: watch::Receiver<bool>,
) {
    let shown = mask_url(&settings.amqp_url);
    let mut reconnect = Reconnect::default();
    while !*shutdown.borrow() {
        match session(&settings, store.as_ref(), &mut shutdown).await {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(target: "ceilo::collector", "events: {shown}: {e}; reconnecting in {:?}", reconnect.delay());
                if !reconnect.wait(&mut shutdown).await {
                    break;
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error(transparent)]
    Broker(#[from] crate::services::broker::BrokerError),
    #[error("the broker cancelled the consumer")]
    Cancelled,
    #[error("the dead-letter exchange did not confirm a refused event")]
    NotConfirmed,
}

async fn declare(ch: &Channel, queue: &str) -> Result<(), lapin::Error> {
    // As oslo.messaging declares them: non-durable exchange and queue, no arguments
    // (a differing declaration would be refused by the broker, or refuse Ceilometer).
    ch.exchange_declare(
        CEILOMETER_EXCHANGE.into(),
        ExchangeKind::Topic,
        ExchangeDeclareOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        queue.into(),
        CEILOMETER_EXCHANGE.into(),
        queue.into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    ch.exchange_declare(
        DEAD_LETTER_EXCHANGE.into(),
        ExchangeKind::Fanout,
        durable,
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        DEAD_LETTER_QUEUE.into(),
        QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        },
        FieldTable::default(),
    )
    .await?;
    ch.queue_bind(
        DEAD_LETTER_QUEUE.into(),
        DEAD_LETTER_EXCHANGE.into(),
        "".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(())
}

async fn session(
    settings: &EventCollectorSettings,
    store: &dyn Storage,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let conn = crate::services::broker::connect(&settings.amqp_url).await?;
    let ch = conn.create_channel().await?;
    declare(&ch, &settings.queue).await?;
    let dead = conn.create_channel().await?;
    dead.confirm_select(ConfirmSelectOptions::default()).await?;
    ch.basic_qos(settings.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = ch
        .basic_consume(
            settings.queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!(target: "ceilo::collector", "consuming events from {} on {} into {}", settings.queue, mask_url(&settings.amqp_url), store.describe());
    loop {
        let first = tokio::select! {
            d = consumer.next() => d,
            _ = shutdown.changed() => return Ok(()),
        };
        let Some(first) = first else {
            return Err(SessionError::Cancelled);
        };
        let mut batch = vec![first?];
        while batch.len() < settings.prefetch as usize {
            match tokio::time::timeout(Duration::from_millis(20), consumer.next()).await {
                Ok(Some(d)) => batch.push(d?),
                _ => break,
            }
        }
        let mut decoded: Vec<DecodedEvents> = batch
            .iter()
            .map(|d| decode_events(&d.data, &settings.telemetry_secret))
            .collect();
        let events: Vec<Event> = decoded
            .iter_mut()
            .flat_map(|d| std::mem::take(&mut d.events))
            .collect();
        if !events.is_empty() && !store_until_done(store, &events, shutdown).await {
            return Ok(()); // shutting down unstored: the messages go back to the queue
        }
        for (delivery, d) in batch.iter().zip(&decoded) {
            dead_letter(&dead, delivery, d).await?;
        }
        if let Some(last) = batch.last() {
            last.ack(BasicAckOptions { multiple: true }).await?;
        }
    }
}

/// Stores `events`, retrying with backoff while the store is down; false when
/// shutting down first.
async fn store_until_done(
    store: &dyn Storage,
    events: &[Event],
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let mut backoff = Reconnect::default();
    loop {
        match store.record_events(events).await {
            Ok(outcome) => {
                for r in &outcome.refused {
                    let id = events.get(r.index).map_or("(none)", |e| &e.message_id);
                    tracing::warn!(target: "ceilo::collector", message_id = %id, "event not stored: {}", r.reason);
                }
                return true;
            }
            Err(e) => {
                crate::metrics::global().store_error();
                tracing::warn!(target: "ceilo::collector", "{} event(s) not stored yet: {e}; holding their messages unacked, retrying in {:?}", events.len(), backoff.delay());
                if !backoff.wait(shutdown).await {
                    return false;
                }
            }
        }
    }
}

/// Sends what a message could not use to the dead-letter exchange (confirmed), with
/// the reason in an `x-ceilo-reason` header, and logs it.
async fn dead_letter(
    dead: &Channel,
    delivery: &Delivery,
    d: &DecodedEvents,
) -> Result<(), SessionError> {
    let id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let mut refused: Vec<(Vec<u8>, String)> = d
        .refused
        .iter()
        .map(|(v, why)| (v.to_string().into_bytes(), why.clone()))
        .collect();
    if let Some(why) = &d.malformed {
        refused.push((delivery.data.clone(), why.clone()));
    }
    for (body, why) in refused {
        let event_id = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("message_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        tracing::warn!(target: "ceilo::collector", message_id = %id, event = %event_id, "event refused, dead-lettered to {DEAD_LETTER_QUEUE}: {}", shorten(&why, 200));
        let mut headers = FieldTable::default();
        headers.insert(
            "x-ceilo-reason".into(),
            AMQPValue::LongString(shorten(&why, 200).as_str().into()),
        );
        let confirm = dead
            .basic_publish(
                DEAD_LETTER_EXCHANGE.into(),
                "event.sample".into(),
                BasicPublishOptions::default(),
                &body,
                BasicProperties::default()
                    .with_delivery_mode(2)
                    .with_content_type("application/json".into())
                    .with_headers(headers),
            )
            .await?
            .await?;
        if !confirm.is_ack() {
            return Err(SessionError::NotConfirmed);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::notifier::signed_message;
    use crate::events::{Trait, TraitValue};

    #[test]
    fn event_notifications_decode_and_signatures_are_checked() {
        let e = Event {
            message_id: "m1".into(),
            event_type: "compute.instance.create.end".into(),
            generated: chrono::Utc::now(),
            traits: vec![Trait {
                name: "memory_mb".into(),
                value: TraitValue::Int(512),
            }],
            raw: serde_json::json!({}),
        };
        let good = signed_message(&e, "s3cret");
        let forged = signed_message(&e, "other");
        let inner = serde_json::json!({"event_type": "event", "priority": "SAMPLE",
            "payload": [good, forged]});
        let body = serde_json::json!({"oslo.version": "2.0", "oslo.message": inner.to_string()});
        let d = decode_events(body.to_string().as_bytes(), "s3cret");
        assert_eq!(d.events.len(), 1);
        assert_eq!(
            d.events[0].trait_named("memory_mb").map(|t| &t.value),
            Some(&TraitValue::Int(512))
        );
        assert_eq!(
            d.events[0].generated.timestamp_micros(),
            e.generated.timestamp_micros()
        );
        assert_eq!(d.refused.len(), 1);
        assert!(decode_events(b"nope", "").malformed.is_some());
    }
}
