//! The API's HTTP server: accepts connections (over TLS when configured), bounds how
//! many are open and how long a client may take to send a request, and stops
//! gracefully.
//!
//! `axum::serve` has neither a connection limit nor read timeouts: a client that
//! sends headers announcing a large body and then nothing held its connection (and a
//! task) forever. Here:
//! - headers must arrive within `header_timeout` (hyper's own timer);
//! - the body must arrive whole within `body_timeout` (read before the handler runs,
//!   at most [`MAX_BODY_BYTES`]), else 408;
//! - past `max_connections` open connections, a new one gets a 503 and is closed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

use super::{router, ApiError, ApiState};

/// The largest request body read (POSTed samples), as axum's default limit.
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// How long open requests may take to finish once the server is stopping.
const DRAIN: Duration = Duration::from_secs(10);

/// Limits and TLS for the server.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Time allowed to send the request line and headers (and the TLS handshake).
    pub header_timeout: Duration,
    /// Time allowed to send the whole body.
    pub body_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Serve HTTPS with this (see [`tls_config`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1024,
            tls: None,
        }
    }
}

/// PEM files for HTTPS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A TLS file is missing or not what it should be.
    #[error("{path}: {reason}")]
    Tls {
        /// The file.
        path: String,
        /// What is wrong and what would fix it.
        reason: String,
    },
}

/// Reads the certificate chain and key and builds the TLS configuration (ring, TLS
/// 1.2 and 1.3, no client certificates).
pub fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let fail = |path: &Path, reason: String| ServerError::Tls {
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| fail(&files.cert, format!("cannot read the certificate: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| fail(&files.cert, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(fail(
            &files.cert,
            "no certificate in it (expected PEM `BEGIN CERTIFICATE` blocks)".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        fail(
            &files.key,
            format!("no usable private key: {e} (expected a PEM PKCS#8, PKCS#1 or SEC1 key)"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(&files.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            fail(
                &files.key,
                format!("the key does not go with the certificate: {e}"),
            )
        })?;
    Ok(Arc::new(config))
}

/// Serves until `shutdown` turns true, then lets open requests finish (up to 10 s).
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    options: ServerOptions,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let tls = options.tls.clone().map(TlsAcceptor::from);
    let body_timeout = options.body_timeout;
    let app = router(state).layer(middleware::from_fn(move |req, next| {
        read_body_within(req, next, body_timeout)
    }));
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(target: "ceilo::api", "accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(target: "ceilo::api", %peer, "connection refused: {} connections already open (--max-connections)", options.max_connections);
            tokio::spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let header_timeout = options.header_timeout;
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(header_timeout);
        match &tls {
            None => {
                let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(target: "ceilo::api", %peer, "connection ended: {e}");
                    }
                    drop(slot);
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let handshake =
                        tokio::time::timeout(header_timeout, acceptor.accept(stream)).await;
                    let stream = match handshake {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(target: "ceilo::api", %peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(target: "ceilo::api", %peer, "TLS handshake not done within {header_timeout:?}");
                            return;
                        }
                    };
                    let conn = watcher.watch(http.serve_connection(TokioIo::new(stream), service));
                    if let Err(e) = conn.await {
                        tracing::debug!(target: "ceilo::api", %peer, "connection ended: {e}");
                    }
                    drop(slot);
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(target: "ceilo::api", "requests still open after {DRAIN:?} of shutdown: closed");
    }
    Ok(())
}

/// Answers a connection over the limit with a 503 and closes it.
async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    let body = serde_json::to_vec(&super::error::body(
        "too many connections open; retry shortly",
    ))
    .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

/// Reads the whole request body before the handler runs: within `within`, else 408;
/// at most [`MAX_BODY_BYTES`], else 413.
async fn read_body_within(req: Request, next: Next, within: Duration) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(within, axum::body::to_bytes(body, MAX_BODY_BYTES)).await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let too_large = e
                .into_inner()
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some();
            return if too_large {
                ApiError {
                    status: StatusCode::PAYLOAD_TOO_LARGE,
                    message: format!("the request body is over {MAX_BODY_BYTES} bytes"),
                }
            } else {
                ApiError::bad_request("the request body could not be read")
            }
            .into_response();
        }
        Err(_) => {
            let mut r = ApiError {
                status: StatusCode::REQUEST_TIMEOUT,
                message: format!("the request body did not arrive within {within:?}"),
            }
            .into_response();
            r.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
            return r;
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}
