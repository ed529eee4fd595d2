//! Options every command that loads plugins shares: how plugins are isolated, and the
//! bounds the services keep whatever a plugin does.

use std::time::Duration;

use crate::loader::{IsolationMode, IsolationPolicy, WorkerSettings};

/// Which plugin libraries run in worker processes.
#[derive(Debug, Clone, clap::Args)]
pub struct IsolationArgs {
    /// Which plugin libraries run in worker processes of their own: `auto` (every
    /// library except ceilo's built-ins), `all`, or `none`.
    #[arg(long, value_enum, default_value = "auto", env = "CEILO_ISOLATION")]
    pub isolation: IsolationMode,
    /// A library (file name, e.g. libacme.so) to run in a worker whatever --isolation
    /// says; repeatable.
    #[arg(long = "isolate", value_name = "FILE")]
    pub isolate: Vec<String>,
    /// A library (file name) to run in the host process whatever --isolation says;
    /// repeatable. Wins over --isolate.
    #[arg(long = "in-process", value_name = "FILE")]
    pub in_process: Vec<String>,
    /// Address space each plugin worker may use, in MiB (0: unlimited). A worker past it
    /// aborts and is restarted.
    #[arg(long, default_value_t = 4096, value_name = "MIB")]
    pub worker_memory_limit: u64,
    /// How long a call into a worker other than a poll (create, transform, publish,
    /// flush…) may take before the worker is killed and restarted, in seconds.
    #[arg(long, default_value_t = 30.0, value_name = "SECS", value_parser = positive_secs)]
    pub plugin_call_timeout: f64,
}

impl IsolationArgs {
    /// The policy, with workers started from this very binary.
    pub fn policy(&self) -> IsolationPolicy {
        let program = std::env::current_exe().unwrap_or_else(|_| "ceilo".into());
        IsolationPolicy {
            mode: self.isolation,
            isolate: self.isolate.clone(),
            in_process: self.in_process.clone(),
            worker: WorkerSettings {
                program,
                args: crate::logging::child_args(),
                memory_limit: (self.worker_memory_limit > 0)
                    .then(|| self.worker_memory_limit.saturating_mul(1024 * 1024)),
                call_timeout: Duration::from_secs_f64(self.plugin_call_timeout),
            },
        }
    }
}

/// Bounds the services keep.
#[derive(Debug, Clone, clap::Args)]
pub struct BoundsArgs {
    /// Refuse to start when a plugin cannot be created (default: leave it out with one
    /// error line and run everything else).
    #[arg(long)]
    pub strict: bool,
    /// The longest a poll may take, in seconds (default: its source's interval). An
    /// isolated poller past it is killed and restarted.
    #[arg(long, value_name = "SECS", value_parser = positive_secs)]
    pub poll_timeout: Option<f64>,
    /// Samples kept from one poll; the rest are cut, counted and logged.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub max_samples_per_poll: usize,
    /// How long shutdown (flushing included) may take before the process exits anyway,
    /// in seconds.
    #[arg(long, default_value_t = 10.0, value_name = "SECS", value_parser = positive_secs)]
    pub shutdown_timeout: f64,
}

impl BoundsArgs {
    /// The agent's settings.
    pub fn agent(&self) -> crate::services::agent::AgentSettings {
        crate::services::agent::AgentSettings {
            poll_timeout: self.poll_timeout.map(Duration::from_secs_f64),
            max_samples_per_poll: self.max_samples_per_poll.max(1),
        }
    }
    /// The shutdown bound.
    pub fn shutdown(&self) -> Duration {
        Duration::from_secs_f64(self.shutdown_timeout)
    }
}

fn positive_secs(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() && v < 1e9 => Ok(v),
        _ => Err(format!("`{text}` is not a positive number of seconds")),
    }
}

/// Live reloads and the status endpoint of the long-running services.
#[derive(Debug, Clone, clap::Args)]
pub struct LiveArgs {
    /// Do not watch the configuration files and the plugin directory (SIGHUP still
    /// reloads).
    #[arg(long)]
    pub no_watch: bool,
    /// How long watched files must be quiet before a reload reads them, in seconds (a
    /// library still being copied is not read half-written).
    #[arg(long, default_value_t = 1.0, value_name = "SECS", value_parser = positive_secs)]
    pub reload_settle: f64,
    /// `ceilo agent` and `ceilo notification`: serve `/metrics` and `/v2/plugins` (what
    /// is loaded, refused, failed; reloads) on this address, without authentication
    /// (default: not served; `ceilo run` serves both on its API).
    #[arg(long, env = "CEILO_STATUS_LISTEN", value_name = "ADDR")]
    pub status_listen: Option<std::net::SocketAddr>,
    /// `ceilo agent` and `ceilo run`: serve the latest value of every polled meter for
    /// Prometheus to scrape, as Ceilometer's polling agent exports them
    /// (`ceilometer_<meter>` gauges), with ceilo's own metrics, at `/metrics` on this
    /// address, without authentication (default: not served).
    #[arg(long, env = "CEILO_PROMETHEUS_LISTEN", value_name = "ADDR")]
    pub prometheus_listen: Option<std::net::SocketAddr>,
}

impl LiveArgs {
    /// The settle time.
    pub fn settle(&self) -> Duration {
        Duration::from_secs_f64(self.reload_settle)
    }
}
