//! The agent's side over real things: the `report`, `exec` and `verify` commands of the
//! binary, talking to the real service on 127.0.0.1 over a temporary SQLite file, with real
//! files in a temporary directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    at, client_with, command, free_port, insert_job, spawn_app, spawn_app_in, spawn_app_with,
    valid_job, with, Ran, Role, TestApp, ADMIN_TOKEN,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Longest any one run of the binary may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// A job of `agent`, as `POST /api/v1/jobs/` takes it.
fn job_body(agent: &str) -> Value {
    with(valid_job(), json!({"agent_id_responsible": agent}))
}

/// What these tests do with the service, besides what every test does.
trait AgentSide {
    /// Creates a job of `agent`; returns its id.
    async fn job_for(&self, agent: &str) -> i64;
    /// `GET path`, which must answer 200, as JSON.
    async fn get_json(&self, path: &str) -> Value;
    async fn entry(&self, id: i64) -> Value;
    /// The job's entries, newest first.
    async fn entries_of(&self, job_id: i64) -> Vec<Value>;
    /// `report` against this server with `token` and a short retry window.
    fn report_with(&self, job_id: i64, token: &str) -> Command;
    /// `exec` against this server with the admin token; the command follows `--`.
    fn exec(&self, job_id: i64, extra: &[&str], command: &[&str]) -> Command;
    /// `verify` against this server with the admin token and a short retry window.
    fn verify(&self, job_id: i64, extra: &[&str]) -> Command;
    /// The path the server expects for the job's slot whose window holds `at` (None: now).
    async fn expected_path(&self, job_id: i64, at: Option<&str>) -> String;
}

impl AgentSide for TestApp {
    async fn job_for(&self, agent: &str) -> i64 {
        self.create_job(job_body(agent)).await["id"]
            .as_i64()
            .unwrap()
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    async fn entry(&self, id: i64) -> Value {
        self.get_json(&format!("/api/v1/entries/{id}")).await
    }

    async fn entries_of(&self, job_id: i64) -> Vec<Value> {
        self.get_json(&format!("/api/v1/entries/by_job/{job_id}"))
            .await
            .as_array()
            .unwrap()
            .clone()
    }

    fn report_with(&self, job_id: i64, token: &str) -> Command {
        let mut cmd = binary(self.dir.path());
        cmd.args(["report", "--url", &self.url(""), "--token", token])
            .args(["--job-id", &job_id.to_string(), "--retry-for", "5"]);
        cmd
    }

    fn exec(&self, job_id: i64, extra: &[&str], command: &[&str]) -> Command {
        let mut cmd = binary(self.dir.path());
        cmd.args(["exec", "--url", &self.url(""), "--token", ADMIN_TOKEN])
            .args(["--job-id", &job_id.to_string(), "--retry-for", "5"])
            .args(extra)
            .arg("--")
            .args(command);
        cmd
    }

    fn verify(&self, job_id: i64, extra: &[&str]) -> Command {
        let mut cmd = binary(self.dir.path());
        cmd.args(["verify", "--url", &self.url(""), "--token", ADMIN_TOKEN])
            .args(["--job-id", &job_id.to_string(), "--retry-for", "5"])
            .args(extra);
        cmd
    }

    async fn expected_path(&self, job_id: i64, at: Option<&str>) -> String {
        let query = at.map(|t| format!("?at={t}")).unwrap_or_default();
        let answer = self
            .get_json(&format!("/api/v1/jobs/{job_id}/expected_path{query}"))
            .await;
        answer["path"].as_str().unwrap().to_owned()
    }
}

/// The binary in `dir`, with nothing inherited from this process's environment but PATH.
fn binary(dir: &std::path::Path) -> Command {
    let mut cmd = Command::from(command(dir));
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    cmd
}

async fn run(mut cmd: Command) -> Ran {
    let output = tokio::time::timeout(RUN_LIMIT, cmd.output())
        .await
        .expect("the binary finished in time")
        .expect("the binary runs");
    Ran::from(output)
}

impl Ran {
    /// The id of the entry a successful run printed.
    fn entry_id(&self) -> i64 {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self.printed_id()
    }

    /// The entry id on stdout, whatever the exit code.
    fn printed_id(&self) -> i64 {
        self.stdout
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("stdout is not an entry id: {:?}", self.stdout))
    }
}

/// The `backup_hash` the agent sends for a file holding `bytes`.
fn backup_hash_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An address of 127.0.0.1 that nothing listens on (yet).
fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

#[tokio::test(flavor = "multi_thread")]
async fn report_success_with_a_file_sends_its_sha256_and_size() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;
    let file = app.dir.path().join("erp.dump");
    // Larger than the 64 KiB read buffer, not a multiple of it.
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();

    let mut cmd = app.report_with(job, ADMIN_TOKEN);
    cmd.args(["--status", "success", "--file"]).arg(&file);
    let ran = run(cmd).await;

    let entry = app.entry(ran.entry_id()).await;
    assert_eq!(entry["status"], "success");
    assert_eq!(entry["expected_job_id"], job);
    assert_eq!(entry["backup_hash"], backup_hash_of(&content));
    assert_eq!(entry["backup_size_bytes"], 200_000);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn report_failed_with_an_error_message_and_a_timestamp_is_stored() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;

    let mut cmd = app.report_with(job, ADMIN_TOKEN);
    cmd.args(["--status", "failed", "--error", "disk full on /backups"])
        .args(["--timestamp", "2026-11-24T02:31:00Z"]);
    let ran = run(cmd).await;

    let entry = app.entry(ran.entry_id()).await;
    assert_eq!(entry["status"], "failed");
    assert_eq!(entry["error_message"], "disk full on /backups");
    assert_eq!(entry["backup_timestamp_utc"], "2026-11-24T02:31:00Z");
    assert_eq!(entry["backup_hash"], Value::Null);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_identical_repeat_succeeds_with_the_entry_already_stored() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;
    let report = || {
        let mut cmd = app.report_with(job, ADMIN_TOKEN);
        cmd.args(["--status", "success", "--timestamp", "2026-11-24T02:30:00Z"]);
        cmd
    };

    let first = run(report()).await.entry_id();
    let second = run(report()).await.entry_id();

    assert_eq!(first, second);
    assert_eq!(app.entries_of(job).await.len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_token_exits_1_says_so_and_never_shows_the_token() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;
    let secret = "bm_not-a-real-token-but-a-secret-all-the-same";

    let mut cmd = app.report_with(job, secret);
    cmd.args(["--status", "success"]);
    let ran = run(cmd).await;

    assert_eq!(ran.code, 1, "stderr: {}", ran.stderr);
    assert!(
        ran.stderr.contains("the token is not valid or was revoked"),
        "{}",
        ran.stderr
    );
    assert!(ran.stdout.is_empty());
    assert!(!ran.stderr.contains(secret) && !ran.stdout.contains(secret));
    assert!(app.entries_of(job).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_agent_token_is_refused_like_a_bad_one() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;
    let token = app.token(Role::Agent, Some("agent-lyon-1"));
    app.revoke_token(app.stored_tokens().last().unwrap().id);

    let mut cmd = app.report_with(job, &token);
    cmd.args(["--status", "success"]);
    let ran = run(cmd).await;

    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains("401"), "{}", ran.stderr);
    assert!(!ran.stderr.contains(&token));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_job_exits_1_with_job_not_found() {
    let app = spawn_app().await;

    let mut cmd = app.report_with(4242, ADMIN_TOKEN);
    cmd.args(["--status", "success"]);
    let ran = run(cmd).await;

    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains("job 4242 not found"), "{}", ran.stderr);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_token_cannot_report_another_agents_job_and_the_reason_is_shown() {
    let app = spawn_app().await;
    let job = app.job_for("agent-paris-1").await;
    let token = app.token(Role::Agent, Some("agent-lyon-1"));

    let mut cmd = app.report_with(job, &token);
    cmd.args(["--status", "success"]);
    let ran = run(cmd).await;

    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains("403"), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("belongs to another agent"),
        "the server's detail is shown: {}",
        ran.stderr
    );
    assert!(!ran.stderr.contains(&token));
    assert!(app.entries_of(job).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_token_reports_its_own_job() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;
    let token = app.token(Role::Agent, Some("agent-lyon-1"));

    let mut cmd = app.report_with(job, &token);
    cmd.args(["--status", "success"]);
    let id = run(cmd).await.entry_id();

    assert_eq!(app.entry(id).await["expected_job_id"], job);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn url_and_token_can_come_from_the_environment() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;

    let mut cmd = binary(app.dir.path());
    cmd.env("BACKUP_MONITOR_URL", app.url(""))
        .env("BACKUP_MONITOR_TOKEN", ADMIN_TOKEN)
        .args([
            "report",
            "--job-id",
            &job.to_string(),
            "--status",
            "success",
        ]);
    let id = run(cmd).await.entry_id();

    assert_eq!(app.entry(id).await["status"], "success");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn help_never_shows_the_token_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "bm_secret-in-the-environment-0123456789";

    for sub in ["report", "exec", "verify"] {
        let mut cmd = binary(dir.path());
        cmd.env("BACKUP_MONITOR_TOKEN", secret)
            .args([sub, "--help"]);
        let ran = run(cmd).await;

        assert_eq!(ran.code, 0);
        assert!(
            ran.stdout.contains("BACKUP_MONITOR_TOKEN"),
            "{}",
            ran.stdout
        );
        assert!(!ran.stdout.contains(secret), "{sub} --help shows the token");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_url_or_token_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (&["--token", "t"], "--url"),
        (&["--url", "http://127.0.0.1:9"], "--token"),
        (&["--url", "ftp://example.com", "--token", "t"], "http"),
        (
            &[
                "--url",
                "http://127.0.0.1:9",
                "--token",
                "t",
                "--status",
                "missing",
            ],
            "missing",
        ),
    ];
    for (args, expected) in cases {
        let mut cmd = binary(dir.path());
        cmd.args(["report", "--job-id", "1"]).args(args);
        if !args.contains(&"--status") {
            cmd.args(["--status", "success"]);
        }
        let ran = run(cmd).await;

        assert_eq!(ran.code, 2, "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(expected), "{args:?}: {}", ran.stderr);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn report_waits_for_a_server_that_starts_within_the_retry_window() {
    let dir = tempfile::tempdir().unwrap();
    let job = insert_job(&dir.path().join("test.db"), &job_body("agent-lyon-1"));
    let addr = free_addr();
    let mut cmd = binary(dir.path());
    cmd.args([
        "report",
        "--url",
        &format!("http://{addr}"),
        "--token",
        ADMIN_TOKEN,
    ])
    .args([
        "--job-id",
        &job.to_string(),
        "--status",
        "success",
        "--retry-for",
        "30",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();

    // Start the server only once the agent has found nobody listening.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = tokio::time::timeout(RUN_LIMIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("a line about the retry");
    assert!(first.contains("retrying in"), "{first}");
    let app = spawn_app_in(dir, |s| s.server.bind = addr).await;
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();

    assert_eq!(output.status.code(), Some(0));
    let id: i64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap();
    assert_eq!(app.entry(id).await["expected_job_id"], job);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn report_gives_up_after_retry_for_when_nothing_listens() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut cmd = binary(dir.path());
    cmd.args([
        "report",
        "--url",
        &format!("http://{addr}"),
        "--token",
        ADMIN_TOKEN,
    ])
    .args(["--job-id", "1", "--status", "success", "--retry-for", "1"]);

    let started = Instant::now();
    let ran = run(cmd).await;
    let took = started.elapsed();

    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains("gave up after"), "{}", ran.stderr);
    assert!(ran.stderr.contains("NOT reported"), "{}", ran.stderr);
    assert!(ran.stderr.contains("cannot connect"), "{}", ran.stderr);
    assert!(!ran.stderr.contains(ADMIN_TOKEN));
    assert!(
        took >= Duration::from_secs(1),
        "gave up too early: {took:?}"
    );
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_429_is_retried_after_its_retry_after() {
    let app = spawn_app_with(|s| {
        s.auth.rate_limit_per_second = 1;
        s.auth.rate_limit_burst = 1;
    })
    .await;
    let job = insert_job(&app.db_path, &job_body("agent-lyon-1"));
    let token = app.token(Role::Agent, Some("agent-lyon-1"));
    // Spend the token's only request of this second.
    let spent = client_with(Some(&token))
        .get(app.url(&format!("/api/v1/jobs/{job}")))
        .send()
        .await
        .unwrap();
    assert_eq!(spent.status(), 200);

    let mut cmd = app.report_with(job, &token);
    cmd.args(["--status", "success"]);
    let ran = run(cmd).await;

    assert!(ran.stderr.contains("429"), "{}", ran.stderr);
    let id = ran.entry_id();
    assert_eq!(app.entries_of(job).await[0]["id"], id);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_reports_a_failing_command_with_its_exit_code_and_stderr() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;

    let cmd = app.exec(job, &[], &["sh", "-c", "echo out; echo err >&2; exit 3"]);
    let ran = run(cmd).await;

    assert_eq!(ran.code, 3);
    assert_eq!(ran.stdout, "out\n", "stdout is the command's alone");
    assert!(
        ran.stderr.contains("err"),
        "stderr is shown live: {}",
        ran.stderr
    );
    let entries = app.entries_of(job).await;
    assert_eq!(
        entries.len(),
        2,
        "the finish, and the start sent before the command"
    );
    assert_eq!(entries[0]["status"], "failed");
    let message = entries[0]["error_message"].as_str().unwrap();
    assert!(message.contains("exit code 3"), "{message}");
    assert!(message.contains("err"), "{message}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_reports_a_successful_command_with_the_file_it_wrote() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;
    let file = app.dir.path().join("out.dump");
    let file_arg = file.to_str().unwrap().to_owned();

    let script = format!("printf 'dump data' > '{file_arg}'");
    let cmd = app.exec(job, &["--file", &file_arg], &["sh", "-c", &script]);
    let ran = run(cmd).await;

    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(ran.stdout.is_empty());
    let entries = app.entries_of(job).await;
    assert_eq!(
        entries.len(),
        2,
        "the finish, and the start sent before the command"
    );
    assert_eq!(entries[0]["status"], "success");
    assert_eq!(entries[0]["error_message"], Value::Null);
    assert_eq!(entries[0]["backup_hash"], backup_hash_of(b"dump data"));
    assert_eq!(entries[0]["backup_size_bytes"], 9);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_reports_failed_when_the_command_succeeds_without_writing_its_file() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;
    let file = app.dir.path().join("never-written.dump");

    let cmd = app.exec(job, &["--file", file.to_str().unwrap()], &["true"]);
    let ran = run(cmd).await;

    assert_eq!(
        ran.code, 1,
        "no backup file is no success, whatever the command said"
    );
    let entries = app.entries_of(job).await;
    assert_eq!(entries[0]["status"], "failed");
    let message = entries[0]["error_message"].as_str().unwrap();
    assert!(message.contains("never-written.dump"), "{message}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_backup_command_never_sees_the_agents_token() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;
    let show = r#"echo "token=${BACKUP_MONITOR_TOKEN-unset} url=${BACKUP_MONITOR_URL-unset}""#;

    let mut cmd = binary(app.dir.path());
    cmd.env("BACKUP_MONITOR_URL", app.url(""))
        .env("BACKUP_MONITOR_TOKEN", ADMIN_TOKEN)
        .args(["exec", "--job-id", &job.to_string(), "--", "sh", "-c", show]);
    let ran = run(cmd).await;

    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        ran.stdout.trim(),
        format!("token=unset url={}", app.url("")),
        "the token is withheld, the URL passed on"
    );
    assert_eq!(app.entries_of(job).await[0]["status"], "success");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_keeps_only_the_tail_of_a_long_stderr() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;

    let script = "head -c 10240 /dev/zero | tr '\\0' x >&2; echo THE-END >&2; exit 1";
    let ran = run(app.exec(job, &[], &["sh", "-c", script])).await;

    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr.contains(&"x".repeat(10_240)),
        "all of stderr is shown live"
    );
    let entries = app.entries_of(job).await;
    let message = entries[0]["error_message"].as_str().unwrap();
    assert!(
        message.chars().count() <= 4096,
        "{} chars",
        message.chars().count()
    );
    assert!(message.starts_with("exit code 1"), "{message}");
    assert!(message.trim_end().ends_with("THE-END"), "the tail is kept");
    assert!(message.contains(&"x".repeat(3000)));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_of_a_missing_command_exits_127_and_reports_failed() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;

    let ran = run(app.exec(job, &[], &["no-such-backup-command-xyz", "--all"])).await;

    assert_eq!(ran.code, 127, "{}", ran.stderr);
    let entries = app.entries_of(job).await;
    assert_eq!(entries[0]["status"], "failed");
    let message = entries[0]["error_message"].as_str().unwrap();
    assert!(
        message.starts_with("cannot start no-such-backup-command-xyz"),
        "{message}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_of_a_command_killed_by_a_signal_exits_128_plus_the_signal() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;

    let ran = run(app.exec(job, &[], &["sh", "-c", "kill -TERM $$"])).await;

    assert_eq!(ran.code, 128 + 15);
    let entries = app.entries_of(job).await;
    let message = entries[0]["error_message"].as_str().unwrap();
    assert!(message.contains("killed by signal 15"), "{message}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_still_exits_with_the_commands_code_when_the_report_fails() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut cmd = binary(dir.path());
    cmd.args([
        "exec",
        "--url",
        &format!("http://{addr}"),
        "--token",
        ADMIN_TOKEN,
    ])
    .args([
        "--job-id",
        "1",
        "--retry-for",
        "0",
        "--",
        "sh",
        "-c",
        "exit 4",
    ]);

    let ran = run(cmd).await;

    assert_eq!(ran.code, 4);
    assert!(ran.stderr.contains("was not reported"), "{}", ran.stderr);
    assert!(!ran.stderr.contains(ADMIN_TOKEN));
}

/// A server that answers the first report 507 (its disk is full) and the next one 201.
async fn full_then_free_server() -> (SocketAddr, tokio::task::JoinHandle<usize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = tokio::spawn(async move {
        for answered in 0.. {
            let Ok((mut socket, _)) = listener.accept().await else {
                return answered;
            };
            // Read the head and the body the head announces.
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if request.len() >= end + 4 + length || n == 0 {
                        break;
                    }
                }
            }
            let (status, body) = if answered == 0 {
                (
                    "507 Insufficient Storage",
                    r#"{"detail":"The database's disk is full"}"#,
                )
            } else {
                (
                    "201 Created",
                    r#"{"id":42,"expected_job_id":1,"status":"success"}"#,
                )
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(answer.as_bytes()).await.unwrap();
            if answered == 1 {
                return 2;
            }
        }
        0
    });
    (addr, served)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_507_is_retried_until_the_server_has_room_again() {
    let (addr, served) = full_then_free_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = binary(dir.path());
    cmd.args(["report", "--url", &format!("http://{addr}"), "--token", "t"])
        .args(["--job-id", "1", "--status", "success", "--retry-for", "10"]);

    let ran = run(cmd).await;

    assert_eq!(ran.entry_id(), 42);
    assert!(ran.stderr.contains("507"), "{}", ran.stderr);
    assert_eq!(served.await.unwrap(), 2, "one refusal, one success");
}

// Runs (DESIGN §10): a start, then the success or failed report that finishes it.

/// Whether `s` is a run id as `exec` makes them: 16 lowercase hex characters.
fn is_random_run_id(s: &str) -> bool {
    s.len() == 16
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_reports_a_start_then_finishes_that_run_with_its_duration() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;

    let ran = run(app.exec(job, &[], &["sleep", "2"])).await;

    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let entries = app.entries_of(job).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    let (finish, start) = (&entries[0], &entries[1]);
    assert_eq!(start["status"], "started");
    assert_eq!(finish["status"], "success");
    let run_id = start["run_id"].as_str().unwrap();
    assert!(is_random_run_id(run_id), "{run_id}");
    assert_eq!(finish["run_id"], run_id, "one run");
    let duration = finish["duration_seconds"].as_i64().unwrap();
    assert!(
        (2..10).contains(&duration),
        "{duration} s for a 2 s command"
    );
    // The start was stored before the command ran, not sent along with the finish.
    let stored = at(start["created_at"].as_str().unwrap());
    let ended = at(finish["backup_timestamp_utc"].as_str().unwrap());
    assert!(ended - stored >= chrono::Duration::seconds(2));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_exec_is_a_run_of_its_own() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;

    assert_eq!(run(app.exec(job, &[], &["true"])).await.code, 0);
    assert_eq!(run(app.exec(job, &[], &["false"])).await.code, 1);

    let entries = app.entries_of(job).await;
    let statuses: Vec<&str> = entries
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "started", "success", "started"]);
    assert_eq!(entries[0]["run_id"], entries[1]["run_id"]);
    assert_eq!(entries[2]["run_id"], entries[3]["run_id"]);
    assert_ne!(entries[0]["run_id"], entries[2]["run_id"]);
    assert!(
        entries[0]["duration_seconds"].is_i64(),
        "a failure finishes its run too"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_runs_the_command_when_the_start_cannot_be_delivered_and_reports_it_later() {
    let dir = tempfile::tempdir().unwrap();
    let job = insert_job(&dir.path().join("test.db"), &job_body("agent-lyon-1"));
    let addr = free_addr();
    let marker = dir.path().join("the-command-ran");
    let mut cmd = binary(dir.path());
    cmd.args([
        "exec",
        "--url",
        &format!("http://{addr}"),
        "--token",
        ADMIN_TOKEN,
    ])
    .args(["--job-id", &job.to_string(), "--retry-for", "30", "--"])
    .args(["sh", "-c", &format!("touch '{}'", marker.display())])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let spawned = Instant::now();
    let mut child = cmd.spawn().unwrap();

    // Nothing listens: the start is given up after a few seconds, with a warning.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let warning = loop {
        let line = tokio::time::timeout(RUN_LIMIT, lines.next_line())
            .await
            .unwrap()
            .unwrap()
            .unwrap_or_else(|| panic!("no warning about the start: {seen:?}"));
        if line.starts_with("warning:") {
            break line;
        }
        seen.push(line);
    };
    let waited = spawned.elapsed();
    assert!(
        waited < Duration::from_secs(6),
        "the start held the backup {waited:?}"
    );
    assert!(warning.contains("start of this run"), "{warning}");
    assert!(warning.contains("running the command anyway"), "{warning}");
    assert!(!warning.contains(ADMIN_TOKEN));
    // Keep reading stderr, so that the agent can write its retries.
    let rest = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push(line);
        }
        rest
    });
    // The server comes up while the finishing report retries.
    let app = spawn_app_in(dir, |s| s.server.bind = addr).await;
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let rest = rest.await.unwrap();

    assert_eq!(output.status.code(), Some(0), "{rest:?}");
    assert!(marker.exists(), "the command ran");
    let entries = app.entries_of(job).await;
    assert_eq!(entries.len(), 1, "the finish alone: {entries:?}");
    assert_eq!(entries[0]["status"], "success");
    assert!(is_random_run_id(entries[0]["run_id"].as_str().unwrap()));
    assert_eq!(
        entries[0]["duration_seconds"],
        Value::Null,
        "no start, no duration"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_gives_a_start_that_gets_no_answer_a_few_seconds_at_most() {
    // Connections are accepted by the kernel and never answered.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = binary(dir.path());
    cmd.args([
        "exec",
        "--url",
        &format!("http://{addr}"),
        "--token",
        ADMIN_TOKEN,
    ])
    .args(["--job-id", "1", "--retry-for", "0", "--"])
    .args(["sh", "-c", "date +%s.%N >&2; exit 5"])
    .stderr(Stdio::piped());
    let spawned = std::time::SystemTime::now();

    let ran = run(cmd).await;

    assert_eq!(ran.code, 5, "{}", ran.stderr);
    assert!(ran.stderr.contains("within 3 s"), "{}", ran.stderr);
    assert!(ran.stderr.contains("was not reported"), "{}", ran.stderr);
    // When the command began, by its own clock.
    let began: f64 = ran
        .stderr
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no date from the command: {}", ran.stderr));
    let spawned = spawned
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let held = began - spawned;
    assert!(
        (0.0..5.0).contains(&held),
        "the command began {held:.1} s after exec"
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread")]
async fn report_starts_a_named_run_and_finishes_it_and_no_other() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;
    // The longest id the server takes.
    let first = "a".repeat(64);
    let report = |status: &str, run_id: &str, at: &str| {
        let mut cmd = app.report_with(job, ADMIN_TOKEN);
        cmd.args(["--status", status, "--run-id", run_id, "--timestamp", at]);
        run(cmd)
    };

    let start_a = report("started", &first, "2026-11-29T02:30:00Z")
        .await
        .entry_id();
    let start_b = report("started", "nightly-b", "2026-11-29T02:31:00Z")
        .await
        .entry_id();
    // Without its id, this finish would close the latest open start, b's.
    let finish_a = report("success", &first, "2026-11-29T02:35:30Z")
        .await
        .entry_id();
    let finish_b = report("failed", "nightly-b", "2026-11-29T02:40:00Z")
        .await
        .entry_id();

    let start = app.entry(start_a).await;
    assert_eq!(start["status"], "started");
    assert_eq!(start["run_id"], first.as_str());
    assert_eq!(app.entry(start_b).await["run_id"], "nightly-b");
    let finish = app.entry(finish_a).await;
    assert_eq!(finish["status"], "success");
    assert_eq!(finish["run_id"], first.as_str());
    assert_eq!(finish["duration_seconds"], 330);
    let finish = app.entry(finish_b).await;
    assert_eq!(finish["status"], "failed");
    assert_eq!(finish["duration_seconds"], 540);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_run_id_or_a_start_with_what_only_a_finish_carries_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let too_long = "r".repeat(65);
    let cases: [(&[&str], &str); 5] = [
        (
            &["--status", "success", "--run-id", &too_long],
            "a run id has at most 64 characters, this one has 65",
        ),
        (
            &["--status", "started", "--run-id", ""],
            "the run id is empty",
        ),
        (
            &["--status", "started", "--file", "erp.dump"],
            "--file goes with the report that finishes a run",
        ),
        (
            &["--status", "started", "--error", "boom"],
            "--error goes with the report that finishes a run",
        ),
        (&["--status", "begun"], "started"),
    ];
    for (args, expected) in cases {
        // Nothing listens there: a usage error is found before any try.
        let mut cmd = binary(dir.path());
        cmd.args(["report", "--url", &format!("http://{}", free_addr())])
            .args(["--token", ADMIN_TOKEN, "--job-id", "1"])
            .args(args);
        let ran = run(cmd).await;

        assert_eq!(ran.code, 2, "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(expected), "{args:?}: {}", ran.stderr);
        assert!(!ran.stderr.contains("retrying"), "{args:?}: {}", ran.stderr);
        assert!(!ran.stderr.contains("panicked"), "{args:?}: {}", ran.stderr);
    }
}

// Verify (DESIGN §10): the file at the job's storage path, checked where it is mounted.

/// A job whose files land under `template`.
async fn job_storing_at(app: &TestApp, template: &str) -> i64 {
    app.create_job(with(
        job_body("agent-lyon-1"),
        json!({"final_storage_path_template": template}),
    ))
    .await["id"]
        .as_i64()
        .unwrap()
}

/// Writes `len` bytes at `path` (its directories created); returns them.
fn write_backup(path: &std::path::Path, len: u32) -> Vec<u8> {
    let content: Vec<u8> = (0..len).map(|i| (i % 253) as u8).collect();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &content).unwrap();
    content
}

/// The SHA-256 of the file as coreutils' `sha256sum` prints it.
fn sha256sum(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reports_an_existing_file_with_its_sha256_and_size() {
    let app = spawn_app().await;
    let template = format!(
        "{}/backups/{{company_name}}/{{database_name}}.dump",
        app.dir.path().display()
    );
    let job = job_storing_at(&app, &template).await;
    let file = std::path::PathBuf::from(app.expected_path(job, None).await);
    // Larger than the 64 KiB read buffer, not a multiple of it.
    write_backup(&file, 300_001);

    let before = chrono::Utc::now();
    let ran = run(app.verify(job, &[])).await;
    let after = chrono::Utc::now();

    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let entry = app.entry(ran.entry_id()).await;
    assert_eq!(entry["status"], "success");
    assert_eq!(entry["backup_hash"], format!("sha256:{}", sha256sum(&file)));
    assert_eq!(entry["backup_size_bytes"], 300_001);
    assert_eq!(entry["error_message"], Value::Null);
    let dated = at(entry["backup_timestamp_utc"].as_str().unwrap());
    assert!(
        before <= dated && dated <= after,
        "the current slot's check is dated now"
    );
    assert!(
        entry["run_id"].as_str().unwrap().starts_with("verify-"),
        "{entry}"
    );
    assert!(
        ran.stderr.contains(&file.display().to_string()),
        "{}",
        ran.stderr
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reports_a_missing_file_as_failed_with_its_path_under_the_root() {
    let app = spawn_app().await;
    let job = job_storing_at(&app, "/acme/{city}/{database_name}/%Y-%m-%d.dump").await;
    let root = app.dir.path().join("nas");
    std::fs::create_dir(&root).unwrap();
    let expected = app.expected_path(job, None).await;
    let day = &expected["/acme/Lyon/erp/".len()..];

    let ran = run(app.verify(job, &["--root", root.to_str().unwrap()])).await;

    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let entry = app.entry(ran.printed_id()).await;
    assert_eq!(entry["status"], "failed");
    assert_eq!(
        entry["error_message"],
        format!(
            "expected file {}/acme/Lyon/erp/{day} is missing",
            root.display()
        )
    );
    assert_eq!(entry["backup_hash"], Value::Null);
    assert!(ran.stderr.contains("is missing"), "{}", ran.stderr);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_finds_an_absolute_expected_path_under_the_root() {
    let app = spawn_app().await;
    // valid_job's template: /backups/{company_name}/{city}/{database_name}/%Y-%m-%d.dump
    let job = app.job_for("agent-lyon-1").await;
    let root = app.dir.path().join("mnt").join("nas");
    let expected = app.expected_path(job, None).await;
    assert!(
        expected.starts_with("/backups/acme/Lyon/erp/"),
        "{expected}"
    );
    let file = root.join(expected.trim_start_matches('/'));
    let content = write_backup(&file, 1000);

    let ran = run(app.verify(job, &["--root", root.to_str().unwrap()])).await;

    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let entry = app.entry(ran.entry_id()).await;
    assert_eq!(entry["status"], "success");
    assert_eq!(entry["backup_hash"], backup_hash_of(&content));
    assert_eq!(entry["backup_size_bytes"], 1000);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_at_a_past_slot_checks_that_slots_file_and_counts_for_that_slot() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;
    let root = app.dir.path().join("nas");
    let file = root.join("backups/acme/Lyon/erp/2026-01-15.dump");
    let content = write_backup(&file, 4096);
    let verify_at = |instant: &'static str| {
        app.verify(job, &["--root", root.to_str().unwrap(), "--at", instant])
    };

    // 05:00 is in the window of the 02:30 slot of the same day.
    let found = run(verify_at("2026-01-15T05:00:00Z")).await;
    let again = run(verify_at("2026-01-15T09:00:00Z")).await;
    let missing = run(verify_at("2026-01-16T05:00:00Z")).await;

    assert_eq!(found.code, 0, "{}", found.stderr);
    let entry = app.entry(found.entry_id()).await;
    assert_eq!(entry["status"], "success");
    assert_eq!(entry["backup_timestamp_utc"], "2026-01-15T02:30:00Z");
    assert_eq!(entry["backup_hash"], backup_hash_of(&content));
    assert_eq!(
        again.entry_id(),
        found.entry_id(),
        "checking a past slot again repeats its report"
    );
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    let entry = app.entry(missing.printed_id()).await;
    assert_eq!(entry["backup_timestamp_utc"], "2026-01-16T02:30:00Z");
    assert_eq!(
        entry["error_message"],
        format!(
            "expected file {}/backups/acme/Lyon/erp/2026-01-16.dump is missing",
            root.display()
        )
    );
    assert_eq!(app.entries_of(job).await.len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reports_a_directory_at_the_path_as_not_a_regular_file() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;
    let root = app.dir.path().join("nas");
    let path = root.join(app.expected_path(job, None).await.trim_start_matches('/'));
    std::fs::create_dir_all(&path).unwrap();

    let ran = run(app.verify(job, &["--root", root.to_str().unwrap()])).await;

    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let entry = app.entry(ran.printed_id()).await;
    assert_eq!(entry["status"], "failed");
    assert_eq!(
        entry["error_message"],
        format!(
            "expected file {} is not a regular file: it is a directory",
            path.display()
        )
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_reports_nothing_and_exits_2_when_it_cannot_check() {
    let app = spawn_app().await;
    let job = app.job_for("agent-paris-1").await;
    let root = app.dir.path().join("nas");
    std::fs::create_dir(&root).unwrap();
    let not_a_dir = app.dir.path().join("plain-file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let lyon_agent = app.token(Role::Agent, Some("agent-lyon-1"));
    let root_arg = root.to_str().unwrap();
    let unmounted = app.dir.path().join("unmounted");

    let cases: Vec<(Command, &str)> = vec![
        (
            app.verify(job, &["--root", unmounted.to_str().unwrap()]),
            "is the storage mounted?",
        ),
        (
            app.verify(job, &["--root", not_a_dir.to_str().unwrap()]),
            "is not a directory",
        ),
        (
            app.verify(4242, &["--root", root_arg]),
            "job 4242 not found",
        ),
        (
            app.verify(job, &["--root", root_arg, "--at", "2036-01-01T05:00:00Z"]),
            "has not begun",
        ),
        (
            app.verify(job, &["--root", root_arg, "--at", "yesterday"]),
            "not an RFC 3339 instant",
        ),
        (
            {
                let mut cmd = binary(app.dir.path());
                cmd.args(["verify", "--url", &app.url(""), "--token", &lyon_agent])
                    .args(["--job-id", &job.to_string(), "--root", root_arg]);
                cmd
            },
            "belongs to another agent",
        ),
        (
            {
                let mut cmd = binary(app.dir.path());
                cmd.args(["verify", "--url", &format!("http://{}", free_addr())])
                    .args(["--token", ADMIN_TOKEN, "--job-id", &job.to_string()])
                    .args(["--root", root_arg, "--retry-for", "0"]);
                cmd
            },
            "cannot connect",
        ),
    ];
    for (cmd, expected) in cases {
        let shown = format!("{:?}", cmd.as_std().get_args().collect::<Vec<_>>());
        let ran = run(cmd).await;

        assert_eq!(ran.code, 2, "{shown}: {}", ran.stderr);
        assert!(ran.stderr.contains(expected), "{shown}: {}", ran.stderr);
        assert!(ran.stdout.is_empty(), "{shown}: {}", ran.stdout);
        assert!(!ran.stderr.contains(ADMIN_TOKEN) && !ran.stderr.contains(&lyon_agent));
    }
    assert!(app.entries_of(job).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_never_finishes_a_backup_run_under_way() {
    let app = spawn_app().await;
    let job = app.job_for("agent-lyon-1").await;
    let root = app.dir.path().join("nas");
    write_backup(
        &root.join(app.expected_path(job, None).await.trim_start_matches('/')),
        10,
    );
    let report = |status: &str| {
        let mut cmd = app.report_with(job, ADMIN_TOKEN);
        cmd.args(["--status", status, "--run-id", "tonight"]);
        run(cmd)
    };

    report("started").await.entry_id();
    let verified = run(app.verify(job, &["--root", root.to_str().unwrap()])).await;
    let finished = report("success").await.entry_id();

    assert_eq!(verified.code, 0, "{}", verified.stderr);
    let check = app.entry(verified.entry_id()).await;
    assert_eq!(check["duration_seconds"], Value::Null, "{check}");
    let finish = app.entry(finished).await;
    assert!(
        finish["duration_seconds"].is_i64(),
        "the run is still open: {finish}"
    );
    app.stop().await;
}
