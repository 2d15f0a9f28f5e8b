//! The scheduler, driven one tick at a time with an explicit `now`, against the running
//! service's database; and the status API that reads the same rule.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, DurationRound, TimeZone, Utc};
use serde_json::{json, Value};

use crate::common::{at, hour_far_from_now, spawn_app, spawn_app_with, Settings, TestApp};

async fn entries_of(app: &TestApp, job_id: &Value, query: &str) -> Vec<Value> {
    app.get(&format!(
        "/api/v1/entries/by_job/{job_id}?limit=1000{query}"
    ))
    .await
    .json()
    .await
    .unwrap()
}

/// A daily 02:30 job (grace 60) whose lateness counts from `since`.
async fn daily_job_since(app: &TestApp, since: DateTime<Utc>) -> Value {
    let job = app.create_job(json!({"grace_minutes": 60})).await;
    app.backdate(job["id"].as_i64().unwrap(), since);
    job
}

#[tokio::test]
async fn a_slot_that_falls_due_unreported_gets_one_missing_entry_and_one_late_alert() {
    let app = spawn_app().await;
    let job = daily_job_since(&app, at("2026-11-20T12:00:00Z")).await;

    let before_due = app.tick(at("2026-11-21T03:29:59Z"));
    assert_eq!(before_due.missing_written, 0, "not due before 03:30");

    let at_due = app.tick(at("2026-11-21T03:30:00Z"));
    assert_eq!((at_due.missing_written, at_due.alerts_queued), (1, 1));
    let entries = entries_of(&app, &job["id"], "").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["status"], "missing");
    assert_eq!(entries[0]["backup_timestamp_utc"], "2026-11-21T02:30:00Z");
    let alerts = app.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["kind"], "late");
    assert_eq!(alerts[0]["slot_utc"], "2026-11-21T02:30:00Z");
    assert_eq!(alerts[0]["job_id"], job["id"]);
    assert_eq!(alerts[0]["sent_at"], Value::Null);

    let again = app.tick(at("2026-11-21T03:31:00Z"));
    assert_eq!(
        (again.missing_written, again.alerts_queued),
        (0, 0),
        "never twice for one slot"
    );
}

#[tokio::test]
async fn a_report_in_the_window_keeps_the_slot_from_being_missing() {
    let app = spawn_app().await;
    let job = daily_job_since(&app, at("2026-11-20T12:00:00Z")).await;
    let id = job["id"].as_i64().unwrap();
    // A little early still counts: the window opens at 01:30.
    app.report(id, "success", "2026-11-21T01:45:00Z").await;
    // A failure counts as a report too (it raised its own alert, reported as it happened).
    app.set_now(Some(at("2026-11-22T02:41:00Z")));
    app.report(id, "failed", "2026-11-22T02:40:00Z").await;

    let outcome = app.tick(at("2026-11-22T12:00:00Z"));
    assert_eq!(outcome.missing_written, 0);
    let kinds: Vec<Value> = app
        .alerts()
        .await
        .iter()
        .map(|a| a["kind"].clone())
        .collect();
    assert_eq!(kinds, vec![json!("failed")]);
}

#[tokio::test]
async fn a_report_just_before_the_window_belongs_to_the_previous_slot() {
    let app = spawn_app().await;
    let job = daily_job_since(&app, at("2026-11-20T00:00:00Z")).await;
    let id = job["id"].as_i64().unwrap();
    app.report(id, "success", "2026-11-21T01:29:59Z").await;
    let outcome = app.tick(at("2026-11-21T03:30:00Z"));
    assert_eq!(
        outcome.missing_written, 1,
        "01:29:59 is in the 20th's window, not the 21st's"
    );
}

#[tokio::test]
async fn missed_slots_are_back_filled_in_bounded_steps_with_one_late_alert() {
    let app = spawn_app().await;
    let job = app
        .create_job(
            json!({"backup_frequency": "hourly", "expected_minute_utc": 0, "grace_minutes": 10}),
        )
        .await;
    let id = job["id"].as_i64().unwrap();
    app.backdate(id, at("2026-11-01T00:00:00Z"));
    // 251 hourly slots fall due between the anchor and now: 1 Nov 00:00 (due 00:10) to
    // 11 Nov 10:00 (due 10:10).
    let now = at("2026-11-11T10:30:00Z");

    let first = app.tick(now);
    assert_eq!(
        first.missing_written, 100,
        "at most max_catchup_slots per job and tick"
    );
    assert_eq!(
        first.alerts_queued, 0,
        "old slots are recorded, not alerted"
    );
    let second = app.tick(now);
    assert_eq!(second.missing_written, 100);
    let third = app.tick(now);
    assert_eq!(third.missing_written, 51);
    assert_eq!(third.alerts_queued, 1, "one alert for the latest due slot");
    assert_eq!(app.tick(now).missing_written, 0);

    let entries = entries_of(&app, &job["id"], "&status=missing").await;
    assert_eq!(entries.len(), 251);
    assert_eq!(entries[0]["backup_timestamp_utc"], "2026-11-11T10:00:00Z");
    assert_eq!(entries[250]["backup_timestamp_utc"], "2026-11-01T00:00:00Z");
    let alerts = app.alerts().await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["slot_utc"], "2026-11-11T10:00:00Z");
}

#[tokio::test]
async fn a_job_created_at_a_due_time_does_not_owe_that_slot() {
    let app = spawn_app().await;
    let job = daily_job_since(&app, at("2026-11-21T03:30:00Z")).await;
    assert_eq!(app.tick(at("2026-11-22T03:29:00Z")).missing_written, 0);
    assert_eq!(app.tick(at("2026-11-22T03:30:00Z")).missing_written, 1);
    let entries = entries_of(&app, &job["id"], "").await;
    assert_eq!(entries[0]["backup_timestamp_utc"], "2026-11-22T02:30:00Z");

    let app = spawn_app().await;
    daily_job_since(&app, at("2026-11-21T03:29:59Z")).await;
    assert_eq!(
        app.tick(at("2026-11-21T03:30:00Z")).missing_written,
        1,
        "created a second before due"
    );
}

#[tokio::test]
async fn concurrent_ticks_and_two_servers_on_one_file_never_write_a_slot_twice() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let first = spawn_app_with(|s| s.database.url = url.clone()).await;
    let second = spawn_app_with(|s| s.database.url = url.clone()).await;
    for i in 0..5 {
        // One agent each: five jobs of one silent agent would be one `agent_silent` alert.
        let job = first.create_job(json!({"backup_frequency": "hourly", "expected_minute_utc": 15, "grace_minutes": 5, "agent_id_responsible": format!("agent-{i}")})).await;
        first.backdate(job["id"].as_i64().unwrap(), at("2026-11-20T00:00:00Z"));
    }
    let now = at("2026-11-21T00:30:00Z");
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let path = if i % 2 == 0 {
                first.db_path.clone()
            } else {
                second.db_path.clone()
            };
            std::thread::spawn(move || crate::common::tick(&path, now))
        })
        .collect();
    let outcomes: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let written: usize = outcomes.iter().map(|o| o.missing_written).sum();
    let alerted: usize = outcomes.iter().map(|o| o.alerts_queued).sum();
    assert_eq!(
        written,
        5 * 25,
        "25 hourly slots (20 Nov 00:15 to 21 Nov 00:15) for each of 5 jobs, once"
    );
    assert_eq!(alerted, 5);
    let total = second
        .get("/api/v1/entries/?status=missing")
        .await
        .headers()["x-total-count"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(total, "125");
}

#[tokio::test]
async fn a_paused_job_is_never_late_and_is_not_back_filled_for_its_pause() {
    let app = spawn_app().await;
    // Expected far from now: the hour after re-activation (real time) has no slot due.
    let job = app
        .create_job(json!({"grace_minutes": 60, "expected_hour_utc": hour_far_from_now()}))
        .await;
    app.backdate(job["id"].as_i64().unwrap(), at("2026-11-20T00:00:00Z"));
    let path = format!("/api/v1/jobs/{}", job["id"]);
    let paused = app.patch_json(&path, &json!({"is_active": false})).await;
    assert_eq!(paused.status(), 200);
    assert_eq!(
        app.tick(at("2026-11-25T00:00:00Z")).missing_written,
        0,
        "paused"
    );

    // Re-activated now (real time): slots of the pause are not owed.
    assert_eq!(
        app.patch_json(&path, &json!({"is_active": true}))
            .await
            .status(),
        200
    );
    let resumed = Utc::now();
    let outcome = app.tick(resumed + Duration::hours(1));
    assert_eq!(outcome.missing_written, 0);
    let two_days = app.tick(resumed + Duration::days(2));
    assert!(
        two_days.missing_written >= 1,
        "slots after re-activation count"
    );
    let entries = entries_of(&app, &job["id"], "").await;
    for e in entries {
        let ts = at(e["backup_timestamp_utc"].as_str().unwrap());
        assert!(
            ts + Duration::minutes(60) > resumed,
            "slot {ts} was owed during the pause"
        );
    }
}

#[tokio::test]
async fn a_schedule_change_takes_effect_at_the_next_tick() {
    let app = spawn_app().await;
    let job = daily_job_since(&app, at("2026-11-20T00:00:00Z")).await;
    let path = format!("/api/v1/jobs/{}", job["id"]);
    let changed = app
        .patch_json(&path, &json!({"expected_hour_utc": 4}))
        .await;
    assert_eq!(changed.status(), 200);
    let changed_at = Utc::now();
    // Lateness counts afresh from the change; the next 04:30 slot is the first owed.
    let next = (changed_at + Duration::days(2))
        .duration_trunc(Duration::days(1))
        .unwrap()
        + Duration::hours(6);
    let outcome = app.tick(next);
    assert!(outcome.missing_written >= 1);
    let entries = entries_of(&app, &job["id"], "").await;
    for e in &entries {
        assert!(
            e["backup_timestamp_utc"]
                .as_str()
                .unwrap()
                .ends_with("T04:30:00Z"),
            "{e}"
        );
    }
}

#[tokio::test]
async fn status_reports_each_state_by_precedence() {
    let app = spawn_app().await;
    let now = Utc::now();
    let long_ago = now - Duration::days(10);
    let ids = |j: &Value| j["id"].as_i64().unwrap();

    let pending = app.create_job(json!({"company_name": "pending-co"})).await;
    let late = app.create_job(json!({"company_name": "late-co"})).await;
    app.backdate(ids(&late), long_ago);
    let ok = app.create_job(json!({"company_name": "ok-co", "backup_frequency": "hourly", "expected_minute_utc": 0, "grace_minutes": 30})).await;
    app.backdate(ids(&ok), long_ago);
    let last_slot = now.duration_trunc(Duration::hours(1)).unwrap();
    app.report(
        ids(&ok),
        "success",
        &(last_slot - Duration::hours(1)).to_rfc3339(),
    )
    .await;
    app.report(ids(&ok), "success", &last_slot.to_rfc3339())
        .await;
    let failed = app.create_job(json!({"company_name": "failed-co"})).await;
    app.report(ids(&failed), "failed", &now.to_rfc3339()).await;
    let paused = app
        .create_job(json!({"company_name": "paused-co", "is_active": false}))
        .await;
    app.backdate(ids(&paused), long_ago);

    let response = app.get("/api/v1/status").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-total-count"], "5");
    let rows: Vec<Value> = response.json().await.unwrap();
    let state_of = |job: &Value| {
        rows.iter()
            .find(|r| r["job_id"] == job["id"])
            .map(|r| r["state"].clone())
            .unwrap()
    };
    assert_eq!(state_of(&pending), "pending");
    assert_eq!(state_of(&late), "late");
    assert_eq!(state_of(&failed), "failed");
    assert_eq!(state_of(&paused), "paused");
    // The hourly job's latest due slot may be the previous hour when grace has not passed.
    assert_eq!(state_of(&ok), "ok");

    let ok_row = rows.iter().find(|r| r["job_id"] == ok["id"]).unwrap();
    assert_eq!(
        ok_row["last_success_utc"],
        json!(last_slot.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    );
    assert_eq!(ok_row["last_entry"]["status"], "success");
    assert_eq!(ok_row["company_name"], "ok-co");
    assert!(ok_row["next_due_utc"].as_str().unwrap() > now.to_rfc3339().as_str());
    let paused_row = rows.iter().find(|r| r["job_id"] == paused["id"]).unwrap();
    assert_eq!(paused_row["next_due_utc"], Value::Null);

    let only_late: Vec<Value> = app
        .get("/api/v1/status?state=late")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(only_late.len(), 1);
    assert_eq!(only_late[0]["job_id"], late["id"]);
    let company: Vec<Value> = app
        .get("/api/v1/status/?company_name=failed-co")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(company.len(), 1);
    assert_eq!(company[0]["state"], "failed");
    let bad = app.get("/api/v1/status?state=broken").await;
    assert_eq!(bad.status(), 422);
}

#[tokio::test]
async fn a_success_after_a_failure_makes_the_job_ok_again() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    let id = job["id"].as_i64().unwrap();
    let now = Utc::now();
    app.report(id, "failed", &(now - Duration::minutes(5)).to_rfc3339())
        .await;
    let state = |rows: Vec<Value>| rows[0]["state"].clone();
    assert_eq!(
        state(app.get("/api/v1/status").await.json().await.unwrap()),
        "failed"
    );
    app.report(id, "success", &now.to_rfc3339()).await;
    assert_eq!(
        state(app.get("/api/v1/status").await.json().await.unwrap()),
        "ok"
    );
}

#[tokio::test]
async fn a_late_backup_reported_after_its_slot_was_marked_missing_counts() {
    let app = spawn_app().await;
    let job = daily_job_since(&app, at("2026-11-20T00:00:00Z")).await;
    let id = job["id"].as_i64().unwrap();
    app.tick(at("2026-11-21T03:30:00Z"));
    // The backup ran late, but inside the slot's window (reported as it finished).
    app.set_now(Some(at("2026-11-21T05:01:00Z")));
    app.report(id, "success", "2026-11-21T05:00:00Z").await;
    let kinds: Vec<Value> = app
        .alerts()
        .await
        .iter()
        .map(|a| a["kind"].clone())
        .collect();
    assert_eq!(
        kinds,
        vec![json!("recovered"), json!("late")],
        "newest first"
    );
    let _ = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0);
}

#[tokio::test]
async fn with_the_scheduler_switched_off_the_service_writes_no_missing_entry_even_at_start() {
    // A database holding a daily job whose slots have been overdue for ten days.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("overdue.db").display());
    let first = spawn_app_with(|s| s.database.url = url.clone()).await;
    let job = daily_job_since(&first, Utc::now() - Duration::days(10)).await;
    first.stop().await;

    let off = spawn_app_with(|s| {
        s.database.url = url.clone();
        s.scheduler.enabled = false;
    })
    .await;
    let missing = entries_of(&off, &job["id"], "&status=missing").await;
    assert_eq!(missing, Vec::<Value>::new(), "no tick ran");
    off.stop().await;

    // The default is on, and then the tick at start writes them.
    assert!(Settings::default().scheduler.enabled);
    let on = spawn_app_with(|s| {
        s.database.url = url.clone();
        s.scheduler.enabled = Settings::default().scheduler.enabled;
    })
    .await;
    let missing = entries_of(&on, &job["id"], "&status=missing").await;
    assert!(missing.len() >= 9, "ten days of daily slots: {missing:?}");
    on.stop().await;
}
