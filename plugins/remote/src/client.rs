//! The HTTP transport of a publisher: ureq over rustls, with the publisher's timeout,
//! certificate checking and client certificate. One POST is one [`Request`]; its
//! outcome says whether trying again can help.

use std::sync::Arc;

use ceilo_plugin_api::PluginError;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::options::{shorten, Options, Verify};

/// One request of a batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Request {
    /// Appended to the endpoint's path (Prometheus' per-resource grouping).
    pub suffix: String,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    /// How many samples it carries (for the counters).
    pub samples: usize,
    /// What a transport needs besides the body (Gnocchi: the batch's resources, for
    /// the calls that follow the measures).
    pub attachment: Option<serde_json::Value>,
}

/// Why a request did not go through.
#[derive(Debug)]
pub enum Failure {
    /// The endpoint could not be reached, timed out, or answered 408, 429 or 5xx:
    /// the same request may succeed later.
    Transient(String),
    /// The endpoint answered that it will not take this request (any other 4xx):
    /// sending it again cannot help.
    Rejected(String),
}

/// A ready client for one endpoint.
pub struct Client {
    agent: ureq::Agent,
    options: Options,
}

impl Client {
    /// Builds the client; a CA bundle or client certificate that cannot be read is an
    /// error naming the option and the file.
    pub fn new(options: &Options) -> Result<Client, PluginError> {
        let mut tls = TlsConfig::builder();
        match &options.verify {
            Verify::Default => {}
            Verify::Off => tls = tls.disable_verification(true),
            Verify::CaFile(path) => {
                let certs = read_pem(path, "verify_ssl")?
                    .into_iter()
                    .filter_map(|i| match i {
                        PemItem::Certificate(c) => Some(c),
                        _ => None,
                    })
                    .collect::<Vec<Certificate<'static>>>();
                if certs.is_empty() {
                    return Err(PluginError::invalid_parameters(format!(
                        "`verify_ssl={}`: no certificate in that file (expected PEM)",
                        path.display()
                    )));
                }
                tls = tls.root_certs(RootCerts::Specific(Arc::new(certs)));
            }
        }
        if let Some((cert, key)) = &options.client_cert {
            let mut chain = Vec::new();
            let mut private: Option<PrivateKey<'static>> = None;
            let items = read_pem(cert, "clientcert")?.into_iter().chain(
                key.iter()
                    .map(|k| read_pem(k, "clientkey"))
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .flatten(),
            );
            for item in items {
                match item {
                    PemItem::Certificate(c) => chain.push(c),
                    PemItem::PrivateKey(k) => private = Some(k),
                    _ => {}
                }
            }
            let Some(private) = private.filter(|_| !chain.is_empty()) else {
                return Err(PluginError::invalid_parameters(format!(
                    "`clientcert={}`: expected a PEM certificate and its key (in that file, or in `clientkey=`)",
                    cert.display()
                )));
            };
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, private)));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(options.timeout))
            .tls_config(tls.build())
            .user_agent(concat!("ceilo/", env!("CARGO_PKG_VERSION")))
            .build();
        Ok(Client {
            agent: ureq::Agent::new_with_config(config),
            options: options.clone(),
        })
    }

    /// One call of a REST API under the endpoint (Gnocchi's): `method` on the target's
    /// path followed by `path`, a JSON body, JSON asked for. Returns the status and the
    /// answer (up to 1 MiB); `Err` when no answer came.
    pub fn call(&self, method: &str, path: &str, body: &[u8]) -> Result<(u16, String), String> {
        let mut url = self.options.target.clone();
        let full = format!("{}{path}", url.path().trim_end_matches('/'));
        let (p, q) = full.split_once('?').unwrap_or((&full, ""));
        url.set_path(p);
        url.set_query((!q.is_empty()).then_some(q));
        let request = ureq::http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        let request = match &self.options.basic_auth {
            Some(auth) => request.header("Authorization", auth),
            None => request,
        };
        let request = self
            .options
            .headers
            .iter()
            .fold(request, |r, (k, v)| r.header(k, v));
        let request = request
            .body(body.to_vec())
            .map_err(|e| format!("{}: {e}", self.options.shown))?;
        let mut response = self
            .agent
            .run(request)
            .map_err(|e| format!("{}: {e}", self.options.shown))?;
        let text = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .unwrap_or_default();
        Ok((response.status().as_u16(), text))
    }

    /// The endpoint for messages.
    pub fn shown(&self) -> &str {
        &self.options.shown
    }

    /// The endpoint's URL for `request`.
    pub fn url_of(&self, request: &Request) -> String {
        if request.suffix.is_empty() {
            return self.options.target.to_string();
        }
        let mut url = self.options.target.clone();
        let path = format!("{}{}", url.path().trim_end_matches('/'), request.suffix);
        url.set_path(&path);
        url.to_string()
    }
}

impl crate::delivery::Transport for Client {
    /// POSTs `request` once.
    fn send(&mut self, request: &Request) -> Result<(), Failure> {
        let url = self.url_of(request);
        let mut call = self
            .agent
            .post(&url)
            .header("Content-Type", request.content_type);
        if let Some(auth) = &self.options.basic_auth {
            call = call.header("Authorization", auth);
        }
        for (name, value) in &self.options.headers {
            call = call.header(name, value);
        }
        match call.send(&request.body[..]) {
            Ok(mut response) => {
                let status = response.status().as_u16();
                // Read to the end (bounded), so the connection goes back to the pool.
                let body = response
                    .body_mut()
                    .with_config()
                    .limit(64 * 1024)
                    .read_to_string()
                    .unwrap_or_default();
                if (200..300).contains(&status) {
                    return Ok(());
                }
                let why = format!(
                    "{} answered {status}{}",
                    self.options.shown,
                    if body.trim().is_empty() {
                        String::new()
                    } else {
                        format!(": {}", shorten(body.trim()))
                    }
                );
                if status == 408 || status == 429 || status >= 500 {
                    Err(Failure::Transient(why))
                } else {
                    Err(Failure::Rejected(why))
                }
            }
            Err(e) => Err(Failure::Transient(format!("{}: {e}", self.options.shown))),
        }
    }
}

fn read_pem(path: &std::path::Path, option: &str) -> Result<Vec<PemItem<'static>>, PluginError> {
    let bytes = std::fs::read(path).map_err(|e| {
        PluginError::invalid_parameters(format!(
            "`{option}={}`: cannot read it: {e}",
            path.display()
        ))
    })?;
    ureq::tls::parse_pem(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            PluginError::invalid_parameters(format!("`{option}={}`: not PEM: {e}", path.display()))
        })
}
