//! Ping URLs with the real clients people use (DESIGN §12): curl as the healthchecks docs
//! write it in a crontab, and borgmatic's `healthchecks:` hook backing up a directory with
//! borgbackup. Those need Debian packages (curl, borgmatic, borgbackup): they are ignored in
//! the plain `cargo test`, and `.ci/run` installs the packages and runs them. The key never
//! appearing in the logs needs nothing but the binary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{client_with, serve_logging_to, spawn_app, terminate, valid_job, TestApp};
use serde_json::{json, Value};

/// A job's id and its ping URL on `app` (absolute).
async fn job(app: &TestApp, database: &str) -> (i64, String) {
    let job = app.create_job(json!({"database_name": database})).await;
    let path = job["ping_url"].as_str().unwrap();
    (job["id"].as_i64().unwrap(), app.url(path))
}

/// The job's entries, oldest first.
async fn entries(app: &TestApp, job: i64) -> Vec<Value> {
    let mut all: Vec<Value> = app
        .get(&format!("/api/v1/entries/by_job/{job}"))
        .await
        .json()
        .await
        .unwrap();
    all.reverse();
    all
}

fn sh(script: &str, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(script);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("sh runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs curl (Debian package): run by .ci/run"]
async fn curl_one_liners_from_a_crontab_report_success_failure_and_start() {
    let app = spawn_app().await;
    let (id, url) = job(&app, "erp").await;

    // healthchecks.io's documented crontab lines, unchanged but for the URL.
    let runs = [
        "curl -fsS -m 10 --retry 5 -o /dev/null \"$URL/start\"",
        "curl -fsS -m 10 --retry 5 -o /dev/null \"$URL\"",
        // The exit status of the backup, with its output as the body.
        "out=$(sh -c 'echo pg_dump: could not connect >&2; exit 3' 2>&1); \
         curl -fsS -m 10 --retry 5 --data-raw \"$out\" -o /dev/null \"$URL/$?\"",
        "curl -fsS -m 10 --retry 5 -o /dev/null \"$URL/fail\"",
        // Size and hash for the content checks, from a shell.
        "f=$(mktemp); printf 'dump' > \"$f\"; \
         curl -fsS -m 10 --retry 5 -o /dev/null \
           \"$URL?size=$(stat -c %s \"$f\")&hash=sha256:$(sha256sum \"$f\" | cut -d' ' -f1)\"",
    ];
    for script in runs {
        let out = sh(script, &[("URL", &url)]);
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // An unknown key makes curl -f fail, as it should in a crontab.
    let out = sh(
        "curl -fsS -m 10 -o /dev/null \"$URL\"",
        &[("URL", &url.replace(&url[url.len() - 32..], &"0".repeat(32)))],
    );
    assert_eq!(out.status.code(), Some(22), "curl -f exits 22 on a 404");

    let stored = entries(&app, id).await;
    let statuses: Vec<&str> = stored
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["started", "success", "failed", "failed", "success"]
    );
    assert!(stored[1]["duration_seconds"].is_i64(), "{stored:?}");
    assert_eq!(
        stored[2]["error_message"],
        "exit status 3\npg_dump: could not connect"
    );
    assert_eq!(stored[4]["backup_size_bytes"], 4);
    assert_eq!(
        stored[4]["backup_hash"],
        format!("sha256:{}", sha256_hex(b"dump"))
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// A borgmatic 1.7 configuration backing up `source` to `repository`, pinging `ping_url`.
fn borgmatic_config(dir: &Path, source: &Path, repository: &Path, ping_url: &str) -> String {
    let path = dir.join("borgmatic.yaml");
    std::fs::write(
        &path,
        format!(
            "location:\n    source_directories:\n        - {}\n    repositories:\n        - {}\n\
             retention:\n    keep_daily: 7\n\
             hooks:\n    healthchecks:\n        ping_url: {ping_url}\n",
            source.display(),
            repository.display()
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs borgmatic and borgbackup (Debian packages): run by .ci/run"]
async fn borgmatic_reports_a_backup_and_a_failure_through_its_healthchecks_hook() {
    let app = spawn_app().await;
    let (ok_job, ok_url) = job(&app, "files").await;
    let (bad_job, bad_url) = job(&app, "broken").await;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let source = dir.path().join("data");
    let repository = dir.path().join("repo");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(
        source.join("erp.sql"),
        "CREATE TABLE t (id int);\n".repeat(100),
    )
    .unwrap();
    let home_env = home.display().to_string();
    let env = [
        ("HOME", home_env.as_str()),
        ("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes"),
        ("BORG_RELOCATED_REPO_ACCESS_IS_OK", "yes"),
    ];
    let init = Command::new("borg")
        .args(["init", "--encryption=none"])
        .arg(&repository)
        .envs(env)
        .output()
        .expect("borg runs");
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );

    // A backup that works: borgmatic pings /start, then the URL with its log.
    let config = borgmatic_config(dir.path(), &source, &repository, &ok_url);
    let run = Command::new("borgmatic")
        .args(["--config", &config, "create", "--stats"])
        .envs(env)
        .output()
        .expect("borgmatic runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // A backup that fails: its repository does not exist; borgmatic pings /fail.
    let missing = dir.path().join("no-such-repo");
    let config = borgmatic_config(dir.path(), &source, &missing, &bad_url);
    let run = Command::new("borgmatic")
        .args(["--config", &config, "create"])
        .envs(env)
        .output()
        .expect("borgmatic runs");
    assert!(!run.status.success(), "the backup should fail");

    let ok = entries(&app, ok_job).await;
    let statuses: Vec<&str> = ok.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["started", "success"], "{ok:?}");
    assert!(
        ok[1]["duration_seconds"].is_i64(),
        "the start opened the run: {ok:?}"
    );
    let log = ok[1]["log"].as_str().unwrap_or_default();
    assert!(
        log.contains("Archive name:"),
        "borgmatic's log (--stats) is kept: {log}"
    );
    let status: Vec<Value> = app.get("/api/v1/status").await.json().await.unwrap();
    let state = |id: i64| {
        status
            .iter()
            .find(|s| s["job_id"] == id)
            .map(|s| s["state"].clone())
            .unwrap()
    };
    assert_eq!(state(ok_job), "ok");

    let bad = entries(&app, bad_job).await;
    let statuses: Vec<&str> = bad.iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["started", "failed"], "{bad:?}");
    let message = bad[1]["error_message"].as_str().unwrap_or_default();
    assert!(
        message.contains("no-such-repo"),
        "the log names the problem: {message}"
    );
    assert_eq!(state(bad_job), "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_key_never_appears_in_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.log");
    let (mut child, addr) =
        serve_logging_to(dir.path(), &log_path, "bm_test-admin-token-for-pings");
    let base = format!("http://{addr}");
    let admin = client_with(Some("bm_test-admin-token-for-pings"));
    let job: Value = admin
        .post(format!("{base}/api/v1/jobs/"))
        .json(&valid_job())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = job["ping_url"].as_str().unwrap().to_owned();
    let key = path.trim_start_matches("/ping/").to_owned();
    let anonymous = client_with(None);
    for suffix in ["", "/start", "/fail", "/0", "/log", "/999", "/x/y"] {
        anonymous
            .post(format!("{base}{path}{suffix}"))
            .body("a log line")
            .send()
            .await
            .unwrap();
    }
    anonymous
        .get(format!("{base}/api/push/{key}?status=up"))
        .send()
        .await
        .unwrap();

    terminate(&child);
    child.wait().unwrap();
    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        logged.contains("/ping/{key}"),
        "requests are logged by route: {logged}"
    );
    assert!(
        !logged.contains(&key),
        "the key leaked into the logs:\n{logged}"
    );
}
