//! The command line. The doc comments below are the `--help` text.

use std::ffi::OsString;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Secret;
use crate::domain::auth::Role;
use crate::domain::entry::RUN_ID_MAX;
use crate::domain::time;
use crate::telemetry::LogFormat;
use crate::transfer::Format;

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
    /// Run the service: REST API, status dashboard (/), API docs (/docs, /redoc), metrics
    /// (/metrics), health check, the scheduler and alert delivery.
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:8000; overrides server.bind.
        #[arg(long, value_name = "ADDR")]
        bind: Option<String>,
    },
    /// Create the database if needed and apply pending migrations, then exit.
    Migrate,
    /// Evaluate every job once against the database (no server needed), for Nagios,
    /// Icinga or a cron mail. Exit codes: 0 OK, 1 WARNING (a slot is within its grace and
    /// not reported yet), 2 CRITICAL (a job is late or failed), 3 UNKNOWN (cannot tell: no
    /// database, a corrupt one, not a database; answered at once, in one line).
    /// The first line is a one-line summary naming up to three of the jobs behind a
    /// CRITICAL or WARNING, then performance data; a `|` in a job's names shows as `¦` and a
    /// line break as a space, so no name can break the output.
    Check {
        /// Print a JSON document instead of text (same exit codes).
        #[arg(long)]
        json: bool,
    },
    /// Write a consistent copy of the database to FILE; safe while `serve` runs.
    ///
    /// The copy is one snapshot of the database, taken with SQLite's online backup API a few
    /// megabytes at a time: the service goes on storing reports meanwhile (those are not in
    /// the copy). It is written beside FILE under a temporary name (.FILE.partial-PID), must
    /// pass SQLite's integrity check, is synced to disk, and only then renamed to FILE, so
    /// FILE is never a half-written copy. The copy is one self-contained file (no -wal
    /// beside it), readable by its owner only (mode 0600: it holds the installation's badge
    /// secret and the tokens' hashes). Prints its path and size on stdout.
    ///
    /// An existing FILE is refused unless --force. To restore a copy, see the README's
    /// "Back up and restore": stop the service, put the copy in place of the database,
    /// remove its -wal and -shm files, start the service, run `backup-monitor check`.
    Backup {
        /// Where to write the copy.
        #[arg(long, short, value_name = "FILE")]
        output: PathBuf,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Send a test email through the configured SMTP server, to check the settings by hand.
    SendTestEmail {
        /// The recipient.
        #[arg(long, value_name = "ADDR")]
        to: String,
    },
    /// Send a test message through one alert channel (a name from [[notify.channels]], or
    /// `email` for the email channel, which sends to alerts.to), to check it by hand.
    ///
    /// On success, prints which channel took it. On failure, says what to fix: a name that
    /// does not resolve, nothing listening, a TLS handshake that failed, no answer within
    /// notify.timeout_seconds, or what the service's refusal (401, 403, 404…) usually means
    /// for that kind of channel; the channel's URL is never shown past its host. Exit code 0
    /// when the channel accepted the message, 1 otherwise.
    SendTest {
        /// The channel's name.
        #[arg(long, value_name = "NAME")]
        channel: String,
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
    /// Report one backup run to a backup-monitor server (the agent's side; no database
    /// needed here).
    ///
    /// Sends POST /api/v1/entries/ with the token as `Authorization: Bearer`. With --file,
    /// the file is read once (streamed, never loaded whole) for its SHA-256
    /// (`backup_hash = "sha256:<hex>"`) and its size (`backup_size_bytes`); a progress bar
    /// shows when stderr is a terminal.
    ///
    /// Network errors, 429 (after its Retry-After), 502/503/504 and 507 (disk full) are retried with
    /// exponential backoff (0.5 s, doubling, at most 5 s between tries) until --retry-for
    /// seconds have passed. Every try sends the same report, timestamp included, so a report
    /// that reached the server before the connection broke is not recorded twice: the
    /// server answers an identical repeat with the entry it already holds, which counts as
    /// success. Any other refusal (401, 403, 404, 422, ...) is final and explained.
    ///
    /// Runs: `--status started` reports that a backup began (send it alone: no --file, no
    /// --error); the job's next success or failed report finishes that run, and the server
    /// stores the run's duration on it (the span between the two reports' timestamps) and
    /// raises a hung alert if it goes on past the job's max_duration_minutes. Give the start
    /// and the finish the same --run-id to finish that run and no other (a script that
    /// starts and finishes in separate steps, several runs of one job at once); without one,
    /// the finish closes the job's latest open start. `report --file` sends no start of its
    /// own: the run it could measure is its hashing, not the backup, and its start would
    /// take the place of one your script sent. `exec` sends its start itself.
    ///
    /// Exit codes: 0 reported (the entry's id is printed alone on stdout), 1 refused by the
    /// server or given up, 2 usage error. The token is never printed.
    Report(ReportArgs),
    /// Run a backup command, then report its outcome (success if it exits 0, else failed).
    ///
    /// The command inherits stdin and stdout (nothing else is written to stdout, so
    /// `exec ... -- pg_dump mydb > mydb.dump` works); its stderr is shown live and its last
    /// 4 KiB are kept. A failure is reported with an error_message holding "exit code N"
    /// (or "killed by signal S") and the stderr tail, at most 4096 characters. With --file,
    /// the file is hashed and sized after a successful command; if it cannot be read then,
    /// the run is reported failed and the exit code is 1. The command gets this process's
    /// environment without BACKUP_MONITOR_TOKEN (BACKUP_MONITOR_URL stays).
    ///
    /// Before running the command, exec reports the run's start (`--status started`) with a
    /// fresh random run id (16 hex characters) that the finishing report carries too, so the
    /// server measures how long the backup took and can raise a hung alert (the job's
    /// max_duration_minutes) with no extra step. The start never holds the backup back: it
    /// gets 3 seconds at most (fewer with a smaller --retry-for), and if it is not through
    /// by then a warning is printed and the command runs anyway; its outcome is still
    /// reported, with the usual retries. The start is dated when it is sent and the
    /// finishing report when the command ended: the server computes the duration from the
    /// two, and the run counts for the slot whose window holds its end.
    ///
    /// Exit code: the command's own (128 + S if it was killed by signal S; 127 if it cannot
    /// be started, 126 if it is not executable, as a shell does; such runs are reported
    /// failed with "cannot start CMD: ..."), or 1 if it succeeded without writing its
    /// --file. If the report itself fails, the error is printed
    /// on stderr and the exit code is still the command's: the backup's outcome is what a
    /// caller such as cron acts on, and a run that never reached the server is caught there
    /// anyway, as a missed slot. Ctrl-C while the command runs reaches the command from the
    /// terminal, and a SIGTERM sent to backup-monitor is passed on to it: either way
    /// backup-monitor stays to report how the command ended.
    ///
    /// Network retries and refusals are handled as by `report`.
    Exec(ExecArgs),
    /// Check that a job's backup file is at its storage path on this host, and report what
    /// was found (the agent's side; no database needed here).
    ///
    /// Asks the server for the path of the slot whose window holds --at (GET
    /// /api/v1/jobs/N/expected_path, rendered from the job's final_storage_path_template),
    /// looks for that file under --root, and reports `success` with its SHA-256
    /// (`backup_hash = "sha256:<hex>"`, read once, streamed, with a progress bar when stderr
    /// is a terminal) and its size, or `failed` with an error_message that names the path and
    /// the reason: `expected file /mnt/nas/acme/Lyon/erp/2026-11-30.dump is missing`, `... is
    /// not a regular file: it is a directory`, `... cannot be read: Permission denied (os
    /// error 13)`.
    ///
    /// The report of the current slot (the one whose window holds now, as without --at) is
    /// dated now: it is then the job's latest word, so a missing file raises a failed alert
    /// even after the backup command reported success, and a later check that finds the file
    /// clears it. The report of a past slot is dated at that slot's time, so that it counts
    /// for the slot checked and not for tonight's (and, being history, pages nobody). A slot
    /// that has not begun is not checked. The report carries a run id of its own
    /// (`verify-` and 16 hex characters), so it never finishes a backup run under way.
    ///
    /// Requests are retried as by `report` (--retry-for) and refusals explained.
    ///
    /// Exit codes: 0 the file was found and reported as success; 1 the file is missing or
    /// unreadable and was reported as failed (in both cases the entry's id is printed alone
    /// on stdout); 2 nothing was reported: a usage error, a --root that is not a directory,
    /// a server that cannot be reached or refuses, a slot that has not begun. The token is
    /// never printed.
    Verify(VerifyArgs),
    /// Export or import the expected backup jobs as CSV or JSON, straight from and to the
    /// database (no server needed).
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
}

/// Where to report and for how long to keep trying.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's base URL, e.g. https://monitor.example.com (a path prefix behind a
    /// reverse proxy is kept: https://example.com/monitor).
    #[arg(long, env = "BACKUP_MONITOR_URL", value_name = "URL", value_parser = parse_url)]
    pub url: reqwest::Url,
    /// An agent token (bound to the job's agent_id_responsible) or an admin token. Prefer
    /// the environment variable: other users can see command-line flags in `ps`. Never
    /// printed.
    #[arg(
        long,
        env = "BACKUP_MONITOR_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        value_parser = parse_token
    )]
    pub token: Secret,
    /// Keep retrying network errors, 429, 502/503/504 and 507 for this many seconds, then give
    /// up (0: a single try).
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    pub retry_for: u64,
}

/// What an agent may report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportStatus {
    /// The backup ran and its file is where it should be.
    Success,
    /// The backup did not complete.
    Failed,
    /// A backup run began; its success or failed report comes later and finishes it.
    Started,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Success => "success",
            ReportStatus::Failed => "failed",
            ReportStatus::Started => "started",
        }
    }
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The job's id on the server (see GET /api/v1/jobs/).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub job_id: i64,
    /// The backup's outcome, or `started` when it begins.
    #[arg(long, value_enum)]
    pub status: ReportStatus,
    /// Names the run (at most 64 characters): a start and the success or failed report that
    /// gives the same id are one run. Without it a finish closes the job's latest open start.
    #[arg(long, value_name = "ID", value_parser = parse_run_id)]
    pub run_id: Option<String>,
    /// The backup file: its SHA-256 and size are sent with the report.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// What went wrong (for --status failed); more than 4096 characters keeps the end.
    #[arg(long, value_name = "MSG")]
    pub error: Option<String>,
    /// When the backup ran (RFC 3339, e.g. 2026-11-24T02:30:00Z; no offset means UTC).
    /// Default: now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    pub timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The job's id on the server (see GET /api/v1/jobs/).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub job_id: i64,
    /// The backup file the command writes: hashed and sized after it succeeds.
    #[arg(long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// The backup command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The job's id on the server (see GET /api/v1/jobs/).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    pub job_id: i64,
    /// Where the storage is mounted on this host. The expected path is looked for under it,
    /// part by part: /mnt/nas and /acme/Lyon/erp/2026-11-30.dump give
    /// /mnt/nas/acme/Lyon/erp/2026-11-30.dump, and a `..` part is refused, never followed
    /// out of it. It must be an existing directory (else nothing is reported, exit 2).
    /// Default: the expected path as it is.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Check the file of the slot whose window holds this instant (RFC 3339, e.g.
    /// 2026-11-30T02:30:00Z; no offset means UTC). Default: now.
    #[arg(long, value_name = "RFC3339", value_parser = parse_timestamp)]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Write every job (its id and every field it is created with) as JSON or CSV.
    ///
    /// JSON: an array of objects. CSV: a header row, then one row per job; notify_emails
    /// joined by `;`, booleans as true/false. `jobs import` reads both back.
    Export {
        /// Default: from the --output file's extension (.json, .csv), else json.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Write here instead of stdout.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Create (or with --upsert, update) jobs from a JSON or CSV file, all or nothing.
    ///
    /// Every row is validated with the API's rules first; if any is invalid, every error is
    /// printed (`row 3, expected_hour_utc: Input should be less than or equal to 23`; rows
    /// count from 1, the CSV header excluded), nothing is written and the exit code is 1.
    /// Otherwise all rows are written in one transaction.
    ///
    /// The columns (or JSON fields) are those of `jobs export`; only the API's required ones
    /// are needed, an empty CSV cell means "not given" (the default), `id`, `created_at`,
    /// `updated_at` and `badge_url` are ignored (the server assigns them, so the API's own
    /// job listing imports as it is), and any other name is an error.
    ///
    /// A job is identified by (company_name, city, database_name, agent_id_responsible).
    /// Without --upsert a row matching an existing job is an error, so that running an
    /// import twice never duplicates jobs. Two rows of the file with the same identity are
    /// an error too.
    Import {
        /// The file to read (`-` for stdin, with --format).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Default: from the file's extension (.json, .csv).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Update the job a row matches (every field as in the row, defaults for what it
        /// leaves out; changing the schedule counts lateness afresh from now) and create the
        /// others.
        #[arg(long)]
        upsert: bool,
    },
}

fn parse_url(s: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(s.trim()).map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the URL must start with http:// or https://".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put no user or password in the URL: the token authenticates".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("give the server's base URL, without ? or #".to_owned());
    }
    Ok(url)
}

fn parse_token(s: &str) -> Result<Secret, String> {
    let s = s.trim();
    if s.is_empty() {
        Err("the token is empty".to_owned())
    } else {
        Ok(Secret::new(s))
    }
}

/// A run id as the server takes it: not empty, at most [`RUN_ID_MAX`] characters.
fn parse_run_id(s: &str) -> Result<String, String> {
    let n = s.chars().count();
    if n == 0 {
        Err("the run id is empty".to_owned())
    } else if n > RUN_ID_MAX {
        Err(format!(
            "a run id has at most {RUN_ID_MAX} characters, this one has {n}"
        ))
    } else {
        Ok(s.to_owned())
    }
}

fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, String> {
    time::parse(s).ok_or_else(|| "not an RFC 3339 instant, e.g. 2026-11-24T02:30:00Z".to_owned())
}

/// A token's role, as `token create --role` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Everything: jobs, reports, reading.
    Admin,
    /// Reports and reads its own jobs only (those whose agent_id_responsible is its agent).
    Agent,
    /// Reads everything, changes nothing.
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Agent => Role::Agent,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token. Its secret is printed alone on the first line of stdout, once: it is
    /// stored only as a hash.
    Create {
        /// admin: everything; agent: reports and reads its own jobs; viewer: reads everything.
        #[arg(long, value_enum)]
        role: RoleArg,
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
    /// Load and check the configuration: print the effective settings (TOML, secrets
    /// redacted; a value that cannot be read shows its default), then every problem on
    /// stderr, one line each naming the key and where its value came from. Exits 1 if there
    /// is any problem (`serve` refuses to start on the first).
    Check,
}
