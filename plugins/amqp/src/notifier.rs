//! `notifier://` (old names `rpc://`, and `meter_publisher` in 2013 pipeline files):
//! samples as oslo.messaging notifications, as Ceilometer's notifier publisher sends
//! them, for mixed fleets. Each message is a `SAMPLE` notification of event_type
//! `metering` whose payload is a list of Ceilometer meter messages signed by
//! Ceilometer's rules, in the oslo.messaging v2.0 envelope, published to exchange
//! `ceilometer` with routing key `<topic>.sample`, and the queue of that name declared
//! as oslo.messaging declares it (so a Ceilometer notification agent and `ceilo
//! collector` both read it).
//!
//! `notifier://[user:pass@host:port/vhost]?topic=metering&policy=default&max_queue_length=1024`
//! — with no host, the broker is `CEILO_AMQP_URL` (Ceilometer took its
//! `transport_url`). Ceilometer's options: `topic`, `driver` (`rabbit`), `policy`
//! (`default` blocks until the broker takes the samples; `queue` and `drop` keep at
//! most `max_queue_length` samples and drop the oldest), `max_queue_length`,
//! `max_retry` (accepted: ceilo retries until sent or dropped by the policy). ceilo's:
//! `exchange`, `durable` (declare as oslo.messaging with `amqp_durable_queues`;
//! default 0, as oslo), `event_type` (`metering`, or `telemetry.polling` to feed a
//! Ceilometer notification agent as its polling agent does), and `batch_size`,
//! `linger_ms`, `buffer`, `flush_timeout`, `spool`, `cacertfile` as `amqp://`.

use ceilo_plugin_api::PluginError;

/// How notifications are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notifier {
    /// `metering`, or `telemetry.polling` (payload `{"samples": [...]}`).
    pub event_type: String,
    /// `telemetry.publisher.<host>`, as Ceilometer.
    pub publisher_id: String,
    /// Exchange and queue durability (oslo.messaging's `amqp_durable_queues`).
    pub durable: bool,
}

/// Event types a Ceilometer consumer takes samples from.
const EVENT_TYPES: [&str; 2] = ["metering", "telemetry.polling"];

/// The notifier URL split into an `amqp://` broker URL with ceilo's options, and the
/// notification format. Errors name the option and never show the password.
pub fn parse(raw: &str) -> Result<(String, Notifier), PluginError> {
    let shown = crate::config::mask(raw);
    let url = url::Url::parse(raw)
        .map_err(|e| PluginError::invalid_parameters(format!("`{shown}` is not a URL: {e}")))?;
    let bad = |k: &str, v: &str, what: &str| {
        PluginError::invalid_parameters(format!("`{k}={v}` in `{shown}`: {what}"))
    };
    let mut notifier = Notifier {
        event_type: "metering".into(),
        publisher_id: format!("telemetry.publisher.{}", host_name()),
        durable: false,
    };
    let (mut topic, mut policy, mut max_queue, mut exchange) =
        (None::<String>, "default".to_owned(), None::<String>, None);
    let mut passed: Vec<(String, String)> = Vec::new();
    for (k, v) in url.query_pairs() {
        let (k, v) = (k.into_owned(), v.into_owned());
        match k.as_str() {
            "topic" if topic.is_some() => {
                return Err(bad(&k, &v, "one topic per publisher: list one notifier:// URL per topic"))
            }
            "topic" if v.is_empty() || v.contains(['#', '*']) => {
                return Err(bad(&k, &v, "expected a topic name such as metering"))
            }
            "topic" => topic = Some(v),
            "driver" if matches!(v.as_str(), "rabbit" | "kombu" | "amqp") => {}
            "driver" => {
                return Err(bad(&k, &v, "ceilo's notifier publishes to RabbitMQ only (driver=rabbit)"))
            }
            "policy" if matches!(v.as_str(), "default" | "queue" | "drop") => policy = v,
            "policy" => {
                return Err(bad(&k, &v, "expected default (block until sent), queue or drop (keep max_queue_length, drop the oldest)"))
            }
            "max_queue_length" => {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| bad(&k, &v, "expected a positive integer"))?;
                max_queue = Some(v);
            }
            "max_retry" => {
                v.parse::<u64>()
                    .map_err(|_| bad(&k, &v, "expected a whole number"))?;
            }
            "per_meter_topic" if v == "0" => {}
            "per_meter_topic" => {
                return Err(bad(&k, &v, "per-meter topics are not supported: give a sink per meter, each with its own topic="))
            }
            "durable" => {
                notifier.durable = match v.as_str() {
                    "1" | "true" | "True" => true,
                    "0" | "false" | "False" => false,
                    _ => return Err(bad(&k, &v, "expected 0 or 1")),
                }
            }
            "event_type" if EVENT_TYPES.contains(&v.as_str()) => notifier.event_type = v,
            "event_type" => return Err(bad(&k, &v, "expected metering or telemetry.polling")),
            "exchange" => exchange = Some(v),
            // ceilo's own amqp:// options, checked there.
            "batch_size" | "linger_ms" | "buffer" | "flush_timeout" | "spool" | "cacertfile" => {
                passed.push((k, v))
            }
            _ => {
                return Err(bad(
                    &k,
                    &v,
                    "unknown option (known: topic, driver, policy, max_queue_length, max_retry, per_meter_topic, exchange, durable, event_type, batch_size, linger_ms, buffer, flush_timeout, spool, cacertfile)",
                ))
            }
        }
    }
    let mut broker = if url.host_str().is_none_or(str::is_empty) {
        let from_env = std::env::var("CEILO_AMQP_URL").unwrap_or_default();
        if from_env.is_empty() {
            return Err(PluginError::invalid_parameters(format!(
                "`{shown}` names no broker: write notifier://user:pass@host:5672/vhost, or set CEILO_AMQP_URL (Ceilometer took it from its transport_url)"
            )));
        }
        url::Url::parse(&from_env).map_err(|e| {
            PluginError::invalid_parameters(format!(
                "CEILO_AMQP_URL `{}` is not a URL: {e}",
                crate::config::mask(&from_env)
            ))
        })?
    } else {
        let mut b = url.clone();
        b.set_query(None);
        b.set_fragment(None);
        // `Url` cannot change a special scheme to another: rebuilt as text.
        let rest = b.as_str().split_once("://").map_or("", |(_, r)| r);
        url::Url::parse(&format!("amqp://{rest}")).map_err(|e| {
            PluginError::invalid_parameters(format!("`{shown}` is not a broker URL: {e}"))
        })?
    };
    let topic = topic.unwrap_or_else(|| "metering".into());
    let routing_key = format!("{topic}.sample");
    let buffer = match (policy.as_str(), max_queue) {
        ("default", _) => None,
        (_, m) => Some(m.unwrap_or_else(|| "1024".into())),
    };
    {
        let mut q = broker.query_pairs_mut();
        q.clear();
        q.append_pair(
            "exchange",
            exchange.as_deref().unwrap_or(CEILOMETER_EXCHANGE),
        );
        q.append_pair("routing_key", &routing_key);
        q.append_pair("queue", &routing_key);
        if policy != "default" {
            q.append_pair("policy", "drop");
        }
        for (k, v) in &passed {
            if k != "buffer" || buffer.is_none() {
                q.append_pair(k, v);
            }
        }
        if let Some(b) = &buffer {
            q.append_pair("buffer", b);
        }
    }
    Ok((broker.to_string(), notifier))
}

/// oslo.messaging's control exchange for Ceilometer.
pub const CEILOMETER_EXCHANGE: &str = "ceilometer";

/// The machine's name, as Ceilometer's `host` option defaults to.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl Notifier {
    /// One message: `payload` (a JSON list of meter messages) as a notification in
    /// oslo.messaging's v2.0 envelope.
    pub fn envelope(&self, payload: &[u8]) -> Vec<u8> {
        let payload = String::from_utf8_lossy(payload);
        let payload = if self.event_type == "telemetry.polling" {
            format!("{{\"samples\":{payload}}}")
        } else {
            payload.into_owned()
        };
        // Python's str(datetime.utcnow()), as oslo.messaging writes it.
        let timestamp = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S%.6f");
        let inner = format!(
            "{{\"message_id\":\"{}\",\"publisher_id\":{},\"event_type\":\"{}\",\"priority\":\"SAMPLE\",\"payload\":{payload},\"timestamp\":\"{timestamp}\"}}",
            uuid::Uuid::new_v4(),
            serde_json::Value::String(self.publisher_id.clone()),
            self.event_type,
        );
        let envelope = serde_json::json!({"oslo.version": "2.0", "oslo.message": inner});
        serde_json::to_vec(&envelope).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilometers_options_become_the_broker_url_and_format() {
        let (broker, n) = parse(
            "notifier://u:pw@h:5673/v?topic=meters&policy=queue&max_queue_length=10&batch_size=5",
        )
        .unwrap();
        let b = url::Url::parse(&broker).unwrap();
        assert_eq!(
            (b.scheme(), b.host_str(), b.port(), b.path()),
            ("amqp", Some("h"), Some(5673), "/v")
        );
        let q: Vec<(String, String)> = b.query_pairs().into_owned().collect();
        let get = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
        assert_eq!(get("exchange"), Some("ceilometer"));
        assert_eq!(get("routing_key"), Some("meters.sample"));
        assert_eq!(get("queue"), Some("meters.sample"));
        assert_eq!(get("policy"), Some("drop"));
        assert_eq!(get("buffer"), Some("10"));
        assert_eq!(get("batch_size"), Some("5"));
        assert_eq!(n.event_type, "metering");
        assert!(n.publisher_id.starts_with("telemetry.publisher."));
        assert!(!n.durable);

        for (url, fragment) in [
            ("notifier://h/?driver=kafka", "RabbitMQ only"),
            ("notifier://h/?topic=a&topic=b", "one topic per publisher"),
            ("notifier://u:hunter2@h/?policy=keep", "expected default"),
            ("notifier://h/?per_meter_topic=1", "per-meter topics"),
            ("notifier://h/?colour=red", "unknown option"),
        ] {
            let e = parse(url).unwrap_err();
            assert!(e.message().contains(fragment), "{url}: {e}");
            assert!(!e.message().contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn the_envelope_holds_a_sample_notification() {
        let n = Notifier {
            event_type: "metering".into(),
            publisher_id: "telemetry.publisher.h".into(),
            durable: false,
        };
        let body: serde_json::Value =
            serde_json::from_slice(&n.envelope(br#"[{"counter_name":"cpu"}]"#)).unwrap();
        assert_eq!(body["oslo.version"], "2.0");
        let inner: serde_json::Value =
            serde_json::from_str(body["oslo.message"].as_str().unwrap()).unwrap();
        assert_eq!(inner["event_type"], "metering");
        assert_eq!(inner["priority"], "SAMPLE");
        assert_eq!(inner["publisher_id"], "telemetry.publisher.h");
        assert_eq!(inner["payload"][0]["counter_name"], "cpu");
        let polling = Notifier {
            event_type: "telemetry.polling".into(),
            ..n
        };
        let body: serde_json::Value = serde_json::from_slice(&polling.envelope(b"[]")).unwrap();
        let inner: serde_json::Value =
            serde_json::from_str(body["oslo.message"].as_str().unwrap()).unwrap();
        assert_eq!(inner["payload"]["samples"], serde_json::json!([]));
    }
}
