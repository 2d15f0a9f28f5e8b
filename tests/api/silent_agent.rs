//! The silent agent (DESIGN §10): when a host dies, its jobs fall late together; one
//! `agent_silent` alert says so instead of one `late` alert per job, later late slots fold
//! into it, and the agent's next report raises one `agent_back`.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};

use crate::common::{at, emailing, spawn_app, spawn_app_with, Role, TestApp};
use crate::smtp::SmtpServer;

/// Hourly jobs at :00 with a 30-minute grace, of `agent`, created on 24 November at 00:00.
async fn hourly_jobs(app: &TestApp, agent: &str, databases: &[&str]) -> Vec<i64> {
    let mut ids = Vec::new();
    for db in databases {
        let job = app
            .create_job(json!({"database_name": db, "agent_id_responsible": agent,
                               "backup_frequency": "hourly", "expected_minute_utc": 0,
                               "grace_minutes": 30, "notify_emails": [format!("{db}@acme.example")]}))
            .await;
        let id = job["id"].as_i64().unwrap();
        app.backdate(id, at("2026-11-24T00:00:00Z"));
        ids.push(id);
    }
    ids
}

async fn alerts(app: &TestApp) -> Vec<Value> {
    let mut alerts: Vec<Value> = app.get("/api/v1/alerts").await.json().await.unwrap();
    alerts.reverse();
    alerts
}

#[tokio::test]
async fn a_silent_agent_is_one_alert_folds_later_slots_and_comes_back_once() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(emailing(smtp.port)).await;
    let jobs = hourly_jobs(&app, "nas-1", &["erp", "crm", "wiki"]).await;
    // Every job reported its 00:00 run; then the host went dark.
    app.set_now(Some(at("2026-11-24T00:10:00Z")));
    for job in &jobs {
        app.report(*job, "success", "2026-11-24T00:02:00Z").await;
    }

    // 01:30: the 01:00 slot of the three jobs is due and empty.
    let outcome = app.tick(at("2026-11-24T01:30:00Z"));

    assert_eq!(
        outcome.missing_written, 3,
        "the missing entries are written as usual"
    );
    assert_eq!(outcome.alerts_queued, 1, "one alert, not three");
    let listed = alerts(&app).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["kind"], "agent_silent");
    assert_eq!(listed[0]["agent_id"], "nas-1");
    assert_eq!(listed[0]["job_id"], Value::Null);
    assert_eq!(listed[0]["slot_utc"], "2026-11-24T01:00:00Z");
    let mails = smtp.wait_for(1).await;
    assert_eq!(
        mails[0].subject(),
        "[backup-monitor] AGENT SILENT nas-1: 3 jobs late since 2026-11-24 01:00 UTC"
    );
    let body = mails[0].body();
    for line in [
        "Agent nas-1 has sent nothing since 2026-11-24 01:00:00 UTC, and 3 of its jobs are late.",
        "Last heard:    2026-11-24 00:02:00 UTC",
        &format!("- acme/Lyon db=erp (job {}): expected 01:00 UTC", jobs[0]),
        &format!("- acme/Lyon db=wiki (job {}): expected 01:00 UTC", jobs[2]),
    ] {
        assert!(body.contains(line), "{line:?} in\n{body}");
    }
    let mut to = mails[0].to.clone();
    to.sort();
    assert_eq!(
        to,
        [
            "crm@acme.example",
            "erp@acme.example",
            "ops@example.com",
            "wiki@acme.example"
        ]
    );

    // Two more hours of silence: folded into the open alert, no new email.
    let outcome = app.tick(at("2026-11-24T03:30:00Z"));
    assert_eq!(outcome.missing_written, 6);
    assert_eq!(outcome.alerts_queued, 0);
    app.set_now(Some(at("2026-11-24T03:30:00Z")));
    let status: Vec<Value> = app.get("/api/v1/status").await.json().await.unwrap();
    assert!(status.iter().all(|s| s["state"] == "late"), "{status:?}");

    // The host is back: one report is enough for one `agent_back`.
    app.set_now(Some(at("2026-11-24T03:40:00Z")));
    app.report(jobs[1], "success", "2026-11-24T03:35:00Z").await;
    app.report(jobs[0], "success", "2026-11-24T03:36:00Z").await;
    let kinds: Vec<Value> = alerts(&app)
        .await
        .iter()
        .map(|a| a["kind"].clone())
        .collect();
    assert_eq!(kinds, ["agent_silent", "agent_back"]);
    let mails = smtp.wait_for(2).await;
    assert_eq!(
        mails[1].subject(),
        "[backup-monitor] AGENT BACK nas-1: reporting again after 2 h"
    );
    assert!(
        mails[1].body().contains("Jobs that were late:"),
        "{}",
        mails[1].body()
    );

    // Silent again later: a new alert, since the first one was answered.
    let outcome = app.tick(at("2026-11-24T06:30:00Z"));
    assert_eq!(outcome.alerts_queued, 1);
    let kinds: Vec<Value> = alerts(&app)
        .await
        .iter()
        .map(|a| a["kind"].clone())
        .collect();
    assert_eq!(kinds, ["agent_silent", "agent_back", "agent_silent"]);
}

#[tokio::test]
async fn an_agent_that_still_reports_gets_late_alerts_per_job() {
    let app = spawn_app().await;
    let jobs = hourly_jobs(&app, "nas-1", &["erp", "crm", "wiki"]).await;
    // The third job's 01:00 run was reported: the agent is alive, two jobs are just late.
    app.set_now(Some(at("2026-11-24T01:10:00Z")));
    app.report(jobs[2], "success", "2026-11-24T01:01:00Z").await;

    let outcome = app.tick(at("2026-11-24T01:30:00Z"));

    assert_eq!(outcome.alerts_queued, 2);
    let listed = alerts(&app).await;
    let kinds: Vec<&str> = listed.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["late", "late"]);
}

#[tokio::test]
async fn one_late_job_of_a_silent_agent_is_just_late() {
    let app = spawn_app().await;
    hourly_jobs(&app, "nas-1", &["erp"]).await;
    hourly_jobs(&app, "nas-2", &["crm"]).await;

    let outcome = app.tick(at("2026-11-24T01:30:00Z"));

    assert_eq!(outcome.alerts_queued, 2);
    let kinds: Vec<Value> = alerts(&app)
        .await
        .iter()
        .map(|a| a["kind"].clone())
        .collect();
    assert_eq!(kinds, ["late", "late"]);
}

#[tokio::test]
async fn an_agent_token_sees_its_own_agent_alerts_only() {
    let app = spawn_app().await;
    hourly_jobs(&app, "nas-1", &["erp", "crm"]).await;
    hourly_jobs(&app, "nas-2", &["wiki", "mail"]).await;
    assert_eq!(app.tick(at("2026-11-24T01:30:00Z")).alerts_queued, 2);

    let token = app.token(Role::Agent, Some("nas-1"));
    let response = crate::common::client_with(Some(&token))
        .get(app.url("/api/v1/alerts"))
        .send()
        .await
        .unwrap();
    let seen: Vec<Value> = response.json().await.unwrap();

    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0]["agent_id"], "nas-1");
}
