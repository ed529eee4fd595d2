//! The collector: consumes signed samples from `metering.sample` and stores them.
//!
//! A message is acked only after every sample in it is durably stored (or refused), so
//! a collector killed at any moment loses nothing: unacked messages go back to the
//! queue, and the store's unique `message_id` turns the redelivery into duplicates
//! that are counted, not stored. While the store is down the collector holds its
//! messages unacked and retries with backoff; it never acks data it has not stored.
//!
//! Refusals: a message that is not a JSON sample or list of samples is rejected to the
//! dead-letter queue. A sample the store cannot hold for what it is (a NUL in a
//! metadata key, a document over 16 MiB: `storage::unstorable`) is dead-lettered alone
//! like a bad signature, and the rest of its batch stored; an outage is retried. A sample whose signature does not verify (checked in constant
//! time) is counted, logged with its message id and dead-lettered too: when the whole
//! message is bad it is rejected as is; when only some samples are, those are
//! republished to the dead-letter exchange (with confirms) before the message is
//! acked, and the rest stored. Several collectors on one queue share the load.

use std::sync::Arc;
use std::time::Duration;

use ceilo_plugin_api::signing::{self, ceilometer};
use ceilo_plugin_api::topology::{DEAD_LETTER_EXCHANGE, DEAD_LETTER_QUEUE, METERING_ROUTING_KEY};
use ceilo_plugin_api::Sample;
use futures_lite::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, ExchangeKind};
use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::watch;

use crate::metrics;
use crate::redact::{mask_url, shorten};
use crate::services::reconnect::Reconnect;
use crate::storage::{Refusal, Storage, WriteOutcome};

/// oslo.messaging's control exchange for Ceilometer (declared non-durable, as
/// oslo.messaging does by default).
const OSLO_CEILOMETER_EXCHANGE: &str = "ceilometer";

/// How the collector consumes.
#[derive(Debug, Clone)]
pub struct CollectorSettings {
    /// The broker (may hold a password: shown masked).
    pub amqp_url: String,
    /// Messages in flight (unacked) per collector; a batch holds up to half of them.
    pub prefetch: u16,
    /// The signing secret (empty: signatures are not checked).
    pub telemetry_secret: String,
    /// The exchange samples are published to (declared durable topic).
    pub exchange: String,
    /// The routing key that binds the queue to it.
    pub routing_key: String,
    /// The queue to consume (declared durable, dead-lettering to `ceilo.dlx`).
    pub queue: String,
}

/// One message, decoded.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Samples to store.
    pub samples: Vec<Sample>,
    /// Samples refused (bad signature, undecodable, or unstorable), as received.
    pub refused: Vec<Value>,
    /// Why, one line per refused sample (for the dead letter's header).
    pub reasons: Vec<String>,
    /// Why the message as a whole cannot be used (not JSON, not samples).
    pub malformed: Option<String>,
}

/// Decodes a message body: a JSON sample or list of samples, or an oslo.messaging
/// notification carrying them (Ceilometer's `notifier://`, plain or in the v2.0
/// envelope); with a secret, each sample's signature must verify, by ceilo's rules
/// for ceilo samples and by Ceilometer's for its meter messages.
pub fn decode(body: &[u8], secret: &str) -> Decoded {
    let mut out = Decoded::default();
    // ceilo's own messages, a list of samples in their signed wire form, are read
    // without a parsed tree: each sample's bytes are verified as received.
    if !secret.is_empty() {
        if let Ok(items) = serde_json::from_slice::<Vec<&RawValue>>(body) {
            out.samples.reserve(items.len());
            for raw in items {
                decode_raw(raw.get(), secret, &mut out);
            }
            return out;
        }
    }
    let items = match serde_json::from_slice::<Value>(body)
        .map_err(|e| format!("not JSON: {e}"))
        .and_then(samples_of)
    {
        Ok(items) => items,
        Err(why) => {
            out.malformed = Some(why);
            return out;
        }
    };
    for item in items {
        decode_item(item, secret, &mut out);
    }
    out
}

/// One sample of a list, as received. Bytes signed as they stand (what ceilo's
/// publishers send) are read straight into a sample; anything else is parsed and
/// verified by the general rules.
fn decode_raw(raw: &str, secret: &str, out: &mut Decoded) {
    if signing::verify_signed_bytes(raw.as_bytes(), secret) {
        match serde_json::from_str::<Sample>(raw) {
            Ok(s) => out.samples.push(s),
            Err(e) => refuse_malformed(
                serde_json::from_str(raw).unwrap_or(Value::Null),
                &e.to_string(),
                out,
            ),
        }
        return;
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(item) => decode_item(item, secret, out),
        // Unreachable in practice: the list it came from parsed.
        Err(e) => refuse_malformed(Value::Null, &e.to_string(), out),
    }
}

/// One parsed sample: verified (with a secret) by ceilo's rules for ceilo samples and
/// by Ceilometer's for its meter messages, then read.
fn decode_item(item: Value, secret: &str, out: &mut Decoded) {
    let ceilometer = ceilometer::is_meter_message(&item);
    let verified = secret.is_empty()
        || if ceilometer {
            ceilometer::verify(&item, secret)
        } else {
            signing::verify(&item, secret)
        };
    if !verified {
        metrics::global().signature_failures(1);
        tracing::warn!(target: "ceilo::collector", message_id = %message_id_of(&item), "sample refused: its signature does not verify (sent by something without the telemetry secret, or altered); dead-lettered to {DEAD_LETTER_QUEUE}");
        out.refused.push(item);
        out.reasons.push("signature does not verify".into());
        return;
    }
    // Deserialised from a reference: the item is kept whole in case it is refused.
    let sample = if ceilometer {
        ceilometer::sample_from_meter_message(&item)
    } else {
        <Sample as serde::Deserialize>::deserialize(&item).map_err(|e| e.to_string())
    };
    match sample {
        Ok(s) => out.samples.push(s),
        Err(e) => refuse_malformed(item, &e, out),
    }
}

fn refuse_malformed(item: Value, why: &str, out: &mut Decoded) {
    metrics::global().malformed(1);
    tracing::warn!(target: "ceilo::collector", message_id = %message_id_of(&item), "sample refused: {why}; dead-lettered to {DEAD_LETTER_QUEUE}");
    out.refused.push(item);
    out.reasons.push(format!("not a sample: {why}"));
}

fn message_id_of(item: &Value) -> &str {
    item.get("message_id")
        .and_then(Value::as_str)
        .unwrap_or("(none)")
}

/// The samples a message carries: the message itself (one sample or a list), or the
/// payload of a `metering` notification (a list, as Ceilometer's notifier publisher
/// sends) or of a `telemetry.polling` one (`{"samples": [...]}`, as its polling agent
/// sends), unwrapped from the oslo.messaging v2.0 envelope when it has one.
fn samples_of(message: Value) -> Result<Vec<Value>, String> {
    match crate::services::envelope::unwrap(message)? {
        Value::Array(items) => Ok(items),
        Value::Object(mut m) if m.contains_key("event_type") && m.contains_key("payload") => {
            let event_type = m
                .get("event_type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            match (event_type.as_str(), m.remove("payload")) {
                ("metering", Some(Value::Array(items))) => Ok(items),
                ("metering", Some(one @ Value::Object(_))) => Ok(vec![one]),
                ("telemetry.polling", Some(Value::Object(mut p))) => match p.remove("samples") {
                    Some(Value::Array(items)) => Ok(items),
                    _ => Err("a telemetry.polling notification without a `samples` list".into()),
                },
                (t, _) => Err(format!(
                    "a notification of event_type `{}`, not samples (expected `metering` or `telemetry.polling`)",
                    shorten(t, 80)
                )),
            }
        }
        one @ Value::Object(_) => Ok(vec![one]),
        _ => Err("not a sample or a list of samples".into()),
    }
}

/// Runs until `shutdown`; reconnects with backoff whenever the broker goes away.
pub async fn run(
    settings: CollectorSettings,
    store: Arc<dyn Storage>,
    mut shutdown: watch::Receiver<bool>,
) {
    let shown = mask_url(&settings.amqp_url);
    if settings.telemetry_secret.is_empty() {
        tracing::warn!(target: "ceilo::collector", "no telemetry secret: sample signatures are not checked (set --telemetry-secret or CEILO_TELEMETRY_SECRET)");
    }
    let mut reconnect = Reconnect::default();
    while !*shutdown.borrow() {
        let result = session(&settings, store.as_ref(), &mut shutdown).await;
        match result {
            Ok(()) => break,
            Err(e) => {
                tracing::warn!(target: "ceilo::collector", "{shown}: {e}; reconnecting in {:?}", reconnect.delay());
                if !reconnect.wait(&mut shutdown).await {
                    break;
                }
            }
        }
    }
    let s = metrics::global().snapshot();
    tracing::info!(target: "ceilo::collector", "stopped: {} stored, {} duplicate(s), {} bad signature(s), {} malformed, {} unstorable", s.stored, s.duplicates, s.signature_failures, s.malformed, s.unstorable);
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Amqp(#[from] lapin::Error),
    #[error(transparent)]
    Broker(#[from] crate::services::broker::BrokerError),
    #[error("the broker cancelled the consumer")]
    Cancelled,
    #[error("the dead-letter exchange did not confirm a refused sample")]
    NotConfirmed,
}

/// Declares the metering topology exactly as the amqp publisher does (same
/// arguments, or the broker refuses the second declaration). An exchange that already
/// exists is used as it is: Ceilometer's oslo.messaging declares its `ceilometer`
/// exchange non-durable, and declaring it again as durable would be refused.
async fn declare_topology(
    conn: &lapin::Connection,
    ch: &Channel,
    settings: &CollectorSettings,
) -> Result<(), lapin::Error> {
    // A passive declaration of a missing exchange closes its channel: a spare one.
    let probe = conn.create_channel().await?;
    let passive = ExchangeDeclareOptions {
        passive: true,
        ..ExchangeDeclareOptions::default()
    };
    let exists = probe
        .exchange_declare(
            settings.exchange.as_str().into(),
            ExchangeKind::Topic,
            passive,
            FieldTable::default(),
        )
        .await
        .is_ok();
    if exists {
        let _ = probe.close(200, "probe done".into()).await;
    }
    let durable_exchange = ExchangeDeclareOptions {
        durable: true,
        ..ExchangeDeclareOptions::default()
    };
    let durable_queue = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    if !exists {
        // Ceilometer's agents declare `ceilometer` themselves, non-durable, and fail on
        // any other declaration of it: created here, it is created their way.
        let options = if settings.exchange == OSLO_CEILOMETER_EXCHANGE {
            ExchangeDeclareOptions::default()
        } else {
            durable_exchange
        };
        ch.exchange_declare(
            settings.exchange.as_str().into(),
            ExchangeKind::Topic,
            options,
            FieldTable::default(),
        )
        .await?;
    }
    ch.exchange_declare(
        DEAD_LETTER_EXCHANGE.into(),
        ExchangeKind::Fanout,
        durable_exchange,
        FieldTable::default(),
    )
    .await?;
    ch.queue_declare(
        DEAD_LETTER_QUEUE.into(),
        durable_queue,
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
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(DEAD_LETTER_EXCHANGE.into()),
    );
    ch.queue_declare(settings.queue.as_str().into(), durable_queue, args)
        .await?;
    ch.queue_bind(
        settings.queue.as_str().into(),
        settings.exchange.as_str().into(),
        settings.routing_key.as_str().into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await?;
    Ok(())
}

async fn session(
    settings: &CollectorSettings,
    store: &dyn Storage,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<(), SessionError> {
    let conn = crate::services::broker::connect(&settings.amqp_url).await?;
    let ch = conn.create_channel().await?;
    declare_topology(&conn, &ch, settings).await?;
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
    tracing::info!(target: "ceilo::collector", "consuming {} on {} (prefetch {}) into {}", settings.queue, mask_url(&settings.amqp_url), settings.prefetch, store.describe());
    // Two stages, overlapped: one receives and decodes the next batch (verifying
    // signatures on every core) while the other stores the last one and settles it.
    // Batches hold at most half the prefetch, so that the broker can deliver the
    // next batch while the last one is still unacked.
    let (ready, mut decoded_batches) =
        tokio::sync::mpsc::channel::<(Vec<Delivery>, Vec<Decoded>)>(1);
    let most = (settings.prefetch as usize / 2).max(1);
    let mut stop_receiving = shutdown.clone();
    let receive = async move {
        loop {
            let first = tokio::select! {
                d = consumer.next() => d,
                _ = stop_receiving.changed() => return Ok(()),
                () = ready.closed() => return Ok(()), // the storing stage stopped
            };
            let Some(first) = first else {
                return Err(SessionError::Cancelled);
            };
            // A batch: what arrives within a few milliseconds, up to `most`.
            let mut batch = vec![first?];
            while batch.len() < most {
                match tokio::time::timeout(Duration::from_millis(20), consumer.next()).await {
                    Ok(Some(d)) => batch.push(d?),
                    _ => break,
                }
            }
            let decoded = decode_all(&batch, &settings.telemetry_secret).await;
            if ready.send((batch, decoded)).await.is_err() {
                return Ok(()); // the storing stage stopped
            }
        }
    };
    let store_batches = async move {
        while let Some((batch, mut decoded)) = decoded_batches.recv().await {
            let counts: Vec<usize> = decoded.iter().map(|d| d.samples.len()).collect();
            let samples: Vec<Sample> = decoded
                .iter_mut()
                .flat_map(|d| std::mem::take(&mut d.samples))
                .collect();
            let Some(outcome) = store_until_done(store, &samples, shutdown).await else {
                // Shutting down with the batch unstored: closing the channel hands the
                // messages back to the queue.
                return Ok(());
            };
            if !outcome.refused.is_empty() {
                give_back(&mut decoded, samples.clone(), &counts);
                move_unstorable(&mut decoded, &samples, &outcome.refused);
            } else {
                give_back(&mut decoded, samples, &counts);
            }
            settle(&batch, &decoded, &dead).await?;
            if *shutdown.borrow() {
                return Ok(());
            }
        }
        Ok(())
    };
    // On shutdown the receiving stage stops and the storing one finishes the batch
    // in hand; what is unacked goes back to the queue when the channel closes.
    let (received, stored) = tokio::join!(receive, store_batches);
    stored.and(received)
}

/// Decodes a batch, its messages shared out over all cores but one: the store writes
/// the previous batch meanwhile on a thread of its own, and decoding on every core
/// took CPU from it (the store is the slower stage: a sample costs it several times
/// what decoding and verifying does).
async fn decode_all(batch: &[Delivery], secret: &str) -> Vec<Decoded> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let decoders = cores.saturating_sub(1).max(1);
    let per_task = batch.len().div_ceil(decoders).max(1);
    let tasks: Vec<_> = batch
        .chunks(per_task)
        .map(|chunk| {
            let bodies: Vec<Vec<u8>> = chunk.iter().map(|d| d.data.clone()).collect();
            let secret = secret.to_owned();
            tokio::task::spawn_blocking(move || {
                bodies
                    .iter()
                    .map(|b| decode(b, &secret))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut out = Vec::with_capacity(batch.len());
    for (task, chunk) in tasks.into_iter().zip(batch.chunks(per_task)) {
        match task.await {
            Ok(decoded) => out.extend(decoded),
            // A decoder that failed (a bug, not a bad message: decoding refuses bad
            // input): its messages are dead-lettered, never lost or acked unstored.
            Err(e) => out.extend(chunk.iter().map(|_| Decoded {
                malformed: Some(format!("the decoder failed on this batch: {e}")),
                ..Decoded::default()
            })),
        }
    }
    out
}

/// Puts the samples taken out of `decoded` for storing back, `counts[i]` to message
/// `i` (what it held before).
fn give_back(decoded: &mut [Decoded], samples: Vec<Sample>, counts: &[usize]) {
    let mut rest = samples.into_iter();
    for (d, n) in decoded.iter_mut().zip(counts) {
        d.samples = rest.by_ref().take(*n).collect();
    }
}

/// Moves the samples the store refused for what they are from their message's
/// samples to its refused ones, to be dead-lettered alone.
fn move_unstorable(decoded: &mut [Decoded], samples: &[Sample], refused: &[Refusal]) {
    let mut start = 0;
    for d in decoded.iter_mut() {
        let end = start + d.samples.len();
        let mine: Vec<&Refusal> = refused
            .iter()
            .filter(|r| (start..end).contains(&r.index))
            .collect();
        if !mine.is_empty() {
            for r in &mine {
                let Some(s) = samples.get(r.index) else {
                    continue;
                };
                tracing::warn!(target: "ceilo::collector", message_id = %s.message_id(), "sample refused: {}; dead-lettered to {DEAD_LETTER_QUEUE}", r.reason);
                d.refused
                    .push(serde_json::to_value(s).unwrap_or(Value::Null));
                d.reasons.push(r.reason.clone());
            }
            let mut i = start;
            d.samples.retain(|_| {
                let keep = !mine.iter().any(|r| r.index == i);
                i += 1;
                keep
            });
        }
        start = end;
    }
}

/// Stores `samples`, retrying with backoff while the store fails. None when shutdown
/// came first (nothing may then be acked).
async fn store_until_done(
    store: &dyn Storage,
    samples: &[Sample],
    shutdown: &mut watch::Receiver<bool>,
) -> Option<WriteOutcome> {
    if samples.is_empty() {
        return Some(WriteOutcome::default());
    }
    let mut delay = Duration::from_millis(250);
    loop {
        match store.record(samples).await {
            Ok(outcome) => {
                metrics::global().stored(&outcome);
                if outcome.duplicates > 0 {
                    tracing::info!(target: "ceilo::collector", "{} redelivered sample(s) already stored, not stored again", outcome.duplicates);
                }
                return Some(outcome);
            }
            Err(e) => {
                metrics::global().store_error();
                tracing::warn!(target: "ceilo::collector", "{} sample(s) not stored yet: {e}; holding their messages unacked, retrying in {delay:?}", samples.len());
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return None,
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Acks what was stored, dead-letters what was refused.
async fn settle(
    batch: &[Delivery],
    decoded: &[Decoded],
    dead: &Channel,
) -> Result<(), SessionError> {
    let clean = decoded
        .iter()
        .all(|d| d.malformed.is_none() && d.refused.is_empty());
    if clean {
        if let Some(last) = batch.last() {
            last.ack(BasicAckOptions { multiple: true }).await?;
        }
        return Ok(());
    }
    for (delivery, d) in batch.iter().zip(decoded) {
        let whole_message_bad =
            d.malformed.is_some() || (d.samples.is_empty() && !d.refused.is_empty());
        if whole_message_bad {
            if let Some(reason) = &d.malformed {
                metrics::global().malformed(1);
                tracing::warn!(target: "ceilo::collector", message_id = %message_id(delivery), "message rejected to {DEAD_LETTER_QUEUE}: {reason}");
            }
            delivery
                .reject(BasicRejectOptions { requeue: false })
                .await?;
            continue;
        }
        if !d.refused.is_empty() {
            let body = serde_json::to_vec(&d.refused).unwrap_or_default();
            let mut headers = FieldTable::default();
            headers.insert(
                "x-ceilo-refused".into(),
                AMQPValue::LongString(shorten(&d.reasons.join("; "), 400).into()),
            );
            let confirm = dead
                .basic_publish(
                    DEAD_LETTER_EXCHANGE.into(),
                    METERING_ROUTING_KEY.into(),
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
        delivery.ack(BasicAckOptions::default()).await?;
    }
    Ok(())
}

fn message_id(d: &Delivery) -> String {
    d.properties
        .message_id()
        .as_ref()
        .map(|s| s.to_string())
        .unwrap_or_else(|| format!("delivery {}", d.delivery_tag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ceilo_plugin_api::SampleType;

    #[test]
    fn decodes_signed_lists_and_refuses_forgeries() {
        let s = Sample::new("cpu", SampleType::Gauge, "%", 1.0, "r");
        let good = ceilo_plugin_api::signing::signed_value(&s, "k").unwrap();
        let mut forged = good.clone();
        forged["counter_volume"] = serde_json::json!(1000.0);
        forged["volume"] = serde_json::json!(1000.0);
        let body = serde_json::to_vec(&serde_json::json!([good, forged])).unwrap();
        let d = decode(&body, "k");
        assert_eq!(d.samples, vec![s.clone()]);
        assert_eq!(d.refused.len(), 1);
        assert!(d.malformed.is_none());
        // Without a secret nothing is checked.
        assert_eq!(decode(&body, "").samples.len(), 2);
        // Wrong secret: all refused.
        assert_eq!(decode(&body, "other").refused.len(), 2);
        assert!(decode(b"not json", "k").malformed.is_some());
        assert!(decode(b"42", "k").malformed.is_some());
    }

    #[test]
    fn reads_ceilo_publishers_bytes_as_signed_and_anything_else_by_the_general_rules() {
        use serde_json::json;
        let s = Sample::new("cpu", SampleType::Cumulative, "ns", 1e9, "vm \u{e9}")
            .with_project_id("p")
            .with_resource_metadata(json!({"flavor": {"vcpus": 2}, "tags": ["a", "\n"]}));
        let other = Sample::new("disk", SampleType::Gauge, "B", 0.5, "vm");
        let as_sent = signing::signed_bytes(&s, "k").unwrap();
        let text = String::from_utf8(as_sent.clone()).unwrap();
        // Signed the general way: keys sorted, signature among them, `1e9` as `1000000000.0`.
        let general = serde_json::to_vec(&signing::signed_value(&other, "k").unwrap()).unwrap();
        let altered = text.replacen("\"vm \u{e9}\"", "\"vm 2\"", 1);
        let other_key = String::from_utf8(signing::signed_bytes(&s, "k2").unwrap()).unwrap();
        // A member after the signature: not the signed form, and not what was signed.
        let extended = format!("{},\"volume\":5}}", &text[..text.len() - 1]);
        // Validly signed bytes that are not a sample.
        let not_a_sample = {
            let sig = signing::sign_value(&json!({"a": 1}), "k").unwrap();
            format!("{{\"a\":1,\"message_signature\":\"{sig}\"}}")
        };
        let body = format!(
            "[{text}, {}, {altered}, {other_key}, {extended}, {not_a_sample}]",
            String::from_utf8(general).unwrap()
        );
        let d = decode(body.as_bytes(), "k");
        assert!(d.malformed.is_none(), "{:?}", d.malformed);
        assert_eq!(d.samples, vec![s.clone(), other]);
        assert_eq!(d.refused.len(), 4);
        assert_eq!(&d.reasons[..3], ["signature does not verify"; 3]);
        assert!(
            d.reasons[3].starts_with("not a sample: "),
            "{}",
            d.reasons[3]
        );
        // Refused samples are kept as received, to be dead-lettered.
        assert_eq!(d.refused[0]["resource_id"], "vm 2");
        assert_eq!(
            d.refused[3],
            json!({"a": 1, "message_signature": d.refused[3]["message_signature"]})
        );
        // The fast read gives the sample the general one does.
        let parsed: Value = serde_json::from_slice(&as_sent).unwrap();
        assert!(signing::verify(&parsed, "k"));
        assert_eq!(
            <Sample as serde::Deserialize>::deserialize(&parsed).unwrap(),
            d.samples[0]
        );
    }

    #[test]
    fn decodes_ceilometer_notifications_in_and_out_of_the_oslo_envelope() {
        use serde_json::json;
        let s = Sample::new("cpu", SampleType::Cumulative, "ns", 1e9, "vm")
            .with_project_id("p")
            .with_resource_metadata(json!({"flavor": {"vcpus": 2}, "tags": ["a"]}));
        let good = ceilometer::meter_message(&s, Some("k")).unwrap();
        let mut forged = good.clone();
        forged["counter_volume"] = json!(2e9);
        let notification = json!({
            "message_id": "n1", "publisher_id": "telemetry.publisher.h",
            "event_type": "metering", "priority": "SAMPLE",
            "payload": [good, forged], "timestamp": "2026-12-02 18:00:00.000000"
        });
        let envelope = json!({"oslo.version": "2.0", "oslo.message": notification.to_string()});
        for body in [&notification, &envelope] {
            let d = decode(&serde_json::to_vec(body).unwrap(), "k");
            assert!(d.malformed.is_none(), "{:?}", d.malformed);
            assert_eq!(d.samples, vec![s.clone()]);
            assert_eq!(d.reasons, ["signature does not verify"]);
        }
        // Ceilometer's polling agent: {"samples": [...]} under telemetry.polling.
        let polling = json!({"event_type": "telemetry.polling", "payload": {"samples": [good]}});
        assert_eq!(decode(polling.to_string().as_bytes(), "k").samples.len(), 1);
        let other = json!({"event_type": "compute.instance.exists", "payload": {}});
        let d = decode(other.to_string().as_bytes(), "k");
        assert!(
            d.malformed
                .as_deref()
                .is_some_and(|m| m.contains("compute.instance.exists")),
            "{:?}",
            d.malformed
        );
        let broken = json!({"oslo.version": "2.0", "oslo.message": "{"});
        assert!(decode(broken.to_string().as_bytes(), "k")
            .malformed
            .is_some());
    }
}
