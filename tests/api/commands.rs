//! `backup-monitor check` and `send-test-email`, run as a sysadmin would, against a real
//! database file and a real SMTP server.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use chrono::{Duration, DurationRound, Timelike, Utc};
use serde_json::{json, Value};

use crate::common::{
    closed_port, command, hour_far_from_now, insert_job, spawn_app, stderr, stdout, valid_job,
};
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
    app.create_job(json!({"expected_hour_utc": hour_far_from_now()}))
        .await;
    let out = check(&app.db_path, false);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let first = stdout(&out).lines().next().unwrap().to_owned();
    assert!(
        first.starts_with(
            "BACKUP OK - 0 late, 0 failed, 0 suspect, 0 within grace, 0 ok, 1 pending, 0 paused |"
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
        stdout(&out).starts_with("BACKUP WARNING - 1 within grace: acme/Lyon db=erp | late=0 failed=0 suspect=0 within_grace=1 ok=1 "),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("WITHIN GRACE: acme/Lyon"));

    // Once reported, all is well.
    app.report(id, "success", &slot.to_rfc3339()).await;
    assert_eq!(check(&app.db_path, false).status.code(), Some(0));
}

#[tokio::test]
async fn checks_first_line_names_a_few_late_or_failed_jobs_and_counts_the_rest() {
    let app = spawn_app().await;
    let long_ago = Utc::now() - Duration::days(3);
    for (company, city, database) in [
        ("acme", "Lyon", "erp"),
        ("acme", "Nice", "crm"),
        ("globex", "Paris", "pay"),
        ("initech", "Lille", "hr"),
    ] {
        let job = app
            .create_job(json!({"company_name": company, "city": city, "database_name": database}))
            .await;
        app.backdate(job["id"].as_i64().unwrap(), long_ago);
    }
    let failed = app
        .create_job(json!({"company_name": "umbrella", "database_name": "lab"}))
        .await;
    app.report(
        failed["id"].as_i64().unwrap(),
        "failed",
        &Utc::now().to_rfc3339(),
    )
    .await;
    app.create_job(json!({"company_name": "fine", "expected_hour_utc": hour_far_from_now()}))
        .await;

    let out = check(&app.db_path, false);

    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    assert_eq!(
        text.lines().next().unwrap(),
        "BACKUP CRITICAL - 4 late, 1 failed: acme/Lyon db=erp (late), acme/Nice db=crm (late), \
         globex/Paris db=pay (late) and 2 more | late=4 failed=1 suspect=0 within_grace=0 ok=0 pending=1 paused=0"
    );
}

#[tokio::test]
async fn no_field_of_a_job_can_break_checks_output_for_nagios() {
    let app = spawn_app().await;
    let job = app
        .create_job(json!({
            "company_name": "Smith | Sons",
            "city": "Lyon\nBACKUP OK - 0 late | late=0",
            "database_name": "erp\r\nOK",
            "agent_id_responsible": "agent|1\u{2028}x",
        }))
        .await;
    app.backdate(job["id"].as_i64().unwrap(), Utc::now() - Duration::days(3));

    let out = check(&app.db_path, false);

    assert_eq!(out.status.code(), Some(2));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "the summary and one job: {text:?}");
    assert_eq!(
        text.matches('|').count(),
        1,
        "one performance data separator: {text:?}"
    );
    assert!(lines[0].starts_with("BACKUP CRITICAL - 1 late, 0 failed: Smith ¦ Sons/Lyon BACKUP OK - 0 late ¦ late=0 db=erp  OK (late) | late=1 "), "{text:?}");
    assert!(lines[1].starts_with("LATE: Smith ¦ Sons/"), "{text:?}");
    assert!(!text.contains('\u{2028}'), "{text:?}");
    // JSON keeps the names as they are.
    let report: Value = serde_json::from_slice(&check(&app.db_path, true).stdout).unwrap();
    assert_eq!(report["jobs"][0]["company_name"], "Smith | Sons");
}

/// `check` on `db`: UNKNOWN, one line on stdout, nothing else, fast.
fn assert_unknown_at_once(db: &std::path::Path, why: &str) {
    let started = std::time::Instant::now();
    let out = check(db, false);
    let took = started.elapsed();
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{why}: {text}");
    assert_eq!(text.lines().count(), 1, "{why}: {text:?}");
    assert!(text.starts_with("BACKUP UNKNOWN - "), "{why}: {text:?}");
    assert!(stderr(&out).is_empty(), "{why}: {}", stderr(&out));
    assert!(
        took < std::time::Duration::from_secs(3),
        "{why}: took {took:?}"
    );
}

#[test]
fn check_is_unknown_at_once_for_a_file_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.db");
    std::fs::write(
        &file,
        "these are not the backups you are looking for\n".repeat(200),
    )
    .unwrap();
    assert_unknown_at_once(&file, "a text file");
    let out = stdout(&check(&file, false));
    assert!(out.contains("file is not a database"), "{out}");
}

#[test]
fn check_is_unknown_at_once_for_a_corrupt_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bm.db");
    insert_job(&path, &valid_job());
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 4096, "one page at least");
    // The schema's page, after the 100-byte file header, overwritten with garbage.
    for (i, b) in bytes[100..4096].iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    std::fs::write(&path, &bytes).unwrap();
    assert_unknown_at_once(&path, "a corrupt database");
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
    assert_unknown_at_once(&missing, "no file");
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
    let (_closed, closed) = closed_port();
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

#[tokio::test]
async fn check_warns_about_a_suspect_backup_with_its_reason() {
    let app = spawn_app().await;
    let now = Utc::now();
    // Created 3 days ago, due hour an hour ago: yesterday's and today's slots are due.
    let slot = (now - Duration::hours(2))
        .duration_trunc(Duration::minutes(1))
        .unwrap();
    let job = app
        .create_job(json!({"expected_hour_utc": slot.hour(), "expected_minute_utc": slot.minute(), "grace_minutes": 60}))
        .await;
    let id = job["id"].as_i64().unwrap();
    app.backdate(id, now - Duration::days(3));
    let response = app
        .post_json(
            "/api/v1/entries/",
            &json!({"expected_job_id": id, "status": "success",
                    "backup_timestamp_utc": slot.to_rfc3339(), "backup_size_bytes": 0}),
        )
        .await;
    assert_eq!(response.status(), 201);

    let out = check(&app.db_path, false);

    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("BACKUP WARNING - 1 suspect: acme/Lyon db=erp (size 0 B is below the minimum of 1 B) | late=0 failed=0 suspect=1 "),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "SUSPECT: acme/Lyon db=erp agent=agent-lyon-1 (job {id}), last success "
        )),
        "{text}"
    );
    assert!(
        text.contains(": size 0 B is below the minimum of 1 B\n"),
        "{text}"
    );
    let report: Value = serde_json::from_str(&stdout(&check(&app.db_path, true))).unwrap();
    assert_eq!(report["counts"]["suspect"], 1);
    assert_eq!(
        report["jobs"][0]["suspect_reason"],
        "size 0 B is below the minimum of 1 B"
    );
}

#[tokio::test]
async fn digest_prints_todays_digest_without_sending_it() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    app.report(job, "success", &Utc::now().to_rfc3339()).await;

    let out = run(
        &["--database", &app.db_path.display().to_string(), "digest"],
        &[],
    );

    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("All 1 backup OK\n"), "{text}");
    assert!(text.contains("Jobs by state: 1 ok."), "{text}");
}
