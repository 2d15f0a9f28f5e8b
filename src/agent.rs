//! The agent's side (DESIGN §7, §10): `report` sends one backup run (or its start) to the
//! server, `exec` runs the backup command between a start and a finish, `verify` checks the
//! file at the job's storage path and reports what it found. Retries with backoff; never
//! prints the token.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{ErrorKind, IsTerminal, Read};
use std::path::{Component, Path, PathBuf};
use std::process::{ExitCode, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::header::{LOCATION, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStderr};

use crate::cli::{ExecArgs, ReportArgs, ReportStatus, ServerArgs, VerifyArgs};
use crate::config::Secret;
use crate::domain::entry::ERROR_MESSAGE_MAX;
use crate::domain::time;
use crate::output;

/// The environment variable that may hold the agent's token.
const TOKEN_VARIABLE: &str = "BACKUP_MONITOR_TOKEN";
/// Files are hashed through a buffer of this size, never loaded whole.
const READ_BUFFER: usize = 64 * 1024;
/// How much of a command's stderr is kept for the report.
const STDERR_TAIL_BYTES: usize = 4096;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bounds on the time one try may take (the rest of the retry window, within these).
const MIN_TRY_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_TRY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for a command's stderr to close after the command ended (a process
/// it left in the background may hold it open).
const STDERR_DRAIN: Duration = Duration::from_secs(2);
/// The most time `exec` gives a run's start, retries included, before it runs the command
/// anyway: the start is worth a few seconds, never the backup.
pub const START_BUDGET: Duration = Duration::from_secs(3);
/// How long a start is retried: less than [`START_BUDGET`], so that a server that refuses
/// connections is given up with its own reason, and only one that never answers is cut
/// short by the budget.
const START_RETRY_FOR: Duration = Duration::from_secs(2);
/// Random bytes in a run id (16 hex characters).
const RUN_ID_BYTES: usize = 8;

/// A backup file's SHA-256 (`sha256:<hex>`) and size in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileDigest {
    pub hash: String,
    pub size: u64,
}

/// Hashes and sizes a file in one streaming pass, with a progress bar when stderr is a
/// terminal.
pub fn hash_file(path: &Path) -> std::io::Result<FileDigest> {
    let mut file = std::fs::File::open(path)?;
    let expected = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = progress_bar(path, expected);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut size: u64 = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(e);
            }
        };
        hasher.update(&buf[..n]);
        size += n as u64;
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok(FileDigest {
        hash: format!("sha256:{}", hex::encode(hasher.finalize())),
        size,
    })
}

fn progress_bar(path: &Path, len: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "hashing {msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
    ) {
        bar.set_style(style);
    }
    bar.set_message(path.display().to_string());
    bar
}

/// One backup run, as sent to `POST /api/v1/entries/`.
#[derive(Debug, Clone)]
pub struct Report {
    pub job_id: i64,
    pub status: ReportStatus,
    /// Fixed before the first try, so that every retry is an identical repeat.
    pub timestamp: DateTime<Utc>,
    pub file: Option<FileDigest>,
    pub error_message: Option<String>,
    /// The run a start begins or a finish closes (DESIGN §10).
    pub run_id: Option<String>,
}

impl Report {
    fn body(&self) -> Value {
        let mut body = Map::new();
        body.insert("expected_job_id".into(), json!(self.job_id));
        body.insert("status".into(), json!(self.status.as_str()));
        body.insert(
            "backup_timestamp_utc".into(),
            json!(time::format(self.timestamp)),
        );
        if let Some(file) = &self.file {
            body.insert("backup_hash".into(), json!(file.hash));
            body.insert("backup_size_bytes".into(), json!(file.size));
        }
        if let Some(message) = &self.error_message {
            body.insert("error_message".into(), json!(message));
        }
        if let Some(run_id) = &self.run_id {
            body.insert("run_id".into(), json!(run_id));
        }
        Value::Object(body)
    }
}

/// The server's answer to a report that was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// 201: a new entry.
    Created(i64),
    /// 200: an identical report was already stored.
    Repeated(i64),
}

impl Sent {
    pub fn entry_id(self) -> i64 {
        match self {
            Sent::Created(id) | Sent::Repeated(id) => id,
        }
    }
}

/// Why a report did not get through, in words a sysadmin can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ReportError(String);

/// The outcome of one try.
enum Try<T> {
    Done(T),
    Refused(String),
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
}

/// How long a call keeps trying, and what giving up means.
struct Patience<'a> {
    retry_for: Duration,
    /// The limit as the user set it, named in the message of giving up (`--retry-for 30`).
    limit: String,
    /// Appended to the message of giving up (`; the backup was NOT reported`).
    consequence: &'a str,
    /// Put before each line about a retry, to say which call it is about.
    what: &'a str,
}

/// A job's storage path for one slot, as `GET /api/v1/jobs/{id}/expected_path` answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedPath {
    pub slot: DateTime<Utc>,
    pub path: String,
}

/// An answer read whole, before it is judged.
struct Answer {
    status: StatusCode,
    retry_after: Option<Duration>,
    location: Option<String>,
    text: String,
    json: Option<Value>,
}

impl Answer {
    /// The try to make again after an answer that may change by itself (429, 502/503/504,
    /// 507: the server's disk is full, and space may be freed while we wait).
    fn passing(&self) -> Option<(String, Option<Duration>)> {
        matches!(self.status.as_u16(), 429 | 502..=504 | 507).then(|| {
            let reason = format!(
                "the server answered {}{}",
                self.status,
                detail(self.json.as_ref())
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            );
            (reason, self.retry_after)
        })
    }
}

/// Sends reports to one server with one token, and asks it for expected paths.
pub struct Reporter {
    client: reqwest::Client,
    /// The server's base URL, ending with `/`.
    base: Url,
    endpoint: Url,
    token: Secret,
    retry_for: Duration,
}

impl Reporter {
    pub fn new(server: &ServerArgs) -> Result<Self, ReportError> {
        crate::install_crypto_provider();
        let mut base = server.url.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let endpoint = base
            .join("api/v1/entries/")
            .map_err(|e| ReportError(format!("cannot build the report URL: {e}")))?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("backup-monitor/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            // A redirect would turn the POST into a GET: say where to point --url instead.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ReportError(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self {
            client,
            base,
            endpoint,
            token: server.token.clone(),
            retry_for: Duration::from_secs(server.retry_for),
        })
    }

    /// The patience of the user's --retry-for.
    fn patience<'a>(&self, consequence: &'a str) -> Patience<'a> {
        Patience {
            retry_for: self.retry_for,
            limit: format!("--retry-for {}", self.retry_for.as_secs()),
            consequence,
            what: "",
        }
    }

    /// Sends `report`, retrying network errors, 429, 502/503/504 and 507 with exponential
    /// backoff until the retry window has passed. Progress goes to stderr.
    pub async fn send(&self, report: &Report) -> Result<Sent, ReportError> {
        let patience = self.patience("; the backup was NOT reported");
        self.send_with(report, &patience).await
    }

    /// Sends a run's start as [`Reporter::send`] does, but gives it [`START_BUDGET`] at most,
    /// whatever the network does (a try that hangs is cut short): the backup waits for it.
    pub async fn send_start(&self, report: &Report) -> Result<Sent, ReportError> {
        let patience = Patience {
            retry_for: self.retry_for.min(START_RETRY_FOR),
            limit: format!("a start is retried for {} s", START_RETRY_FOR.as_secs()),
            consequence: "",
            what: "the run's start: ",
        };
        match tokio::time::timeout(START_BUDGET, self.send_with(report, &patience)).await {
            Ok(sent) => sent,
            Err(_) => Err(ReportError(format!(
                "no answer from {} within {} s",
                self.endpoint,
                START_BUDGET.as_secs()
            ))),
        }
    }

    async fn send_with(
        &self,
        report: &Report,
        patience: &Patience<'_>,
    ) -> Result<Sent, ReportError> {
        let body = report.body();
        self.retrying(patience, async |timeout| {
            self.try_report(&body, report.job_id, timeout).await
        })
        .await
    }

    /// Asks for the storage path of `job_id`'s slot whose window holds `at`, with the
    /// retries of a report.
    pub async fn expected_path(
        &self,
        job_id: i64,
        at: DateTime<Utc>,
    ) -> Result<ExpectedPath, ReportError> {
        let mut url = self
            .base
            .join(&format!("api/v1/jobs/{job_id}/expected_path"))
            .map_err(|e| ReportError(format!("cannot build the expected path's URL: {e}")))?;
        url.query_pairs_mut().append_pair("at", &time::format(at));
        let patience = self.patience("; nothing was reported");
        self.retrying(&patience, async |timeout| {
            self.try_expected_path(&url, job_id, timeout).await
        })
        .await
    }

    /// Makes tries until one is done or refused, or the retry window has passed: after a
    /// try to make again, waits its Retry-After or the backoff (0.5 s, doubling, at most
    /// 5 s), saying so on stderr.
    async fn retrying<T>(
        &self,
        patience: &Patience<'_>,
        mut attempt: impl AsyncFnMut(Duration) -> Try<T>,
    ) -> Result<T, ReportError> {
        let started = Instant::now();
        let deadline = started + patience.retry_for;
        let mut backoff = FIRST_BACKOFF;
        let mut tries = 0u32;
        loop {
            tries += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = left.clamp(MIN_TRY_TIMEOUT, MAX_TRY_TIMEOUT);
            let (reason, wait) = match attempt(timeout).await {
                Try::Done(done) => return Ok(done),
                Try::Refused(message) => return Err(ReportError(message)),
                Try::Retry {
                    reason,
                    retry_after,
                } => (reason, retry_after.unwrap_or(backoff)),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReportError(format!(
                    "gave up after {:.1} s and {tries} {} ({}): {reason}{}",
                    started.elapsed().as_secs_f64(),
                    if tries == 1 { "try" } else { "tries" },
                    patience.limit,
                    patience.consequence,
                )));
            }
            let wait = wait.min(left);
            eprintln!(
                "{}{reason}; retrying in {:.1} s",
                patience.what,
                wait.as_secs_f64()
            );
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn try_report(&self, body: &Value, job_id: i64, timeout: Duration) -> Try<Sent> {
        let sent = self
            .client
            .post(self.endpoint.clone())
            .bearer_auth(self.token.expose())
            .json(body)
            .timeout(timeout)
            .send()
            .await;
        let answer = match self.read(sent, &self.endpoint).await {
            Ok(answer) => answer,
            Err(reason) => {
                return Try::Retry {
                    reason,
                    retry_after: None,
                }
            }
        };
        match answer.status.as_u16() {
            200 | 201 => match answer
                .json
                .as_ref()
                .and_then(|v| v.get("id"))
                .and_then(Value::as_i64)
            {
                Some(id) if answer.status == StatusCode::CREATED => Try::Done(Sent::Created(id)),
                Some(id) => Try::Done(Sent::Repeated(id)),
                None => Try::Refused(format!(
                    "{} answered {} without an entry ({}): is --url a backup-monitor server?",
                    self.endpoint,
                    answer.status,
                    snippet(&answer.text)
                )),
            },
            _ => self.judge(answer, &self.endpoint, "report", job_id),
        }
    }

    async fn try_expected_path(
        &self,
        url: &Url,
        job_id: i64,
        timeout: Duration,
    ) -> Try<ExpectedPath> {
        let sent = self
            .client
            .get(url.clone())
            .bearer_auth(self.token.expose())
            .timeout(timeout)
            .send()
            .await;
        let answer = match self.read(sent, url).await {
            Ok(answer) => answer,
            Err(reason) => {
                return Try::Retry {
                    reason,
                    retry_after: None,
                }
            }
        };
        if answer.status != StatusCode::OK {
            return self.judge(answer, url, "request for the expected path", job_id);
        }
        let json = answer.json.as_ref();
        let field = |name| json.and_then(|v| v.get(name)).and_then(Value::as_str);
        match (field("path"), field("slot_utc").and_then(time::parse)) {
            (Some(path), Some(slot)) => Try::Done(ExpectedPath {
                slot,
                path: path.to_owned(),
            }),
            _ => Try::Refused(format!(
                "{url} answered {} without a path and a slot ({}): is --url a backup-monitor server?",
                answer.status,
                snippet(&answer.text)
            )),
        }
    }

    /// The answer to a request, read whole; a network error in words if there is none.
    async fn read(
        &self,
        sent: Result<reqwest::Response, reqwest::Error>,
        url: &Url,
    ) -> Result<Answer, String> {
        let response = sent.map_err(|e| network_error(&e, url))?;
        let status = response.status();
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header(RETRY_AFTER)
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let location = header(LOCATION);
        let text = response.text().await.map_err(|e| network_error(&e, url))?;
        let json = serde_json::from_str(&text).ok();
        Ok(Answer {
            status,
            retry_after,
            location,
            text,
            json,
        })
    }

    /// An answer that is not a success: a try to make again, or a final refusal of `what`.
    fn judge<T>(&self, answer: Answer, url: &Url, what: &str, job_id: i64) -> Try<T> {
        if let Some((reason, retry_after)) = answer.passing() {
            return Try::Retry {
                reason,
                retry_after,
            };
        }
        Try::Refused(refusal(
            url,
            what,
            answer.status,
            answer.json.as_ref(),
            &answer.text,
            answer.location,
            job_id,
        ))
    }
}

/// A network error in one line: what failed, and the innermost cause (connection
/// refused, name resolution, certificate...). Never the request's headers.
fn network_error(e: &reqwest::Error, url: &Url) -> String {
    let what = if e.is_timeout() {
        "no answer in time from"
    } else if e.is_connect() {
        "cannot connect to"
    } else {
        "the request failed at"
    };
    let mut cause = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = Some(s.to_string());
        source = s.source();
    }
    let cause = cause.unwrap_or_else(|| e.to_string());
    format!("{what} {url} ({cause})")
}

/// Why the server's answer to `what` (a report, a request) is final, in words a sysadmin
/// can act on.
fn refusal(
    url: &Url,
    what: &str,
    status: StatusCode,
    json: Option<&Value>,
    text: &str,
    location: Option<String>,
    job_id: i64,
) -> String {
    let detail = detail(json).unwrap_or_else(|| snippet(text));
    match status.as_u16() {
        401 => format!(
            "the server refused the token ({status}): the token is not valid or was revoked"
        ),
        403 => format!("the server refused the {what} ({status}): {detail}"),
        404 if detail == "Job not found" => {
            format!("job {job_id} not found on the server ({status}): check --job-id")
        }
        404 => format!(
            "{} does not exist ({status}): check --url, the server's base address (e.g. https://monitor.example.com)",
            url
        ),
        422 => {
            let items = json
                .and_then(|v| v.get("detail"))
                .and_then(Value::as_array)
                .map(|items| {
                    items
                        .iter()
                        .map(|item| format!("\n  {}: {}", loc(item), msg(item)))
                        .collect::<String>()
                })
                .unwrap_or_else(|| format!(" {detail}"));
            format!("the server refused the {what} as invalid ({status}):{items}")
        }
        300..=399 => format!(
            "the server redirects ({status}) to {}: give the address it redirects to as --url",
            location.as_deref().unwrap_or("another address")
        ),
        _ => format!("the server refused the {what} ({status}): {detail}"),
    }
}

/// The `detail` of a FastAPI-shaped error when it is a message.
fn detail(json: Option<&Value>) -> Option<String> {
    json.and_then(|v| v.get("detail"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Where a 422 item points, without the leading `body`.
fn loc(item: &Value) -> String {
    let parts: Vec<String> = item
        .get("loc")
        .and_then(Value::as_array)
        .map(|loc| {
            loc.iter()
                .filter(|l| l.as_str() != Some("body"))
                .map(|l| match l {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default();
    if parts.is_empty() {
        "body".to_owned()
    } else {
        parts.join(".")
    }
}

fn msg(item: &Value) -> String {
    item.get("msg")
        .and_then(Value::as_str)
        .unwrap_or("invalid")
        .to_owned()
}

/// The start of an unexpected response body, for an error message.
fn snippet(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "empty body".to_owned();
    }
    let mut s: String = text.chars().take(200).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// At most `max` characters of `s`: its end, after "…" when cut (never inside a character).
pub fn keep_end(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let tail: String = s.chars().skip(n - (max - 1)).collect();
    format!("…{tail}")
}

/// The error_message of a failed run: what happened, then as much of the end of its stderr
/// as fits in the server's 4096 characters.
pub fn failure_message(what: &str, stderr_tail: &str) -> String {
    let tail = stderr_tail.trim();
    if tail.is_empty() {
        return keep_end(what, ERROR_MESSAGE_MAX);
    }
    let head = format!("{what}; end of stderr:\n");
    let room = ERROR_MESSAGE_MAX.saturating_sub(head.chars().count());
    keep_end(
        &format!("{head}{}", keep_end(tail, room)),
        ERROR_MESSAGE_MAX,
    )
}

/// The last `cap` bytes written to it.
struct Tail {
    bytes: VecDeque<u8>,
    cap: usize,
    cut: bool,
}

impl Tail {
    fn new(cap: usize) -> Self {
        Self {
            bytes: VecDeque::with_capacity(cap),
            cap,
            cut: false,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        self.bytes.extend(chunk);
        let excess = self.bytes.len().saturating_sub(self.cap);
        if excess > 0 {
            self.bytes.drain(..excess);
            self.cut = true;
        }
    }

    /// The bytes as text; a character cut in two at the start is dropped.
    fn text(&self) -> String {
        let bytes: Vec<u8> = self.bytes.iter().copied().collect();
        let start = if self.cut {
            bytes.iter().take_while(|b| (**b & 0xC0) == 0x80).count()
        } else {
            0
        };
        String::from_utf8_lossy(&bytes[start..]).into_owned()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ReportError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ReportError(format!("cannot start the runtime: {e}")))
}

/// Now, to the microsecond the server stores, so that a retry repeats it exactly.
fn now() -> DateTime<Utc> {
    time::from_micros(time::to_micros(Utc::now()))
}

/// A fresh run id: 16 hex characters from the system's random source (None in the unlikely
/// event it has none: a run without an id is then finished by the job's next report).
pub fn new_run_id() -> Option<String> {
    let mut bytes = [0u8; RUN_ID_BYTES];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

/// The exit code of a command line that cannot be carried out as given (clap's).
const USAGE: u8 = 2;

/// `backup-monitor report`: 0 reported (the entry id on stdout), 1 refused or given up, 2 a
/// start given what only a finish carries.
pub fn report(args: &ReportArgs) -> ExitCode {
    if args.status == ReportStatus::Started {
        let finish_only = [
            ("--file", args.file.is_some()),
            ("--error", args.error.is_some()),
        ];
        if let Some((flag, _)) = finish_only.iter().find(|(_, given)| *given) {
            eprintln!(
                "error: {flag} goes with the report that finishes a run (--status success or failed), not with --status started"
            );
            return ExitCode::from(USAGE);
        }
    }
    let file = match &args.file {
        Some(path) => match hash_file(path) {
            Ok(digest) => Some(digest),
            Err(e) => {
                eprintln!(
                    "error: cannot read {}: {e}; nothing was reported",
                    path.display()
                );
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let error_message = args.error.as_deref().map(|m| {
        let kept = keep_end(m, ERROR_MESSAGE_MAX);
        if kept != m {
            eprintln!("warning: --error is longer than {ERROR_MESSAGE_MAX} characters: only its end is sent");
        }
        kept
    });
    let report = Report {
        job_id: args.job_id,
        status: args.status,
        timestamp: args.timestamp.unwrap_or_else(now),
        file,
        error_message,
        run_id: args.run_id.clone(),
    };
    let sent = runtime()
        .and_then(|rt| rt.block_on(async { Reporter::new(&args.server)?.send(&report).await }));
    match sent {
        Ok(sent) => match print_entry_id(sent) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The id of the entry a report made, alone on stdout.
fn print_entry_id(sent: Sent) -> Result<(), String> {
    output::println(&sent.entry_id().to_string()).map_err(|e| {
        format!(
            "reported as entry {}, but cannot write its id on stdout: {e}",
            sent.entry_id()
        )
    })
}

/// `exec`'s exit code when the command succeeded but its `--file` cannot be read.
const BACKUP_FILE_UNREADABLE: u8 = 1;

/// How a command ended: the exit code to pass on, and what went wrong if it failed.
struct Ran {
    code: u8,
    failure: Option<String>,
}

/// `backup-monitor exec`: reports the run's start (briefly: the backup never waits long
/// for it), runs the command, reports how it ended with the same run id, exits with the
/// command's code.
pub fn exec(args: &ExecArgs) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let reporter = Reporter::new(&args.server);
    let run_id = new_run_id();
    let start = Report {
        job_id: args.job_id,
        status: ReportStatus::Started,
        timestamp: now(),
        file: None,
        error_message: None,
        run_id: run_id.clone(),
    };
    let started = match &reporter {
        Ok(reporter) => rt.block_on(reporter.send_start(&start)).map(drop),
        Err(e) => Err(e.clone()),
    };
    if let Err(e) = started {
        eprintln!(
            "warning: the start of this run of job {} was not reported: {e}; running the command anyway",
            args.job_id
        );
    }
    let ran = rt.block_on(run_command(&args.command));
    // The finish is dated when the command ended: the server measures the run from its
    // start's timestamp to this one (hashing --file is not part of the backup).
    let ended = now();
    let mut code = ran.code;
    let (status, error_message, file) = match (ran.failure, &args.file) {
        (Some(failure), _) => (ReportStatus::Failed, Some(failure), None),
        (None, None) => (ReportStatus::Success, None, None),
        (None, Some(path)) => match hash_file(path) {
            Ok(digest) => (ReportStatus::Success, None, Some(digest)),
            Err(e) => {
                // The command said 0, but there is no backup: the caller must not see success.
                code = BACKUP_FILE_UNREADABLE;
                let message = format!(
                    "the command succeeded (exit code 0) but the backup file {} cannot be read: {e}",
                    path.display()
                );
                eprintln!("error: {message}");
                (
                    ReportStatus::Failed,
                    Some(keep_end(&message, ERROR_MESSAGE_MAX)),
                    None,
                )
            }
        },
    };
    let report = Report {
        job_id: args.job_id,
        status,
        timestamp: ended,
        file,
        error_message,
        run_id,
    };
    let sent = rt.block_on(async {
        let reporter = reporter?;
        // Ctrl-C no longer ends this process by itself (see `wait_for`): honour it here.
        tokio::select! {
            sent = reporter.send(&report) => sent,
            _ = tokio::signal::ctrl_c() => Err(ReportError("interrupted".to_owned())),
        }
    });
    if let Err(e) = sent {
        eprintln!(
            "error: the {} run of job {} was not reported: {e}",
            status.as_str(),
            args.job_id
        );
    }
    ExitCode::from(code)
}

/// `verify`'s exit code when it reported the file missing or unreadable.
const VERIFY_NOT_FOUND: u8 = 1;

/// `backup-monitor verify`: 0 the file was found and reported, 1 it was reported missing or
/// unreadable, 2 nothing was reported.
pub fn verify(args: &VerifyArgs) -> ExitCode {
    match verify_and_report(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(USAGE)
        }
    }
}

/// Everything `verify` does; an error means nothing was reported.
fn verify_and_report(args: &VerifyArgs) -> Result<ExitCode, String> {
    if let Some(root) = &args.root {
        check_root(root)?;
    }
    let rt = runtime().map_err(|e| e.to_string())?;
    let reporter = Reporter::new(&args.server).map_err(|e| e.to_string())?;
    let checked_at = now();
    let expected = rt
        .block_on(reporter.expected_path(args.job_id, args.at.unwrap_or(checked_at)))
        .map_err(|e| e.to_string())?;
    let timestamp = match args.at {
        None => checked_at,
        Some(_) => {
            let current = rt
                .block_on(reporter.expected_path(args.job_id, checked_at))
                .map_err(|e| e.to_string())?;
            report_time(expected.slot, current.slot, checked_at)?
        }
    };
    let path = local_path(args.root.as_deref(), &expected.path)?;
    let found = look_at(&path);
    let report = Report {
        job_id: args.job_id,
        status: if found.is_ok() {
            ReportStatus::Success
        } else {
            ReportStatus::Failed
        },
        timestamp,
        file: found.as_ref().ok().cloned(),
        error_message: found
            .as_ref()
            .err()
            .map(|problem| keep_end(problem, ERROR_MESSAGE_MAX)),
        // A run id no start has: this report finishes no backup run under way.
        run_id: Some(format!("verify-{}", new_run_id().unwrap_or_default())),
    };
    let what = match &found {
        Ok(file) => format!(
            "found {} ({} bytes, {})",
            path.display(),
            file.size,
            file.hash
        ),
        Err(problem) => problem.clone(),
    };
    let sent = rt
        .block_on(reporter.send(&report))
        .map_err(|e| format!("{what}, but this was not reported: {e}"))?;
    if let Err(e) = print_entry_id(sent) {
        eprintln!("warning: {e}");
    }
    Ok(match found {
        Ok(_) => {
            eprintln!("{what}; reported as success");
            ExitCode::SUCCESS
        }
        Err(_) => {
            eprintln!("error: {what}; reported as failed");
            ExitCode::from(VERIFY_NOT_FOUND)
        }
    })
}

/// A `--root` is where the storage is mounted: if it is not there, the backups cannot be
/// told missing.
fn check_root(root: &Path) -> Result<(), String> {
    match std::fs::metadata(root) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(format!(
            "--root {} is not a directory; nothing was reported",
            root.display()
        )),
        Err(e) => Err(format!(
            "cannot use --root {}: {e} (is the storage mounted?); nothing was reported",
            root.display()
        )),
    }
}

/// When `verify` dates its report of `slot`, given `current`, the slot whose window holds
/// `now`: now for the current slot (the report is the job's latest word), the slot's own
/// time for a past one (it counts for that slot, not tonight's); a slot to come is not
/// checked.
pub fn report_time(
    slot: DateTime<Utc>,
    current: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, String> {
    match slot.cmp(&current) {
        std::cmp::Ordering::Equal => Ok(now),
        std::cmp::Ordering::Less => Ok(slot),
        std::cmp::Ordering::Greater => Err(format!(
            "--at falls in the slot of {}, which has not begun (the current slot is {}); nothing was reported",
            time::format(slot),
            time::format(current)
        )),
    }
}

/// Where the server's `expected` path is on this host: under `root`, part by part (an
/// absolute path lands under it; a `..` part is refused, never followed out of it), or
/// as it is without a root.
pub fn local_path(root: Option<&Path>, expected: &str) -> Result<PathBuf, String> {
    if expected.trim().is_empty() {
        return Err("the server's expected path is empty; nothing was reported".to_owned());
    }
    let Some(root) = root else {
        return Ok(PathBuf::from(expected));
    };
    let mut path = root.to_path_buf();
    let mut parts = 0;
    for component in Path::new(expected).components() {
        match component {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "the server's expected path {expected} has a `..` part, which would climb out of --root {}; nothing was reported",
                    root.display()
                ))
            }
            Component::Normal(part) => {
                path.push(part);
                parts += 1;
            }
        }
    }
    if parts == 0 {
        return Err(format!(
            "the server's expected path {expected} names no file; nothing was reported"
        ));
    }
    Ok(path)
}

/// The backup file at `path`, hashed and sized; or why there is none, as the report's
/// error_message says it.
fn look_at(path: &Path) -> Result<FileDigest, String> {
    let shown = path.display();
    let problem = |e: std::io::Error| {
        if e.kind() == ErrorKind::NotFound {
            format!("expected file {shown} is missing")
        } else {
            format!("expected file {shown} cannot be read: {e}")
        }
    };
    // Looked at before it is opened: opening a named pipe would wait for a writer.
    let meta = std::fs::metadata(path).map_err(problem)?;
    if !meta.is_file() {
        return Err(match kind_of(&meta.file_type()) {
            Some(kind) => format!("expected file {shown} is not a regular file: it is {kind}"),
            None => format!("expected file {shown} is not a regular file"),
        });
    }
    hash_file(path).map_err(problem)
}

/// What a file that is not a regular one is, in words.
fn kind_of(file_type: &std::fs::FileType) -> Option<&'static str> {
    if file_type.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return Some("a named pipe");
        }
        if file_type.is_socket() {
            return Some("a socket");
        }
        if file_type.is_block_device() || file_type.is_char_device() {
            return Some("a device");
        }
    }
    None
}

async fn run_command(argv: &[OsString]) -> Ran {
    let Some((program, rest)) = argv.split_first() else {
        return Ran {
            code: 127,
            failure: Some("no command given".to_owned()),
        };
    };
    let shown = program.to_string_lossy();
    let spawned = tokio::process::Command::new(program)
        .args(rest)
        // The token is ours, not the backup command's: a dump script, or anything it runs,
        // has no use for it. The server's URL is no secret and stays.
        .env_remove(TOKEN_VARIABLE)
        .stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            // As a shell does: 126 found but not executable, 127 otherwise.
            let code = if e.kind() == ErrorKind::PermissionDenied {
                126
            } else {
                127
            };
            let message = format!("cannot start {shown}: {e}");
            eprintln!("error: {message}");
            return Ran {
                code,
                failure: Some(keep_end(&message, ERROR_MESSAGE_MAX)),
            };
        }
    };
    let tail = Arc::new(Mutex::new(Tail::new(STDERR_TAIL_BYTES)));
    let tee_task = child
        .stderr
        .take()
        .map(|stderr| tokio::spawn(tee(stderr, Arc::clone(&tail))));
    let status = wait_for(&mut child).await;
    if let Some(mut task) = tee_task {
        if tokio::time::timeout(STDERR_DRAIN, &mut task).await.is_err() {
            task.abort();
        }
    }
    let tail = tail.lock().map(|t| t.text()).unwrap_or_default();
    match status {
        Ok(status) if status.success() => Ran {
            code: 0,
            failure: None,
        },
        Ok(status) => {
            let (code, what) = describe_exit(status);
            Ran {
                code,
                failure: Some(failure_message(&what, &tail)),
            }
        }
        Err(e) => Ran {
            code: 1,
            failure: Some(failure_message(
                &format!("lost track of {shown}: {e}"),
                &tail,
            )),
        },
    }
}

/// Copies the command's stderr to ours as it comes, keeping its tail.
async fn tee(mut from: ChildStderr, tail: Arc<Mutex<Tail>>) {
    let mut to = tokio::io::stderr();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Our stderr going away must not stop the command's stderr from being read.
        let _ = to.write_all(&buf[..n]).await;
        let _ = to.flush().await;
        if let Ok(mut t) = tail.lock() {
            t.push(&buf[..n]);
        }
    }
}

/// Waits for the command. Ctrl-C reaches the command from the terminal already, and a
/// SIGTERM sent to this process is passed on to it: either way this process stays to
/// report how the command ended.
#[cfg(unix)]
async fn wait_for(child: &mut Child) -> std::io::Result<ExitStatus> {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return child.wait().await;
    };
    loop {
        tokio::select! {
            status = child.wait() => return status,
            _ = interrupt.recv() => {}
            _ = terminate.recv() => forward_terminate(child).await,
        }
    }
}

#[cfg(not(unix))]
async fn wait_for(child: &mut Child) -> std::io::Result<ExitStatus> {
    child.wait().await
}

/// Sends SIGTERM to the command (through kill(1): this crate has no unsafe code), or
/// kills it if that fails.
#[cfg(unix)]
async fn forward_terminate(child: &mut Child) {
    let Some(pid) = child.id() else { return };
    let forwarded = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .is_ok_and(|s| s.success());
    if !forwarded {
        let _ = child.start_kill();
    }
}

/// The exit code to pass on for a command that did not succeed, and how it ended in words.
fn describe_exit(status: ExitStatus) -> (u8, String) {
    if let Some(code) = status.code() {
        return (u8::try_from(code).unwrap_or(1), format!("exit code {code}"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                1 => " (SIGHUP)",
                2 => " (SIGINT)",
                3 => " (SIGQUIT)",
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                13 => " (SIGPIPE)",
                15 => " (SIGTERM)",
                _ => "",
            };
            return (
                u8::try_from(128 + signal).unwrap_or(u8::MAX),
                format!("killed by signal {signal}{name}"),
            );
        }
    }
    (1, format!("ended abnormally ({status})"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keep_end_counts_characters_and_marks_the_cut() {
        assert_eq!(keep_end("abc", 3), "abc");
        assert_eq!(keep_end("abcdef", 4), "…def");
        assert_eq!(keep_end("ééééé", 3), "…éé");
        assert_eq!(keep_end("abc", 0), "");
    }

    #[test]
    fn a_failure_message_never_exceeds_the_server_limit_and_keeps_the_end() {
        let long = format!("{}THE END", "x".repeat(10_000));
        let m = failure_message("exit code 3", &long);
        assert!(m.chars().count() <= ERROR_MESSAGE_MAX);
        assert!(m.starts_with("exit code 3; end of stderr:\n…"));
        assert!(m.ends_with("THE END"));
        assert_eq!(failure_message("exit code 1", "  \n"), "exit code 1");
    }

    #[test]
    fn the_tail_keeps_the_last_bytes_and_drops_a_cut_character() {
        let mut tail = Tail::new(5);
        tail.push(b"hello ");
        tail.push("wé!".as_bytes());
        // The last 5 bytes of "hello wé!" are " w", both bytes of 'é', and "!".
        assert_eq!(tail.text(), " wé!");
        let mut tail = Tail::new(3);
        tail.push("aé!".as_bytes()); // 4 bytes: the 'a' goes, 'é' stays whole
        assert_eq!(tail.text(), "é!");
        let mut tail = Tail::new(2);
        tail.push("é!".as_bytes()); // the first byte of 'é' goes
        assert_eq!(tail.text(), "!");
    }

    #[test]
    fn a_report_sends_only_what_it_has() {
        let report = Report {
            job_id: 3,
            status: ReportStatus::Failed,
            timestamp: time::parse("2026-11-24T02:30:00Z").unwrap(),
            file: None,
            error_message: Some("disk full".to_owned()),
            run_id: None,
        };
        assert_eq!(
            report.body(),
            json!({
                "expected_job_id": 3,
                "status": "failed",
                "backup_timestamp_utc": "2026-11-24T02:30:00Z",
                "error_message": "disk full"
            })
        );
    }

    #[test]
    fn refusals_say_what_to_fix() {
        let url = Url::parse("http://monitor.example.com/api/v1/entries/").unwrap();
        let say = |status: u16, body: Value| {
            refusal(
                &url,
                "report",
                StatusCode::from_u16(status).unwrap(),
                Some(&body),
                &body.to_string(),
                None,
                7,
            )
        };
        assert!(say(401, json!({"detail": "Invalid or revoked token"}))
            .contains("the token is not valid or was revoked"));
        assert!(
            say(403, json!({"detail": "Job 7 belongs to another agent"}))
                .contains("Job 7 belongs to another agent")
        );
        assert!(say(404, json!({"detail": "Job not found"})).contains("job 7 not found"));
        assert!(say(404, json!({"detail": "Not Found"})).contains("check --url"));
        let invalid = say(
            422,
            json!({"detail": [
                {"loc": ["body", "backup_hash"], "msg": "String should have at most 256 characters", "type": "string_too_long"},
                {"loc": ["body", "error_message"], "msg": "too long", "type": "string_too_long"}
            ]}),
        );
        assert!(invalid.contains("\n  backup_hash: String should have at most 256 characters"));
        assert!(invalid.contains("\n  error_message: too long"));
    }

    #[test]
    fn a_start_and_its_finish_carry_the_run_id() {
        let start = Report {
            job_id: 3,
            status: ReportStatus::Started,
            timestamp: time::parse("2026-11-24T02:30:00Z").unwrap(),
            file: None,
            error_message: None,
            run_id: Some("0123456789abcdef".to_owned()),
        };
        assert_eq!(
            start.body(),
            json!({
                "expected_job_id": 3,
                "status": "started",
                "backup_timestamp_utc": "2026-11-24T02:30:00Z",
                "run_id": "0123456789abcdef"
            })
        );
    }

    #[test]
    fn run_ids_are_16_hex_characters_and_differ() {
        let (a, b) = (new_run_id().unwrap(), new_run_id().unwrap());
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn the_expected_path_lands_under_the_root_part_by_part() {
        let root = Path::new("/mnt/nas");
        let cases = [
            (
                "/acme/Lyon/erp/2026-11-30.dump",
                "/mnt/nas/acme/Lyon/erp/2026-11-30.dump",
            ),
            ("acme/erp.dump", "/mnt/nas/acme/erp.dump"),
            ("//acme/./Lyon//erp.dump", "/mnt/nas/acme/Lyon/erp.dump"),
        ];
        for (expected, local) in cases {
            assert_eq!(
                local_path(Some(root), expected).unwrap(),
                PathBuf::from(local),
                "{expected}"
            );
        }
        assert_eq!(
            local_path(None, "/backups/erp.dump").unwrap(),
            PathBuf::from("/backups/erp.dump"),
            "no root: the path as it is"
        );
    }

    #[test]
    fn an_expected_path_that_would_leave_the_root_or_names_nothing_is_refused() {
        let root = Path::new("/mnt/nas");
        let cases = [
            ("/acme/../../etc/shadow", "has a `..` part"),
            ("../erp.dump", "has a `..` part"),
            ("/", "names no file"),
            ("/./", "names no file"),
            ("", "is empty"),
            ("  ", "is empty"),
        ];
        for (expected, why) in cases {
            let refused = local_path(Some(root), expected).unwrap_err();
            assert!(refused.contains(why), "{expected:?}: {refused}");
            assert!(refused.contains("nothing was reported"), "{refused}");
        }
    }

    #[test]
    fn a_check_of_the_current_slot_is_dated_now_and_of_a_past_one_at_its_slot() {
        let t = |s| time::parse(s).unwrap();
        let now = t("2026-11-30T08:00:00Z");
        let current = t("2026-11-30T02:30:00Z");
        assert_eq!(report_time(current, current, now), Ok(now));
        assert_eq!(
            report_time(t("2026-11-29T02:30:00Z"), current, now),
            Ok(t("2026-11-29T02:30:00Z"))
        );
        let ahead = report_time(t("2026-12-01T02:30:00Z"), current, now).unwrap_err();
        assert!(ahead.contains("has not begun"), "{ahead}");
    }

    #[test]
    fn a_422_location_drops_the_body_prefix() {
        assert_eq!(loc(&json!({"loc": ["body", "backup_hash"]})), "backup_hash");
        assert_eq!(loc(&json!({"loc": ["body"]})), "body");
    }
}
