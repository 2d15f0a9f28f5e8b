//! The command line. The doc comments below are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::domain::auth::Role;
use crate::telemetry::LogFormat;

/// Know, every morning, that every database backup of every company and site really
/// happened.
///
/// With no configuration at all, `backup-monitor serve` listens on 127.0.0.1:8000 and keeps
/// its data in ./backup-monitor.db.
#[derive(Debug, Parser)]
#[command(name = "backup-monitor", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML); see monitor.toml.example. Also BACKUP_MONITOR_CONFIG.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL or path (sqlite://backup-monitor.db); overrides DATABASE_URL and the file.
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: REST API, API docs (/docs, /redoc) and health check.
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8000; overrides server.bind.
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
    },
    /// Create the database if needed and apply pending migrations, then exit.
    Migrate,
    /// Evaluate every job once against the database (no server needed), for Nagios,
    /// Icinga or a cron mail. Exit codes: 0 OK, 1 WARNING (a slot is within its grace and
    /// not reported yet), 2 CRITICAL (a job is late or failed), 3 UNKNOWN (cannot tell).
    /// The first line is a one-line summary.
    Check {
        /// Print a JSON document instead of text (same exit codes).
        #[arg(long)]
        json: bool,
    },
    /// Send a test email through the configured SMTP server, to check the settings by hand.
    SendTestEmail {
        /// The recipient.
        #[arg(long, value_name = "ADDR")]
        to: String,
    },
    /// Manage API tokens (admin, agent, viewer).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the OpenAPI document (JSON) on stdout.
    Openapi,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token. Its secret is printed alone on the first line of stdout, once: it is
    /// stored only as a hash.
    Create {
        /// admin: everything; agent: reports and reads its own jobs; viewer: reads everything.
        #[arg(long, value_enum)]
        role: Role,
        /// The agent an agent token is bound to (its jobs' agent_id_responsible).
        #[arg(long, value_name = "AGENT")]
        agent_id: Option<String>,
        /// A name to recognise the token by in `token list`.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List tokens: ids, roles, agents, names, dates. Never the secrets.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: it stops working at once.
    Revoke {
        /// The token's id, from `token list`.
        id: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and check the configuration, then print it (TOML) with secrets redacted.
    /// Exits 1 with one line naming the bad key if it is invalid.
    Check,
}
