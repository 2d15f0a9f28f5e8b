//! One module per command of the binary; `run` dispatches the parsed command line to it and
//! turns its outcome into the process's exit code.

mod backup;
mod check;
mod config;
mod jobs;
mod send_test;
mod send_test_email;
mod serve;
mod token;

use std::process::ExitCode;

use anyhow::Context;

use crate::cli::{Cli, Command, ConfigCommand, GlobalArgs};
use crate::config::{Overrides, Settings};
use crate::{agent, api, output};

/// The context of a failed write on stdout (a closed pipe ends the process quietly instead).
const STDOUT: &str = "Failed to write to stdout";

/// Runs the command; errors print one line on stderr and exit 1.
pub fn run(cli: Cli) -> ExitCode {
    let global = cli.global;
    let outcome = match cli.command {
        // Nagios exit codes, UNKNOWN included: `check` answers for itself.
        Command::Check { json } => return check::run(&global, json),
        // The agent's side needs no configuration file and no database.
        Command::Report(args) => return agent::report(&args),
        Command::Exec(args) => return agent::exec(&args),
        Command::Verify(args) => return agent::verify(&args),
        Command::Openapi => output::println(&api::openapi::to_json()).context(STDOUT),
        Command::Config {
            command: ConfigCommand::Check,
        } => config::check(&global),
        Command::SendTestEmail { to } => {
            load(&global, None).and_then(|s| send_test_email::run(&s, &to))
        }
        Command::SendTest { channel } => {
            load(&global, None).and_then(|s| send_test::run(&s, &channel))
        }
        Command::Jobs { command } => jobs::run(&global, command),
        Command::Token { command } => load(&global, None).and_then(|s| token::run(&s, command)),
        Command::Migrate => load(&global, None).and_then(|s| serve::migrate(&s)),
        Command::Digest => load(&global, None).and_then(|s| digest(&s)),
        Command::Backup { output, force } => {
            load(&global, None).and_then(|s| backup::run(&s, &output, force))
        }
        Command::Serve { bind } => load(&global, bind).and_then(serve::run),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// `digest`: today's digest of the database, printed.
fn digest(settings: &Settings) -> anyhow::Result<()> {
    let conn = crate::db::open_current(&settings.database_path())?;
    let digest = crate::service::digest::today(&conn, chrono::Utc::now())
        .context("Failed to read the jobs")?;
    output::print(&digest.text).context(STDOUT)
}

/// Loads `./.env` into the environment, as the seed read it; real variables win. Only the
/// working directory's: `dotenvy::dotenv()` also searches every parent directory, so a
/// `.env` planted in `/tmp` would steer a command run from `/tmp/backups` (its database,
/// its reports' server and token).
pub fn read_dotenv() -> Result<(), dotenvy::Error> {
    dotenvy::from_path(std::path::Path::new(".env"))
}

/// Warns about a `.env` file that exists but cannot be read (a missing one is fine).
pub fn warn_unreadable_dotenv(read: Result<(), dotenvy::Error>) {
    if let Err(e) = read {
        if !e.not_found() {
            tracing::warn!(error = %e, "ignoring unreadable .env file");
        }
    }
}

/// The settings from the config file, the environment and the global flags (and `--bind`).
fn load(global: &GlobalArgs, bind: Option<String>) -> anyhow::Result<Settings> {
    let overrides = Overrides {
        database_url: global.database.clone(),
        bind,
    };
    Ok(crate::config::load(global.config.as_deref(), &overrides)?)
}

fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
