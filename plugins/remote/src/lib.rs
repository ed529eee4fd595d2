//! Publishers to remote endpoints, with Ceilometer's URL options: `http://` and
//! `https://` (JSON), `prometheus://` (a Pushgateway), `opentelemetryhttp://`
//! (OTLP/HTTP metrics), `gnocchi://` (resources and measures) and `tcp://`
//! (length-prefixed msgpack). Each keeps samples in
//! a bounded buffer while its endpoint is away and sends them from a thread of its
//! own, with retries and backoff (see `delivery`); TLS is rustls.

mod buffer;
mod client;
mod delivery;
mod gnocchi;
mod json;
mod options;
mod otlp;
mod prometheus;
mod tcp;

use std::marker::PhantomData;

use ceilo_plugin_api::{Context, Counter, Parameters, Plugin, PluginError, Publisher, Sample};

use delivery::Delivery;
use options::Options;

/// What sets one remote publisher apart from the others.
pub trait Kind: Send + 'static {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// A URL to show when none is given.
    const EXAMPLE: &'static str;
    /// Query options of this publisher alone (taken out before the shared ones).
    const OWN: &'static [&'static str] = &[];
    /// Starts the delivery for a parsed URL.
    fn start(
        raw: &str,
        options: Options,
        own: Vec<(String, String)>,
        context: &Context,
    ) -> Result<Delivery, PluginError>;
}

/// A remote publisher of kind `K`.
pub struct Remote<K: Kind>(Delivery, PhantomData<K>);

impl<K: Kind> Plugin for Remote<K> {
    const NAME: &'static str = K::NAME;
    const DESCRIPTION: &'static str = K::DESCRIPTION;

    fn create(parameters: &Parameters, context: &Context) -> Result<Self, PluginError> {
        let raw: String = parameters.get("url")?.ok_or_else(|| {
            PluginError::invalid_parameters(format!("missing `url` ({})", K::EXAMPLE))
        })?;
        let (options, own) = Options::parse(&raw, K::OWN)?;
        K::start(&raw, options, own, context).map(|d| Remote(d, PhantomData))
    }
}

impl<K: Kind> Publisher for Remote<K> {
    fn publish(&mut self, batch: &[Sample]) -> Result<(), PluginError> {
        self.0.publish(batch);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), PluginError> {
        self.0.flush()
    }
    fn stats(&self) -> Vec<Counter> {
        self.0.stats()
    }
}

fn over_http(
    name: &'static str,
    options: Options,
    encoder: impl delivery::Encoder,
    context: &Context,
) -> Result<Delivery, PluginError> {
    let client = client::Client::new(&options)?;
    Delivery::start(name, options, encoder, client, context.validating)
}

/// `http://` and `https://` alike: the scheme says whether TLS is spoken.
fn json_over_http(name: &'static str, o: Options, c: &Context) -> Result<Delivery, PluginError> {
    let encoder = json::Json { batch: o.batch };
    over_http(name, o, encoder, c)
}

/// `http://host:port/path?…`: samples as JSON (Ceilometer's `as_dict`), POSTed.
pub struct Http;
impl Kind for Http {
    const NAME: &'static str = "http";
    const DESCRIPTION: &'static str =
        "http://host:port/path?timeout=5&max_retries=2&batch=True — samples as JSON, buffered and retried";
    const EXAMPLE: &'static str = "http://host:port/path";
    fn start(
        _: &str,
        o: Options,
        _: Vec<(String, String)>,
        c: &Context,
    ) -> Result<Delivery, PluginError> {
        json_over_http(Self::NAME, o, c)
    }
}

/// `https://…`: `http://` over TLS (`verify_ssl=False` or a CA bundle's path,
/// `clientcert=`, `clientkey=`).
pub struct Https;
impl Kind for Https {
    const NAME: &'static str = "https";
    const DESCRIPTION: &'static str =
        "https://host/path?verify_ssl=True|False|CA.pem&clientcert=…&clientkey=… — http:// over TLS (rustls)";
    const EXAMPLE: &'static str = "https://host:port/path";
    fn start(
        _: &str,
        o: Options,
        _: Vec<(String, String)>,
        c: &Context,
    ) -> Result<Delivery, PluginError> {
        json_over_http(Self::NAME, o, c)
    }
}

/// `prometheus://host:9091/metrics/job/JOB`: Prometheus text to a Pushgateway.
pub struct PushGateway;
impl Kind for PushGateway {
    const NAME: &'static str = "prometheus";
    const DESCRIPTION: &'static str =
        "prometheus://pushgateway:9091/metrics/job/ceilometer — samples as Prometheus text to a Pushgateway";
    const EXAMPLE: &'static str = "prometheus://host:9091/metrics/job/ceilometer";
    fn start(
        _: &str,
        o: Options,
        _: Vec<(String, String)>,
        c: &Context,
    ) -> Result<Delivery, PluginError> {
        let encoder = prometheus::Prometheus {
            grouped: prometheus::Prometheus::has_grouping(o.target.path()),
        };
        over_http(Self::NAME, o, encoder, c)
    }
}

/// `opentelemetryhttp://host:4318/v1/metrics`: OTLP/HTTP metrics.
pub struct OpenTelemetryHttp;
impl Kind for OpenTelemetryHttp {
    const NAME: &'static str = "opentelemetryhttp";
    const DESCRIPTION: &'static str =
        "opentelemetryhttp://collector:4318/v1/metrics?encoding=json|protobuf — samples as OTLP/HTTP metrics";
    const EXAMPLE: &'static str = "opentelemetryhttp://host:4318/v1/metrics";
    const OWN: &'static [&'static str] = &["encoding"];
    fn start(
        _: &str,
        o: Options,
        own: Vec<(String, String)>,
        c: &Context,
    ) -> Result<Delivery, PluginError> {
        let mut protobuf = false;
        for (k, v) in &own {
            protobuf = match v.as_str() {
                "json" => false,
                "protobuf" => true,
                _ => {
                    return Err(PluginError::invalid_parameters(format!(
                        "`{k}={}` in `{}`: expected json or protobuf",
                        options::shorten(v),
                        o.shown
                    )))
                }
            };
        }
        over_http(Self::NAME, o, otlp::Otlp { protobuf }, c)
    }
}

/// `gnocchi://host:8041`: resources and measures in Gnocchi, mapped by Ceilometer's
/// `gnocchi_resources.yaml`.
pub struct Gnocchi;
impl Kind for Gnocchi {
    const NAME: &'static str = "gnocchi";
    const DESCRIPTION: &'static str =
        "gnocchi://user@host:8041?resources_definition_file=gnocchi_resources.yaml&archive_policy=… — resources and measures in Gnocchi";
    const EXAMPLE: &'static str = "gnocchi://admin@gnocchi:8041";
    const OWN: &'static [&'static str] = &[
        "resources_definition_file",
        "archive_policy",
        "filter_project_id",
        "enable_filter_project",
        "filter_project",
        "filter_domain",
    ];
    fn start(
        _: &str,
        o: Options,
        own: Vec<(String, String)>,
        c: &Context,
    ) -> Result<Delivery, PluginError> {
        let get = |k: &str| {
            own.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        if get("filter_project").is_some() || get("filter_domain").is_some() {
            return Err(PluginError::invalid_parameters(format!(
                "`filter_project`/`filter_domain` in `{}`: ceilo does not ask Keystone for project names; give Gnocchi's project as filter_project_id=ID",
                o.shown
            )));
        }
        let file =
            gnocchi::definitions_file(get("resources_definition_file"), c.data_dir.as_deref());
        let definitions =
            std::sync::Arc::new(gnocchi::Definitions::load(&file, get("archive_policy"))?);
        let filter = match get("enable_filter_project").map(options::bool_from_string) {
            Some(Some(false)) => None,
            Some(None) => {
                return Err(PluginError::invalid_parameters(format!(
                    "`enable_filter_project` in `{}`: expected True or False",
                    o.shown
                )))
            }
            _ => get("filter_project_id").map(str::to_owned),
        };
        let client = client::Client::new(&o)?;
        let encoder = gnocchi::GnocchiEncoder::new(definitions.clone(), filter);
        let transport = gnocchi::GnocchiTransport::new(client, definitions);
        Delivery::start(Self::NAME, o, encoder, transport, c.validating)
    }
}

/// `tcp://host:4952`: Ceilometer's TCP publisher (signed meter messages in msgpack,
/// length-prefixed).
pub struct TcpStream;
impl Kind for TcpStream {
    const NAME: &'static str = "tcp";
    const DESCRIPTION: &'static str =
        "tcp://host:4952 — signed samples as length-prefixed msgpack, as Ceilometer's TCP publisher";
    const EXAMPLE: &'static str = "tcp://host:4952";
    fn start(
        raw: &str,
        o: Options,
        _: Vec<(String, String)>,
        c: &Context,
    ) -> Result<Delivery, PluginError> {
        if let Some(q) = o.target.query() {
            return Err(PluginError::invalid_parameters(format!(
                "`{}` in `{}`: tcp:// takes buffer, policy, batch_size, flush_timeout, timeout and max_retries only",
                options::shorten(q),
                o.shown
            )));
        }
        let url = url::Url::parse(raw)
            .map_err(|e| PluginError::invalid_parameters(format!("`{}`: {e}", o.shown)))?;
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let transport = tcp::Tcp::new(host, url.port().unwrap_or(tcp::DEFAULT_PORT), o.timeout);
        let encoder = tcp::Msgpack {
            secret: c.telemetry_secret().map(str::to_owned),
        };
        Delivery::start(Self::NAME, o, encoder, transport, c.validating)
    }
}

/// `http://`.
pub type HttpPublisher = Remote<Http>;
/// `https://`.
pub type HttpsPublisher = Remote<Https>;
/// `prometheus://`.
pub type PrometheusPublisher = Remote<PushGateway>;
/// `opentelemetryhttp://`.
pub type OpenTelemetryHttpPublisher = Remote<OpenTelemetryHttp>;
/// `gnocchi://`.
pub type GnocchiPublisher = Remote<Gnocchi>;
/// `tcp://`.
pub type TcpPublisher = Remote<TcpStream>;

ceilo_plugin_api::export_plugins! {
    publishers: [HttpPublisher, HttpsPublisher, PrometheusPublisher, OpenTelemetryHttpPublisher, GnocchiPublisher, TcpPublisher],
}
