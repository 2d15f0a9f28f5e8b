//! `/api/v1/entries`: reporting backups one by one and in batches, reading them back,
//! listing them newest first with filters and pages, and what is refused and why.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{
    assert_422, client_with, errors, spawn_app, spawn_app_with, total_count, with, Role, TestApp,
};

const ENTRIES: &str = "/api/v1/entries/";
const BATCH: &str = "/api/v1/entries/batch";
const HASH_A: &str = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const HASH_B: &str = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// A complete success report for `job_id` at `at`.
fn full_report(job_id: i64, at: &str) -> Value {
    json!({
        "expected_job_id": job_id,
        "status": "success",
        "backup_timestamp_utc": at,
        "backup_hash": HASH_A,
        "backup_size_bytes": 123_456_789,
        "error_message": null,
    })
}

/// The smallest report the server takes.
fn minimal_report(job_id: i64) -> Value {
    json!({"expected_job_id": job_id, "status": "success"})
}

/// `n` distinct success reports for `job_id`, one minute apart from 2026-01-01T00:00Z.
fn reports_per_minute(job_id: i64, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let at = format!(
                "2026-01-{:02}T{:02}:{:02}:00Z",
                1 + i / 1440,
                (i / 60) % 24,
                i % 60
            );
            json!({
                "expected_job_id": job_id,
                "status": "success",
                "backup_timestamp_utc": at,
                "backup_hash": format!("sha256:{i:064x}"),
                "backup_size_bytes": 1_048_576 + i,
            })
        })
        .collect()
}

async fn status_and_json(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

/// How many entries the server holds, all jobs and statuses together.
async fn entry_count(app: &TestApp) -> i64 {
    let response = app.get(ENTRIES).await;
    assert_eq!(response.status(), 200);
    total_count(&response)
}

/// GETs a listing: its total and the ids of the page, in order.
async fn list_ids(app: &TestApp, path: &str) -> (i64, Vec<i64>) {
    let response = app.get(path).await;
    let total = total_count(&response);
    let (status, body) = status_and_json(response).await;
    assert_eq!(status, 200, "{path}: {body}");
    (total, ids_of(&body))
}

fn ids_of(body: &Value) -> Vec<i64> {
    body.as_array()
        .unwrap_or_else(|| panic!("not an array: {body}"))
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

async fn post_report(app: &TestApp, body: &Value) -> (StatusCode, Value) {
    status_and_json(app.post_json(ENTRIES, body).await).await
}

/// POSTs a report that must be created, and returns the entry.
async fn created(app: &TestApp, body: &Value) -> Value {
    let (status, entry) = post_report(app, body).await;
    assert_eq!(status, 201, "report {body} was not created: {entry}");
    entry
}

async fn job_id(app: &TestApp) -> i64 {
    app.create_job(json!({})).await["id"].as_i64().unwrap()
}

fn parse_time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// `t` cut to whole microseconds, the precision the server keeps.
fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
}

// ---- POST /api/v1/entries/ ----------------------------------------------------------------

#[tokio::test]
async fn report_is_created_with_every_field() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let before = to_micros(Utc::now());

    // Act
    let response = app
        .post_json(
            ENTRIES,
            &json!({
                "expected_job_id": job,
                "status": "failed",
                "backup_timestamp_utc": "2026-11-24T02:30:00Z",
                "backup_hash": HASH_A,
                "backup_size_bytes": 0,
                "error_message": "pg_dump: error: connection refused",
            }),
        )
        .await;
    let (status, entry) = status_and_json(response).await;
    let after = Utc::now();

    // Assert
    assert_eq!(status, 201, "{entry}");
    let id = entry["id"].as_i64().unwrap();
    assert!(id >= 1);
    let created_at = parse_time(&entry["created_at"]);
    assert!(before <= created_at && created_at <= after, "{entry}");
    assert_eq!(
        entry,
        json!({
            "id": id,
            "expected_job_id": job,
            "status": "failed",
            "backup_timestamp_utc": "2026-11-24T02:30:00Z",
            "backup_hash": HASH_A,
            "backup_size_bytes": 0,
            "error_message": "pg_dump: error: connection refused",
            "created_at": entry["created_at"],
            "run_id": null,
            "duration_seconds": null,
            "suspect_reason": null,
            "log": null,
        })
    );
    assert!(entry["created_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn optional_fields_not_sent_are_null_and_the_timestamp_defaults_to_now() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let before = to_micros(Utc::now());

    // Act
    let entry = created(&app, &minimal_report(job)).await;
    let after = Utc::now();

    // Assert
    let mut keys: Vec<&str> = entry
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "backup_hash",
            "backup_size_bytes",
            "backup_timestamp_utc",
            "created_at",
            "duration_seconds",
            "error_message",
            "expected_job_id",
            "id",
            "log",
            "run_id",
            "status",
            "suspect_reason"
        ]
    );
    assert_eq!(entry["backup_hash"], Value::Null);
    assert_eq!(entry["backup_size_bytes"], Value::Null);
    assert_eq!(entry["error_message"], Value::Null);
    assert_eq!(entry["status"], "success");
    assert_eq!(entry["expected_job_id"], job);
    let ran_at = parse_time(&entry["backup_timestamp_utc"]);
    assert!(
        before <= ran_at && ran_at <= after,
        "{ran_at} not within [{before}, {after}]"
    );
    assert!(entry["backup_timestamp_utc"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
}

#[tokio::test]
async fn explicit_nulls_for_optional_fields_mean_not_given() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let before = to_micros(Utc::now());

    // Act
    let entry = created(
        &app,
        &json!({
            "expected_job_id": job,
            "status": "success",
            "backup_timestamp_utc": null,
            "backup_hash": null,
            "backup_size_bytes": null,
            "error_message": null,
        }),
    )
    .await;

    // Assert
    assert_eq!(entry["backup_hash"], Value::Null);
    assert_eq!(entry["backup_size_bytes"], Value::Null);
    assert_eq!(entry["error_message"], Value::Null);
    let ran_at = parse_time(&entry["backup_timestamp_utc"]);
    assert!(before <= ran_at && ran_at <= Utc::now());
}

#[tokio::test]
async fn report_timestamps_are_stored_in_utc() {
    let cases = [
        (
            "2026-11-24T03:30:00+01:00",
            "2026-11-24T02:30:00Z",
            "an offset is converted to UTC",
        ),
        (
            "2026-11-23T21:03:00-05:30",
            "2026-11-24T02:33:00Z",
            "a negative offset crossing midnight",
        ),
        (
            "2026-11-24T02:31:00",
            "2026-11-24T02:31:00Z",
            "a naive time is UTC",
        ),
        (
            "2026-11-24 02:32:00",
            "2026-11-24T02:32:00Z",
            "a space instead of T",
        ),
        (
            "2026-11-24T02:30:00.123456Z",
            "2026-11-24T02:30:00.123456Z",
            "microseconds are kept",
        ),
        (
            "2026-11-24T02:30:00.250+00:00",
            "2026-11-24T02:30:00.250Z",
            "milliseconds are kept",
        ),
        (
            "1970-01-01T00:00:00Z",
            "1970-01-01T00:00:00Z",
            "the earliest instant accepted",
        ),
    ];
    let app = spawn_app().await;
    let job = job_id(&app).await;
    for (sent, stored, case) in cases {
        // Act
        let (status, entry) = post_report(
            &app,
            &json!({"expected_job_id": job, "status": "success", "backup_timestamp_utc": sent}),
        )
        .await;

        // Assert
        assert_eq!(status, 201, "{case}: {entry}");
        assert_eq!(entry["backup_timestamp_utc"], stored, "{case}");
        let id = entry["id"].as_i64().unwrap();
        let read: Value = app
            .get(&format!("/api/v1/entries/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(read["backup_timestamp_utc"], stored, "{case}: read back");
    }
}

#[tokio::test]
async fn a_failed_report_with_size_zero_and_no_hash_is_accepted() {
    let app = spawn_app().await;
    let job = job_id(&app).await;

    let entry = created(
        &app,
        &json!({
            "expected_job_id": job,
            "status": "failed",
            "backup_size_bytes": 0,
            "error_message": "disk full",
        }),
    )
    .await;

    assert_eq!(entry["status"], "failed");
    assert_eq!(entry["backup_size_bytes"], 0);
    assert_eq!(entry["backup_hash"], Value::Null);
    assert_eq!(entry["error_message"], "disk full");
}

#[tokio::test]
async fn limits_are_inclusive_for_hash_error_message_and_size() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let hash = "h".repeat(256);
    let message = "é".repeat(4096);

    // Act
    let entry = created(
        &app,
        &json!({
            "expected_job_id": job,
            "status": "failed",
            "backup_hash": hash,
            "error_message": message,
            "backup_size_bytes": i64::MAX,
        }),
    )
    .await;

    // Assert: kept whole, counted in characters, not bytes
    assert_eq!(entry["backup_hash"], hash.as_str());
    assert_eq!(entry["error_message"], message.as_str());
    assert_eq!(entry["backup_size_bytes"], i64::MAX);
}

#[tokio::test]
async fn sql_metacharacters_are_stored_verbatim() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let nasty = "'; DROP TABLE entries; --";
    let message = "it's \"quoted\" \\ 100% _done_ \u{0} ; DELETE FROM jobs; --";

    // Act
    let entry = created(
        &app,
        &json!({
            "expected_job_id": job,
            "status": "failed",
            "backup_hash": nasty,
            "error_message": message,
        }),
    )
    .await;

    // Assert
    let id = entry["id"].as_i64().unwrap();
    let read: Value = app
        .get(&format!("/api/v1/entries/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["backup_hash"], nasty);
    assert_eq!(read["error_message"], message);
    assert_eq!(entry_count(&app).await, 1);
    assert_eq!(app.get(&format!("/api/v1/jobs/{job}")).await.status(), 200);
}

// ---- idempotency ---------------------------------------------------------------------------

#[tokio::test]
async fn identical_repeat_returns_the_existing_entry_with_200() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let report = full_report(job, "2026-11-24T02:30:00Z");
    let first = created(&app, &report).await;

    // Act
    let (status, again) = post_report(&app, &report).await;

    // Assert
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);
    assert_eq!(entry_count(&app).await, 1);
}

#[tokio::test]
async fn identical_repeat_without_a_hash_returns_200() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let report = json!({
        "expected_job_id": job,
        "status": "success",
        "backup_timestamp_utc": "2026-11-24T02:30:00Z",
    });
    let first = created(&app, &report).await;

    let (status, again) = post_report(&app, &with(report, json!({"backup_hash": null}))).await;

    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);
    assert_eq!(entry_count(&app).await, 1);
}

#[tokio::test]
async fn the_same_instant_written_with_another_offset_is_the_same_report() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let first = created(&app, &full_report(job, "2026-11-24T02:30:00Z")).await;

    let (status, again) = post_report(&app, &full_report(job, "2026-11-24T03:30:00+01:00")).await;

    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(entry_count(&app).await, 1);
}

#[tokio::test]
async fn a_repeat_differing_only_in_size_or_message_is_the_same_report() {
    // The contract's identity is (job, timestamp, status, hash): the first report stands.
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let report = full_report(job, "2026-11-24T02:30:00Z");
    let first = created(&app, &report).await;

    let (status, again) = post_report(
        &app,
        &with(
            report,
            json!({"backup_size_bytes": 1, "error_message": "retry"}),
        ),
    )
    .await;

    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);
    assert_eq!(entry_count(&app).await, 1);
}

#[tokio::test]
async fn a_report_differing_in_hash_status_timestamp_or_job_is_a_new_entry() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let other_job = job_id(&app).await;
    let base = full_report(job, "2026-11-24T02:30:00Z");
    let first = created(&app, &base).await;
    let variants = [
        (json!({"backup_hash": HASH_B}), "another hash"),
        (json!({"backup_hash": null}), "no hash"),
        (json!({"status": "failed"}), "another status"),
        (
            json!({"backup_timestamp_utc": "2026-11-24T02:30:00.000001Z"}),
            "a microsecond later",
        ),
        (json!({"expected_job_id": other_job}), "another job"),
    ];
    let mut ids = vec![first["id"].as_i64().unwrap()];

    for (change, case) in variants {
        // Act
        let (status, entry) = post_report(&app, &with(base.clone(), change)).await;

        // Assert
        assert_eq!(status, 201, "{case}: {entry}");
        let id = entry["id"].as_i64().unwrap();
        assert!(!ids.contains(&id), "{case}: id {id} reused");
        ids.push(id);
    }
    assert_eq!(entry_count(&app).await, 6);
}

#[tokio::test]
async fn concurrent_identical_reports_make_one_entry() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let report = full_report(job, "2026-11-24T02:30:00Z");

    // Act
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let request = app.client.post(app.url(ENTRIES)).json(&report);
            tokio::spawn(async move {
                let response = request.send().await.unwrap();
                status_and_json(response).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }

    // Assert
    let created = answers.iter().filter(|(s, _)| *s == 201).count();
    let repeated = answers.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!((created, repeated), (1, 15), "{answers:?}");
    let id = &answers[0].1["id"];
    assert!(answers.iter().all(|(_, e)| &e["id"] == id), "{answers:?}");
    assert_eq!(entry_count(&app).await, 1);
}

// ---- refused reports -----------------------------------------------------------------------

#[tokio::test]
async fn invalid_reports_are_422_at_the_field_and_store_nothing() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let base = full_report(job, "2026-11-24T02:30:00Z");
    let cases = [
        (
            json!({"expected_job_id": null}),
            "expected_job_id",
            "missing",
            "job id missing",
        ),
        (
            json!({"status": null}),
            "status",
            "missing",
            "status missing",
        ),
        (
            json!({"status": "missing"}),
            "status",
            "enum",
            "missing is the scheduler's",
        ),
        (json!({"status": "ok"}), "status", "enum", "unknown status"),
        (
            json!({"status": "SUCCESS"}),
            "status",
            "enum",
            "status is case-sensitive",
        ),
        (json!({"status": ""}), "status", "enum", "empty status"),
        (
            json!({"status": 1}),
            "status",
            "string_type",
            "status a number",
        ),
        (
            json!({"expected_job_id": "one"}),
            "expected_job_id",
            "int_type",
            "job id a word",
        ),
        (
            json!({"expected_job_id": true}),
            "expected_job_id",
            "int_type",
            "job id a boolean",
        ),
        (
            json!({"expected_job_id": [job]}),
            "expected_job_id",
            "int_type",
            "job id a list",
        ),
        (
            json!({"expected_job_id": 1.5}),
            "expected_job_id",
            "int_from_float",
            "job id fractional",
        ),
        (
            json!({"backup_size_bytes": "1 GB"}),
            "backup_size_bytes",
            "int_type",
            "size a string",
        ),
        (
            json!({"backup_size_bytes": -1}),
            "backup_size_bytes",
            "greater_than_equal",
            "size negative",
        ),
        (
            json!({"backup_hash": 42}),
            "backup_hash",
            "string_type",
            "hash a number",
        ),
        (
            json!({"backup_hash": "h".repeat(257)}),
            "backup_hash",
            "string_too_long",
            "hash 257 characters",
        ),
        (
            json!({"error_message": {"code": 1}}),
            "error_message",
            "string_type",
            "message an object",
        ),
        (
            json!({"error_message": "e".repeat(4097)}),
            "error_message",
            "string_too_long",
            "message 4097 characters",
        ),
        (
            json!({"backup_timestamp_utc": "yesterday"}),
            "backup_timestamp_utc",
            "datetime_parsing",
            "timestamp a word",
        ),
        (
            json!({"backup_timestamp_utc": "2026-13-01T00:00:00Z"}),
            "backup_timestamp_utc",
            "datetime_parsing",
            "month 13",
        ),
        (
            json!({"backup_timestamp_utc": "2026-02-30T00:00:00Z"}),
            "backup_timestamp_utc",
            "datetime_parsing",
            "February 30",
        ),
        (
            json!({"backup_timestamp_utc": 1_700_000_000}),
            "backup_timestamp_utc",
            "string_type",
            "timestamp a number",
        ),
    ];

    for (change, field, kind, case) in cases {
        // Act
        let response = app.post_json(ENTRIES, &with(base.clone(), change)).await;

        // Assert
        assert_422(response, json!(["body", field]), kind, case).await;
        assert_eq!(entry_count(&app).await, 0, "{case}: something was stored");
    }
}

#[tokio::test]
async fn every_problem_of_a_report_is_reported_at_once() {
    let app = spawn_app().await;

    let response = app
        .post_json(
            ENTRIES,
            &json!({"backup_size_bytes": -5, "backup_timestamp_utc": "soon"}),
        )
        .await;
    let (status, body) = status_and_json(response).await;

    assert_eq!(status, 422);
    let mut found = errors(&body);
    found.sort_by_key(|(loc, _)| loc.to_string());
    assert_eq!(
        found,
        vec![
            (
                json!(["body", "backup_size_bytes"]),
                "greater_than_equal".to_owned()
            ),
            (
                json!(["body", "backup_timestamp_utc"]),
                "datetime_parsing".to_owned()
            ),
            (json!(["body", "expected_job_id"]), "missing".to_owned()),
            (json!(["body", "status"]), "missing".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_report_body_that_is_not_an_object_is_422() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let cases = [
        (json!([minimal_report(job)]), "an array"),
        (json!("success"), "a string"),
        (json!(42), "a number"),
        (json!(null), "null"),
    ];
    for (body, case) in cases {
        let response = app.post_json(ENTRIES, &body).await;

        assert_422(response, json!(["body"]), "model_attributes_type", case).await;
        assert_eq!(entry_count(&app).await, 0, "{case}");
    }
}

#[tokio::test]
async fn unreadable_report_bodies_are_422() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let good = minimal_report(job).to_string();
    let cases: [(Option<&str>, String, Value, &str, &str); 7] = [
        (
            Some("application/json"),
            r#"{"expected_job_id": }"#.to_owned(),
            json!(["body", 20]),
            "json_invalid",
            "malformed JSON, at its character position",
        ),
        (
            Some("application/json"),
            format!("{good} trailing"),
            json!(["body", good.len() + 1]),
            "json_invalid",
            "trailing garbage",
        ),
        (
            Some("application/json"),
            "{\"expected_job_id\":\n x}".to_owned(),
            json!(["body", 21]),
            "json_invalid",
            "malformed JSON on a second line, counted across lines",
        ),
        (
            Some("application/json"),
            String::new(),
            json!(["body"]),
            "missing",
            "empty body",
        ),
        (
            Some("application/json"),
            "  \n ".to_owned(),
            json!(["body"]),
            "missing",
            "blank body",
        ),
        (
            None,
            good.clone(),
            json!(["body"]),
            "content_type",
            "no Content-Type",
        ),
        (
            Some("text/plain"),
            good.clone(),
            json!(["body"]),
            "content_type",
            "text/plain",
        ),
    ];

    for (content_type, body, loc, kind, case) in cases {
        // Act
        let response = app.post_raw(ENTRIES, content_type, body).await;

        // Assert
        assert_422(response, loc, kind, case).await;
        assert_eq!(entry_count(&app).await, 0, "{case}: something was stored");
    }
}

#[tokio::test]
async fn json_that_ends_too_soon_is_located_at_its_end_as_fastapi_does() {
    // Python's json module, which FastAPI reports, places an unexpected end of input at
    // the body's length: `[{` is at 2, `{"expected_job_id": 1` at 21.
    let app = spawn_app().await;
    let cases = [
        (ENTRIES, "{\"expected_job_id\": 1", 21),
        (ENTRIES, "{", 1),
        (BATCH, "[{", 2),
        (BATCH, "[1,", 3),
    ];
    for (path, body, position) in cases {
        let response = app.post_raw(path, Some("application/json"), body).await;

        assert_422(response, json!(["body", position]), "json_invalid", body).await;
    }
    assert_eq!(entry_count(&app).await, 0);
}

#[tokio::test]
async fn json_content_type_with_a_charset_is_accepted() {
    let app = spawn_app().await;
    let job = job_id(&app).await;

    let response = app
        .post_raw(
            ENTRIES,
            Some("application/json; charset=utf-8"),
            minimal_report(job).to_string(),
        )
        .await;

    assert_eq!(response.status(), 201);
    assert_eq!(entry_count(&app).await, 1);
}

#[tokio::test]
async fn report_for_unknown_job_is_404() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;

    // Act
    let response = app.post_json(ENTRIES, &minimal_report(job + 1)).await;
    let (status, body) = status_and_json(response).await;

    // Assert
    assert_eq!(status, 404);
    assert_eq!(body, json!({"detail": "Job not found"}));
    assert_eq!(entry_count(&app).await, 0);
}

#[tokio::test]
async fn report_naming_job_zero_or_a_negative_job_is_404() {
    let app = spawn_app().await;
    job_id(&app).await;

    for job in [0, -1, i64::MIN] {
        let (status, body) = post_report(&app, &minimal_report(job)).await;

        assert_eq!(status, 404, "job {job}: {body}");
        assert_eq!(body, json!({"detail": "Job not found"}), "job {job}");
    }
    assert_eq!(entry_count(&app).await, 0);
}

#[tokio::test]
async fn an_inactive_job_still_takes_reports() {
    let app = spawn_app().await;
    let job = app.create_job(json!({"is_active": false})).await["id"]
        .as_i64()
        .unwrap();

    let entry = created(&app, &minimal_report(job)).await;

    assert_eq!(entry["expected_job_id"], job);
    assert_eq!(entry_count(&app).await, 1);
}

#[tokio::test]
async fn unknown_fields_in_a_report_are_ignored() {
    let app = spawn_app().await;
    let job = job_id(&app).await;

    let entry = created(
        &app,
        &with(
            minimal_report(job),
            json!({"id": 999, "created_at": "2000-01-01T00:00:00Z", "agent": "x"}),
        ),
    )
    .await;

    assert_ne!(entry["id"], 999);
    assert_ne!(entry["created_at"], "2000-01-01T00:00:00Z");
    assert!(entry.get("agent").is_none());
}

#[tokio::test]
async fn report_for_a_deleted_job_is_404_and_its_entries_are_gone() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let kept_job = job_id(&app).await;
    let entry = created(&app, &minimal_report(job)).await;
    let kept = created(&app, &minimal_report(kept_job)).await;
    assert_eq!(
        app.delete(&format!("/api/v1/jobs/{job}")).await.status(),
        200
    );

    // Act
    let (status, body) = post_report(&app, &minimal_report(job)).await;

    // Assert
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({"detail": "Job not found"}))
    );
    let id = entry["id"].as_i64().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/entries/{id}")).await.status(),
        404
    );
    assert_eq!(
        list_ids(&app, ENTRIES).await,
        (1, vec![kept["id"].as_i64().unwrap()])
    );
}

/// The writer keeps the job rows it has read (`db::jobs::JobCache`): a change of the job,
/// made by the API on another connection, is seen by the very next report.
#[tokio::test]
async fn a_report_is_judged_by_its_job_as_it_is_now_not_as_first_read() {
    // Arrange: a first report, so that the writer has read the job.
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let report = |day: u32| {
        json!({
            "expected_job_id": job,
            "status": "success",
            "backup_timestamp_utc": format!("2026-01-{day:02}T02:30:00Z"),
            "backup_size_bytes": 100,
        })
    };
    let first = created(&app, &report(1)).await;
    assert_eq!(first["suspect_reason"], Value::Null, "{first}");
    let agent = app.token(Role::Agent, Some("agent-lyon-1"));
    let as_agent = client_with(Some(&agent));
    let job_path = format!("/api/v1/jobs/{job}");

    // Act and assert: a content rule changed…
    let changed = app
        .patch_json(&job_path, &json!({"min_size_bytes": 1000}))
        .await;
    assert_eq!(changed.status(), 200);
    let second = created(&app, &report(2)).await;
    assert!(
        second["suspect_reason"].is_string(),
        "judged by the new minimum size: {second}"
    );
    // …the job given to another agent…
    let moved = app
        .patch_json(&job_path, &json!({"agent_id_responsible": "agent-paris-2"}))
        .await;
    assert_eq!(moved.status(), 200);
    let refused = as_agent
        .post(app.url(ENTRIES))
        .json(&report(3))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403, "the job is no longer this agent's");
    // …and the job deleted.
    assert_eq!(app.delete(&job_path).await.status(), 200);
    let (status, _) = post_report(&app, &report(4)).await;
    assert_eq!(status, 404);
}

/// The writer also remembers each job's latest successes, which a success's size and hash
/// are compared with: a success replaced behind its back (another process, the same count
/// and the same newest instant) is what the very next report is compared with.
#[tokio::test]
async fn a_success_is_compared_with_the_successes_there_are_now_not_as_first_read() {
    // Arrange: two successes through the API, so that the writer remembers them.
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let report = |day: u32, hash: &str| {
        json!({
            "expected_job_id": job,
            "status": "success",
            "backup_timestamp_utc": format!("2026-01-{day:02}T02:30:00Z"),
            "backup_size_bytes": 1_000,
            "backup_hash": hash,
        })
    };
    created(&app, &report(1, "aaa")).await;
    let second = created(&app, &report(2, "bbb")).await;
    assert_eq!(second["suspect_reason"], Value::Null, "{second}");
    let again = created(&app, &report(3, "bbb")).await;
    assert!(
        again["suspect_reason"].is_string(),
        "the same hash as day 2's: {again}"
    );

    // Act: day 3's success replaced, on another connection, by one with another hash.
    let db = app.db();
    let conn = db.conn().unwrap();
    conn.execute_batch(&format!(
        "DELETE FROM entries WHERE job_id = {job} AND status = 'success' \
         AND backup_hash = 'bbb' AND backup_timestamp_us = {day3}; \
         INSERT INTO entries (job_id, status, backup_timestamp_us, backup_hash, \
         backup_size_bytes, created_at_us) VALUES ({job}, 'success', {day3}, 'ccc', 1000, 0)",
        day3 = crate::common::at("2026-01-03T02:30:00Z").timestamp_micros()
    ))
    .unwrap();

    // Assert: day 4 is compared with the success that is there now.
    let fourth = created(&app, &report(4, "ccc")).await;
    let reason = fourth["suspect_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("2026-01-03"),
        "the same hash as day 3's success as it is now: {fourth}"
    );
    let fifth = created(&app, &report(5, "bbb")).await;
    assert_eq!(fifth["suspect_reason"], Value::Null, "{fifth}");
}

// ---- POST /api/v1/entries/batch ------------------------------------------------------------

#[tokio::test]
async fn batch_is_created_in_the_order_sent() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let other = job_id(&app).await;
    let items = json!([
        full_report(job, "2026-11-24T02:30:00Z"),
        {"expected_job_id": other, "status": "failed", "backup_timestamp_utc": "2026-11-23T02:30:00+02:00",
         "error_message": "timeout"},
        full_report(job, "2026-11-22T02:30:00Z"),
    ]);

    // Act
    let (status, body) = status_and_json(app.post_json(BATCH, &items).await).await;

    // Assert
    assert_eq!(status, 201, "{body}");
    let entries = body.as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let ids = ids_of(&body);
    assert!(ids[0] < ids[1] && ids[1] < ids[2], "{ids:?}");
    assert_eq!(
        entries[1],
        json!({
            "id": ids[1],
            "expected_job_id": other,
            "status": "failed",
            "backup_timestamp_utc": "2026-11-23T00:30:00Z",
            "backup_hash": null,
            "backup_size_bytes": null,
            "error_message": "timeout",
            "created_at": entries[1]["created_at"],
            "run_id": null,
            "duration_seconds": null,
            "suspect_reason": null,
            "log": null,
        })
    );
    assert_eq!(entries[0]["backup_timestamp_utc"], "2026-11-24T02:30:00Z");
    assert_eq!(entries[2]["backup_timestamp_utc"], "2026-11-22T02:30:00Z");
    for (entry, id) in entries.iter().zip(&ids) {
        let read: Value = app
            .get(&format!("/api/v1/entries/{id}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(&read, entry);
    }
    assert_eq!(entry_count(&app).await, 3);
}

#[tokio::test]
async fn batch_items_without_a_timestamp_are_stamped_now() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let before = to_micros(Utc::now());

    let (status, body) = status_and_json(
        app.post_json(
            BATCH,
            &json!([minimal_report(job), {"expected_job_id": job, "status": "failed"}]),
        )
        .await,
    )
    .await;
    let after = Utc::now();

    assert_eq!(status, 201, "{body}");
    for entry in body.as_array().unwrap() {
        let ran_at = parse_time(&entry["backup_timestamp_utc"]);
        assert!(before <= ran_at && ran_at <= after, "{entry}");
    }
}

#[tokio::test]
async fn an_invalid_batch_item_refuses_the_whole_batch() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let items = json!([
        full_report(job, "2026-11-24T02:30:00Z"),
        full_report(job, "2026-11-25T02:30:00Z"),
        with(
            full_report(job, "2026-11-26T02:30:00Z"),
            json!({"backup_size_bytes": -1})
        ),
        full_report(job, "2026-11-27T02:30:00Z"),
    ]);

    // Act
    let response = app.post_json(BATCH, &items).await;

    // Assert
    assert_422(
        response,
        json!(["body", 2, "backup_size_bytes"]),
        "greater_than_equal",
        "item 2",
    )
    .await;
    assert_eq!(entry_count(&app).await, 0);
}

#[tokio::test]
async fn every_invalid_batch_item_is_named() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let items = json!([
        {"expected_job_id": job},
        minimal_report(job),
        "not an object",
        {"expected_job_id": job, "status": "success", "backup_hash": "h".repeat(257)},
    ]);

    let (status, body) = status_and_json(app.post_json(BATCH, &items).await).await;

    assert_eq!(status, 422, "{body}");
    assert_eq!(
        errors(&body),
        vec![
            (json!(["body", 0, "status"]), "missing".to_owned()),
            (json!(["body", 2]), "model_attributes_type".to_owned()),
            (
                json!(["body", 3, "backup_hash"]),
                "string_too_long".to_owned()
            ),
        ]
    );
    assert_eq!(entry_count(&app).await, 0);
}

#[tokio::test]
async fn a_batch_item_with_status_missing_is_422() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let items = json!([
        minimal_report(job),
        {"expected_job_id": job, "status": "missing", "backup_timestamp_utc": "2026-11-24T02:30:00Z"},
    ]);

    let response = app.post_json(BATCH, &items).await;

    assert_422(
        response,
        json!(["body", 1, "status"]),
        "enum",
        "missing in a batch",
    )
    .await;
    assert_eq!(entry_count(&app).await, 0);
}

#[tokio::test]
async fn a_batch_item_for_an_unknown_job_is_404_naming_it_and_stores_nothing() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let items = json!([
        full_report(job, "2026-11-24T02:30:00Z"),
        full_report(job, "2026-11-25T02:30:00Z"),
        full_report(job + 100, "2026-11-26T02:30:00Z"),
        full_report(job, "2026-11-27T02:30:00Z"),
        full_report(job + 200, "2026-11-28T02:30:00Z"),
    ]);

    // Act
    let response = app.post_json(BATCH, &items).await;
    let (status, body) = status_and_json(response).await;

    // Assert: the request matches the schema, so it is not a 422 (DESIGN §5).
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body["detail"],
        format!(
            "Job not found: item 2 (expected_job_id {}) and 1 more",
            job + 100
        )
    );
    assert_eq!(entry_count(&app).await, 0);
}

#[tokio::test]
async fn a_batch_of_1000_is_accepted_and_1001_is_too_long() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let mut items = reports_per_minute(job, 1001);

    // Act
    let too_many = app.post_json(BATCH, &json!(items)).await;
    items.pop();
    let (status, body) = status_and_json(app.post_json(BATCH, &json!(items)).await).await;

    // Assert
    assert_422(too_many, json!(["body"]), "too_long", "1001 items").await;
    assert_eq!(status, 201);
    let entries = body.as_array().unwrap();
    assert_eq!(entries.len(), 1000);
    for (sent, entry) in items.iter().zip(entries) {
        assert_eq!(entry["backup_timestamp_utc"], sent["backup_timestamp_utc"]);
        assert_eq!(entry["backup_hash"], sent["backup_hash"]);
    }
    assert_eq!(entry_count(&app).await, 1000);
}

#[tokio::test]
async fn a_batch_that_is_empty_or_not_a_list_is_422() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let cases = [
        (json!([]), "too_short", "an empty array"),
        (
            minimal_report(job),
            "list_type",
            "one report, not in an array",
        ),
        (json!("reports"), "list_type", "a string"),
        (json!(null), "list_type", "null"),
    ];
    for (body, kind, case) in cases {
        let response = app.post_json(BATCH, &body).await;

        assert_422(response, json!(["body"]), kind, case).await;
        assert_eq!(entry_count(&app).await, 0, "{case}");
    }
}

#[tokio::test]
async fn unreadable_batch_bodies_are_422() {
    let app = spawn_app().await;
    let cases = [
        (
            Some("application/json"),
            "[1 2]",
            "json_invalid",
            json!(["body", 3]),
        ),
        (Some("application/json"), "", "missing", json!(["body"])),
        (Some("text/plain"), "[]", "content_type", json!(["body"])),
        (None, "[]", "content_type", json!(["body"])),
    ];
    for (content_type, body, kind, loc) in cases {
        let response = app.post_raw(BATCH, content_type, body).await;

        assert_422(response, loc, kind, &format!("{content_type:?} {body:?}")).await;
    }
}

#[tokio::test]
async fn a_batch_item_identical_to_an_existing_entry_comes_back_with_its_id() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let existing = created(&app, &full_report(job, "2026-11-24T02:30:00Z")).await;

    // Act
    let (status, body) = status_and_json(
        app.post_json(
            BATCH,
            &json!([
                full_report(job, "2026-11-25T02:30:00Z"),
                full_report(job, "2026-11-24T02:30:00Z"),
            ]),
        )
        .await,
    )
    .await;

    // Assert
    assert_eq!(status, 201, "{body}");
    assert_eq!(body[1], existing);
    assert_ne!(body[0]["id"], existing["id"]);
    assert_eq!(entry_count(&app).await, 2);
}

#[tokio::test]
async fn identical_items_in_one_batch_are_one_entry() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let report = full_report(job, "2026-11-24T02:30:00Z");

    let (status, body) =
        status_and_json(app.post_json(BATCH, &json!([report, report])).await).await;

    assert_eq!(status, 201, "{body}");
    assert_eq!(body[0], body[1]);
    assert_eq!(entry_count(&app).await, 1);
}

// ---- GET /api/v1/entries/{entry_id} --------------------------------------------------------

#[tokio::test]
async fn an_entry_is_read_back_as_created() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let entry = created(&app, &full_report(job, "2026-11-24T02:30:00.5Z")).await;
    let id = entry["id"].as_i64().unwrap();

    let (status, read) = status_and_json(app.get(&format!("/api/v1/entries/{id}")).await).await;

    assert_eq!(status, 200);
    assert_eq!(read, entry);
}

#[tokio::test]
async fn unknown_entry_is_404() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let entry = created(&app, &minimal_report(job)).await;
    let missing = entry["id"].as_i64().unwrap() + 1;

    for path in [
        format!("/api/v1/entries/{missing}"),
        "/api/v1/entries/0".to_owned(),
        "/api/v1/entries/-1".to_owned(),
        format!("/api/v1/entries/{}", i64::MAX),
    ] {
        let (status, body) = status_and_json(app.get(&path).await).await;

        assert_eq!(status, 404, "{path}");
        assert_eq!(body, json!({"detail": "Entry not found"}), "{path}");
    }
}

#[tokio::test]
async fn entry_id_that_is_not_an_integer_is_422() {
    let app = spawn_app().await;
    for id in ["abc", "1.5", "1e3", "99999999999999999999", "%20"] {
        let response = app.get(&format!("/api/v1/entries/{id}")).await;

        assert_422(response, json!(["path", "entry_id"]), "int_parsing", id).await;
    }
}

#[tokio::test]
async fn entries_take_no_delete_or_put() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let id = created(&app, &minimal_report(job)).await["id"]
        .as_i64()
        .unwrap();
    let path = format!("/api/v1/entries/{id}");

    let deleted = app.delete(&path).await;
    let replaced = app.put_json(&path, &minimal_report(job)).await;

    for response in [deleted, replaced] {
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 405);
        assert_eq!(body, json!({"detail": "Method Not Allowed"}));
    }
    assert_eq!(app.get(&path).await.status(), 200);
}

// ---- GET /api/v1/entries/ ------------------------------------------------------------------

/// Six entries over two jobs, created out of time order with ties on the timestamp.
/// Returns (job a, job b, ids in creation order).
async fn seed_listing(app: &TestApp) -> (i64, i64, Vec<i64>) {
    let a = job_id(app).await;
    let b = job_id(app).await;
    let reports = [
        (a, "success", "2026-11-02T00:00:00Z"), // 0
        (b, "failed", "2026-11-05T00:00:00Z"),  // 1
        (a, "failed", "2026-11-03T00:00:00Z"),  // 2
        (a, "success", "2026-11-05T00:00:00Z"), // 3: ties with 1
        (b, "success", "2026-11-01T00:00:00Z"), // 4
        (a, "success", "2026-11-03T00:00:00Z"), // 5: ties with 2
    ];
    let mut ids = Vec::new();
    for (job, status, at) in reports {
        let entry = created(
            app,
            &json!({"expected_job_id": job, "status": status, "backup_timestamp_utc": at}),
        )
        .await;
        ids.push(entry["id"].as_i64().unwrap());
    }
    (a, b, ids)
}

#[tokio::test]
async fn listing_is_newest_first_then_by_id_descending() {
    // Arrange
    let app = spawn_app().await;
    let (_, _, ids) = seed_listing(&app).await;

    // Act
    let response = app.get(ENTRIES).await;
    let total = total_count(&response);
    let (status, body) = status_and_json(response).await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(total, 6);
    assert_eq!(
        ids_of(&body),
        [ids[3], ids[1], ids[5], ids[2], ids[0], ids[4]]
    );
    let times: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["backup_timestamp_utc"].as_str().unwrap())
        .collect();
    assert_eq!(
        times,
        [
            "2026-11-05T00:00:00Z",
            "2026-11-05T00:00:00Z",
            "2026-11-03T00:00:00Z",
            "2026-11-03T00:00:00Z",
            "2026-11-02T00:00:00Z",
            "2026-11-01T00:00:00Z",
        ]
    );
}

#[tokio::test]
async fn listing_of_nothing_is_an_empty_array_with_total_zero() {
    let app = spawn_app().await;

    assert_eq!(list_ids(&app, ENTRIES).await, (0, vec![]));
}

#[tokio::test]
async fn listing_filters_by_status_since_and_until() {
    // Arrange
    let app = spawn_app().await;
    let (_, _, ids) = seed_listing(&app).await;
    let cases = [
        ("status=success", vec![ids[3], ids[5], ids[0], ids[4]]),
        ("status=failed", vec![ids[1], ids[2]]),
        ("status=missing", vec![]),
        (
            "since=2026-11-03T00:00:00Z",
            vec![ids[3], ids[1], ids[5], ids[2]],
        ),
        ("since=2026-11-03T00:00:00.000001Z", vec![ids[3], ids[1]]),
        (
            "until=2026-11-03T00:00:00Z",
            vec![ids[5], ids[2], ids[0], ids[4]],
        ),
        ("until=2026-11-02T23:59:59.999999Z", vec![ids[0], ids[4]]),
        (
            "since=2026-11-03T00:00:00Z&until=2026-11-03T00:00:00Z",
            vec![ids[5], ids[2]],
        ),
        (
            "since=2026-11-02T00:00:00Z&until=2026-11-05T00:00:00Z&status=success",
            vec![ids[3], ids[5], ids[0]],
        ),
        (
            "since=2026-11-03T01:00:00%2B01:00",
            vec![ids[3], ids[1], ids[5], ids[2]],
        ),
        (
            "since=2026-11-04T00:00:00Z&until=2026-11-02T00:00:00Z",
            vec![],
        ),
        ("status=failed&until=2026-11-01T00:00:00Z", vec![]),
        (
            "unknown=ignored",
            vec![ids[3], ids[1], ids[5], ids[2], ids[0], ids[4]],
        ),
    ];

    for (query, expected) in cases {
        // Act
        let (total, found) = list_ids(&app, &format!("{ENTRIES}?{query}")).await;

        // Assert
        assert_eq!(found, expected, "{query}");
        assert_eq!(total, expected.len() as i64, "{query}: X-Total-Count");
    }
}

#[tokio::test]
async fn listing_refuses_bad_filters_and_pages_at_the_parameter() {
    let app = spawn_app().await;
    let cases = [
        ("status=ok", "status", "enum"),
        ("status=", "status", "enum"),
        ("since=yesterday", "since", "datetime_parsing"),
        ("until=2026-13-01T00:00:00Z", "until", "datetime_parsing"),
        ("limit=0", "limit", "greater_than_equal"),
        ("limit=1001", "limit", "less_than_equal"),
        ("limit=ten", "limit", "int_parsing"),
        ("skip=-1", "skip", "greater_than_equal"),
        ("skip=1.5", "skip", "int_parsing"),
    ];
    for (query, name, kind) in cases {
        let response = app.get(&format!("{ENTRIES}?{query}")).await;

        assert_422(response, json!(["query", name]), kind, query).await;
    }
}

#[tokio::test]
async fn listing_pages_with_skip_and_limit_and_counts_the_total() {
    // Arrange
    let app = spawn_app().await;
    let (_, _, ids) = seed_listing(&app).await;
    let newest_first = vec![ids[3], ids[1], ids[5], ids[2], ids[0], ids[4]];
    let cases = [
        ("limit=1", newest_first[..1].to_vec()),
        ("limit=2&skip=2", newest_first[2..4].to_vec()),
        ("skip=5", newest_first[5..].to_vec()),
        ("skip=6", vec![]),
        ("skip=1000000", vec![]),
        ("limit=1000", newest_first.clone()),
        ("skip=0&limit=6", newest_first.clone()),
    ];

    for (query, expected) in cases {
        // Act
        let (total, found) = list_ids(&app, &format!("{ENTRIES}?{query}")).await;

        // Assert
        assert_eq!(found, expected, "{query}");
        assert_eq!(
            total, 6,
            "{query}: X-Total-Count is the total, not the page"
        );
    }
    let (total, found) = list_ids(&app, &format!("{ENTRIES}?status=success&skip=3")).await;
    assert_eq!((total, found), (4, vec![ids[4]]));
}

#[tokio::test]
async fn listing_returns_100_entries_by_default() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let (status, body) = status_and_json(
        app.post_json(BATCH, &json!(reports_per_minute(job, 150)))
            .await,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let mut newest_first = ids_of(&body);
    newest_first.reverse();

    // Act
    let (total, first_page) = list_ids(&app, ENTRIES).await;
    let (_, second_page) = list_ids(&app, &format!("{ENTRIES}?skip=100")).await;

    // Assert
    assert_eq!(total, 150);
    assert_eq!(first_page, newest_first[..100]);
    assert_eq!(second_page, newest_first[100..]);
}

// ---- GET /api/v1/entries/by_job/{job_id} ---------------------------------------------------

#[tokio::test]
async fn by_job_lists_only_that_jobs_entries_newest_first() {
    // Arrange
    let app = spawn_app().await;
    let (a, b, ids) = seed_listing(&app).await;

    // Act
    let (total_a, found_a) = list_ids(&app, &format!("/api/v1/entries/by_job/{a}")).await;
    let (total_b, found_b) = list_ids(&app, &format!("/api/v1/entries/by_job/{b}")).await;

    // Assert
    assert_eq!(
        (total_a, found_a),
        (4, vec![ids[3], ids[5], ids[2], ids[0]])
    );
    assert_eq!((total_b, found_b), (2, vec![ids[1], ids[4]]));
}

#[tokio::test]
async fn by_job_of_a_job_without_entries_is_empty() {
    let app = spawn_app().await;
    seed_listing(&app).await;
    let lonely = job_id(&app).await;

    assert_eq!(
        list_ids(&app, &format!("/api/v1/entries/by_job/{lonely}")).await,
        (0, vec![])
    );
}

#[tokio::test]
async fn by_job_takes_the_same_filters_and_pages() {
    // Arrange
    let app = spawn_app().await;
    let (a, _, ids) = seed_listing(&app).await;
    let cases = [
        ("status=success", 3, vec![ids[3], ids[5], ids[0]]),
        ("status=failed", 1, vec![ids[2]]),
        (
            "since=2026-11-03T00:00:00Z",
            3,
            vec![ids[3], ids[5], ids[2]],
        ),
        (
            "until=2026-11-03T00:00:00Z",
            3,
            vec![ids[5], ids[2], ids[0]],
        ),
        (
            "since=2026-11-03T00:00:00Z&until=2026-11-04T00:00:00Z&status=success",
            1,
            vec![ids[5]],
        ),
        ("limit=1", 4, vec![ids[3]]),
        ("skip=1&limit=2", 4, vec![ids[5], ids[2]]),
        ("skip=4", 4, vec![]),
        ("status=success&skip=2", 3, vec![ids[0]]),
    ];

    for (query, total, expected) in cases {
        // Act
        let found = list_ids(&app, &format!("/api/v1/entries/by_job/{a}?{query}")).await;

        // Assert
        assert_eq!(found, (total, expected), "{query}");
    }
}

#[tokio::test]
async fn by_job_refuses_bad_filters_and_pages_at_the_parameter() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let cases = [
        ("status=lost", "status", "enum"),
        ("since=tomorrow", "since", "datetime_parsing"),
        ("until=x", "until", "datetime_parsing"),
        ("limit=0", "limit", "greater_than_equal"),
        ("limit=1001", "limit", "less_than_equal"),
        ("skip=-1", "skip", "greater_than_equal"),
    ];
    for (query, name, kind) in cases {
        let response = app
            .get(&format!("/api/v1/entries/by_job/{job}?{query}"))
            .await;

        assert_422(response, json!(["query", name]), kind, query).await;
    }
}

#[tokio::test]
async fn by_job_of_an_unknown_job_is_404() {
    let app = spawn_app().await;
    let job = job_id(&app).await;
    created(&app, &minimal_report(job)).await;

    for path in [
        format!("/api/v1/entries/by_job/{}", job + 1),
        "/api/v1/entries/by_job/0".to_owned(),
    ] {
        let (status, body) = status_and_json(app.get(&path).await).await;

        assert_eq!(status, 404, "{path}");
        assert_eq!(body, json!({"detail": "Job not found"}), "{path}");
    }
}

#[tokio::test]
async fn by_job_with_a_job_id_that_is_not_an_integer_is_422() {
    let app = spawn_app().await;
    for id in ["abc", "1.0", "one"] {
        let response = app.get(&format!("/api/v1/entries/by_job/{id}")).await;

        assert_422(response, json!(["path", "job_id"]), "int_parsing", id).await;
    }
}

// ---- paths, limits, durability -------------------------------------------------------------

#[tokio::test]
async fn every_entries_path_answers_with_and_without_a_trailing_slash() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let first = created(&app, &minimal_report(job)).await;
    let id = first["id"].as_i64().unwrap();

    // Act and Assert: every answer is direct, never a redirect
    for path in ["/api/v1/entries", "/api/v1/entries/"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        assert_eq!(total_count(&response), 1, "GET {path}");
    }
    for path in [
        format!("/api/v1/entries/{id}"),
        format!("/api/v1/entries/{id}/"),
    ] {
        let (status, body) = status_and_json(app.get(&path).await).await;
        assert_eq!((status, &body), (StatusCode::OK, &first), "GET {path}");
    }
    for path in [
        format!("/api/v1/entries/by_job/{job}"),
        format!("/api/v1/entries/by_job/{job}/"),
    ] {
        assert_eq!(list_ids(&app, &path).await, (1, vec![id]), "GET {path}");
    }
    let (status, _) = status_and_json(
        app.post_json(
            "/api/v1/entries",
            &json!({"expected_job_id": job, "status": "failed"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "POST /api/v1/entries");
    for (path, at) in [
        ("/api/v1/entries/batch", "2026-11-24T02:30:00Z"),
        ("/api/v1/entries/batch/", "2026-11-25T02:30:00Z"),
    ] {
        let (status, body) =
            status_and_json(app.post_json(path, &json!([full_report(job, at)])).await).await;
        assert_eq!(status, 201, "POST {path}: {body}");
    }
    assert_eq!(entry_count(&app).await, 4);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_stores_nothing() {
    // Arrange
    let app = spawn_app_with(|s| s.server.body_limit_bytes = 1024).await;
    let job = job_id(&app).await;
    let report = json!({
        "expected_job_id": job,
        "status": "failed",
        "error_message": "x".repeat(2048),
    });
    assert!(report.to_string().len() > 2048);

    // Act
    let single = app.post_json(ENTRIES, &report).await;
    let batch = app.post_json(BATCH, &json!([report])).await;

    // Assert
    for (what, response) in [("report", single), ("batch", batch)] {
        let (status, body) = status_and_json(response).await;
        assert_eq!(status, 413, "{what}: {body}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}: {body}"
        );
    }
    assert_eq!(entry_count(&app).await, 0);
    // Under the limit, the same server still takes reports.
    assert_eq!(
        app.post_json(ENTRIES, &minimal_report(job)).await.status(),
        201
    );
}

#[tokio::test]
async fn a_full_batch_of_normal_reports_fits_the_default_body_limit() {
    // Arrange
    let app = spawn_app().await;
    let job = job_id(&app).await;
    let items: Vec<Value> = reports_per_minute(job, 1000)
        .into_iter()
        .map(|r| with(r, json!({"error_message": "ok: pg_dump finished in 42s"})))
        .collect();
    let size = json!(items).to_string().len();
    assert!((150_000..1_048_576).contains(&size), "{size} bytes");

    // Act
    let (status, body) = status_and_json(app.post_json(BATCH, &json!(items)).await).await;

    // Assert
    assert_eq!(status, 201, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 1000);
    assert_eq!(entry_count(&app).await, 1000);
}

#[tokio::test]
async fn a_reported_entry_survives_a_restart() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kept.db").display());
    let first_url = url.clone();
    let app = spawn_app_with(move |s| s.database.url = first_url).await;
    let job = job_id(&app).await;
    let entry = created(&app, &full_report(job, "2026-11-24T02:30:00.123456Z")).await;
    let id = entry["id"].as_i64().unwrap();
    app.stop().await;

    // Act
    let app = spawn_app_with(move |s| s.database.url = url).await;
    let (status, read) = status_and_json(app.get(&format!("/api/v1/entries/{id}")).await).await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(read, entry);
    assert_eq!(list_ids(&app, ENTRIES).await, (1, vec![id]));
    let (status, again) = post_report(&app, &full_report(job, "2026-11-24T02:30:00.123456Z")).await;
    assert_eq!((status, again), (StatusCode::OK, entry));
}

#[tokio::test]
async fn an_empty_hash_is_no_hash_and_repeats_as_the_same_report() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    let body = |hash: Value| {
        json!({"expected_job_id": job["id"], "status": "success",
               "backup_timestamp_utc": "2026-11-24T02:31:00Z", "backup_hash": hash})
    };
    let first = app.post_json("/api/v1/entries/", &body(json!(""))).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["backup_hash"], Value::Null);
    let again = app.post_json("/api/v1/entries/", &body(Value::Null)).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
}

#[tokio::test]
async fn an_empty_timestamp_means_now_and_old_years_are_kept() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    let before = Utc::now();
    let response = app
        .post_json(
            ENTRIES,
            &json!({"expected_job_id": job["id"], "status": "success", "backup_timestamp_utc": ""}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let entry: Value = response.json().await.unwrap();
    let at: DateTime<Utc> = entry["backup_timestamp_utc"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(at >= before && at <= Utc::now(), "{at} is not now");

    let old = app
        .post_json(
            ENTRIES,
            &json!({"expected_job_id": job["id"], "status": "success", "backup_timestamp_utc": "1019-12-15T22:43:11.07Z"}),
        )
        .await;
    assert_eq!(old.status(), 201);
    assert_eq!(
        old.json::<Value>().await.unwrap()["backup_timestamp_utc"],
        "1019-12-15T22:43:11.070Z"
    );
}

#[tokio::test]
async fn a_cursor_pages_through_every_entry_once_in_order() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    let other = app.create_job(json!({"database_name": "other"})).await;
    let items: Vec<Value> = (0..250)
        .map(|i| {
            json!({"expected_job_id": if i % 5 == 0 { &other["id"] } else { &job["id"] },
                   "status": if i % 3 == 0 { "failed" } else { "success" },
                   // Ties on the timestamp are broken by id.
                   "backup_timestamp_utc": format!("2026-11-{:02}T02:30:00Z", 1 + i % 20)})
        })
        .collect();
    assert_eq!(app.post_json(BATCH, &json!(items)).await.status(), 201);
    let by_offset: Vec<Value> = app
        .get(&format!("{ENTRIES}?limit=1000"))
        .await
        .json()
        .await
        .unwrap();

    for (base, expected) in [
        (format!("{ENTRIES}?limit=100"), by_offset.clone()),
        (
            format!(
                "/api/v1/entries/by_job/{}?limit=30&status=failed",
                job["id"]
            ),
            app.get(&format!(
                "/api/v1/entries/by_job/{}?limit=1000&status=failed",
                job["id"]
            ))
            .await
            .json::<Vec<Value>>()
            .await
            .unwrap(),
        ),
    ] {
        let mut seen: Vec<Value> = Vec::new();
        let mut url = base.clone();
        loop {
            let response = app.get(&url).await;
            assert_eq!(response.status(), 200, "{url}");
            let total: usize = response.headers()["x-total-count"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(total, expected.len(), "the total ignores the cursor: {url}");
            let next = response
                .headers()
                .get("x-next-cursor")
                .map(|v| v.to_str().unwrap().to_owned());
            let page: Vec<Value> = response.json().await.unwrap();
            seen.extend(page);
            match next {
                Some(cursor) => url = format!("{base}&cursor={cursor}"),
                None => break,
            }
        }
        assert_eq!(
            seen, expected,
            "keyset pages equal the offset listing for {base}"
        );
    }
    let bad = app.get(&format!("{ENTRIES}?cursor=yesterday")).await;
    assert_422(
        bad,
        json!(["query", "cursor"]),
        "value_error",
        "a cursor that is not one",
    )
    .await;
}

#[tokio::test]
async fn totals_stay_exact_through_reports_filters_and_deletes() {
    let app = spawn_app().await;
    let a = app.create_job(json!({})).await;
    let b = app.create_job(json!({"database_name": "b"})).await;
    for (job, status, day) in [
        (&a, "success", 1),
        (&a, "failed", 2),
        (&b, "success", 3),
        (&b, "success", 4),
    ] {
        app.report(
            job["id"].as_i64().unwrap(),
            status,
            &format!("2026-11-{day:02}T02:30:00Z"),
        )
        .await;
    }
    let total = |path: String| {
        let app = &app;
        async move {
            app.get(&path).await.headers()["x-total-count"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(total(ENTRIES.to_owned()).await, "4");
    assert_eq!(total(format!("{ENTRIES}?status=success")).await, "3");
    assert_eq!(
        total(format!("/api/v1/entries/by_job/{}", a["id"])).await,
        "2"
    );
    assert_eq!(
        total(format!("/api/v1/entries/by_job/{}?status=failed", a["id"])).await,
        "1"
    );
    assert_eq!(
        total(format!(
            "{ENTRIES}?since=2026-11-02T00:00:00Z&status=success"
        ))
        .await,
        "2"
    );
    assert_eq!(
        app.delete(&format!("/api/v1/jobs/{}", b["id"]))
            .await
            .status(),
        200
    );
    assert_eq!(total(ENTRIES.to_owned()).await, "2");
    assert_eq!(total(format!("{ENTRIES}?status=success")).await, "1");
}
