//! The options of every HTTP publisher, read from its URL as Ceilometer's
//! `HttpPublisher` reads them (`timeout`, `max_retries`, `batch`, `verify_ssl`,
//! `clientcert`, `clientkey`, `raw_only`, `ssl`, user and password for basic
//! authentication), plus ceilo's delivery options (`buffer`, `policy`, `batch_size`,
//! `flush_timeout`, `header`). What is left of the query goes to the endpoint, as in
//! Ceilometer. Unlike Ceilometer, a value that does not parse is an error naming the
//! option, not a silent default.

use std::path::PathBuf;
use std::time::Duration;

use ceilo_plugin_api::PluginError;

/// What to do when the buffer is full (as `amqp://`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Block the pipeline until the endpoint takes samples again.
    Queue,
    /// Drop the oldest buffered samples (counted and logged).
    Drop,
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// Against Mozilla's roots (as `requests` does with certifi).
    Default,
    /// Not at all (`verify_ssl=False`).
    Off,
    /// Against the CA bundle at this path (`verify_ssl=/path/ca.pem`).
    CaFile(PathBuf),
}

/// A parsed HTTP publisher URL.
#[derive(Debug, Clone)]
pub struct Options {
    /// The endpoint: `http(s)://host:port/path?rest`, without credentials or options.
    pub target: url::Url,
    /// The endpoint for messages (no password: credentials never reach the target).
    pub shown: String,
    pub timeout: Duration,
    /// Immediate attempts again after a failed request before the endpoint counts as
    /// down (the batch then waits, buffered, and is tried again with backoff).
    pub max_retries: u32,
    /// One request per publish batch (Ceilometer's `batch=True`), or one per sample.
    pub batch: bool,
    /// Events only in Ceilometer; accepted and ignored for samples.
    pub raw_only: bool,
    pub verify: Verify,
    /// `clientcert=` (PEM; may hold the key too) and `clientkey=`.
    pub client_cert: Option<(PathBuf, Option<PathBuf>)>,
    /// `Authorization` header value, from the URL's user and password.
    pub basic_auth: Option<String>,
    /// `header=Name: value`, repeatable.
    pub headers: Vec<(String, String)>,
    /// Samples kept while the endpoint is away.
    pub buffer: usize,
    pub policy: Policy,
    /// The most samples in one request.
    pub batch_size: usize,
    /// How long `flush` waits for the buffer to drain.
    pub flush_timeout: Duration,
}

/// Oslo's `bool_from_string(strict=True)`: None for anything else.
pub fn bool_from_string(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

impl Options {
    /// Parses `raw`. `http://` and `https://` say the scheme themselves; any other
    /// scheme (`prometheus://`, `opentelemetryhttp://`, `gnocchi://`) is plain HTTP
    /// unless `ssl=True`. `own` lists options of the calling publisher that are taken
    /// out of the query and returned (name, value), in order.
    pub fn parse(raw: &str, own: &[&str]) -> Result<(Options, Vec<(String, String)>), PluginError> {
        let url = url::Url::parse(raw).map_err(|e| {
            PluginError::invalid_parameters(format!("`{}` is not a URL: {e}", shorten(raw)))
        })?;
        let mut shown_url = url.clone();
        let _ = shown_url.set_password(None);
        let _ = shown_url.set_username("");
        shown_url.set_query(None);
        let shown = shown_url.to_string();
        if url.host_str().is_none_or(str::is_empty) {
            return Err(PluginError::invalid_parameters(format!(
                "`{shown}`: the endpoint needs a host name, e.g. {}://collector.example:8080/path",
                url.scheme()
            )));
        }
        let bad = |k: &str, v: &str, what: &str| {
            PluginError::invalid_parameters(format!("`{k}={}` in `{shown}`: {what}", shorten(v)))
        };
        let positive = |k: &str, v: &str| -> Result<u64, PluginError> {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(k, v, "expected a positive integer"))
        };
        let flag = |k: &str, v: &str| -> Result<bool, PluginError> {
            bool_from_string(v).ok_or_else(|| bad(k, v, "expected True or False"))
        };
        let mut o = Options {
            target: url.clone(),
            shown: String::new(),
            timeout: Duration::from_secs(5),
            max_retries: 2,
            batch: true,
            raw_only: false,
            verify: Verify::Default,
            client_cert: None,
            basic_auth: None,
            headers: Vec::new(),
            buffer: 100_000,
            policy: Policy::Queue,
            batch_size: 1_000,
            flush_timeout: Duration::from_secs(10),
        };
        let mut ssl = url.scheme() == "https";
        let (mut cert, mut key) = (None, None);
        let mut forwarded = Vec::new();
        let mut taken = Vec::new();
        for (k, v) in url.query_pairs() {
            let (k, v) = (k.as_ref(), v.as_ref());
            if own.contains(&k) {
                taken.push((k.to_owned(), v.to_owned()));
                continue;
            }
            match k {
                "timeout" => o.timeout = Duration::from_secs(positive(k, v)?),
                "max_retries" => {
                    o.max_retries = v
                        .parse()
                        .map_err(|_| bad(k, v, "expected a whole number (0 or more)"))?
                }
                "batch" => o.batch = flag(k, v)?,
                "raw_only" => o.raw_only = flag(k, v)?,
                "verify_ssl" => {
                    // As requests' `verify`: a flag, or the path of a CA bundle.
                    o.verify = match bool_from_string(v) {
                        Some(true) => Verify::Default,
                        Some(false) => Verify::Off,
                        None if v.is_empty() => Verify::Default,
                        None => Verify::CaFile(v.into()),
                    }
                }
                "clientcert" => cert = Some(PathBuf::from(v)),
                "clientkey" => key = Some(PathBuf::from(v)),
                "ssl" if !matches!(url.scheme(), "http" | "https") => ssl = flag(k, v)?,
                "buffer" => o.buffer = positive(k, v)? as usize,
                "batch_size" => o.batch_size = positive(k, v)? as usize,
                "flush_timeout" => o.flush_timeout = Duration::from_secs(positive(k, v)?),
                "policy" => {
                    o.policy = match v {
                        "queue" => Policy::Queue,
                        "drop" => Policy::Drop,
                        _ => {
                            return Err(bad(
                                k,
                                v,
                                "expected queue (block the pipeline) or drop (drop the oldest)",
                            ))
                        }
                    }
                }
                "header" => {
                    let (name, value) = v
                        .split_once(':')
                        .filter(|(n, _)| !n.trim().is_empty())
                        .ok_or_else(|| bad(k, v, "expected `Name: value`"))?;
                    o.headers
                        .push((name.trim().to_owned(), value.trim().to_owned()));
                }
                _ => forwarded.push((k.to_owned(), v.to_owned())),
            }
        }
        o.client_cert = match (cert, key) {
            (Some(c), k) => Some((c, k)),
            (None, Some(_)) => {
                return Err(PluginError::invalid_parameters(format!(
                    "`clientkey=` in `{shown}` needs `clientcert=` (the certificate it belongs to)"
                )))
            }
            (None, None) => None,
        };
        if !url.username().is_empty() {
            let user = percent_decode(url.username());
            let pass = url.password().map(percent_decode).unwrap_or_default();
            o.basic_auth = Some(format!(
                "Basic {}",
                base64_encode(&format!("{user}:{pass}"))
            ));
        }
        // The target: the scheme HTTP speaks, no credentials, the rest of the query.
        let mut target = url::Url::parse(&format!(
            "{}://{}",
            if ssl { "https" } else { "http" },
            &url[url::Position::BeforeHost..url::Position::AfterPath]
        ))
        .map_err(|e| PluginError::invalid_parameters(format!("`{shown}`: {e}")))?;
        if forwarded.is_empty() {
            target.set_query(None);
        } else {
            target.query_pairs_mut().extend_pairs(&forwarded);
        }
        if let Some(f) = url.fragment() {
            target.set_fragment(Some(f));
        }
        o.shown = target.to_string();
        o.target = target;
        Ok((o, taken))
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn base64_encode(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A value quoted in a message, cut to a readable length.
pub fn shorten(v: &str) -> String {
    const MAX: usize = 120;
    if v.chars().count() <= MAX {
        return v.to_owned();
    }
    let cut: String = v.chars().take(MAX).collect();
    format!("{cut}… ({} characters)", v.chars().count())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_leave_the_url_and_the_rest_goes_to_the_endpoint() {
        let (o, _) = Options::parse(
            "https://user:p%40ss@example.com:8443/path?verify_ssl=False&q=foo&timeout=1&max_retries=0&batch=no&header=X-Site:%20one",
            &[],
        )
        .unwrap();
        assert_eq!(o.target.as_str(), "https://example.com:8443/path?q=foo");
        assert_eq!(
            (o.timeout, o.max_retries, o.batch),
            (Duration::from_secs(1), 0, false)
        );
        assert_eq!(o.verify, Verify::Off);
        assert_eq!(o.basic_auth.as_deref(), Some("Basic dXNlcjpwQHNz")); // user:p@ss
        assert_eq!(o.headers, vec![("X-Site".to_owned(), "one".to_owned())]);
        assert!(!o.shown.contains("p%40ss") && !o.shown.contains("user"));
    }

    #[test]
    fn ceilometer_defaults() {
        let (o, _) = Options::parse("http://h/", &[]).unwrap();
        assert_eq!(
            (o.timeout, o.max_retries, o.batch),
            (Duration::from_secs(5), 2, true)
        );
        assert_eq!(
            (o.verify, o.raw_only, o.policy),
            (Verify::Default, false, Policy::Queue)
        );
        assert_eq!(o.target.as_str(), "http://h/");
    }

    #[test]
    fn other_schemes_speak_http_unless_ssl() {
        let (o, own) = Options::parse(
            "prometheus://gw:9091/metrics/job/x?ssl=1&job_label=a",
            &["job_label"],
        )
        .unwrap();
        assert_eq!(o.target.as_str(), "https://gw:9091/metrics/job/x");
        assert_eq!(own, vec![("job_label".to_owned(), "a".to_owned())]);
        let (o, _) = Options::parse("opentelemetryhttp://c:4318/v1/metrics", &[]).unwrap();
        assert_eq!(o.target.as_str(), "http://c:4318/v1/metrics");
    }

    #[test]
    fn verify_ssl_may_name_a_ca_bundle() {
        let (o, _) = Options::parse("https://h/?verify_ssl=/etc/ca.pem", &[]).unwrap();
        assert_eq!(o.verify, Verify::CaFile("/etc/ca.pem".into()));
    }

    #[test]
    fn errors_name_the_option() {
        let e = Options::parse("http://u:hunter2@h/?timeout=soon", &[]).unwrap_err();
        assert!(
            e.message().contains("`timeout=soon`") && !e.message().contains("hunter2"),
            "{e}"
        );
        let e = Options::parse("opentelemetryhttp:///v1/metrics", &[]).unwrap_err();
        assert!(e.message().contains("host name"), "{e}");
        let e = Options::parse("http://h/?policy=keep", &[]).unwrap_err();
        assert!(e.message().contains("queue"), "{e}");
        let e = Options::parse("http://h/?clientkey=k.pem", &[]).unwrap_err();
        assert!(e.message().contains("clientcert"), "{e}");
        let e = Options::parse(&format!("http://h/?batch={}", "y".repeat(500)), &[]).unwrap_err();
        assert!(e.message().len() < 400, "long values are cut: {e}");
    }
}
