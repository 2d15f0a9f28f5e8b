//! `backup-monitor check` and `send-test-email`, run as a sysadmin would, against a real
//! database file and a real SMTP server.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use chrono::{Duration, DurationRound, Timelike, Utc};
use serde_json::{json, Value};

use crate::common::{command, free_port, spawn_app, stderr, stdout};
use crate::smtp::SmtpServer;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn check(db: &std::path::Path, json: bool) -> Output {
    let db = db.display().to_string();
    let mut args = vec!["--database", db.as_str(), "check"];
    if json {
        args.push("--json");
    }
    run(&args, &[])
}

#[tokio::test]
async fn check_is_ok_when_nothing_is_wrong() {
    let app = spawn_app().await;
    app.create_job(json!({})).await;
    let out = check(&app.db_path, false);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let first = stdout(&out).lines().next().unwrap().to_owned();
    assert!(
        first.starts_with(
            "BACKUP OK - 0 late, 0 failed, 0 within grace, 0 ok, 1 pending, 0 paused |"
        ),
        "{first}"
    );
}

#[tokio::test]
async fn check_is_critical_for_a_late_or_failed_job_and_names_it() {
    let app = spawn_app().await;
    let late = app
        .create_job(json!({"company_name": "acme", "city": "Lyon", "database_name": "erp"}))
        .await;
    app.backdate(late["id"].as_i64().unwrap(), Utc::now() - Duration::days(3));
    let failed = app.create_job(json!({"company_name": "globex"})).await;
    app.report(
        failed["id"].as_i64().unwrap(),
        "failed",
        &Utc::now().to_rfc3339(),
    )
    .await;

    let out = check(&app.db_path, false);
    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("BACKUP CRITICAL - 1 late, 1 failed"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "LATE: acme/Lyon db=erp agent=agent-lyon-1 (job {}), last success never",
            late["id"]
        )),
        "{text}"
    );
    assert!(text.contains("FAILED: globex/Lyon"), "{text}");

    let out = check(&app.db_path, true);
    assert_eq!(out.status.code(), Some(2));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "CRITICAL");
    assert_eq!(report["code"], 2);
    assert_eq!(report["counts"]["late"], 1);
    assert_eq!(report["counts"]["failed"], 1);
    assert_eq!(report["jobs"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn check_warns_while_a_slot_is_within_its_grace() {
    let app = spawn_app().await;
    let now = Utc::now();
    // A daily slot that started 10 minutes ago (grace 60), yesterday's done.
    let slot = (now - Duration::minutes(10))
        .duration_trunc(Duration::minutes(1))
        .unwrap();
    let job = app
        .create_job(json!({"expected_hour_utc": slot.hour(), "expected_minute_utc": slot.minute(), "grace_minutes": 60}))
        .await;
    let id = job["id"].as_i64().unwrap();
    app.backdate(id, now - Duration::days(3));
    app.report(id, "success", &(slot - Duration::days(1)).to_rfc3339())
        .await;

    let out = check(&app.db_path, false);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("BACKUP WARNING - 0 late, 0 failed, 1 within grace, 1 ok"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("WITHIN GRACE: acme/Lyon"));

    // Once reported, all is well.
    app.report(id, "success", &slot.to_rfc3339()).await;
    assert_eq!(check(&app.db_path, false).status.code(), Some(0));
}

#[test]
fn check_is_unknown_without_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.db");
    let out = check(&missing, false);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stdout(&out).starts_with("BACKUP UNKNOWN - database"),
        "{}",
        stdout(&out)
    );
    assert!(!missing.exists(), "check must not create a database");
    let out = check(&missing, true);
    assert_eq!(out.status.code(), Some(3));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["status"], "UNKNOWN");
}

fn smtp_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("SMTP_HOST", "127.0.0.1".to_owned()),
        ("SMTP_PORT", port.to_string()),
        ("SMTP_TLS", "none".to_owned()),
        ("SMTP_FROM", "monitor@example.com".to_owned()),
    ]
}

fn send_test(env: &[(&str, String)]) -> Output {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run(&["send-test-email", "--to", "ops@example.com"], &env)
}

#[test]
fn send_test_email_delivers_through_the_configured_server() {
    let smtp = SmtpServer::start();
    let out = send_test(&smtp_env(smtp.port));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("sent a test email to ops@example.com"));
    let mails = smtp.received();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject(), "[backup-monitor] test email");
    assert_eq!(mails[0].to, ["ops@example.com"]);
}

#[test]
fn send_test_email_explains_what_to_fix() {
    let closed = free_port();
    let out = send_test(&smtp_env(closed));
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "nothing listens on 127.0.0.1:{closed}: check smtp.host and smtp.port"
        )),
        "{err}"
    );

    let smtp = SmtpServer::start();
    let mut wrong_tls = smtp_env(smtp.port);
    wrong_tls[2].1 = "tls".to_owned();
    let out = send_test(&wrong_tls);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("port/TLS pair"), "{err}");

    let mut wrong_starttls = smtp_env(smtp.port);
    wrong_starttls[2].1 = "starttls".to_owned();
    let out = send_test(&wrong_starttls);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("STARTTLS"), "{}", stderr(&out));

    let out = send_test(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no SMTP server is configured"),
        "{}",
        stderr(&out)
    );
    assert!(smtp.received().is_empty());
}

#[test]
fn send_test_email_explains_a_login_the_server_cannot_take_without_showing_the_password() {
    // The server offers AUTH only after STARTTLS, as real servers do.
    let smtp = SmtpServer::start_on(0, Some("right-password"));
    let mut env = smtp_env(smtp.port);
    env.push(("SMTP_USERNAME", "monitor".to_owned()));
    env.push(("SMTP_PASSWORD", "wrong-password".to_owned()));
    let out = send_test(&env);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("offers no login method") && err.contains("starttls"),
        "{err}"
    );
    assert!(!err.contains("wrong-password") && !stdout(&out).contains("wrong-password"));
    assert!(smtp.received().is_empty());
}
