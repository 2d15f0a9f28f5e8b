//! DESIGN §9: what a report may claim. A report dated in the future is refused; history
//! pages no one; states, badges, metrics and `check` read only entries dated up to now;
//! alerts follow the order of events, not the order of arrival.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::common::{at, errors, spawn_app, spawn_app_with, TestApp};

const ENTRIES: &str = "/api/v1/entries/";
const BATCH: &str = "/api/v1/entries/batch";

fn report(job: i64, status: &str, when: DateTime<Utc>) -> Value {
    json!({"expected_job_id": job, "status": status, "backup_timestamp_utc": when.to_rfc3339()})
}

async fn alert_kinds(app: &TestApp) -> Vec<String> {
    let rows: Vec<Value> = app.get("/api/v1/alerts").await.json().await.unwrap();
    rows.iter()
        .map(|a| a["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn state_of(app: &TestApp, job: i64) -> String {
    let rows: Vec<Value> = app.get("/api/v1/status").await.json().await.unwrap();
    let row = rows.iter().find(|r| r["job_id"] == job).unwrap();
    row["state"].as_str().unwrap().to_owned()
}

async fn job_id(app: &TestApp) -> i64 {
    app.create_job(json!({})).await["id"].as_i64().unwrap()
}

#[tokio::test]
async fn a_report_dated_beyond_the_allowed_skew_is_refused_saying_by_how_much() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let now = at("2026-11-30T12:00:00Z");
    app.set_now(Some(now));
    let cases = [
        // (how far ahead, accepted, what the refusal says)
        (Duration::seconds(300), true, ""),
        (
            Duration::seconds(301),
            false,
            "in the future by 5 min (301 s)",
        ),
        (
            Duration::seconds(119) + Duration::minutes(5),
            false,
            "in the future by 6 min (419 s)",
        ),
        (Duration::hours(5), false, "in the future by 5 h (18000 s)"),
        (
            at("2099-01-01T00:00:00Z") - now,
            false,
            "2099-01-01T00:00:00Z is in the future by 72 years",
        ),
    ];
    for (ahead, accepted, says) in cases {
        // Act
        let response = app
            .post_json(ENTRIES, &report(job, "success", now + ahead))
            .await;
        let status = response.status();
        let body: Value = response.json().await.unwrap();

        // Assert
        if accepted {
            assert_eq!(status, 201, "{ahead}: {body}");
        } else {
            assert_eq!(status, 422, "{ahead}: {body}");
            let found = errors(&body);
            assert_eq!(found.len(), 1, "{body}");
            assert_eq!(found[0].0, json!(["body", "backup_timestamp_utc"]));
            let msg = body["detail"][0]["msg"].as_str().unwrap();
            assert!(msg.contains(says), "{ahead}: {msg}");
            assert!(msg.contains("300 s allowed"), "{msg}");
        }
    }
}

#[tokio::test]
async fn a_batch_item_dated_in_the_future_is_refused_by_its_index_and_nothing_is_stored() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let now = at("2026-11-30T12:00:00Z");
    app.set_now(Some(now));
    let response = app
        .post_json(
            BATCH,
            &json!([
                report(job, "success", now - Duration::hours(1)),
                report(job, "failed", now + Duration::days(3)),
            ]),
        )
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let found = errors(&body);
    assert_eq!(found.len(), 1, "{body}");
    assert_eq!(found[0].0, json!(["body", 1, "backup_timestamp_utc"]));
    let msg = body["detail"][0]["msg"].as_str().unwrap();
    assert!(msg.contains("in the future by 3 days"), "{body}");
    let listed: Vec<Value> = app.get(ENTRIES).await.json().await.unwrap();
    assert!(listed.is_empty(), "all or nothing: {listed:?}");
}

#[tokio::test]
async fn the_allowed_skew_is_a_setting() {
    let app = spawn_app_with(|s| s.ingest.max_clock_skew_seconds = 10).await;
    let job = job_id(&app).await;
    let now = at("2026-11-30T12:00:00Z");
    app.set_now(Some(now));
    let ahead = app
        .post_json(
            ENTRIES,
            &report(job, "success", now + Duration::seconds(11)),
        )
        .await;
    assert_eq!(ahead.status(), 422);
    let within = app
        .post_json(
            ENTRIES,
            &report(job, "success", now + Duration::seconds(10)),
        )
        .await;
    assert_eq!(within.status(), 201);
}

#[tokio::test]
async fn a_success_stored_in_the_future_hides_no_failure_anywhere() {
    // Arrange: an old database holds a success dated 2099 (no longer accepted by the API).
    let app = spawn_app().await;
    let job = job_id(&app).await;
    app.backdate(job, at("2026-11-20T00:00:00Z"));
    app.insert_entry_directly(job, "success", at("2099-01-01T00:00:00Z"));
    let now = at("2026-11-30T12:00:00Z");
    app.set_now(Some(now));

    // Act: a failure a second later, as it happens.
    app.report(job, "failed", "2026-11-30T11:59:59Z").await;

    // Assert: failed in the status, the badge's colour and /metrics; alerted.
    assert_eq!(state_of(&app, job).await, "failed");
    assert_eq!(alert_kinds(&app).await, ["failed"]);
    let jobs: Vec<Value> = app.get("/api/v1/jobs/").await.json().await.unwrap();
    let badge = app
        .get(jobs[0]["badge_url"].as_str().unwrap())
        .await
        .text()
        .await
        .unwrap();
    assert!(badge.contains("failed"), "{badge}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(&format!(
            "backup_monitor_job_state{{job_id=\"{job}\",company=\"acme\",city=\"Lyon\",database=\"erp\",state=\"failed\"}} 1"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_success_stored_in_the_future_prefills_no_slot_and_the_tick_still_finds_them_missing() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    app.backdate(job, at("2026-11-20T00:00:00Z"));
    // Dated inside the 2026-11-22 slot's window, but stored before that day came.
    app.insert_entry_directly(job, "success", at("2026-11-22T02:40:00Z"));

    // The tick of the 21st: the 20th and the 21st are missing; on the 22nd at 03:31 the
    // entry has become history and fills its own slot.
    let early = app.tick(at("2026-11-21T03:31:00Z"));
    assert_eq!(early.missing_written, 2, "the 20th and 21st are missing");
    let on_time = app.tick(at("2026-11-22T03:31:00Z"));
    assert_eq!(on_time.missing_written, 0, "the 22nd was reported");

    // A success dated ahead of the tick fills no slot before its own time: a tick while
    // the 23rd's is due (and the entry's 24th not yet come) finds the 23rd missing.
    let other = job_id(&app).await;
    app.backdate(other, at("2026-11-22T00:00:00Z"));
    app.insert_entry_directly(other, "success", at("2026-11-24T01:40:00Z"));
    app.tick(at("2026-11-23T12:00:00Z"));
    let missing: Vec<Value> = app
        .get(&format!("/api/v1/entries/by_job/{other}?status=missing"))
        .await
        .json()
        .await
        .unwrap();
    let slots: Vec<&str> = missing
        .iter()
        .map(|e| e["backup_timestamp_utc"].as_str().unwrap())
        .collect();
    assert_eq!(slots, ["2026-11-23T02:30:00Z", "2026-11-22T02:30:00Z"]);
}

#[tokio::test]
async fn history_is_stored_and_counted_but_pages_no_one() {
    // Arrange: an agent re-sends a week of past failures, then one for today.
    let app = spawn_app().await;
    let job = job_id(&app).await;
    // The 30th's slot (02:30) fell due at 03:30: it is the latest due slot.
    let now = at("2026-11-30T04:00:00Z");
    app.set_now(Some(now));
    let week: Vec<Value> = (1..=7)
        .map(|days| report(job, "failed", now - Duration::days(days)))
        .collect();

    // Act
    let response = app.post_json(BATCH, &Value::Array(week)).await;

    // Assert: stored, no alert.
    assert_eq!(response.status(), 201);
    let listed: Vec<Value> = app.get(ENTRIES).await.json().await.unwrap();
    assert_eq!(listed.len(), 7);
    assert!(alert_kinds(&app).await.is_empty());

    // Today's failure pages, once.
    app.report(job, "failed", "2026-11-30T02:31:00Z").await;
    assert_eq!(alert_kinds(&app).await, ["failed"]);
}

#[tokio::test]
async fn a_thousand_past_failures_in_a_batch_queue_at_most_one_alert() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let now = at("2026-11-30T03:00:00Z");
    app.set_now(Some(now));
    let items: Vec<Value> = (0..1000)
        .map(|i| report(job, "failed", now - Duration::minutes(i * 37)))
        .collect();
    let response = app.post_json(BATCH, &Value::Array(items)).await;
    assert_eq!(response.status(), 201);
    assert!(
        alert_kinds(&app).await.len() <= 1,
        "{:?}",
        alert_kinds(&app).await
    );
}

#[tokio::test]
async fn a_success_dated_before_the_latest_failure_recovers_nothing() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    app.set_now(Some(at("2026-11-30T02:45:00Z")));
    app.report(job, "failed", "2026-11-30T02:40:00Z").await;

    // A success of earlier today arrives late (the agent's queue was slow).
    app.report(job, "success", "2026-11-30T02:35:00Z").await;

    assert_eq!(state_of(&app, job).await, "failed");
    assert_eq!(alert_kinds(&app).await, ["failed"], "no recovery queued");

    // The next success, as it happens, does recover.
    app.report(job, "success", "2026-11-30T02:44:00Z").await;
    assert_eq!(state_of(&app, job).await, "ok");
    assert_eq!(alert_kinds(&app).await, ["recovered", "failed"]);
}

#[tokio::test]
async fn a_failure_dated_before_the_latest_success_pages_no_one() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    app.set_now(Some(at("2026-11-30T02:45:00Z")));
    app.report(job, "success", "2026-11-30T02:40:00Z").await;

    app.report(job, "failed", "2026-11-30T02:35:00Z").await;

    assert_eq!(state_of(&app, job).await, "ok");
    assert!(alert_kinds(&app).await.is_empty());
}

#[tokio::test]
async fn a_success_while_the_latest_due_slot_is_still_missing_is_no_recovery() {
    // Late for the 29th; then a success for the 27th trickles in: still late.
    let app = spawn_app().await;
    let job = job_id(&app).await;
    app.backdate(job, at("2026-11-29T00:00:00Z"));
    assert_eq!(app.tick(at("2026-11-29T03:31:00Z")).alerts_queued, 1);
    app.set_now(Some(at("2026-11-29T04:00:00Z")));
    app.report(job, "success", "2026-11-27T02:40:00Z").await;
    assert_eq!(state_of(&app, job).await, "late");
    assert_eq!(alert_kinds(&app).await, ["late"]);
}

#[tokio::test]
async fn check_reads_only_entries_dated_up_to_now() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    app.backdate(job, at("2026-11-20T00:00:00Z"));
    let now = Utc::now();
    app.insert_entry_directly(job, "success", at("2099-01-01T00:00:00Z"));
    app.insert_entry_directly(job, "failed", now - Duration::minutes(1));
    let report = crate::common::check_report(&app.db_path, now);
    assert_eq!(report["counts"]["failed"], 1, "{report}");
    assert_eq!(report["code"], 2);
}
