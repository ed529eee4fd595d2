//! Log set-up: `RUST_LOG`-style filter, human format on a terminal, JSON on request.
//! Logs go to stderr so that command output on stdout stays machine-readable.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Installs the global subscriber. `level` is a `RUST_LOG`-style filter; `RUST_LOG`
/// wins when set.
pub fn init(level: &str, format: LogFormat) -> Result<(), String> {
    let format_name = match format {
        LogFormat::Human => "human",
        LogFormat::Json => "json",
    };
    let _ = CHILD_ARGS.set(vec![
        "--log-level".into(),
        level.into(),
        "--log-format".into(),
        format_name.into(),
    ]);
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::try_new(&env),
        _ => EnvFilter::try_new(level),
    }
    .map_err(|e| {
        format!("invalid log filter: {e} (example: --log-level info,ceilo::loader=debug)")
    })?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}

static CHILD_ARGS: OnceLock<Vec<String>> = OnceLock::new();

/// The log options this process was started with, for the processes it starts (plugin
/// workers log like their host).
pub fn child_args() -> Vec<String> {
    CHILD_ARGS.get().cloned().unwrap_or_default()
}
