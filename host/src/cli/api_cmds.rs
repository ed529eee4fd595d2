//! `ceilo api`, and the API options `ceilo run` shares.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::pipeline_cmds::{
    load, new_runtime, open_store_reader, run_until_signal, settings, PipelineArgs,
    PipelineCommandError,
};
use crate::api::{self, ApiState, Auth};
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
}

impl ApiArgs {
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
    let listener = bind(&rt, api_args.listen)?;
    tracing::info!(target: "ceilo::api", "API on http://{} over {}; authentication: {auth_text}", api_args.listen, store.store.describe());
    let state = ApiState {
        store: store.store,
        auth: Arc::new(auth),
        pipeline,
    };
    run_until_signal(rt, args.bounds.shutdown(), move |stop| async move {
        if let Err(e) = api::serve(listener, state, stop).await {
            tracing::error!(target: "ceilo::api", "the API stopped: {e}");
        }
    });
    Ok(())
}
