//! Cron schedules in time zones (DESIGN §11) through the HTTP API: the contract of the
//! `schedule` and `timezone` fields, the answers, and the scheduler across both daylight
//! saving changes of Europe/Paris, driven one tick at a time with an explicit `now`.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};

use crate::common::{assert_422, at, spawn_app, valid_job, with, TestApp};

/// `valid_job()` as a cron job: the seed's schedule fields left out.
fn cron_job(schedule: &str, timezone: &str) -> Value {
    with(
        valid_job(),
        json!({
            "expected_hour_utc": null,
            "expected_minute_utc": null,
            "backup_frequency": null,
            "schedule": schedule,
            "timezone": timezone,
            "final_storage_path_template": "/b/{database_name}_%Y-%m-%d_%H%M.dump",
        }),
    )
}

async fn created(app: &TestApp, body: &Value) -> Value {
    let response = app.post_json("/api/v1/jobs/", body).await;
    let status = response.status();
    let job: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{job}");
    job
}

async fn entries_of(app: &TestApp, job_id: &Value) -> Vec<Value> {
    app.get(&format!("/api/v1/entries/by_job/{job_id}?limit=1000"))
        .await
        .json()
        .await
        .unwrap()
}

/// The instants of a job's `missing` entries, oldest first.
async fn missing_of(app: &TestApp, job_id: &Value) -> Vec<String> {
    let mut missing: Vec<String> = entries_of(app, job_id)
        .await
        .iter()
        .filter(|e| e["status"] == "missing")
        .map(|e| e["backup_timestamp_utc"].as_str().unwrap().to_owned())
        .collect();
    missing.sort();
    missing
}

/// The slots of a job's `late` alerts.
async fn late_alerts_of(app: &TestApp, job_id: &Value) -> Vec<String> {
    let alerts = app.alerts().await;
    alerts
        .iter()
        .filter(|a| a["job_id"] == *job_id && a["kind"] == "late")
        .map(|a| a["slot_utc"].as_str().unwrap().to_owned())
        .collect()
}

async fn expected_path(app: &TestApp, job_id: &Value, at: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/jobs/{job_id}/expected_path?at={at}"))
        .await;
    assert_eq!(response.status(), 200, "expected_path at {at}");
    response.json().await.unwrap()
}

async fn report_at(app: &TestApp, job_id: i64, when: &str) {
    app.set_now(Some(at(when)));
    app.report(job_id, "success", when).await;
}

#[tokio::test]
async fn create_job_refuses_bad_schedules_and_zones_naming_the_field_and_the_reason() {
    // Arrange
    let app = spawn_app().await;
    app.set_now(Some(at("2027-01-01T00:00:00Z")));
    let cases = [
        (
            cron_job("61 * * * *", "UTC"),
            "schedule",
            "minute 61 is out of range 0-59",
        ),
        (
            cron_job("0 2 * * 8", "UTC"),
            "schedule",
            "day-of-week 8 is out of range 0-7",
        ),
        (cron_job("0 2 * *", "UTC"), "schedule", "expected 5 fields"),
        (
            cron_job("0 0 31 2 *", "UTC"),
            "schedule",
            "the expression never fires",
        ),
        (
            cron_job("30 2 * * *", "Europe/Pariss"),
            "timezone",
            "unknown time zone \"Europe/Pariss\"",
        ),
        (
            cron_job("30 2 * * *", "europe/paris"),
            "timezone",
            "did you mean \"Europe/Paris\"",
        ),
        (
            with(valid_job(), json!({"timezone": "Europe/Paris"})),
            "timezone",
            "timezone Europe/Paris needs a schedule",
        ),
        (
            with(
                cron_job("0 * * * *", "Australia/Lord_Howe"),
                json!({"grace_minutes": 30}),
            ),
            "grace_minutes",
            "30 minutes, from 2027-10-03 02:30 to 2027-10-03 03:00 Australia/Lord_Howe",
        ),
        (
            with(
                cron_job("30 2 * * *", "Europe/Paris"),
                json!({"grace_minutes": 1380}),
            ),
            "grace_minutes",
            "1380 minutes, from 2027-03-28 03:30 to 2027-03-29 02:30 Europe/Paris",
        ),
        (
            cron_job("* * * * *", "UTC"),
            "schedule",
            "fires too often for any grace",
        ),
        (
            with(valid_job(), json!({"expected_hour_utc": null})),
            "expected_hour_utc",
            "Field required",
        ),
    ];
    for (body, field, reason) in cases {
        // Act
        let response = app.post_json("/api/v1/jobs/", &body).await;

        // Assert
        let case = format!("{} / {}", body["schedule"], body["timezone"]);
        let detail: Value = response.json().await.unwrap();
        let item = detail["detail"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["loc"] == json!(["body", field])))
            .unwrap_or_else(|| panic!("{case}: no error at {field}: {detail}"));
        let msg = item["msg"].as_str().unwrap();
        assert!(
            msg.contains(reason),
            "{case}: {msg:?} should say {reason:?}"
        );
    }
}

#[tokio::test]
async fn a_cron_job_is_answered_with_cron_and_its_next_slots_utc_time() {
    // Arrange
    let app = spawn_app().await;
    app.set_now(Some(at("2027-03-27T12:00:00Z")));

    // Act
    let job = created(&app, &cron_job("30 2 * * *", "Europe/Paris")).await;
    let seed = app.create_job(json!({})).await;

    // Assert: the next slot is 02:30 wall time moved by the gap, 03:30 CEST = 01:30 UTC.
    assert_eq!(job["backup_frequency"], "cron");
    assert_eq!(job["expected_hour_utc"], 1);
    assert_eq!(job["expected_minute_utc"], 30);
    assert_eq!(job["schedule"], "30 2 * * *");
    assert_eq!(job["timezone"], "Europe/Paris");
    assert_eq!(job["grace_minutes"], 60, "the configured default");
    // Computed at answer time: after the change, 02:30 CEST is 00:30 UTC.
    app.set_now(Some(at("2027-03-28T12:00:00Z")));
    let later: Value = app
        .get(&format!("/api/v1/jobs/{}", job["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&later["expected_hour_utc"], &later["expected_minute_utc"]),
        (&json!(0), &json!(30))
    );
    // A seed job: its own fields, no schedule, UTC.
    assert_eq!(seed["backup_frequency"], "daily");
    assert_eq!(seed["expected_hour_utc"], 2);
    assert_eq!(seed["schedule"], Value::Null);
    assert_eq!(seed["timezone"], "UTC");
}

#[tokio::test]
async fn a_job_switches_to_cron_and_back() {
    // Arrange
    let app = spawn_app().await;
    app.set_now(Some(at("2027-01-04T12:00:00Z")));
    let job = app.create_job(json!({})).await;
    let path = format!("/api/v1/jobs/{}", job["id"]);

    // Act / Assert: to cron.
    let response = app
        .patch_json(
            &path,
            &json!({"schedule": "0 22 * * MON-FRI", "timezone": "Europe/Paris"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let cron: Value = response.json().await.unwrap();
    assert_eq!(cron["backup_frequency"], "cron");
    assert_eq!(
        (&cron["expected_hour_utc"], &cron["expected_minute_utc"]),
        (&json!(21), &json!(0))
    );

    // Back needs the seed's fields in the same update.
    let response = app.patch_json(&path, &json!({"schedule": null})).await;
    assert_422(response, json!(["body", "schedule"]), "value_error", "back").await;
    // A zone other than UTC cannot stay without the schedule.
    let back = json!({"schedule": null, "backup_frequency": "daily",
        "expected_hour_utc": 3, "expected_minute_utc": 15});
    let response = app
        .patch_json(
            &path,
            &with(back.clone(), json!({"timezone": "Asia/Tokyo"})),
        )
        .await;
    assert_422(response, json!(["body", "timezone"]), "value_error", "zone").await;
    let response = app.patch_json(&path, &back).await;
    assert_eq!(response.status(), 200);
    let seed: Value = response.json().await.unwrap();
    assert_eq!(seed["backup_frequency"], "daily");
    assert_eq!(
        (&seed["expected_hour_utc"], &seed["expected_minute_utc"]),
        (&json!(3), &json!(15))
    );
    assert_eq!(seed["schedule"], Value::Null);
    assert_eq!(seed["timezone"], "UTC", "back in UTC");

    // A zone alone, on a seed job, is refused.
    let response = app
        .patch_json(&path, &json!({"timezone": "Europe/Paris"}))
        .await;
    assert_422(
        response,
        json!(["body", "timezone"]),
        "value_error",
        "alone",
    )
    .await;
}

#[tokio::test]
async fn a_paris_job_is_late_at_the_right_instant_across_the_spring_change() {
    // Arrange: 30 2 * * * in Paris, grace 60; clocks go 02:00 CET → 03:00 CEST on 03-28.
    let app = spawn_app().await;
    app.set_now(Some(at("2027-03-26T12:00:00Z")));
    let job = created(&app, &cron_job("30 2 * * *", "Europe/Paris")).await;
    let id = job["id"].as_i64().unwrap();
    // 03-27: 02:30 CET = 01:30 UTC, reported.
    report_at(&app, id, "2027-03-27T01:35:00Z").await;

    // Act: tick every 15 minutes through two nights; 03-28 is not reported, 03-29 is.
    let mut outcomes = Vec::new();
    let mut now = at("2027-03-27T00:00:00Z");
    while now <= at("2027-03-29T06:00:00Z") {
        if now == at("2027-03-29T00:45:00Z") {
            report_at(&app, id, "2027-03-29T00:40:00Z").await;
        }
        let outcome = app.tick(now);
        if outcome.missing_written > 0 {
            outcomes.push((now, outcome.missing_written, outcome.alerts_queued));
        }
        now += chrono::Duration::minutes(15);
    }

    // Assert: 03-28's slot is 02:30 moved by the gap, 03:30 CEST = 01:30 UTC, late at 02:30
    // UTC and not a minute before; one missing entry, one late alert.
    assert_eq!(outcomes, [(at("2027-03-28T02:30:00Z"), 1, 1)]);
    assert_eq!(missing_of(&app, &job["id"]).await, ["2027-03-28T01:30:00Z"]);
    assert_eq!(
        late_alerts_of(&app, &job["id"]).await,
        ["2027-03-28T01:30:00Z"]
    );
    // The file is named after the local date and the time the clock read.
    let path = expected_path(&app, &job["id"], "2027-03-28T01:30:00Z").await;
    assert_eq!(path["slot_utc"], "2027-03-28T01:30:00Z");
    assert_eq!(path["path"], "/b/erp_2027-03-28_0330.dump");
    let path = expected_path(&app, &job["id"], "2027-03-29T00:30:00Z").await;
    assert_eq!(path["path"], "/b/erp_2027-03-29_0230.dump");
}

#[tokio::test]
async fn a_paris_job_has_one_slot_on_the_fall_back_night() {
    // Arrange: clocks go 03:00 CEST → 02:00 CET on 10-31, so 02:30 happens twice; the slot
    // is the first, 02:30 CEST = 00:30 UTC.
    let app = spawn_app().await;
    app.set_now(Some(at("2027-10-29T12:00:00Z")));
    let job = created(&app, &cron_job("30 2 * * *", "Europe/Paris")).await;
    let id = job["id"].as_i64().unwrap();
    // 10-30: 02:30 CEST = 00:30 UTC, reported.
    report_at(&app, id, "2027-10-30T00:31:00Z").await;

    // Act: tick every 15 minutes until 11-01 06:00 UTC; neither 10-31 nor 11-01 reported.
    let mut outcomes = Vec::new();
    let mut now = at("2027-10-30T00:00:00Z");
    while now <= at("2027-11-01T06:00:00Z") {
        let outcome = app.tick(now);
        if outcome.missing_written > 0 {
            outcomes.push((now, outcome.missing_written, outcome.alerts_queued));
        }
        now += chrono::Duration::minutes(15);
    }

    // Assert: 10-31 late at 01:30 UTC (not again when 02:30 CET comes round at 01:30 UTC's
    // wall repeat); 11-01's 02:30 CET = 01:30 UTC, late at 02:30 UTC.
    assert_eq!(
        outcomes,
        [
            (at("2027-10-31T01:30:00Z"), 1, 1),
            (at("2027-11-01T02:30:00Z"), 1, 1)
        ]
    );
    assert_eq!(
        missing_of(&app, &job["id"]).await,
        ["2027-10-31T00:30:00Z", "2027-11-01T01:30:00Z"]
    );
    // A backup at 02:45 CET, in the repeated hour, still belongs to 10-31's slot.
    let path = expected_path(&app, &job["id"], "2027-10-31T01:45:00Z").await;
    assert_eq!(path["slot_utc"], "2027-10-31T00:30:00Z");
    assert_eq!(path["path"], "/b/erp_2027-10-31_0230.dump");
    let path = expected_path(&app, &job["id"], "2027-11-01T01:30:00Z").await;
    assert_eq!(path["path"], "/b/erp_2027-11-01_0230.dump");
}

#[tokio::test]
async fn every_cron_vector_holds_through_the_http_api() {
    // Arrange
    let vectors: Vec<Value> =
        serde_json::from_str(include_str!("../fixtures/cron-vectors.json")).unwrap();
    assert_eq!(vectors.len(), 160);
    let app = spawn_app().await;
    // The grace rule looks 366 days ahead of creation: the vectors' year.
    app.set_now(Some(at("2027-01-01T00:00:00Z")));
    let mut failures = Vec::new();
    for (i, v) in vectors.iter().enumerate() {
        // Act
        let response = app.post_json("/api/v1/jobs/", &v["job"]).await;
        if response.status() != 201 {
            let body: Value = response.json().await.unwrap();
            failures.push(format!("vector {i}: {} refused: {body}", v["job"]));
            continue;
        }
        let job: Value = response.json().await.unwrap();
        let got = expected_path(&app, &job["id"], v["at"].as_str().unwrap()).await;

        // Assert
        if got["slot_utc"] != v["slot_utc"] || got["path"] != v["path"] {
            failures.push(format!(
                "vector {i}: {} {} at {}: got {} {}, want {} {}",
                v["job"]["schedule"],
                v["job"]["timezone"],
                v["at"],
                got["slot_utc"],
                got["path"],
                v["slot_utc"],
                v["path"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_schedule_change_counts_lateness_afresh_from_the_change() {
    // Arrange: a Paris job since 03-01, late for days when it is rescheduled on 03-10.
    let app = spawn_app().await;
    app.set_now(Some(at("2027-03-01T00:00:00Z")));
    let job = created(&app, &cron_job("30 2 * * *", "Europe/Paris")).await;
    let id = job["id"].as_i64().unwrap();
    app.set_now(Some(at("2027-03-10T12:00:00Z")));
    let response = app
        .patch_json(
            &format!("/api/v1/jobs/{id}"),
            &json!({"schedule": "0 22 * * 1-5"}),
        )
        .await;
    assert_eq!(response.status(), 200);

    // Act: the first tick after the change.
    let outcome = app.tick(at("2027-03-10T12:05:00Z"));

    // Assert: the old slots before the change are not counted; the new schedule's first
    // slot (Wednesday 03-10 22:00 CET = 21:00 UTC) is then due at 22:00 UTC.
    assert_eq!(outcome.missing_written, 0, "nothing due since the change");
    assert_eq!(app.tick(at("2027-03-10T21:59:00Z")).missing_written, 0);
    assert_eq!(app.tick(at("2027-03-10T22:00:00Z")).missing_written, 1);
    assert_eq!(missing_of(&app, &job["id"]).await, ["2027-03-10T21:00:00Z"]);
}

#[tokio::test]
async fn an_update_whose_schedule_leaves_no_room_for_the_stored_grace_conflicts() {
    // A daily job with 12 hours of grace can't become hourly: the update alone is fine, the
    // job as it would then be is not.
    let app = spawn_app().await;
    let job = created(
        &app,
        &with(
            cron_job("30 2 * * *", "Europe/Paris"),
            json!({"grace_minutes": 720}),
        ),
    )
    .await;
    let response = app
        .patch_json(
            &format!("/api/v1/jobs/{}", job["id"]),
            &json!({"schedule": "0 * * * *"}),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 409, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("grace"), "{detail}");
    assert!(detail.contains("send both fields together"), "{detail}");
    // Sent together, they are checked together: 422 on grace_minutes.
    let together = app
        .patch_json(
            &format!("/api/v1/jobs/{}", job["id"]),
            &json!({"schedule": "0 * * * *", "grace_minutes": 720}),
        )
        .await;
    assert_eq!(together.status(), 422);
}
