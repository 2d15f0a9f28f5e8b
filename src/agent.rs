//! The agent's side (DESIGN §7): `report` sends one backup run to the server, `exec` runs the
//! backup command and reports how it ended. Retries with backoff; never prints the token.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{ErrorKind, IsTerminal, Read};
use std::path::Path;
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

use crate::cli::{ExecArgs, ReportArgs, ReportStatus, ServerArgs};
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
enum Try {
    Done(Sent),
    Refused(String),
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
}

/// Sends reports to one server with one token.
pub struct Reporter {
    client: reqwest::Client,
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
            endpoint,
            token: server.token.clone(),
            retry_for: Duration::from_secs(server.retry_for),
        })
    }

    /// Sends `report`, retrying network errors, 429, 502/503/504 and 507 with exponential
    /// backoff until the retry window has passed. Progress goes to stderr.
    pub async fn send(&self, report: &Report) -> Result<Sent, ReportError> {
        let body = report.body();
        let started = Instant::now();
        let deadline = started + self.retry_for;
        let mut backoff = FIRST_BACKOFF;
        let mut tries = 0u32;
        loop {
            tries += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let timeout = left.clamp(MIN_TRY_TIMEOUT, MAX_TRY_TIMEOUT);
            let (reason, wait) = match self.try_once(&body, report.job_id, timeout).await {
                Try::Done(sent) => return Ok(sent),
                Try::Refused(message) => return Err(ReportError(message)),
                Try::Retry {
                    reason,
                    retry_after,
                } => (reason, retry_after.unwrap_or(backoff)),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReportError(format!(
                    "gave up after {:.1} s and {tries} {} (--retry-for {}): {reason}; the backup was NOT reported",
                    started.elapsed().as_secs_f64(),
                    if tries == 1 { "try" } else { "tries" },
                    self.retry_for.as_secs(),
                )));
            }
            let wait = wait.min(left);
            eprintln!("{reason}; retrying in {:.1} s", wait.as_secs_f64());
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn try_once(&self, body: &Value, job_id: i64, timeout: Duration) -> Try {
        let sent = self
            .client
            .post(self.endpoint.clone())
            .bearer_auth(self.token.expose())
            .json(body)
            .timeout(timeout)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                return Try::Retry {
                    reason: self.network_error(&e),
                    retry_after: None,
                }
            }
        };
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
        let text = match response.text().await {
            Ok(text) => text,
            Err(e) => {
                return Try::Retry {
                    reason: self.network_error(&e),
                    retry_after: None,
                }
            }
        };
        let json: Option<Value> = serde_json::from_str(&text).ok();
        match status.as_u16() {
            200 | 201 => match json
                .as_ref()
                .and_then(|v| v.get("id"))
                .and_then(Value::as_i64)
            {
                Some(id) if status == StatusCode::CREATED => Try::Done(Sent::Created(id)),
                Some(id) => Try::Done(Sent::Repeated(id)),
                None => Try::Refused(format!(
                    "{} answered {status} without an entry ({}): is --url a backup-monitor server?",
                    self.endpoint,
                    snippet(&text)
                )),
            },
            // 507: the server's disk is full; space may be freed while we wait.
            429 | 502..=504 | 507 => Try::Retry {
                reason: format!(
                    "the server answered {status}{}",
                    detail(json.as_ref())
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
                retry_after,
            },
            _ => Try::Refused(refusal(
                &self.endpoint,
                status,
                json.as_ref(),
                &text,
                location,
                job_id,
            )),
        }
    }

    /// A network error in one line: what failed, and the innermost cause (connection
    /// refused, name resolution, certificate...). Never the request's headers.
    fn network_error(&self, e: &reqwest::Error) -> String {
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
        format!("{what} {} ({cause})", self.endpoint)
    }
}

/// Why the server's answer is final, in words a sysadmin can act on.
fn refusal(
    endpoint: &Url,
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
        403 => format!("the server refused the report ({status}): {detail}"),
        404 if detail == "Job not found" => {
            format!("job {job_id} not found on the server ({status}): check --job-id")
        }
        404 => format!(
            "{} does not exist ({status}): check --url, the server's base address (e.g. https://monitor.example.com)",
            endpoint
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
            format!("the server refused the report as invalid ({status}):{items}")
        }
        300..=399 => format!(
            "the server redirects ({status}) to {}: give the address it redirects to as --url",
            location.as_deref().unwrap_or("another address")
        ),
        _ => format!("the server refused the report ({status}): {detail}"),
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

/// `backup-monitor report`: 0 reported (the entry id on stdout), 1 otherwise.
pub fn report(args: &ReportArgs) -> ExitCode {
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
    };
    let sent = runtime()
        .and_then(|rt| rt.block_on(async { Reporter::new(&args.server)?.send(&report).await }));
    match sent {
        Ok(sent) => match output::println(&sent.entry_id().to_string()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!(
                    "error: reported as entry {}, but cannot write its id on stdout: {e}",
                    sent.entry_id()
                );
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `exec`'s exit code when the command succeeded but its `--file` cannot be read.
const BACKUP_FILE_UNREADABLE: u8 = 1;

/// How a command ended: the exit code to pass on, and what went wrong if it failed.
struct Ran {
    code: u8,
    failure: Option<String>,
}

/// `backup-monitor exec`: runs the command, reports, exits with the command's code.
pub fn exec(args: &ExecArgs) -> ExitCode {
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let started = now();
    let ran = rt.block_on(run_command(&args.command));
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
        timestamp: started,
        file,
        error_message,
    };
    let sent = rt.block_on(async {
        let reporter = Reporter::new(&args.server)?;
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
    fn a_422_location_drops_the_body_prefix() {
        assert_eq!(loc(&json!({"loc": ["body", "backup_hash"]})), "backup_hash");
        assert_eq!(loc(&json!({"loc": ["body"]})), "body");
    }
}
