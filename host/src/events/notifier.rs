//! `notifier://` (and `amqp://`) in an event sink: events as Ceilometer's event
//! notifier publishes them — one `SAMPLE` notification of event_type `event` per
//! batch, in oslo.messaging's v2.0 envelope, its payload the event messages (each
//! signed by Ceilometer's rules), to exchange `ceilometer` with routing key
//! `<topic>.sample` (topic `event` by default). A batch is taken once the broker
//! confirms it; until then the notifications it came from stay unacked.

use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ExchangeKind};
use serde_json::Value;

use super::model::Event;
use super::publish::EventOutput;
use crate::pipeline::retry::with_retries;
use crate::redact::mask_url;

/// oslo.messaging's control exchange for Ceilometer.
pub const CEILOMETER_EXCHANGE: &str = "ceilometer";

/// Tries per batch before the output says the batch was not taken.
const ATTEMPTS: u32 = 4;

/// Where a `notifier://` or `amqp://` event publisher sends.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifierTarget {
    /// The broker (`amqp://…`; may hold a password).
    pub broker: String,
    /// The topic: events go to `<topic>.sample`.
    pub topic: String,
}

impl NotifierTarget {
    /// Reads `url`: `notifier://` (the broker is `default_broker`, the agent's own),
    /// `notifier://host:port/vhost`, or `amqp://user:pass@host:port/vhost`;
    /// options: `topic` (default `event`).
    pub fn parse(url: &str, default_broker: Option<&str>) -> Result<NotifierTarget, String> {
        let shown = mask_url(url);
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("`{shown}` is not a URL"))?;
        let (place, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut topic = "event".to_owned();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match k.as_ref() {
                "topic" if !v.is_empty() => topic = v.into_owned(),
                other => {
                    return Err(format!(
                        "`{shown}`: unknown option `{}` for events (known: topic)",
                        crate::redact::shorten(other, 40)
                    ))
                }
            }
        }
        let broker = if place.trim_matches('/').is_empty() && scheme != "amqp" {
            default_broker
                .map(str::to_owned)
                .ok_or_else(|| format!("`{shown}` names no broker and none is configured: give the broker in the URL (notifier://host:5672/) or --amqp-url"))?
        } else {
            let scheme = if scheme == "amqps" { "amqps" } else { "amqp" };
            format!("{scheme}://{place}")
        };
        url::Url::parse(&broker).map_err(|e| format!("`{shown}`: not a broker URL: {e}"))?;
        Ok(NotifierTarget { broker, topic })
    }
}

/// The output.
pub struct NotifierEvents {
    target: NotifierTarget,
    secret: String,
    publisher_id: String,
    runtime: tokio::runtime::Handle,
    conn: Option<(Connection, Channel)>,
}

impl NotifierEvents {
    /// Publishes to `target`, signing with `secret` (empty: unsigned, as Ceilometer).
    pub fn new(target: NotifierTarget, secret: &str, runtime: tokio::runtime::Handle) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        NotifierEvents {
            target,
            secret: secret.to_owned(),
            publisher_id: format!("telemetry.publisher.{host}"),
            runtime,
            conn: None,
        }
    }

    fn routing_key(&self) -> String {
        format!("{}.sample", self.target.topic)
    }

    /// One notification carrying `events`.
    pub fn message(&self, events: &[Event]) -> Vec<u8> {
        let payload: Vec<Value> = events
            .iter()
            .map(|e| signed_message(e, &self.secret))
            .collect();
        let inner = serde_json::json!({
            "message_id": uuid::Uuid::new_v4().to_string(),
            "publisher_id": self.publisher_id,
            "event_type": self.target.topic,
            "priority": "SAMPLE",
            "payload": payload,
            "timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        });
        let envelope =
            serde_json::json!({"oslo.version": "2.0", "oslo.message": inner.to_string()});
        envelope.to_string().into_bytes()
    }

    async fn connect(&self) -> Result<(Connection, Channel), String> {
        let conn = crate::services::broker::connect(&self.target.broker)
            .await
            .map_err(|e| e.to_string())?;
        let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
        // Declared as oslo.messaging declares them (non-durable), so that Ceilometer's
        // own consumers share them.
        ch.exchange_declare(
            CEILOMETER_EXCHANGE.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("declaring exchange `{CEILOMETER_EXCHANGE}`: {e}"))?;
        let key = self.routing_key();
        ch.queue_declare(
            key.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| format!("declaring queue `{key}`: {e}"))?;
        ch.queue_bind(
            key.as_str().into(),
            CEILOMETER_EXCHANGE.into(),
            key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        Ok((conn, ch))
    }

    async fn send(&mut self, body: &[u8]) -> Result<(), String> {
        if self.conn.is_none() {
            self.conn = Some(self.connect().await?);
        }
        let Some((_, ch)) = &self.conn else {
            return Err("no channel".into());
        };
        let key = self.routing_key();
        let confirm = ch
            .basic_publish(
                CEILOMETER_EXCHANGE.into(),
                key.as_str().into(),
                BasicPublishOptions::default(),
                body,
                BasicProperties::default().with_content_type("application/json".into()),
            )
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        if !confirm.is_ack() {
            return Err("the broker did not confirm the events".into());
        }
        Ok(())
    }
}

/// An event message as Ceilometer's `message_from_event` makes it: the serialized
/// event and its `message_signature`.
pub fn signed_message(e: &Event, secret: &str) -> Value {
    let mut msg = e.to_ceilometer_json();
    let signature = ceilo_plugin_api::signing::ceilometer::signature(&msg, secret);
    if let Value::Object(m) = &mut msg {
        m.insert("message_signature".into(), Value::String(signature));
    }
    msg
}

impl EventOutput for NotifierEvents {
    fn describe(&self) -> String {
        format!(
            "notifier:// ({} → {CEILOMETER_EXCHANGE} `{}`)",
            mask_url(&self.target.broker),
            self.routing_key()
        )
    }

    fn publish(&mut self, events: &[Event]) -> Result<(), String> {
        let body = self.message(events);
        let runtime = self.runtime.clone();
        let what = self.describe();
        with_retries(&what, ATTEMPTS, Duration::from_millis(200), || {
            runtime.block_on(self.send(&body)).inspect_err(|_| {
                // A failed send leaves the connection unusable: the next try reconnects.
                self.conn = None;
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The signature Ceilometer 27.0.0's `message_from_event` gives this event with
    /// secret `s3cret` (computed with its own code).
    #[test]
    fn events_are_signed_as_ceilometer_signs_them() {
        let e = Event {
            message_id: "m1".into(),
            event_type: "compute.instance.create.end".into(),
            generated: chrono::DateTime::parse_from_rfc3339("2013-08-08T21:06:37.803826Z")
                .expect("time")
                .with_timezone(&chrono::Utc),
            traits: vec![crate::events::Trait {
                name: "memory_mb".into(),
                value: crate::events::TraitValue::Int(512),
            }],
            raw: serde_json::json!({}),
        };
        let m = signed_message(&e, "s3cret");
        assert_eq!(
            m["message_signature"],
            "775a27a6f9a1c52e5eb8f04b817e0a3a5f87abe15a6d12e7c4698cb374305d73"
        );
        assert!(ceilo_plugin_api::signing::ceilometer::verify(&m, "s3cret"));
    }

    #[test]
    fn targets_and_their_errors() {
        let t = NotifierTarget::parse("notifier://", Some("amqp://guest:guest@b:5672/%2f"))
            .expect("default broker");
        assert_eq!(
            (t.broker.as_str(), t.topic.as_str()),
            ("amqp://guest:guest@b:5672/%2f", "event")
        );
        let t = NotifierTarget::parse("notifier://h:5672/%2f?topic=ev", None).expect("host");
        assert_eq!(
            (t.broker.as_str(), t.topic.as_str()),
            ("amqp://h:5672/%2f", "ev")
        );
        let t = NotifierTarget::parse("amqp://u:p@h/", None).expect("amqp");
        assert_eq!(t.broker, "amqp://u:p@h/");
        assert!(NotifierTarget::parse("notifier://", None)
            .unwrap_err()
            .contains("names no broker"));
        let e = NotifierTarget::parse("notifier://h/?per_meter_topic=1", None).unwrap_err();
        assert!(e.contains("unknown option `per_meter_topic`"), "{e}");
    }
}
