//! The `backup-monitor` binary: parse the command line, set up logs, dispatch.

use std::process::ExitCode;

use backup_monitor::cli::Cli;
use backup_monitor::{commands, telemetry};
use clap::Parser;

fn main() -> ExitCode {
    // Read before the command line, whose BACKUP_MONITOR_URL/TOKEN may come from it.
    let dotenv = commands::read_dotenv();
    let cli = Cli::parse();
    // Held to the end: dropping it writes out the log lines still queued.
    let _logs = telemetry::init(cli.global.log_format);
    commands::warn_unreadable_dotenv(dotenv);
    commands::run(cli)
}
