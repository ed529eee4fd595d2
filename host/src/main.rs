//! The `ceilo` binary: parses the command line and runs the subcommand.

use std::process::ExitCode;

use ceilo_host::cli::{
    agent_command, plugins_command, poll_once_command, validate_command, Cli, Command, Query,
};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = ceilo_host::logging::init(&cli.log_level, cli.log_format) {
        eprintln!("ceilo: {e}");
        return ExitCode::from(2);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // `ceilo plugins | head` is not an error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ceilo: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Plugins {
            plugin_dir,
            isolation,
            format,
            api_url,
            token,
        } => {
            let stdout = std::io::stdout();
            match api_url {
                Some(url) => ceilo_host::cli::running_plugins_command(
                    &url,
                    token.as_deref(),
                    format,
                    &mut stdout.lock(),
                )?,
                None => plugins_command(
                    plugin_dir.as_deref(),
                    &isolation,
                    format,
                    &mut stdout.lock(),
                )?,
            }
        }
        Command::PluginWorker { library } => ceilo_host::loader::serve_worker(&library)?,
        Command::Validate {
            args,
            event_definitions,
            event_pipeline,
        } => {
            let stdout = std::io::stdout();
            validate_command(&args, &mut stdout.lock())?;
            if let Some(file) = event_definitions {
                ceilo_host::cli::validate_event_definitions(&file, &args, &mut stdout.lock())?;
            }
            if let Some(file) = event_pipeline {
                ceilo_host::cli::validate_event_pipeline(&file, &mut stdout.lock())?;
            }
        }
        Command::Poll { once: _, args } => {
            let failures = poll_once_command(&args)?;
            if failures > 0 {
                anyhow::bail!("{failures} poll(s) failed (see above)");
            }
        }
        Command::Run { args } => {
            let stdout = std::io::stdout();
            ceilo_host::cli::run_command(&args, &mut stdout.lock())?
        }
        Command::Agent { args } => agent_command(&args)?,
        Command::Collector { args } => ceilo_host::cli::collector_command(&args)?,
        Command::Api { args, api } => ceilo_host::cli::api_command(&args, &api)?,
        Command::Meters { client } => query(Query::Meters, &client)?,
        Command::Samples { meter, client } => query(Query::Samples { meter }, &client)?,
        Command::Statistics {
            meter,
            period,
            groupby,
            client,
        } => query(
            Query::Statistics {
                meter,
                period,
                groupby,
            },
            &client,
        )?,
        Command::Resources { client } => query(Query::Resources, &client)?,
        Command::Events { event_type, client } => query(Query::Events { event_type }, &client)?,
        Command::Notification { args, notification } => {
            ceilo_host::cli::notification_command(&args, &notification)?
        }
    }
    Ok(())
}

fn query(q: Query, client: &ceilo_host::cli::ApiClientArgs) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    ceilo_host::cli::query_command(&q, client, &mut stdout.lock())?;
    Ok(())
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}
