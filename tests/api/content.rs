//! Content checks (DESIGN §10): a success that cannot be the backup people think it is
//! (too small, much smaller than usual, the same file again) is stored with its reason,
//! makes the job `suspect`, and is emailed; a success that passes recovers it.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::common::{at, emailing, spawn_app, spawn_app_with, TestApp};
use crate::smtp::SmtpServer;

const MIB: i64 = 1024 * 1024;
const HASH_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const HASH_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// Reports a success of `job` at `when` with an optional size and hash; answers the entry.
async fn success(
    app: &TestApp,
    job: i64,
    when: DateTime<Utc>,
    size: Option<i64>,
    hash: Option<&str>,
) -> Value {
    let response = app
        .post_json(
            "/api/v1/entries/",
            &json!({"expected_job_id": job, "status": "success",
                    "backup_timestamp_utc": when.to_rfc3339(),
                    "backup_size_bytes": size, "backup_hash": hash}),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

async fn status_of(app: &TestApp, job: i64) -> Value {
    let all: Vec<Value> = app.get("/api/v1/status").await.json().await.unwrap();
    all.into_iter().find(|s| s["job_id"] == job).unwrap()
}

async fn alert_kinds(app: &TestApp) -> Vec<String> {
    let alerts: Vec<Value> = app.get("/api/v1/alerts").await.json().await.unwrap();
    alerts
        .iter()
        .rev()
        .map(|a| a["kind"].as_str().unwrap().to_owned())
        .collect()
}

/// A daily 02:30 job with ten nightly successes of `size` before 2026-11-24.
async fn job_with_history(app: &TestApp, size: i64) -> i64 {
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    let first = at("2026-11-14T02:31:00Z");
    let batch: Vec<Value> = (0..10)
        .map(|d| {
            json!({"expected_job_id": job, "status": "success",
                   "backup_timestamp_utc": (first + Duration::days(d)).to_rfc3339(),
                   "backup_size_bytes": size + d * 1000,
                   "backup_hash": format!("sha256:{d:064x}")})
        })
        .collect();
    let response = app.post_json("/api/v1/entries/batch", &json!(batch)).await;
    assert_eq!(response.status(), 201);
    job
}

#[tokio::test]
async fn a_zero_byte_success_is_suspect_emailed_with_its_reason_and_a_good_one_recovers() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(emailing(smtp.port)).await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    app.set_now(Some(at("2026-11-24T02:40:00Z")));

    let entry = success(&app, job, at("2026-11-24T02:31:00Z"), Some(0), None).await;

    assert_eq!(
        entry["suspect_reason"],
        "size 0 B is below the minimum of 1 B"
    );
    let status = status_of(&app, job).await;
    assert_eq!(status["state"], "suspect", "{status}");
    assert_eq!(
        status["suspect_reason"],
        "size 0 B is below the minimum of 1 B"
    );
    let mails = smtp.wait_for(1).await;
    assert_eq!(
        mails[0].subject(),
        "[backup-monitor] SUSPECT acme/Lyon db=erp for 02:30 UTC"
    );
    let body = mails[0].body();
    assert!(
        body.contains("but it failed a content check: size 0 B is below the minimum of 1 B."),
        "{body}"
    );
    assert!(
        body.contains("Suspect:       size 0 B is below the minimum of 1 B"),
        "{body}"
    );

    // The next night's backup is fine: the job recovers, and says so.
    app.set_now(Some(at("2026-11-25T02:40:00Z")));
    let entry = success(&app, job, at("2026-11-25T02:31:00Z"), Some(150 * MIB), None).await;
    assert_eq!(entry["suspect_reason"], Value::Null);
    let status = status_of(&app, job).await;
    assert_eq!(status["state"], "ok");
    assert_eq!(status["suspect_reason"], Value::Null);
    let mails = smtp.wait_for(2).await;
    assert_eq!(
        mails[1].subject(),
        "[backup-monitor] RECOVERED acme/Lyon db=erp for 02:30 UTC"
    );
    assert_eq!(alert_kinds(&app).await, ["suspect", "recovered"]);
}

#[tokio::test]
async fn a_backup_far_smaller_than_the_median_of_the_previous_ten_is_suspect() {
    let app = spawn_app().await;
    let job = job_with_history(&app, 150 * MIB).await;
    app.set_now(Some(at("2026-11-24T02:40:00Z")));

    let entry = success(&app, job, at("2026-11-24T02:31:00Z"), Some(12 * MIB), None).await;

    assert_eq!(
        entry["suspect_reason"],
        "size 12.0 MiB is 8 % of the median 150.0 MiB of the previous 10 backups"
    );
    assert_eq!(status_of(&app, job).await["state"], "suspect");
    assert_eq!(alert_kinds(&app).await, ["suspect"]);
}

#[tokio::test]
async fn a_normal_night_and_a_small_drop_pass_the_size_checks() {
    let app = spawn_app().await;
    let job = job_with_history(&app, 150 * MIB).await;
    app.set_now(Some(at("2026-11-24T02:40:00Z")));

    // 60 % of the median is above the default floor (50 %).
    let entry = success(&app, job, at("2026-11-24T02:31:00Z"), Some(90 * MIB), None).await;

    assert_eq!(entry["suspect_reason"], Value::Null);
    assert_eq!(status_of(&app, job).await["state"], "ok");
    assert!(alert_kinds(&app).await.is_empty());
}

#[tokio::test]
async fn the_same_hash_as_the_previous_success_is_suspect_and_names_its_date() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    success(
        &app,
        job,
        at("2026-11-23T02:31:00Z"),
        Some(MIB),
        Some(HASH_A),
    )
    .await;
    app.set_now(Some(at("2026-11-24T02:40:00Z")));

    let entry = success(
        &app,
        job,
        at("2026-11-24T02:31:00Z"),
        Some(MIB),
        Some(HASH_A),
    )
    .await;

    assert_eq!(
        entry["suspect_reason"],
        "same backup_hash as the success of 2026-11-23 02:31 UTC"
    );
    assert_eq!(status_of(&app, job).await["state"], "suspect");
    // A new file passes.
    app.set_now(Some(at("2026-11-25T02:40:00Z")));
    let entry = success(
        &app,
        job,
        at("2026-11-25T02:31:00Z"),
        Some(MIB),
        Some(HASH_B),
    )
    .await;
    assert_eq!(entry["suspect_reason"], Value::Null);
    assert_eq!(status_of(&app, job).await["state"], "ok");
    assert_eq!(alert_kinds(&app).await, ["suspect", "recovered"]);
}

#[tokio::test]
async fn reports_without_size_or_hash_behave_exactly_as_before() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    for day in 14..24 {
        app.set_now(Some(at(&format!("2026-11-{day}T02:40:00Z"))));
        let entry = success(
            &app,
            job,
            at(&format!("2026-11-{day}T02:31:00Z")),
            None,
            None,
        )
        .await;
        assert_eq!(entry["suspect_reason"], Value::Null);
    }
    assert_eq!(status_of(&app, job).await["state"], "ok");
    assert!(alert_kinds(&app).await.is_empty());
}

#[tokio::test]
async fn each_check_follows_the_jobs_settings() {
    let app = spawn_app().await;
    // (`create_job` drops null fields: the body is written whole here.)
    let mut body = crate::common::valid_job();
    body["min_size_bytes"] = json!(0);
    body["size_drop_percent"] = Value::Null;
    body["stale_hash_check"] = json!(false);
    let response = app.post_json("/api/v1/jobs/", &body).await;
    assert_eq!(response.status(), 201);
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["min_size_bytes"], 0);
    assert_eq!(job["size_drop_percent"], Value::Null);
    assert_eq!(job["stale_hash_check"], false);
    let id = job["id"].as_i64().unwrap();
    success(
        &app,
        id,
        at("2026-11-20T02:31:00Z"),
        Some(150 * MIB),
        Some(HASH_A),
    )
    .await;

    // Zero bytes, a 100 % drop and the same hash: every check is off.
    let entry = success(&app, id, at("2026-11-21T02:31:00Z"), Some(0), Some(HASH_A)).await;
    assert_eq!(entry["suspect_reason"], Value::Null);

    // Turned back on by an update, a check applies to the next success.
    let response = app
        .patch_json(
            &format!("/api/v1/jobs/{id}"),
            &json!({"min_size_bytes": 1024, "size_drop_percent": 90}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let entry = success(
        &app,
        id,
        at("2026-11-22T02:31:00Z"),
        Some(1000),
        Some(HASH_B),
    )
    .await;
    assert_eq!(
        entry["suspect_reason"],
        "size 1000 B is below the minimum of 1.0 KiB"
    );
}

#[tokio::test]
async fn a_jobs_content_settings_have_defaults_and_bounds() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    assert_eq!(job["max_duration_minutes"], Value::Null);
    assert_eq!(job["min_size_bytes"], 1);
    assert_eq!(job["size_drop_percent"], 50);
    assert_eq!(job["stale_hash_check"], true);
    for (field, value) in [
        ("max_duration_minutes", json!(0)),
        ("max_duration_minutes", json!(10_081)),
        ("min_size_bytes", json!(-1)),
        ("size_drop_percent", json!(0)),
        ("size_drop_percent", json!(100)),
        ("stale_hash_check", json!("maybe")),
        ("min_size_bytes", json!(null)),
    ] {
        let id = job["id"].as_i64().unwrap();
        let response = app
            .patch_json(&format!("/api/v1/jobs/{id}"), &json!({ field: value }))
            .await;
        assert_eq!(response.status(), 422, "{field} = {value}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["detail"][0]["loc"], json!(["body", field]), "{body}");
    }
    let response = app
        .post_json(
            "/api/v1/jobs/",
            &crate::common::with(
                crate::common::valid_job(),
                json!({"database_name": "crm", "max_duration_minutes": 10_080, "size_drop_percent": 99}),
            ),
        )
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_suspect_success_sent_from_history_is_stored_and_pages_no_one() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    app.set_now(Some(at("2026-11-24T02:40:00Z")));
    success(&app, job, at("2026-11-24T02:31:00Z"), Some(MIB), None).await;

    // An agent re-sends last week's run: a zero-byte file, long superseded.
    let entry = success(&app, job, at("2026-11-17T02:31:00Z"), Some(0), None).await;

    assert_eq!(
        entry["suspect_reason"],
        "size 0 B is below the minimum of 1 B"
    );
    assert_eq!(status_of(&app, job).await["state"], "ok");
    assert!(alert_kinds(&app).await.is_empty());
}

#[tokio::test]
async fn a_second_report_of_the_same_backup_in_its_slot_is_not_the_same_file_again() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    app.set_now(Some(at("2026-11-24T03:10:00Z")));
    // `exec --file` at 02:31, then `verify` of the same file at 03:05: one slot, one file.
    success(
        &app,
        job,
        at("2026-11-24T02:31:00Z"),
        Some(MIB),
        Some(HASH_A),
    )
    .await;
    let verified = success(
        &app,
        job,
        at("2026-11-24T03:05:00Z"),
        Some(MIB),
        Some(HASH_A),
    )
    .await;
    assert_eq!(verified["suspect_reason"], Value::Null);
    // The next night, the same file is the same file again.
    app.set_now(Some(at("2026-11-25T02:40:00Z")));
    let next = success(
        &app,
        job,
        at("2026-11-25T02:31:00Z"),
        Some(MIB),
        Some(HASH_A),
    )
    .await;
    assert_eq!(
        next["suspect_reason"],
        "same backup_hash as the success of 2026-11-24 03:05 UTC"
    );
}
