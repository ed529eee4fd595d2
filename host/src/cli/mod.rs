//! The `ceilo` command line.

mod api_cmds;
mod event_args;
mod host_args;
mod pipeline_cmds;
mod plugins;
mod query_cmds;
mod reload;
mod service_cmds;
mod table;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::logging::LogFormat;

pub use api_cmds::{api_command, ApiArgs};
pub use event_args::EventArgs;
pub use host_args::{BoundsArgs, IsolationArgs, LiveArgs};
pub use pipeline_cmds::{
    agent_command, notification_command, poll_once_command, validate_command,
    validate_event_definitions, validate_event_pipeline, NotificationArgs, PipelineArgs,
    PipelineCommandError, StorageArgs,
};
pub use plugins::{plugins_command, running_plugins_command, OutputFormat};
pub use query_cmds::{query_command, ApiClientArgs, Query, QueryError};
pub use service_cmds::{collector_command, run_command, CollectorArgs, RunArgs, DEFAULT_PIPELINE};

/// ceilo — metering and monitoring collector with dynamically loaded plugins.
#[derive(Debug, Parser)]
#[command(name = "ceilo", version, about, long_about = None)]
pub struct Cli {
    /// Log filter, RUST_LOG syntax (RUST_LOG wins when set).
    #[arg(long, global = true, default_value = "info", env = "CEILO_LOG_LEVEL")]
    pub log_level: String,
    /// Log format.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "human",
        env = "CEILO_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process on embedded defaults: the polling agent, the
    /// store (<data-dir>/ceilo.db unless --storage), and the notification agent when
    /// --amqp-url is given. Stops on SIGINT or SIGTERM.
    Run {
        #[command(flatten)]
        args: RunArgs,
    },
    /// List the plugins found in the plugin directory, and the libraries refused.
    Plugins {
        /// Directory to scan for plugin libraries (*.so).
        #[arg(long, env = "CEILO_PLUGIN_DIR")]
        plugin_dir: Option<PathBuf>,
        #[command(flatten)]
        isolation: IsolationArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: OutputFormat,
        /// Ask a running service instead (its API, or an agent's --status-listen):
        /// what it has loaded, refused and failed, with generations and reloads.
        #[arg(long, value_name = "URL", conflicts_with = "plugin_dir")]
        api_url: Option<String>,
        /// Token for --api-url, sent as X-Auth-Token.
        #[arg(long, env = "CEILO_API_TOKEN", hide_env_values = true)]
        token: Option<String>,
    },
    /// Check a pipeline.yaml against the loaded plugins and print its wiring.
    Validate {
        #[command(flatten)]
        args: PipelineArgs,
        /// Also check an event definitions file (Ceilometer's
        /// `event_definitions.yaml` format): every definition that cannot be used is
        /// reported with its line, and any makes the check fail.
        #[arg(long, value_name = "FILE", env = "CEILO_EVENT_DEFINITIONS")]
        event_definitions: Option<std::path::PathBuf>,
        /// Also check an event pipeline (Ceilometer's `event_pipeline.yaml` format).
        #[arg(long, value_name = "FILE", env = "CEILO_EVENT_PIPELINE")]
        event_pipeline: Option<std::path::PathBuf>,
    },
    /// Run one polling cycle and print the samples the publishers would get, as JSON
    /// lines (publishers are not called).
    Poll {
        /// Run a single cycle (the only mode).
        #[arg(long, required = true)]
        once: bool,
        #[command(flatten)]
        args: PipelineArgs,
    },
    /// Run the polling agent until SIGINT or SIGTERM.
    Agent {
        #[command(flatten)]
        args: PipelineArgs,
    },
    /// Run the notification agent (AMQP notifications → handlers → pipeline) until
    /// SIGINT or SIGTERM.
    Notification {
        #[command(flatten)]
        args: PipelineArgs,
        #[command(flatten)]
        notification: NotificationArgs,
    },
    /// Run the collector (RabbitMQ `metering.sample` → store) until SIGINT or SIGTERM.
    Collector {
        #[command(flatten)]
        args: CollectorArgs,
    },
    /// Serve the HTTP API (Ceilometer v2) over the store until SIGINT or SIGTERM.
    Api {
        #[command(flatten)]
        args: PipelineArgs,
        #[command(flatten)]
        api: ApiArgs,
    },
    /// List meters (one per meter and resource) from the API.
    Meters {
        #[command(flatten)]
        client: ApiClientArgs,
    },
    /// List a meter's samples, newest first, from the API.
    Samples {
        /// The meter, e.g. cpu_util.
        meter: String,
        #[command(flatten)]
        client: ApiClientArgs,
    },
    /// A meter's statistics from the API.
    Statistics {
        /// The meter, e.g. cpu_util.
        meter: String,
        /// Period in seconds (none: one period over everything).
        #[arg(long)]
        period: Option<u64>,
        /// Group by resource_id, project_id, user_id, source or resource_metadata.KEY
        /// (repeatable).
        #[arg(long)]
        groupby: Vec<String>,
        #[command(flatten)]
        client: ApiClientArgs,
    },
    /// List resources from the API.
    Resources {
        #[command(flatten)]
        client: ApiClientArgs,
    },
    /// List events from the API, oldest first (`-q trait:type<op>value` filters by
    /// trait, e.g. `-q memory_mb:integer>=512`).
    Events {
        /// Only events of this type, e.g. compute.instance.create.end.
        #[arg(long = "type")]
        event_type: Option<String>,
        #[command(flatten)]
        client: ApiClientArgs,
    },
    /// Internal: serve one plugin instance of LIBRARY over stdin/stdout for a host
    /// (started by the services for isolated libraries).
    #[command(hide = true)]
    PluginWorker {
        /// The plugin library.
        library: PathBuf,
    },
}
