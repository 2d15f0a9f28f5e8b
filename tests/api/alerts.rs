//! Alerts end to end: the running service emails a real SMTP server on 127.0.0.1; the
//! outbox is also driven a step at a time with an explicit `now` for outages and restarts.
#![allow(clippy::unwrap_used)]

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::common::{
    at, claim_alerts, emailing, free_port, plain_smtp, spawn_app, spawn_app_with, Outbox, Settings,
    TestApp, LEASE,
};
use crate::smtp::SmtpServer;

/// An outbox on the app's database that sends through `port`, driven by hand.
fn outbox(app: &TestApp, port: u16) -> Outbox {
    crate::common::outbox(
        &app.db_path,
        &plain_smtp(port),
        vec!["ops@example.com".to_owned()],
    )
}

async fn alerts(app: &TestApp) -> Vec<Value> {
    app.get("/api/v1/alerts").await.json().await.unwrap()
}

#[tokio::test]
async fn a_failed_report_is_emailed_at_once_with_what_to_act_on() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(emailing(smtp.port)).await;
    let job = app
        .create_job(json!({"notify_emails": ["dba@acme.example"], "company_name": "acme", "city": "Lyon", "database_name": "erp"}))
        .await;
    // The failure arrives as it happens, in the slot that is due.
    app.set_now(Some(at("2026-11-24T02:40:00Z")));
    let response = app
        .post_json(
            "/api/v1/entries/",
            &json!({"expected_job_id": job["id"], "status": "failed",
                    "backup_timestamp_utc": "2026-11-24T02:31:00Z",
                    "error_message": "pg_dump: error: connection to server failed: FATAL: password authentication failed"}),
        )
        .await;
    assert_eq!(response.status(), 201);

    let mails = smtp.wait_for(1).await;
    let mail = &mails[0];
    assert_eq!(
        mail.subject(),
        "[backup-monitor] FAILED acme/Lyon db=erp for 02:30 UTC"
    );
    assert_eq!(mail.from, "monitor@example.com");
    let mut to = mail.to.clone();
    to.sort();
    assert_eq!(to, ["dba@acme.example", "ops@example.com"]);
    for expected in [
        "Company:       acme",
        "City:          Lyon",
        "Database:      erp",
        "Agent:         agent-lyon-1",
        "Expected slot: 2026-11-24 02:30:00 UTC",
        "Last success:  never",
        "Expected file: /backups/acme/Lyon/erp/2026-11-24.dump",
        "password authentication failed",
    ] {
        assert!(
            mail.body().contains(expected),
            "body lacks {expected:?}:\n{}",
            mail.body()
        );
    }
    // The outbox records the delivery.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let rows = alerts(&app).await;
        if rows[0]["sent_at"].is_string() {
            assert_eq!(rows[0]["kind"], "failed");
            assert_eq!(rows[0]["attempts"], 1);
            assert_eq!(rows[0]["last_error"], Value::Null);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never marked sent: {rows:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn late_then_recovered_are_each_emailed_once() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(emailing(smtp.port)).await;
    let job = app.create_job(json!({})).await;
    let id = job["id"].as_i64().unwrap();
    app.backdate(id, at("2026-11-20T00:00:00Z"));
    let sender = outbox(&app, smtp.port);

    let tick = app.tick(at("2026-11-21T03:31:00Z"));
    assert_eq!(tick.alerts_queued, 1);
    let sent = sender
        .dispatch_pending(at("2026-11-21T03:31:00Z"))
        .await
        .unwrap();
    assert_eq!(sent.sent, 1);
    let mails = smtp.wait_for(1).await;
    assert_eq!(
        mails[0].subject(),
        "[backup-monitor] LATE acme/Lyon db=erp expected 02:30 UTC"
    );
    assert!(mails[0].body().contains("No backup was reported"));

    app.set_now(Some(at("2026-11-21T04:01:00Z")));
    app.report(id, "success", "2026-11-21T04:00:00Z").await;
    let mails = smtp.wait_for(2).await;
    assert_eq!(
        mails[1].subject(),
        "[backup-monitor] RECOVERED acme/Lyon db=erp for 02:30 UTC"
    );
    assert!(
        mails[1]
            .body()
            .contains("Last success:  2026-11-21 04:00:00 UTC"),
        "{}",
        mails[1].body()
    );

    // A second success does not recover twice; nothing else is sent.
    app.set_now(Some(at("2026-11-22T02:36:00Z")));
    app.report(id, "success", "2026-11-22T02:35:00Z").await;
    let again = sender
        .dispatch_pending(Utc::now() + Duration::hours(2))
        .await
        .unwrap();
    assert_eq!(again.sent, 0);
    assert_eq!(smtp.received().len(), 2);
    let kinds: Vec<Value> = alerts(&app)
        .await
        .iter()
        .map(|a| a["kind"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("recovered"), json!("late")]);
}

#[tokio::test]
async fn failures_in_one_slot_alert_once_and_every_new_slot_alerts_again() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    let id = job["id"].as_i64().unwrap();
    app.set_now(Some(at("2026-11-24T03:11:00Z")));
    app.report(id, "failed", "2026-11-24T02:31:00Z").await;
    app.report(id, "failed", "2026-11-24T03:10:00Z").await;
    assert_eq!(alerts(&app).await.len(), 1, "same slot: one alert");
    app.set_now(Some(at("2026-11-25T02:32:00Z")));
    app.report(id, "failed", "2026-11-25T02:31:00Z").await;
    let rows = alerts(&app).await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["slot_utc"], "2026-11-25T02:30:00Z");
    // An identical repeat of a report is not a new failure.
    let repeat = app
        .post_json("/api/v1/entries/", &json!({"expected_job_id": id, "status": "failed", "backup_timestamp_utc": "2026-11-25T02:31:00Z"}))
        .await;
    assert_eq!(repeat.status(), 200);
    assert_eq!(alerts(&app).await.len(), 2);
}

#[tokio::test]
async fn a_batch_with_failures_queues_their_alerts() {
    let app = spawn_app().await;
    let a = app.create_job(json!({"database_name": "a"})).await;
    let b = app.create_job(json!({"database_name": "b"})).await;
    app.set_now(Some(at("2026-11-24T02:32:00Z")));
    let response = app
        .post_json(
            "/api/v1/entries/batch",
            &json!([
                {"expected_job_id": a["id"], "status": "failed", "backup_timestamp_utc": "2026-11-24T02:31:00Z"},
                {"expected_job_id": b["id"], "status": "success", "backup_timestamp_utc": "2026-11-24T02:31:00Z"},
            ]),
        )
        .await;
    assert_eq!(response.status(), 201);
    let rows = alerts(&app).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["job_id"], a["id"]);
    assert_eq!(rows[0]["kind"], "failed");
}

#[tokio::test]
async fn an_smtp_outage_delays_alerts_with_backoff_and_loses_none() {
    let port = free_port();
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    app.set_now(Some(at("2026-11-24T02:32:00Z")));
    app.report(
        job["id"].as_i64().unwrap(),
        "failed",
        "2026-11-24T02:31:00Z",
    )
    .await;
    let sender = outbox(&app, port);
    let t0 = at("2030-01-01T00:00:00Z");

    let down = sender.dispatch_pending(t0).await.unwrap();
    assert_eq!((down.sent, down.failed), (0, 1));
    let rows = alerts(&app).await;
    assert_eq!(rows[0]["attempts"], 1);
    assert_eq!(rows[0]["sent_at"], Value::Null);
    let error = rows[0]["last_error"].as_str().unwrap();
    assert!(error.contains("nothing listens on 127.0.0.1"), "{error}");

    // Backoff: not retried before 30 s.
    let early = sender
        .dispatch_pending(t0 + Duration::seconds(29))
        .await
        .unwrap();
    assert_eq!((early.sent, early.failed), (0, 0));
    let second = sender
        .dispatch_pending(t0 + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!(second.failed, 1, "retried after 30 s");
    let third = sender
        .dispatch_pending(t0 + Duration::seconds(30 + 59))
        .await
        .unwrap();
    assert_eq!(third.failed, 0, "then after 60 s");

    let smtp = SmtpServer::start_on(port, None);
    let up = sender
        .dispatch_pending(t0 + Duration::seconds(90))
        .await
        .unwrap();
    assert_eq!((up.sent, up.failed), (1, 0));
    assert_eq!(smtp.received().len(), 1);
    let rows = alerts(&app).await;
    assert_eq!(rows[0]["attempts"], 3);
    assert_eq!(rows[0]["last_error"], Value::Null);
    assert!(rows[0]["sent_at"].is_string());

    let later = sender
        .dispatch_pending(t0 + Duration::days(1))
        .await
        .unwrap();
    assert_eq!((later.sent, later.failed), (0, 0), "nothing is sent twice");
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn a_sender_that_dies_mid_delivery_hands_its_alerts_over_after_the_lease() {
    let smtp = SmtpServer::start();
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    app.set_now(Some(at("2026-11-24T02:32:00Z")));
    app.report(
        job["id"].as_i64().unwrap(),
        "failed",
        "2026-11-24T02:31:00Z",
    )
    .await;
    let t0 = at("2030-01-01T00:00:00Z");

    // A first process claims the alert, then dies before sending it.
    let claimed = claim_alerts(&app.db_path, t0, 10);
    assert_eq!(claimed, 1);
    // After a restart, the new sender leaves it alone while the lease holds…
    let restarted = outbox(&app, smtp.port);
    let during = restarted
        .dispatch_pending(t0 + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(during.sent, 0);
    // …and delivers it, once, when the lease has run out.
    let after = restarted.dispatch_pending(t0 + LEASE).await.unwrap();
    assert_eq!(after.sent, 1);
    let again = restarted.dispatch_pending(t0 + LEASE * 3).await.unwrap();
    assert_eq!(again.sent, 0);
    assert_eq!(smtp.received().len(), 1);
}

#[tokio::test]
async fn a_restarted_service_delivers_what_was_queued_before() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kept.db").display());
    // Queued while no SMTP server was configured: recorded, not sent.
    let first = spawn_app_with(|s| s.database.url = url.clone()).await;
    let job = first.create_job(json!({})).await;
    first.set_now(Some(at("2026-11-24T02:32:00Z")));
    first
        .report(
            job["id"].as_i64().unwrap(),
            "failed",
            "2026-11-24T02:31:00Z",
        )
        .await;
    let rows = alerts(&first).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["sent_at"], Value::Null);
    first.stop().await;

    let smtp = SmtpServer::start();
    let second = spawn_app_with(|s| {
        s.database.url = url.clone();
        emailing(smtp.port)(s);
    })
    .await;
    let mails = smtp.wait_for(1).await;
    assert!(mails[0].subject().starts_with("[backup-monitor] FAILED"));
    second.stop().await;
}

#[tokio::test]
async fn a_job_without_any_recipient_keeps_its_alert_with_the_reason() {
    let smtp = SmtpServer::start();
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    app.set_now(Some(at("2026-11-24T02:32:00Z")));
    app.report(
        job["id"].as_i64().unwrap(),
        "failed",
        "2026-11-24T02:31:00Z",
    )
    .await;
    let sender = crate::common::outbox(&app.db_path, &plain_smtp(smtp.port), Vec::new());
    let outcome = sender
        .dispatch_pending(Utc::now() + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(outcome.failed, 1);
    let rows = alerts(&app).await;
    assert!(rows[0]["last_error"]
        .as_str()
        .unwrap()
        .contains("no recipients"));
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn deleting_a_job_takes_its_alerts_along() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    app.set_now(Some(at("2026-11-24T02:32:00Z")));
    app.report(
        job["id"].as_i64().unwrap(),
        "failed",
        "2026-11-24T02:31:00Z",
    )
    .await;
    assert_eq!(alerts(&app).await.len(), 1);
    assert_eq!(
        app.delete(&format!("/api/v1/jobs/{}", job["id"]))
            .await
            .status(),
        200
    );
    let response = app.get("/api/v1/alerts/").await;
    assert_eq!(response.headers()["x-total-count"], "0");
}

#[tokio::test]
async fn the_alerts_listing_pages_newest_first() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    let id = job["id"].as_i64().unwrap();
    for day in 20..25 {
        app.set_now(Some(at(&format!("2026-11-{day}T02:32:00Z"))));
        app.report(id, "failed", &format!("2026-11-{day}T02:31:00Z"))
            .await;
    }
    let response = app.get("/api/v1/alerts?skip=1&limit=2").await;
    assert_eq!(response.headers()["x-total-count"], "5");
    let rows: Vec<Value> = response.json().await.unwrap();
    let slots: Vec<&str> = rows
        .iter()
        .map(|r| r["slot_utc"].as_str().unwrap())
        .collect();
    assert_eq!(slots, ["2026-11-23T02:30:00Z", "2026-11-22T02:30:00Z"]);
    for row in &rows {
        for key in [
            "id",
            "job_id",
            "kind",
            "slot_utc",
            "created_at",
            "attempts",
            "sent_at",
            "last_error",
        ] {
            assert!(row.get(key).is_some(), "alert lacks {key}: {row}");
        }
    }
    assert_eq!(app.get("/api/v1/alerts?limit=0").await.status(), 422);
}

/// Queues one `failed` alert for each of `n` jobs (`db-0` … `db-n-1`), reported as they
/// happen.
async fn queue_failures(app: &TestApp, n: usize) {
    app.set_now(Some(at("2026-11-24T02:32:00Z")));
    for i in 0..n {
        let job = app
            .create_job(json!({"database_name": format!("db-{i}")}))
            .await;
        app.report(
            job["id"].as_i64().unwrap(),
            "failed",
            "2026-11-24T02:31:00Z",
        )
        .await;
    }
}

/// Each subject received, with how many times.
fn subjects(smtp: &SmtpServer) -> std::collections::BTreeMap<String, usize> {
    let mut seen = std::collections::BTreeMap::new();
    for mail in smtp.received() {
        *seen.entry(mail.subject()).or_insert(0) += 1;
    }
    seen
}

#[tokio::test]
async fn an_hour_of_smtp_outage_delays_every_alert_and_then_delivers_each_exactly_once() {
    // Arrange: 30 alerts queued (more than one delivery round) while the server is down.
    let port = free_port();
    let app = spawn_app().await;
    queue_failures(&app, 30).await;
    let sender = outbox(&app, port);
    let t0 = at("2030-01-01T00:00:00Z");

    // Act: the delivery loop runs every minute of a simulated hour, the SMTP server down.
    let mut attempts = 0;
    for minute in 0..60 {
        let round = sender
            .dispatch_pending(t0 + Duration::minutes(minute))
            .await
            .unwrap();
        assert_eq!(round.sent, 0);
        attempts += round.failed;
    }
    let smtp = SmtpServer::start_on(port, None);
    let mut sent = 0;
    for minute in 60..180 {
        sent += sender
            .dispatch_pending(t0 + Duration::minutes(minute))
            .await
            .unwrap()
            .sent;
    }

    // Assert: backoff kept the retries few (30 s, 1, 2, 4, 8, 16, 32 min: 7 tries each in
    // the hour, not 60), and every alert arrived once.
    assert_eq!(attempts, 30 * 7, "tries during the outage");
    assert_eq!(sent, 30);
    let seen = subjects(&smtp);
    assert_eq!(seen.len(), 30, "{seen:?}");
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    let rows = alerts(&app).await;
    assert!(rows.iter().all(|a| a["sent_at"].is_string()));
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_delivery_round_sends_none_twice_and_hands_the_rest_over() {
    // Arrange: 8 alerts, an SMTP server that takes 300 ms to accept each email.
    let smtp = SmtpServer::start_slow(std::time::Duration::from_millis(300));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kept.db").display());
    let settings = |s: &mut Settings| {
        s.database.url = url.clone();
        emailing(smtp.port)(s);
    };
    let first = spawn_app_with(settings).await;
    queue_failures(&first, 8).await;

    // Act: stop the service while its delivery round is under way…
    smtp.wait_for(2).await;
    first.stop().await;
    let before_restart = smtp.received().len();
    // …and start it again: the rest goes out at once, not after the 5-minute lease.
    let started = std::time::Instant::now();
    let second = spawn_app_with(settings).await;
    smtp.wait_for(8).await;
    let waited = started.elapsed();
    second.stop().await;

    // Assert
    assert!(
        before_restart < 8,
        "the round was cut short: {before_restart}"
    );
    assert!(waited < std::time::Duration::from_secs(8), "{waited:?}");
    let seen = subjects(&smtp);
    assert_eq!(seen.len(), 8, "{seen:?}");
    assert!(seen.values().all(|n| *n == 1), "sent twice: {seen:?}");
}
