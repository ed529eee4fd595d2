//! The `amqp://` URL: broker, topology and buffering options.

use std::time::Duration;

use ceilo_plugin_api::topology::{METERING_EXCHANGE, METERING_QUEUE, METERING_ROUTING_KEY};
use ceilo_plugin_api::PluginError;

/// What to do when the buffer is full (Ceilometer's notifier options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Block the pipeline until the broker takes samples again.
    Queue,
    /// Drop the oldest buffered samples (counted and logged).
    Drop,
}

/// A parsed `amqp://` URL.
#[derive(Debug, Clone)]
pub struct Config {
    /// The broker URI without ceilo's query options (may hold a password).
    pub broker: String,
    /// The broker URI with the password masked, for messages.
    pub shown: String,
    pub exchange: String,
    pub routing_key: String,
    /// The queue to declare and bind (`queue=` with no value: none).
    pub queue: Option<String>,
    /// Samples per message.
    pub batch_size: usize,
    /// How long a partial batch waits for more samples.
    pub linger: Duration,
    /// Samples kept while the broker is away.
    pub buffer: usize,
    pub policy: Policy,
    /// How long `flush` waits for the buffer to drain.
    pub flush_timeout: Duration,
    /// Where the disk spool lives.
    pub spool: SpoolSetting,
    /// The destination as a spool file name (no password).
    pub destination: String,
    /// `cacertfile=`: the CA (PEM) to trust for amqps:// instead of the system's.
    pub ca: Option<String>,
    /// `notifier://`: samples as Ceilometer's notifications (none: ceilo's format).
    pub notifier: Option<crate::notifier::Notifier>,
}

/// `spool=`: absent, the data directory's `amqp-spool` (when the host gives one);
/// empty, no spool; else that directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpoolSetting {
    Default,
    Off,
    Dir(std::path::PathBuf),
}

/// Masks the password of a URL for logs and errors.
pub fn mask(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparsable URL>".to_owned(),
    }
}

impl Config {
    /// Parses an `amqp://`, `amqps://` or `notifier://` (`rpc://`) URL.
    pub fn parse_any(raw: &str) -> Result<Config, PluginError> {
        let scheme = raw.split(':').next().unwrap_or("");
        if matches!(scheme, "notifier" | "rpc") {
            let (broker, notifier) = crate::notifier::parse(raw)?;
            let mut c = Config::parse(&broker)?;
            c.notifier = Some(notifier);
            return Ok(c);
        }
        Config::parse(raw)
    }

    /// Parses the URL; errors name the option and never show the password.
    pub fn parse(raw: &str) -> Result<Config, PluginError> {
        let shown = mask(raw);
        let mut url = url::Url::parse(raw)
            .map_err(|e| PluginError::invalid_parameters(format!("`{shown}` is not a URL: {e}")))?;
        if url.scheme() != "amqp" && url.scheme() != "amqps" {
            return Err(PluginError::invalid_parameters(format!(
                "`{shown}`: expected amqp:// or amqps://"
            )));
        }
        let mut c = Config {
            broker: String::new(),
            shown: String::new(),
            exchange: METERING_EXCHANGE.to_owned(),
            routing_key: METERING_ROUTING_KEY.to_owned(),
            queue: Some(METERING_QUEUE.to_owned()),
            batch_size: 100,
            linger: Duration::from_millis(50),
            buffer: 100_000,
            policy: Policy::Queue,
            flush_timeout: Duration::from_secs(10),
            spool: SpoolSetting::Default,
            destination: String::new(),
            ca: None,
            notifier: None,
        };
        let bad = |k: &str, v: &str, what: &str| {
            PluginError::invalid_parameters(format!("`{k}={v}` in `{shown}`: {what}"))
        };
        let positive = |k: &str, v: &str| -> Result<u64, PluginError> {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(k, v, "expected a positive integer"))
        };
        for (k, v) in url.query_pairs() {
            let (k, v) = (k.as_ref(), v.as_ref());
            match k {
                "exchange" => c.exchange = v.to_owned(),
                "routing_key" => c.routing_key = v.to_owned(),
                "queue" => c.queue = (!v.is_empty()).then(|| v.to_owned()),
                "batch_size" => c.batch_size = positive(k, v)? as usize,
                "linger_ms" => c.linger = Duration::from_millis(v.parse().map_err(|_| bad(k, v, "expected milliseconds"))?),
                "buffer" => c.buffer = positive(k, v)? as usize,
                "flush_timeout" => c.flush_timeout = Duration::from_secs(positive(k, v)?),
                "cacertfile" => {
                    c.ca = Some(std::fs::read_to_string(v).map_err(|e| {
                        bad(k, v, &format!("cannot read the CA certificate: {e}"))
                    })?)
                }
                "spool" if v.is_empty() => c.spool = SpoolSetting::Off,
                "spool" => c.spool = SpoolSetting::Dir(v.into()),
                "policy" => {
                    c.policy = match v {
                        "queue" => Policy::Queue,
                        "drop" => Policy::Drop,
                        _ => return Err(bad(k, v, "expected queue (block the pipeline) or drop (drop the oldest)")),
                    }
                }
                _ => {
                    return Err(bad(
                        k,
                        v,
                        "unknown option (known: exchange, routing_key, queue, batch_size, linger_ms, buffer, policy, flush_timeout, spool, cacertfile)",
                    ))
                }
            }
        }
        url.set_query(None);
        c.destination = crate::spool::file_name(&format!(
            "{} {} {}:{}{}",
            c.exchange,
            c.routing_key,
            url.host_str().unwrap_or(""),
            url.port()
                .unwrap_or(if url.scheme() == "amqps" { 5671 } else { 5672 }),
            url.path()
        ));
        c.broker = url.to_string();
        c.shown = mask(&c.broker);
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_shared_topology() {
        let c = Config::parse("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(
            (
                c.exchange.as_str(),
                c.routing_key.as_str(),
                c.queue.as_deref()
            ),
            ("ceilo", "metering.sample", Some("metering.sample"))
        );
        assert_eq!(
            (c.batch_size, c.buffer, c.policy),
            (100, 100_000, Policy::Queue)
        );
        assert_eq!(c.shown, "amqp://guest:***@127.0.0.1:5672/%2f");
    }

    #[test]
    fn options_and_errors() {
        let c = Config::parse("amqp://h/v?exchange=x&queue=&batch_size=5&policy=drop&linger_ms=0")
            .unwrap();
        assert_eq!(
            (c.exchange.as_str(), c.queue, c.batch_size, c.policy),
            ("x", None, 5, Policy::Drop)
        );
        assert!(!c.broker.contains('?'));
        let e = Config::parse("amqp://u:hunter2@h/?policy=keep").unwrap_err();
        assert!(
            e.message().contains("expected queue") && !e.message().contains("hunter2"),
            "{e}"
        );
        assert!(Config::parse("amqps://h/").is_ok());
        let e = Config::parse("http://h/").unwrap_err();
        assert!(e.message().contains("amqp:// or amqps://"), "{e}");
        let e = Config::parse("amqps://h/?cacertfile=/no/such/ca.pem").unwrap_err();
        assert!(e.message().contains("cannot read the CA"), "{e}");
        let e = Config::parse("amqp://h/?batch_size=0").unwrap_err();
        assert!(e.message().contains("positive integer"), "{e}");
    }
}
