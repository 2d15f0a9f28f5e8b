//! The `backup-monitor` binary: parse the command line, set up logs, dispatch.

use std::process::ExitCode;

use anyhow::Context;
use backup_monitor::app::{shutdown_signal, Application};
use backup_monitor::cli::{Cli, Command, ConfigCommand};
use backup_monitor::config::{self, Overrides};
use backup_monitor::db::Db;
use backup_monitor::{api, telemetry};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A .env file in the working directory, as the seed read it; real variables win.
    let dotenv = dotenvy::dotenv();
    telemetry::init(cli.global.log_format);
    if let Err(e) = dotenv {
        if !e.not_found() {
            tracing::warn!(error = %e, "ignoring unreadable .env file");
        }
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let bind = match &cli.command {
        Command::Serve { bind } => bind.clone(),
        _ => None,
    };
    let overrides = Overrides {
        database_url: cli.global.database.clone(),
        bind,
    };
    let load = || config::load(cli.global.config.as_deref(), &overrides);
    match cli.command {
        Command::Openapi => {
            println!("{}", api::openapi::to_json());
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let settings = load()?;
            print!("{}", settings.to_redacted_toml());
            Ok(())
        }
        Command::Migrate => {
            let settings = load()?;
            let path = settings.database_path();
            let applied = Db::open(&path)?.migrate()?;
            tracing::info!(database = %path.display(), applied, "database is up to date");
            Ok(())
        }
        Command::Serve { .. } => {
            let settings = load()?;
            let runtime = tokio::runtime::Runtime::new().context("Failed to start the runtime")?;
            runtime.block_on(async {
                let app = Application::build(settings).await?;
                app.run_until_stopped(shutdown_signal()).await
            })
        }
    }
}
