//! Runs (DESIGN §10): a `started` report opens a run, the next report of the job (of the same
//! run when it is named) finishes it with its duration; a run that goes on past the job's
//! `max_duration_minutes` raises one `hung` alert.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::common::{at, emailing, spawn_app, spawn_app_with, TestApp};
use crate::smtp::SmtpServer;

async fn send(app: &TestApp, body: Value) -> Value {
    let response = app.post_json("/api/v1/entries/", &body).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

async fn started(app: &TestApp, job: i64, when: DateTime<Utc>, run_id: Option<&str>) -> Value {
    send(
        app,
        json!({"expected_job_id": job, "status": "started",
               "backup_timestamp_utc": when.to_rfc3339(), "run_id": run_id}),
    )
    .await
}

async fn finished(
    app: &TestApp,
    job: i64,
    status: &str,
    when: DateTime<Utc>,
    run_id: Option<&str>,
) -> Value {
    send(
        app,
        json!({"expected_job_id": job, "status": status,
               "backup_timestamp_utc": when.to_rfc3339(), "run_id": run_id}),
    )
    .await
}

async fn status_of(app: &TestApp, job: i64) -> Value {
    let all: Vec<Value> = app.get("/api/v1/status").await.json().await.unwrap();
    all.into_iter().find(|s| s["job_id"] == job).unwrap()
}

async fn alerts(app: &TestApp) -> Vec<Value> {
    let mut alerts: Vec<Value> = app.get("/api/v1/alerts").await.json().await.unwrap();
    alerts.reverse();
    alerts
}

#[tokio::test]
async fn a_start_then_a_success_is_a_run_with_its_duration() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    app.set_now(Some(at("2026-11-24T02:20:00Z")));

    let start = started(&app, job, at("2026-11-24T02:00:00Z"), None).await;

    assert_eq!(start["status"], "started");
    assert_eq!(start["duration_seconds"], Value::Null);
    let status = status_of(&app, job).await;
    assert_eq!(status["running_since"], "2026-11-24T02:00:00Z", "{status}");
    assert_eq!(status["last_duration_seconds"], Value::Null);
    // A start is no report: the job has none yet.
    assert_eq!(status["state"], "pending");

    app.set_now(Some(at("2026-11-24T02:40:00Z")));
    let done = finished(&app, job, "success", at("2026-11-24T02:23:20Z"), None).await;

    assert_eq!(done["duration_seconds"], 1400);
    let status = status_of(&app, job).await;
    assert_eq!(status["running_since"], Value::Null, "{status}");
    assert_eq!(status["last_duration_seconds"], 1400);
    assert_eq!(status["state"], "ok");
    // The next report starts no new measure: the run is finished.
    let again = finished(&app, job, "success", at("2026-11-24T02:30:00Z"), None).await;
    assert_eq!(again["duration_seconds"], Value::Null);
}

#[tokio::test]
async fn a_named_run_is_finished_by_its_own_report_only() {
    let app = spawn_app().await;
    let job = app
        .create_job(
            json!({"backup_frequency": "hourly", "expected_minute_utc": 0, "grace_minutes": 30}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    app.set_now(Some(at("2026-11-24T03:00:00Z")));
    started(&app, job, at("2026-11-24T02:00:00Z"), Some("run-a")).await;
    started(&app, job, at("2026-11-24T02:10:00Z"), Some("run-b")).await;

    let a = finished(
        &app,
        job,
        "failed",
        at("2026-11-24T02:15:00Z"),
        Some("run-a"),
    )
    .await;
    assert_eq!(a["duration_seconds"], 900, "run-a started at 02:00");
    assert_eq!(a["run_id"], "run-a");
    // run-b is still open.
    assert_eq!(
        status_of(&app, job).await["running_since"],
        "2026-11-24T02:10:00Z"
    );
    let unknown = finished(
        &app,
        job,
        "success",
        at("2026-11-24T02:20:00Z"),
        Some("run-z"),
    )
    .await;
    assert_eq!(unknown["duration_seconds"], Value::Null, "no such run");
    let b = finished(
        &app,
        job,
        "success",
        at("2026-11-24T02:25:00Z"),
        Some("run-b"),
    )
    .await;
    assert_eq!(b["duration_seconds"], 900);
    assert_eq!(status_of(&app, job).await["running_since"], Value::Null);
}

#[tokio::test]
async fn a_start_does_not_count_as_the_slots_report() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    app.backdate(job, at("2026-11-24T00:00:00Z"));
    app.set_now(Some(at("2026-11-24T02:35:00Z")));
    started(&app, job, at("2026-11-24T02:30:00Z"), None).await;

    let outcome = app.tick(at("2026-11-24T03:31:00Z"));

    assert_eq!(outcome.missing_written, 1);
    assert_eq!(outcome.alerts_queued, 1);
    app.set_now(Some(at("2026-11-24T03:31:00Z")));
    let status = status_of(&app, job).await;
    assert_eq!(status["state"], "late");
    assert_eq!(status["running_since"], "2026-11-24T02:30:00Z");
}

#[tokio::test]
async fn a_start_older_than_seven_days_is_abandoned() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    app.set_now(Some(at("2026-11-16T02:40:00Z")));
    started(&app, job, at("2026-11-16T02:30:00Z"), None).await;

    app.set_now(Some(at("2026-11-24T02:40:00Z")));
    assert_eq!(status_of(&app, job).await["running_since"], Value::Null);
    let done = finished(&app, job, "success", at("2026-11-24T02:31:00Z"), None).await;
    assert_eq!(done["duration_seconds"], Value::Null);
}

#[tokio::test]
async fn a_run_id_is_at_most_64_characters() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    let response = app
        .post_json(
            "/api/v1/entries/",
            &json!({"expected_job_id": job, "status": "started", "run_id": "r".repeat(65)}),
        )
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "run_id"]),
        "{body}"
    );
    let response = app
        .post_json(
            "/api/v1/entries/",
            &json!({"expected_job_id": job, "status": "started", "run_id": "r".repeat(64)}),
        )
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_run_past_its_max_duration_raises_one_hung_alert_then_recovers() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(emailing(smtp.port)).await;
    let job = app.create_job(json!({"max_duration_minutes": 30})).await["id"]
        .as_i64()
        .unwrap();
    app.set_now(Some(at("2026-11-24T02:05:00Z")));
    started(&app, job, at("2026-11-24T02:00:00Z"), None).await;

    assert_eq!(
        app.tick(at("2026-11-24T02:29:00Z")).alerts_queued,
        0,
        "29 min: running"
    );
    assert_eq!(
        app.tick(at("2026-11-24T02:30:00Z")).alerts_queued,
        1,
        "30 min: hung"
    );
    assert_eq!(
        app.tick(at("2026-11-24T02:45:00Z")).alerts_queued,
        0,
        "one alert per run"
    );

    let alerts = alerts(&app).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["kind"], "hung");
    assert_eq!(alerts[0]["job_id"], job);
    assert_eq!(alerts[0]["agent_id"], Value::Null);
    let mails = smtp.wait_for(1).await;
    assert_eq!(
        mails[0].subject(),
        "[backup-monitor] HUNG acme/Lyon db=erp run for 02:30 UTC not finished"
    );
    let body = mails[0].body();
    assert!(
        body.contains("A run started at 2026-11-24 02:00:00 UTC and has not finished after 30 min (max_duration_minutes 30)"),
        "{body}"
    );

    // It ends after all: the job is healthy again.
    app.set_now(Some(at("2026-11-24T02:50:00Z")));
    let done = finished(&app, job, "success", at("2026-11-24T02:48:00Z"), None).await;
    assert_eq!(done["duration_seconds"], 48 * 60);
    let mails = smtp.wait_for(2).await;
    assert_eq!(
        mails[1].subject(),
        "[backup-monitor] RECOVERED acme/Lyon db=erp for 02:30 UTC"
    );
    assert!(
        mails[1].body().contains("Duration:      48 min"),
        "{}",
        mails[1].body()
    );
}

#[tokio::test]
async fn without_max_duration_a_run_never_hangs() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    app.set_now(Some(at("2026-11-24T02:05:00Z")));
    started(&app, job, at("2026-11-24T02:00:00Z"), None).await;
    assert_eq!(app.tick(at("2026-11-24T02:25:00Z")).alerts_queued, 0);
    let outcome = app.tick(at("2026-11-26T02:25:00Z"));
    assert!(
        alerts(&app).await.iter().all(|a| a["kind"] != "hung"),
        "{outcome:?}"
    );
}
