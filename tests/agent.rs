//! The agent's side over real things: the `report` and `exec` commands of the binary, talking
//! to the real service on 127.0.0.1 over a temporary SQLite file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{
    client_with, command, free_port, insert_job, spawn_app, spawn_app_in, spawn_app_with,
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
    fn entry_id(&self) -> i64 {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self.stdout
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("stdout is not an entry id: {:?}", self.stdout))
    }
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
    assert_eq!(
        entry["backup_hash"],
        format!("sha256:{}", hex::encode(Sha256::digest(&content)))
    );
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

    for sub in ["report", "exec"] {
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
    assert_eq!(entries.len(), 1);
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
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["status"], "success");
    assert_eq!(entries[0]["error_message"], Value::Null);
    assert_eq!(
        entries[0]["backup_hash"],
        format!("sha256:{}", hex::encode(Sha256::digest(b"dump data")))
    );
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
