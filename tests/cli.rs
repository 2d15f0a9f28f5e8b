//! The binary itself: zero-config `serve`, signals, `migrate`, `openapi`, `config check`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::{
    client_with, command, serve_logging_to, stderr, stdout, terminate, valid_job,
    wait_for_listening,
};
use serde_json::Value;

fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir).args(args).output().expect("binary runs")
}

fn wait_with_timeout(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn serve_with_no_configuration_listens_on_port_8000_and_creates_its_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(dir.path())
        .arg("serve")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (addr, _) = wait_for_listening(&mut child);
    assert_eq!(addr, "127.0.0.1:8000");
    let response = client_with(None)
        .get("http://127.0.0.1:8000/healthz")
        .send()
        .await;
    terminate(&child);
    let status = wait_with_timeout(&mut child, Duration::from_secs(10));
    let response = response.expect("healthz answers");
    assert_eq!(response.status(), 200);
    assert!(status.success(), "exit after SIGTERM: {status}");
    assert!(dir.path().join("backup-monitor.db").is_file());
}

#[tokio::test]
async fn sigterm_lets_a_request_in_flight_finish_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(dir.path())
        .args(["--log-format", "json", "serve", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (addr, lines) = wait_for_listening(&mut child);
    for line in &lines {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(
            parsed.is_ok(),
            "--log-format json wrote a non-JSON line: {line}"
        );
    }
    // First start: an admin token was written beside the database, mode 0600.
    let token_file = dir.path().join("backup-monitor.admin-token");
    let token = std::fs::read_to_string(&token_file).expect("admin token file");
    let token = token.trim();
    assert!(token.starts_with("bm_") && token.len() == 67, "{token}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    for line in &lines {
        assert!(!line.contains(token), "the token was logged: {line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("backup-monitor.admin-token")),
        "the file's path is logged: {lines:?}"
    );
    let anonymous = client_with(None)
        .get(format!("http://{addr}/api/v1/jobs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let created = client_with(Some(token))
        .post(format!("http://{addr}/api/v1/jobs/"))
        .json(&valid_job())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    terminate(&child);
    let status = wait_with_timeout(&mut child, Duration::from_secs(10));
    assert!(status.success(), "exit after SIGTERM: {status}");
    // The job survived the stop.
    let out = run(dir.path(), &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn serve_with_the_scheduler_switched_off_says_so_and_starts_no_scheduler() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = command(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("BACKUP_MONITOR_SCHEDULER_ENABLED", "false")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (_, lines) = wait_for_listening(&mut child);
    terminate(&child);
    let status = wait_with_timeout(&mut child, Duration::from_secs(10));
    assert!(status.success(), "exit after SIGTERM: {status}");
    let said = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    assert_eq!(said("scheduler disabled"), 1, "{lines:?}");
    assert_eq!(said("scheduler started"), 0, "{lines:?}");
}

#[test]
fn migrate_creates_the_database_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let first = run(dir.path(), &["--database", "sqlite://data.db", "migrate"]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stderr(&first).contains("applied database migration"));
    assert!(dir.path().join("data.db").is_file());
    let second = run(dir.path(), &["--database", "data.db", "migrate"]);
    assert!(second.status.success());
    assert!(!stderr(&second).contains("applied database migration"));
}

#[test]
fn migrate_into_a_missing_directory_fails_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["--database", "sqlite://no/such/dir/x.db", "migrate"],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error:") && last.contains("does not exist"),
        "{err}"
    );
}

#[test]
fn openapi_prints_the_same_document_the_server_serves() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["openapi"]);
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON document");
    assert!(doc["paths"]["/api/v1/entries/batch"]["post"].is_object());
    assert!(doc["paths"]["/api/v1/jobs/{job_id}"]["put"].is_object());
}

/// `config check` over `monitor.toml` holding `file`, with the environment `env`.
fn config_check(file: &str, env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("monitor.toml"), file).unwrap();
    command(dir.path())
        .args(["--config", "monitor.toml", "config", "check"])
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn config_check_prints_the_effective_configuration_without_secrets() {
    let out = config_check(
        "[smtp]\nhost = \"smtp.example.com\"\nfrom = \"monitor@example.com\"\npassword = \"hunter2-from-file\"\n[server]\nbind = \"0.0.0.0:9000\"\n",
        &[
            ("SMTP_USERNAME", "mailer"),
            ("BACKUP_MONITOR_ALERTS_TO", "ops@example.com,dba@example.com"),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let shown = stdout(&out);
    let parsed: toml::Table = shown.parse().expect("config check prints TOML");
    assert_eq!(parsed["server"]["bind"].as_str(), Some("0.0.0.0:9000"));
    assert_eq!(parsed["smtp"]["username"].as_str(), Some("mailer"));
    assert_eq!(parsed["alerts"]["to"].as_array().unwrap().len(), 2);
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!stderr(&out).contains("hunter2"));
    assert_eq!(parsed["smtp"]["password"].as_str(), Some("********"));
}

#[test]
fn a_bad_value_stops_start_up_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .arg("serve")
        .env("SMTP_PORT", "not-a-port")
        .env("SMTP_PASSWORD", "hunter2")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {err}");
    assert!(
        lines[0].contains("smtp.port") && lines[0].contains("SMTP_PORT"),
        "{err}"
    );
    assert!(!err.contains("hunter2"));
    assert!(
        !dir.path().join("backup-monitor.db").exists(),
        "nothing may start on a bad config"
    );
}

#[test]
fn config_check_shows_the_settings_then_every_problem_and_exits_1() {
    let out = config_check(
        "[smtp]\nhost = \"smtp.example.com\"\nfrom = \"not-an-address\"\npassword = \"hunter2-from-file\"\n[server]\nbind = \"0.0.0.0:9000\"\nbody_limit_bytes = 0\n",
        &[("SMTP_PORT", "not-a-port")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let shown = stdout(&out);
    let parsed: toml::Table = shown.parse().expect("the settings, as TOML");
    assert_eq!(parsed["server"]["bind"].as_str(), Some("0.0.0.0:9000"));
    assert_eq!(
        parsed["smtp"]["port"].as_integer(),
        Some(587),
        "the default"
    );
    assert_eq!(parsed["smtp"]["password"].as_str(), Some("********"));
    let err = stderr(&out);
    let problems: Vec<&str> = err.lines().collect();
    assert_eq!(problems.len(), 4, "{err}");
    for (line, key) in problems
        .iter()
        .zip(["smtp.port", "server.body_limit_bytes", "smtp.from"])
    {
        assert!(line.starts_with("error: ") && line.contains(key), "{err}");
    }
    assert_eq!(problems[3], "error: the configuration has 3 problems");
    assert!(!shown.contains("hunter2") && !err.contains("hunter2"));
}

#[test]
fn an_smtp_host_alone_is_enough_the_sender_names_this_host() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .args(["config", "check"])
        .env("SMTP_HOST", "smtp.example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let parsed: toml::Table = stdout(&out).parse().unwrap();
    let from = parsed["smtp"]["from"].as_str().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_ascii_lowercase())
        .unwrap_or_default();
    assert!(from.starts_with("backup-monitor@"), "{from}");
    if !host.is_empty() {
        assert_eq!(from, format!("backup-monitor@{host}"));
    }
}

#[test]
fn a_broken_config_file_stops_start_up_without_showing_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("monitor.toml"),
        "[smtp]\nhost = \"smtp.example.com\"\npassword = \"hunter2-unclosed\n",
    )
    .unwrap();
    for args in [&["serve"][..], &["config", "check"]] {
        let out = command(dir.path())
            .args(["--config", "monitor.toml"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(!err.contains("hunter2"), "{args:?}: {err}");
        assert!(!stdout(&out).contains("hunter2"), "{args:?}");
        assert!(
            err.lines()
                .next()
                .unwrap()
                .contains("monitor.toml: line 3, column 29: not valid TOML"),
            "{args:?}: {err}"
        );
    }
    assert!(!dir.path().join("backup-monitor.db").exists());
}

#[test]
fn a_dotenv_file_in_the_working_directory_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "DATABASE_URL=sqlite://from-dotenv.db\n",
    )
    .unwrap();
    let out = run(dir.path(), &["config", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("sqlite://from-dotenv.db"));
    // A real variable wins over .env.
    let out = command(dir.path())
        .args(["config", "check"])
        .env("DATABASE_URL", "sqlite://from-env.db")
        .output()
        .unwrap();
    assert!(stdout(&out).contains("sqlite://from-env.db"));
}

#[test]
fn a_dotenv_file_in_a_parent_directory_is_not_read() {
    let parent = tempfile::tempdir().unwrap();
    let work = parent.path().join("backups");
    std::fs::create_dir(&work).unwrap();
    std::fs::write(
        parent.path().join(".env"),
        "DATABASE_URL=sqlite://planted-by-the-parent.db\n",
    )
    .unwrap();

    let out = run(&work, &["config", "check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stdout(&out).contains("planted-by-the-parent"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("sqlite://backup-monitor.db"));

    // The working directory's own .env still counts.
    std::fs::write(work.join(".env"), "DATABASE_URL=sqlite://own.db\n").unwrap();
    let out = run(&work, &["config", "check"]);
    assert!(stdout(&out).contains("sqlite://own.db"), "{}", stdout(&out));
}

#[test]
fn the_config_file_can_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("m.toml"),
        "[scheduler]\ndefault_grace_minutes = 15\n",
    )
    .unwrap();
    let out = command(dir.path())
        .args(["config", "check"])
        .env("BACKUP_MONITOR_CONFIG", "m.toml")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("default_grace_minutes = 15"));
}

#[test]
fn every_subcommand_has_complete_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["openapi", "--help"],
        vec!["config", "check", "--help"],
        vec!["check", "--help"],
        vec!["send-test-email", "--help"],
        vec!["report", "--help"],
        vec!["exec", "--help"],
        vec!["verify", "--help"],
    ] {
        let out = run(dir.path(), &args);
        assert!(out.status.success(), "{args:?}");
        let help = stdout(&out);
        for flag in ["--config", "--database", "--log-format"] {
            assert!(help.contains(flag), "{args:?} help lacks {flag}: {help}");
        }
    }
    let serve = stdout(&run(dir.path(), &["serve", "--help"]));
    assert!(serve.contains("--bind"));
    let check = stdout(&run(dir.path(), &["check", "--help"]));
    assert!(
        check.contains("--json") && check.contains("3 UNKNOWN"),
        "{check}"
    );
    let email = stdout(&run(dir.path(), &["send-test-email", "--help"]));
    assert!(email.contains("--to"), "{email}");
    let report = one_line(&stdout(&run(dir.path(), &["report", "--help"])));
    for said in ["--run-id", "started", "--file", "Exit codes"] {
        assert!(report.contains(said), "report help lacks {said}: {report}");
    }
    let exec = one_line(&stdout(&run(dir.path(), &["exec", "--help"])));
    for said in ["run id", "3 seconds at most", "runs anyway", "Exit code"] {
        assert!(exec.contains(said), "exec help lacks {said}: {exec}");
    }
    let verify = one_line(&stdout(&run(dir.path(), &["verify", "--help"])));
    for said in [
        "--job-id",
        "--root",
        "--at",
        "--url",
        "BACKUP_MONITOR_TOKEN",
        "--retry-for",
        "is missing",
        "Exit codes: 0",
        "1 the file is missing or unreadable",
        "2 nothing was reported",
    ] {
        assert!(verify.contains(said), "verify help lacks {said}: {verify}");
    }
}

/// `text` with every run of white space made one space, as a help text reads before clap
/// wraps it to the terminal's width.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Runs the binary with its stdout a pipe whose reading end is already closed, as
/// `backup-monitor ARGS | head -0` leaves it.
fn run_into_a_closed_pipe(dir: &Path, args: &[&str]) -> Output {
    // The reading end is closed before the command starts, so that even a short output
    // meets a closed pipe (rather than fitting in the pipe's buffer first).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = command(dir)
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "{args:?} did not stop");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_reader_that_goes_away_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let migrated = run(dir.path(), &["migrate"]);
    assert!(migrated.status.success(), "{}", stderr(&migrated));
    for args in [
        &["openapi"][..],
        &["config", "check"],
        &["token", "list"],
        &["jobs", "export"],
        &["check"],
    ] {
        let out = run_into_a_closed_pipe(dir.path(), args);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
        assert_eq!(
            out.status.code(),
            Some(141),
            "{args:?}: as a shell reports SIGPIPE"
        );
    }
}

#[test]
fn a_token_whose_secret_cannot_be_shown_is_revoked_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_into_a_closed_pipe(dir.path(), &["token", "create", "--role", "viewer"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("token 1 was revoked"),
        "{}",
        stderr(&out)
    );

    let list = run(dir.path(), &["token", "list", "--json"]);
    let tokens: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(tokens.as_array().unwrap().len(), 1, "{tokens}");
    assert!(tokens[0]["revoked_at"].is_string(), "{tokens}");
}

#[cfg(unix)]
#[test]
fn a_link_planted_at_the_token_path_is_replaced_and_its_target_left_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("authorized_keys");
    std::fs::write(&victim, "precious\n").unwrap();
    let token_file = dir.path().join("backup-monitor.admin-token");
    std::os::unix::fs::symlink(&victim, &token_file).unwrap();

    let mut child = command(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (_, lines) = wait_for_listening(&mut child);
    terminate(&child);
    wait_with_timeout(&mut child, Duration::from_secs(10));

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let meta = std::fs::symlink_metadata(&token_file).unwrap();
    assert!(
        meta.file_type().is_file(),
        "the link was replaced by a file"
    );
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(token.starts_with("bm_"), "{token}");
    assert!(
        lines.iter().any(|l| l.contains("symbolic link")),
        "the replaced link is logged: {lines:?}"
    );
}

#[test]
fn a_token_file_that_cannot_be_written_fails_the_start_and_leaves_no_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    // Something that cannot be replaced by a file stands at the token's path. (A read-only
    // directory would do too, but not for root, and the database could not be opened there.)
    std::fs::create_dir(dir.path().join("backup-monitor.admin-token")).unwrap();

    let mut child = command(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_with_timeout(&mut child, Duration::from_secs(20));
    let err = child.wait_with_output().unwrap().stderr;
    let err = String::from_utf8_lossy(&err);
    assert_eq!(status.code(), Some(1), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.contains("Failed to write the admin token")
            && last.contains("no admin token was created"),
        "{err}"
    );

    let list = run(dir.path(), &["token", "list", "--json"]);
    let tokens: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(tokens, serde_json::json!([]), "no token stays behind");
    let leftovers: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A stored report is named on the request's own line (its span's `entry_id`, `job_id`
/// and `entry_status`), not on a second line of its own: a busy server writes one line
/// per report. The lines still queued for the log thread are written out at the stop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stored_report_is_one_log_line_that_names_its_entry() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.log");
    let (mut child, addr) = serve_logging_to(dir.path(), &log_path, "bm_test-admin-token-for-logs");
    let admin = client_with(Some("bm_test-admin-token-for-logs"));
    let job: Value = admin
        .post(format!("http://{addr}/api/v1/jobs/"))
        .json(&valid_job())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let report = serde_json::json!({
        "expected_job_id": job["id"],
        "status": "success",
        "backup_timestamp_utc": "2026-01-01T02:30:00Z",
    });

    // Act: a new report, then its identical repeat.
    let mut answers = Vec::new();
    for _ in 0..2 {
        let response = admin
            .post(format!("http://{addr}/api/v1/entries/"))
            .json(&report)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let entry: Value = response.json().await.unwrap();
        answers.push((status, entry["id"].clone()));
    }
    terminate(&child);
    let exit = wait_with_timeout(&mut child, Duration::from_secs(10));

    // Assert
    assert!(exit.success(), "exit after SIGTERM: {exit}");
    assert_eq!(answers[0].0, 201);
    assert_eq!(answers[1], (200, answers[0].1.clone()));
    let logged = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = logged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let reports: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["route"] == "/api/v1/entries")
        .collect();
    assert_eq!(reports.len(), 2, "one line per report: {logged}");
    let stored = reports[0];
    assert_eq!(stored["message"], "finished processing request", "{stored}");
    assert_eq!(stored["status"], 201, "{stored}");
    assert_eq!(stored["span"]["entry_id"], answers[0].1, "{stored}");
    assert_eq!(stored["span"]["job_id"], job["id"], "{stored}");
    assert_eq!(stored["span"]["entry_status"], "success", "{stored}");
    let repeat = reports[1];
    assert_eq!(repeat["status"], 200, "{repeat}");
    assert!(
        repeat["span"].get("entry_id").is_none(),
        "a repeat stored nothing: {repeat}"
    );
    assert!(
        !logged.contains("backup reported"),
        "no second line per report: {logged}"
    );
    assert!(
        logged.contains("\"message\":\"stopped\""),
        "the last lines are written out at the stop: {logged}"
    );
}
