//! `ceilo api`, and the API options `ceilo run` shares.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::pipeline_cmds::{
    load, new_runtime, open_store_reader, run_until_signal, settings, PipelineArgs,
    PipelineCommandError,
};
use crate::api::{self, ApiState, Auth, ServerOptions, SharedAuth, TlsFiles};
use crate::pipeline::{self, OutputMode, Runtime, StoreHandle};

/// Where and for whom the API serves.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiArgs {
    /// Address to listen on.
    #[arg(long, env = "CEILO_API_LISTEN", default_value = "127.0.0.1:8777")]
    pub listen: SocketAddr,
    /// Tokens file: a YAML mapping of token to `admin`, a project id, or
    /// `{project: id}`.
    #[arg(long, env = "CEILO_API_TOKENS")]
    pub tokens: Option<PathBuf>,
    /// Serve without authentication (everyone is admin).
    #[arg(long)]
    pub no_auth: bool,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(long, env = "CEILO_API_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "CEILO_API_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Connections open at once; more get a 503 and are closed.
    #[arg(long, default_value_t = 1024)]
    pub max_connections: usize,
    /// Time a client has to send a request's headers (and its TLS handshake).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// Time a client has to send a request's whole body; then 408.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub body_timeout: Duration,
    /// Serve under this URL path (`/telemetry`) instead of the root; links carry it.
    #[arg(long, env = "CEILO_API_URL_PREFIX", default_value = "", value_parser = parse_prefix)]
    pub url_prefix: String,
    /// A browser origin CORS lets in (`https://horizon.example.com`); repeat for more.
    /// None: no CORS headers.
    #[arg(
        long = "cors-origin",
        env = "CEILO_API_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
}

fn parse_prefix(text: &str) -> Result<String, String> {
    api::Deployment::normalise_prefix(text)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}`: {e} (expected a duration such as 10s or 2m)"))?;
    if d.is_zero() {
        return Err(format!("`{text}`: must be more than 0"));
    }
    Ok(d)
}

impl ApiArgs {
    /// The server's limits and TLS; the certificate and key are read now, so that a
    /// bad file is an error at start.
    pub fn server_options(&self) -> Result<ServerOptions, PipelineCommandError> {
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(
                api::tls_config(&TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                })
                .map_err(|e| PipelineCommandError::Api(format!("--tls-cert/--tls-key: {e}")))?,
            ),
            _ => None,
        };
        Ok(ServerOptions {
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            max_connections: self.max_connections,
            tls,
        })
    }

    /// The URL prefix and CORS origins.
    pub fn deployment(&self) -> api::Deployment {
        api::Deployment {
            prefix: self.url_prefix.clone(),
            cors_origins: self.cors_origins.clone(),
            https: self.tls_cert.is_some(),
        }
    }

    /// `http` or `https`, for what is printed.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The authentication to use; `open_on_loopback` lets `ceilo run` default to
    /// none when it listens on loopback only.
    pub fn auth(&self, open_on_loopback: bool) -> Result<(Auth, String), PipelineCommandError> {
        let fail = PipelineCommandError::Api;
        match (&self.tokens, self.no_auth) {
            (Some(_), true) => Err(fail("give either --tokens or --no-auth, not both".into())),
            (Some(file), false) => Ok((
                Auth::from_file(file).map_err(fail)?,
                format!("tokens from {}", file.display()),
            )),
            (None, true) => Ok((Auth::Open, "none (--no-auth): every request is admin".into())),
            (None, false) if open_on_loopback && self.listen.ip().is_loopback() => Ok((
                Auth::Open,
                "none: listening on loopback only, every request is admin (give --tokens to require tokens)".into(),
            )),
            (None, false) => Err(fail(format!(
                "the API on {} needs --tokens FILE (or --no-auth to serve without authentication)",
                self.listen
            ))),
        }
    }

    /// What reloads the tokens file into `auth` on SIGHUP and when the file changes
    /// (none without --tokens).
    pub(super) fn tokens_reload(
        &self,
        args: &PipelineArgs,
        auth: Arc<SharedAuth>,
    ) -> Option<crate::live::TokensReload> {
        Some(crate::live::TokensReload {
            file: self.tokens.clone()?,
            auth,
            settle: args.live.settle(),
            watch_file: !args.live.no_watch,
        })
    }
}

/// Binds the listener now, so that a taken port is an error at start.
pub(super) fn bind(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
) -> Result<tokio::net::TcpListener, PipelineCommandError> {
    rt.block_on(tokio::net::TcpListener::bind(addr))
        .map_err(|e| {
            PipelineCommandError::Io(std::io::Error::new(
                e.kind(),
                format!("cannot listen on {addr}: {e} (choose another with --listen)"),
            ))
        })
}

/// The pipeline POSTed samples go through (sinks only, no pollers).
fn ingress(
    l: &super::pipeline_cmds::Loaded,
    args: &PipelineArgs,
    store: &StoreHandle,
) -> Result<Arc<Mutex<Runtime>>, PipelineCommandError> {
    let mut host = settings(args);
    host.storage = Some(store.clone());
    let runtime = pipeline::wire(
        &l.config,
        &l.registry,
        &l.meters,
        OutputMode::Publishers,
        &host,
        false,
    )?;
    Ok(Arc::new(Mutex::new(runtime)))
}

/// `ceilo api`: serves the store until SIGINT/SIGTERM.
pub fn api_command(args: &PipelineArgs, api_args: &ApiArgs) -> Result<(), PipelineCommandError> {
    let (auth, auth_text) = api_args.auth(false)?;
    let rt = new_runtime()?;
    let store = open_store_reader(&rt, &args.storage, &args.data_dir)?;
    // POSTs go through the pipeline when there is one.
    let pipeline = if args.pipeline.exists() {
        let l = load(args)?;
        Some(ingress(&l, args, &store)?)
    } else {
        tracing::info!(target: "ceilo::api", "no {}: POST /v2/meters/NAME needs ?direct=True", args.pipeline.display());
        None
    };
    let options = api_args.server_options()?;
    let listener = bind(&rt, api_args.listen)?;
    tracing::info!(target: "ceilo::api", "API on {}://{} over {}; authentication: {auth_text}", api_args.scheme(), api_args.listen, store.store.describe());
    let auth = Arc::new(SharedAuth::new(auth));
    let state = ApiState {
        store: store.store,
        auth: auth.clone(),
        pipeline,
        deployment: api_args.deployment(),
    };
    let tokens = api_args.tokens_reload(args, auth);
    run_until_signal(rt, args.bounds.shutdown(), move |stop| async move {
        let reloads = tokens.map(|t| tokio::spawn(t.run(stop.clone())));
        if let Err(e) = api::serve(listener, state, options, stop).await {
            tracing::error!(target: "ceilo::api", "the API stopped: {e}");
        }
        if let Some(r) = reloads {
            let _ = r.await;
        }
    });
    Ok(())
}
