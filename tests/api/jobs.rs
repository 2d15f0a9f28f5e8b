//! `/api/v1/jobs` over the real socket: create, read, list, update and delete expected
//! backup jobs, every way a request can be refused, and the rendered storage path.
#![allow(clippy::unwrap_used)]

use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::{assert_422, errors, spawn_app, total_count, valid_job, with, TestApp};

const JOBS: &str = "/api/v1/jobs/";

/// The four names of a job: trimmed, 1..=255 characters, required.
const NAMES: [&str; 4] = [
    "database_name",
    "agent_id_responsible",
    "company_name",
    "city",
];

/// The fields a client must send (the seed's fields).
const REQUIRED: [&str; 8] = [
    "database_name",
    "agent_id_responsible",
    "company_name",
    "city",
    "expected_hour_utc",
    "expected_minute_utc",
    "backup_frequency",
    "final_storage_path_template",
];

// ---------------------------------------------------------------------------------------
// Private helpers
// ---------------------------------------------------------------------------------------

/// `valid_job()` with `field` set to `value`, `null` included (unlike `with`, which removes).
fn job_with(field: &str, value: Value) -> Value {
    let mut body = valid_job();
    body[field] = value;
    body
}

/// A percent-encoded query value.
fn enc(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `GET /api/v1/jobs/{query}` (query empty or starting with `?`): the ids and the total.
async fn list(app: &TestApp, query: &str) -> (Vec<i64>, i64) {
    list_at(app, &format!("{JOBS}{query}")).await
}

/// A jobs listing at `path`: the ids and the total.
async fn list_at(app: &TestApp, path: &str) -> (Vec<i64>, i64) {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "GET {path}");
    let total = total_count(&response);
    let body: Value = response.json().await.unwrap();
    let ids = body
        .as_array()
        .unwrap_or_else(|| panic!("GET {path}: not an array: {body}"))
        .iter()
        .map(|job| job["id"].as_i64().unwrap())
        .collect();
    (ids, total)
}

/// How many jobs are stored, as the listing's `X-Total-Count` says.
async fn job_count(app: &TestApp) -> i64 {
    list(app, "").await.1
}

/// `GET /api/v1/jobs/{id}`, expected to succeed.
async fn fetch(app: &TestApp, id: i64) -> Value {
    let response = app.get(&format!("/api/v1/jobs/{id}")).await;
    assert_eq!(response.status(), 200, "GET job {id}");
    response.json().await.unwrap()
}

async fn status_and_body(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn send_json(app: &TestApp, method: &Method, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .request(method.clone(), app.url(path))
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Sends raw bytes with the given content type (None: no Content-Type header at all).
async fn send_raw(
    app: &TestApp,
    method: &Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut request = app.client.request(method.clone(), app.url(path)).body(body);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().await.unwrap()
}

/// Asserts that `actual` holds every field of `expected` with the same value.
fn assert_fields(actual: &Value, expected: &Value, case: &str) {
    for (key, value) in expected.as_object().unwrap() {
        assert_eq!(
            actual.get(key),
            Some(value),
            "{case}: field {key} in {actual}"
        );
    }
}

/// `job` without the fields named in `keys`.
fn without(job: &Value, keys: &[&str]) -> Value {
    let mut out = job.clone();
    let object = out.as_object_mut().unwrap();
    for key in keys {
        object.remove(*key);
    }
    out
}

/// An API datetime: RFC 3339 in UTC, written with a `Z`.
fn instant(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is not a string"));
    assert!(text.ends_with('Z'), "{text} does not end with Z");
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

/// The slot of a daily job at `hour:minute` whose window `[S − grace, S + 1 day − grace)`
/// holds `at`: computed here independently of the server.
fn daily_slot(at: DateTime<Utc>, hour: u32, minute: u32, grace: i64) -> DateTime<Utc> {
    let shifted = at + Duration::minutes(grace);
    let same_day = shifted
        .date_naive()
        .and_hms_opt(hour, minute, 0)
        .unwrap()
        .and_utc();
    if same_day <= shifted {
        same_day
    } else {
        same_day - Duration::days(1)
    }
}

// ---------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn create_job_returns_201_with_every_field_and_its_defaults() {
    // Arrange
    let app = spawn_app().await;
    let before = Utc::now();

    // Act
    let response = app.post_json(JOBS, &valid_job()).await;

    // Assert
    let after = Utc::now();
    let (status, job) = status_and_body(response).await;
    assert_eq!(status, 201, "{job}");
    assert_fields(
        &job,
        &json!({
            "id": 1,
            "database_name": "erp",
            "agent_id_responsible": "agent-lyon-1",
            "company_name": "acme",
            "city": "Lyon",
            "expected_hour_utc": 2,
            "expected_minute_utc": 30,
            "backup_frequency": "daily",
            "final_storage_path_template": "/backups/{company_name}/{city}/{database_name}/%Y-%m-%d.dump",
            "expected_weekday": 0,
            "expected_day_of_month": 1,
            "grace_minutes": 60,
            "is_active": true,
            "notify_emails": [],
        }),
        "created job",
    );
    let created_at = instant(&job["created_at"]);
    let updated_at = instant(&job["updated_at"]);
    assert_eq!(created_at, updated_at, "a new job was never updated");
    let slack = Duration::seconds(1);
    assert!(
        before - slack <= created_at && created_at <= after + slack,
        "created_at {created_at} is not the time of the request ({before} .. {after})"
    );
}

#[tokio::test]
async fn create_job_stores_what_it_returns() {
    // Arrange
    let app = spawn_app().await;
    let created = app.create_job(json!({})).await;

    // Act
    let fetched = fetch(&app, created["id"].as_i64().unwrap()).await;

    // Assert
    assert_eq!(fetched, created);
    assert_eq!(job_count(&app).await, 1);
}

#[tokio::test]
async fn create_job_gives_an_hourly_job_30_minutes_of_grace_by_default() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let hourly = app.create_job(json!({"backup_frequency": "hourly"})).await;
    let weekly = app.create_job(json!({"backup_frequency": "weekly"})).await;
    let monthly = app.create_job(json!({"backup_frequency": "monthly"})).await;

    // Assert
    assert_eq!(hourly["grace_minutes"], 30, "{hourly}");
    assert_eq!(weekly["grace_minutes"], 60, "{weekly}");
    assert_eq!(monthly["grace_minutes"], 60, "{monthly}");
}

#[tokio::test]
async fn create_job_trims_the_names_and_the_template() {
    // Arrange
    let app = spawn_app().await;
    let body = with(
        valid_job(),
        json!({
            "database_name": "  erp\t",
            "agent_id_responsible": "\nagent-lyon-1 ",
            "company_name": " acme  corp ",
            "city": "   Lyon",
            "final_storage_path_template": "  /b/{city}.dump  ",
        }),
    );

    // Act
    let (status, job) = status_and_body(app.post_json(JOBS, &body).await).await;

    // Assert
    assert_eq!(status, 201, "{job}");
    assert_fields(
        &job,
        &json!({
            "database_name": "erp",
            "agent_id_responsible": "agent-lyon-1",
            "company_name": "acme  corp",
            "city": "Lyon",
            "final_storage_path_template": "/b/{city}.dump",
        }),
        "trimmed names",
    );
    let (ids, total) = list(&app, "?company_name=acme++corp&city=Lyon").await;
    assert_eq!(
        (ids, total),
        (vec![1], 1),
        "the trimmed value is what is stored"
    );
}

#[tokio::test]
async fn create_job_stores_every_optional_field_it_is_given() {
    // Arrange
    let app = spawn_app().await;
    let body = with(
        valid_job(),
        json!({
            "backup_frequency": "weekly",
            "expected_weekday": 6,
            "expected_day_of_month": 31,
            "grace_minutes": 1440,
            "is_active": false,
            "notify_emails": ["ops@example.com", "dba+alerts@sub.example.org"],
        }),
    );

    // Act
    let (status, job) = status_and_body(app.post_json(JOBS, &body).await).await;

    // Assert
    assert_eq!(status, 201, "{job}");
    assert_fields(&job, &body, "every field given");
    assert_eq!(fetch(&app, 1).await, job);
}

#[tokio::test]
async fn create_job_treats_null_optional_fields_as_not_given() {
    // Arrange
    let app = spawn_app().await;
    let mut body = valid_job();
    for field in [
        "expected_weekday",
        "expected_day_of_month",
        "grace_minutes",
        "is_active",
        "notify_emails",
    ] {
        body[field] = Value::Null;
    }

    // Act
    let (status, job) = status_and_body(app.post_json(JOBS, &body).await).await;

    // Assert
    assert_eq!(status, 201, "{job}");
    assert_fields(
        &job,
        &json!({
            "expected_weekday": 0,
            "expected_day_of_month": 1,
            "grace_minutes": 60,
            "is_active": true,
            "notify_emails": [],
        }),
        "null optional fields",
    );
}

#[tokio::test]
async fn create_job_ignores_unknown_fields_and_the_ones_it_assigns() {
    // Arrange
    let app = spawn_app().await;
    let body = with(
        valid_job(),
        json!({
            "id": 999,
            "created_at": "2000-01-01T00:00:00Z",
            "updated_at": "2000-01-01T00:00:00Z",
            "colour": "blue",
        }),
    );

    // Act
    let (status, job) = status_and_body(app.post_json(JOBS, &body).await).await;

    // Assert
    assert_eq!(status, 201, "{job}");
    assert_eq!(job["id"], 1);
    assert_ne!(job["created_at"], "2000-01-01T00:00:00Z");
    assert_ne!(job["updated_at"], "2000-01-01T00:00:00Z");
    assert_eq!(job.get("colour"), None);
    let second = app.create_job(json!({})).await;
    assert_eq!(second["id"], 2);
}

#[tokio::test]
async fn create_job_accepts_values_at_the_edges_of_their_ranges() {
    // Arrange
    let app = spawn_app().await;
    let template = "/b/{database_name}/{company_name}/{city}/{agent_id_responsible}/{job_id}/%Y%m%d%H%M-100%%.gz";
    let fifty: Vec<String> = (0..50).map(|i| format!("ops{i}@example.com")).collect();
    #[rustfmt::skip]
    let cases: Vec<(&str, Value)> = vec![
        ("255-char database_name", json!({"database_name": "d".repeat(255)})),
        ("255-char agent", json!({"agent_id_responsible": "a".repeat(255)})),
        ("255 two-byte chars", json!({"company_name": "é".repeat(255)})),
        ("255-char city", json!({"city": "c".repeat(255)})),
        ("1024-char template", json!({"final_storage_path_template": format!("/{}", "t".repeat(1023))})),
        ("every placeholder", json!({"final_storage_path_template": template})),
        ("dots inside names", json!({"final_storage_path_template": "/b/db..v2/x...y/.hidden"})),
        ("one-char names", json!({"database_name": "d", "company_name": "c", "city": "x"})),
        ("hour 0 minute 0", json!({"expected_hour_utc": 0, "expected_minute_utc": 0})),
        ("hour 23 minute 59", json!({"expected_hour_utc": 23, "expected_minute_utc": 59})),
        ("weekday 0 day 1", json!({"expected_weekday": 0, "expected_day_of_month": 1})),
        ("weekday 6 day 31", json!({"expected_weekday": 6, "expected_day_of_month": 31})),
        ("grace 1", json!({"grace_minutes": 1})),
        ("hourly grace 59", json!({"backup_frequency": "hourly", "grace_minutes": 59})),
        ("daily grace 1439", json!({"grace_minutes": 1439})),
        ("weekly grace 1440", json!({"backup_frequency": "weekly", "grace_minutes": 1440})),
        ("monthly grace 1440", json!({"backup_frequency": "monthly", "grace_minutes": 1440})),
        ("no recipients", json!({"notify_emails": []})),
        ("50 recipients", json!({"notify_emails": fifty})),
    ];

    for (index, (case, changes)) in cases.into_iter().enumerate() {
        // Act
        let response = app
            .post_json(JOBS, &with(valid_job(), changes.clone()))
            .await;

        // Assert
        let (status, job) = status_and_body(response).await;
        assert_eq!(status, 201, "{case}: {job}");
        assert_fields(&job, &changes, case);
        assert_eq!(
            fetch(&app, job["id"].as_i64().unwrap()).await,
            job,
            "{case}"
        );
        let count = i64::try_from(index).unwrap() + 1;
        assert_eq!(job_count(&app).await, count, "{case}");
    }
}

#[tokio::test]
async fn create_job_accepts_whole_numbers_written_as_floats() {
    // Arrange
    let app = spawn_app().await;
    let body = with(
        valid_job(),
        json!({"expected_hour_utc": 4.0, "grace_minutes": 15.0}),
    );

    // Act
    let (status, job) = status_and_body(app.post_json(JOBS, &body).await).await;

    // Assert
    assert_eq!(status, 201, "{job}");
    assert_fields(
        &job,
        &json!({"expected_hour_utc": 4, "grace_minutes": 15}),
        "floats",
    );
}

/// Values refused wherever they are sent, on create and on update: (field, what, value,
/// type); the error is at `["body", field]`.
#[rustfmt::skip]
fn refused_values() -> Vec<(&'static str, &'static str, Value, &'static str)> {
    const HOUR: &str = "expected_hour_utc";
    const MINUTE: &str = "expected_minute_utc";
    const WEEKDAY: &str = "expected_weekday";
    const DAY: &str = "expected_day_of_month";
    const GRACE: &str = "grace_minutes";
    const FREQUENCY: &str = "backup_frequency";
    const TEMPLATE: &str = "final_storage_path_template";
    const ACTIVE: &str = "is_active";
    const EMAILS: &str = "notify_emails";
    let mut cases = Vec::new();
    for field in NAMES {
        cases.extend([
            (field, "empty", json!(""), "string_too_short"),
            (field, "whitespace only", json!(" \t\n "), "string_too_short"),
            (field, "256 characters", json!("n".repeat(256)), "string_too_long"),
            (field, "256 two-byte chars", json!("é".repeat(256)), "string_too_long"),
            (field, "a number", json!(5), "string_type"),
            (field, "a boolean", json!(true), "string_type"),
            (field, "a list", json!(["erp"]), "string_type"),
            (field, "an object", json!({"name": "erp"}), "string_type"),
            (field, "null", Value::Null, "string_type"),
        ]);
    }
    let long_template = format!("/{}", "t".repeat(1024));
    cases.extend([
        (TEMPLATE, "empty", json!(""), "string_too_short"),
        (TEMPLATE, "whitespace only", json!("   "), "string_too_short"),
        (TEMPLATE, "1025 characters", json!(long_template), "string_too_long"),
        (TEMPLATE, "a number", json!(3), "string_type"),
        (TEMPLATE, "null", Value::Null, "string_type"),
        (TEMPLATE, "unknown placeholder", json!("/b/{database}"), "value_error"),
        (TEMPLATE, "empty placeholder", json!("/b/{}.dump"), "value_error"),
        (TEMPLATE, "unclosed brace", json!("/b/{city.dump"), "value_error"),
        (TEMPLATE, "nested brace", json!("/b/{ci{ty}}.dump"), "value_error"),
        (TEMPLATE, "unopened brace", json!("/b/city}.dump"), "value_error"),
        (TEMPLATE, ".. segment", json!("/b/../etc/passwd"), "value_error"),
        (TEMPLATE, "leading .. segment", json!("../b.dump"), "value_error"),
        (TEMPLATE, "backslash .. segment", json!("C:\\b\\..\\x"), "value_error"),
        (TEMPLATE, "unknown %q", json!("/b/%Y/%q.dump"), "value_error"),
        (TEMPLATE, "lone trailing %", json!("/b/50%"), "value_error"),
        (HOUR, "24", json!(24), "less_than_equal"),
        (HOUR, "-1", json!(-1), "greater_than_equal"),
        (HOUR, "i64::MIN", json!(i64::MIN), "greater_than_equal"),
        (HOUR, "2.5", json!(2.5), "int_from_float"),
        (HOUR, "a list", json!([2]), "int_type"),
        (HOUR, "an object", json!({"h": 2}), "int_type"),
        (HOUR, "null", Value::Null, "int_type"),
        (MINUTE, "60", json!(60), "less_than_equal"),
        (MINUTE, "-1", json!(-1), "greater_than_equal"),
        (MINUTE, "0.001", json!(0.001), "int_from_float"),
        (MINUTE, "null", Value::Null, "int_type"),
        (WEEKDAY, "7", json!(7), "less_than_equal"),
        (WEEKDAY, "-1", json!(-1), "greater_than_equal"),
        (WEEKDAY, "1.5", json!(1.5), "int_from_float"),
        (WEEKDAY, "a list", json!([]), "int_type"),
        (DAY, "0", json!(0), "greater_than_equal"),
        (DAY, "32", json!(32), "less_than_equal"),
        (DAY, "15.5", json!(15.5), "int_from_float"),
        (GRACE, "0", json!(0), "greater_than_equal"),
        (GRACE, "-5", json!(-5), "greater_than_equal"),
        (GRACE, "1441", json!(1441), "less_than_equal"),
        (GRACE, "10080", json!(10080), "less_than_equal"),
        (GRACE, "30.5", json!(30.5), "int_from_float"),
        (GRACE, "an object", json!({}), "int_type"),
        (GRACE, "a list", json!([60]), "int_type"),
        (GRACE, "1440 on a daily job", json!(1440), "value_error"),
        (FREQUENCY, "unknown", json!("yearly"), "enum"),
        (FREQUENCY, "capitalised", json!("Daily"), "enum"),
        (FREQUENCY, "with a trailing space", json!("daily "), "enum"),
        (FREQUENCY, "empty", json!(""), "enum"),
        (FREQUENCY, "a number", json!(1), "string_type"),
        (FREQUENCY, "null", Value::Null, "string_type"),
        (ACTIVE, "a list", json!([true]), "bool_type"),
        (ACTIVE, "an object", json!({}), "bool_type"),
        (EMAILS, "a string", json!("ops@example.com"), "list_type"),
        (EMAILS, "an object", json!({"to": "ops@example.com"}), "list_type"),
    ]);
    cases
}

/// Address lists refused on create and on update: (what, list, index of the bad item, type);
/// the error is at `["body", "notify_emails", index]`.
#[rustfmt::skip]
fn refused_email_lists() -> [(&'static str, Value, usize, &'static str); 6] {
    [
        ("a malformed second address", json!(["ops@example.com", "nope"]), 1, "value_error"),
        ("an empty address", json!(["", "ops@example.com"]), 0, "value_error"),
        ("a domain without a dot", json!(["ops@localhost"]), 0, "value_error"),
        ("a display name", json!(["Ops <ops@example.com>"]), 0, "value_error"),
        ("a space inside", json!(["o ps@example.com"]), 0, "value_error"),
        ("a number", json!(["ops@example.com", 42]), 1, "string_type"),
    ]
}

/// Bodies that are JSON but not an object.
fn non_object_bodies() -> [(&'static str, Value); 5] {
    [
        ("an array", json!([valid_job()])),
        ("an empty array", json!([])),
        ("a string", json!("erp")),
        ("a number", json!(42)),
        ("a boolean", json!(true)),
    ]
}

#[tokio::test]
async fn create_job_refuses_invalid_fields_and_writes_nothing() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;
    let mut cases: Vec<(String, Value, Value, &str)> = Vec::new();
    for field in REQUIRED {
        let body = with(valid_job(), json!({ field: null }));
        cases.push((
            format!("{field} missing"),
            body,
            json!(["body", field]),
            "missing",
        ));
    }
    for (field, what, value, kind) in refused_values() {
        let body = job_with(field, value);
        cases.push((
            format!("{field} {what}"),
            body,
            json!(["body", field]),
            kind,
        ));
    }
    for (what, list, index, kind) in refused_email_lists() {
        let body = job_with("notify_emails", list);
        let loc = json!(["body", "notify_emails", index]);
        cases.push((format!("notify_emails with {what}"), body, loc, kind));
    }
    for (what, body) in non_object_bodies() {
        let case = format!("a body that is {what}");
        cases.push((case, body, json!(["body"]), "model_attributes_type"));
    }
    cases.push((
        "grace 60 on an hourly job".to_owned(),
        with(
            valid_job(),
            json!({"backup_frequency": "hourly", "grace_minutes": 60}),
        ),
        json!(["body", "grace_minutes"]),
        "value_error",
    ));
    let addresses: Vec<String> = (0..51).map(|i| format!("ops{i}@example.com")).collect();
    cases.push((
        "51 recipients".to_owned(),
        job_with("notify_emails", json!(addresses)),
        json!(["body", "notify_emails"]),
        "too_long",
    ));
    cases.push((
        "an empty object".to_owned(),
        json!({}),
        json!(["body", "database_name"]),
        "missing",
    ));

    for (case, body, loc, kind) in cases {
        // Act
        let response = app.post_json(JOBS, &body).await;

        // Assert
        assert_422(response, loc, kind, &case).await;
        assert_eq!(
            job_count(&app).await,
            1,
            "{case}: a refused create wrote a job"
        );
    }
}

#[tokio::test]
async fn create_job_reports_a_missing_field_for_each_one_missing_from_an_empty_object() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let (status, body) = status_and_body(app.post_json(JOBS, &json!({})).await).await;

    // Assert
    assert_eq!(status, 422, "{body}");
    let mut found = errors(&body);
    found.sort_by_key(|(loc, _)| loc.to_string());
    let mut expected: Vec<(Value, String)> = REQUIRED
        .iter()
        .map(|field| (json!(["body", field]), "missing".to_owned()))
        .collect();
    expected.sort_by_key(|(loc, _)| loc.to_string());
    assert_eq!(found, expected);
}

#[tokio::test]
async fn create_job_reports_every_error_at_once() {
    // Arrange
    let app = spawn_app().await;
    let body = with(
        valid_job(),
        json!({
            "database_name": null,
            "city": "   ",
            "expected_hour_utc": 24,
            "expected_minute_utc": 7.5,
            "backup_frequency": "yearly",
            "final_storage_path_template": "/b/{nope}",
            "is_active": "yes please",
            "notify_emails": ["ops@example.com", "nope"],
        }),
    );

    // Act
    let (status, response) = status_and_body(app.post_json(JOBS, &body).await).await;

    // Assert
    assert_eq!(status, 422, "{response}");
    let mut found = errors(&response);
    found.sort_by_key(|(loc, _)| loc.to_string());
    let mut expected: Vec<(Value, String)> = [
        (json!(["body", "database_name"]), "missing"),
        (json!(["body", "city"]), "string_too_short"),
        (json!(["body", "expected_hour_utc"]), "less_than_equal"),
        (json!(["body", "expected_minute_utc"]), "int_from_float"),
        (json!(["body", "backup_frequency"]), "enum"),
        (
            json!(["body", "final_storage_path_template"]),
            "value_error",
        ),
        (json!(["body", "is_active"]), "bool_type"),
        (json!(["body", "notify_emails", 1]), "value_error"),
    ]
    .into_iter()
    .map(|(loc, kind)| (loc, kind.to_owned()))
    .collect();
    expected.sort_by_key(|(loc, _)| loc.to_string());
    assert_eq!(found, expected);
    for item in response["detail"].as_array().unwrap() {
        assert!(
            item["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "every error says why: {item}"
        );
    }
    assert_eq!(job_count(&app).await, 0);
}

#[tokio::test]
async fn create_job_explains_refusals_in_fastapi_words() {
    // Arrange
    let app = spawn_app().await;
    let cases = [
        (
            job_with("expected_hour_utc", json!(24)),
            "Input should be less than or equal to 23",
        ),
        (
            job_with("expected_day_of_month", json!(0)),
            "Input should be greater than or equal to 1",
        ),
        (
            job_with("backup_frequency", json!("yearly")),
            "Input should be 'hourly', 'daily', 'weekly' or 'monthly'",
        ),
        (
            job_with("city", json!("")),
            "String should have at least 1 character",
        ),
        (
            job_with("city", json!("c".repeat(256))),
            "String should have at most 255 characters",
        ),
        (
            with(valid_job(), json!({"database_name": null})),
            "Field required",
        ),
    ];

    for (body, msg) in cases {
        // Act
        let (status, response) = status_and_body(app.post_json(JOBS, &body).await).await;

        // Assert
        assert_eq!(status, 422, "{response}");
        assert_eq!(response["detail"][0]["msg"], msg, "{response}");
    }
}

#[tokio::test]
async fn create_job_refuses_malformed_json_and_writes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let deep = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let cases: Vec<(&str, Vec<u8>, Option<i64>)> = vec![
        ("a trailing comma", br#"{"a": 1,}"#.to_vec(), Some(8)),
        ("a bad value on line 2", b"{\n  \"a\": x}".to_vec(), Some(9)),
        (
            "a truncated object",
            br#"{"database_name": "erp","#.to_vec(),
            Some(24),
        ),
        ("single quotes", b"{'database_name': 'erp'}".to_vec(), None),
        ("two objects", b"{} {}".to_vec(), None),
        ("a bare word", b"job".to_vec(), None),
        ("NaN", br#"{"expected_hour_utc": NaN}"#.to_vec(), None),
        (
            "a lone surrogate",
            br#"{"database_name": "\ud800"}"#.to_vec(),
            None,
        ),
        (
            "invalid UTF-8",
            b"{\"database_name\": \"\xff\xfe\"}".to_vec(),
            None,
        ),
        ("1000 nested arrays", deep.into_bytes(), None),
    ];

    for (case, body, position) in cases {
        // Act
        let response = send_raw(&app, &Method::POST, JOBS, Some("application/json"), body).await;

        // Assert
        let (status, response) = status_and_body(response).await;
        assert_eq!(status, 422, "{case}: {response}");
        let found = errors(&response);
        assert_eq!(found.len(), 1, "{case}: {response}");
        let (loc, kind) = &found[0];
        assert_eq!(kind, "json_invalid", "{case}: {response}");
        assert_eq!(loc[0], "body", "{case}: {response}");
        assert!(
            loc[1].is_u64(),
            "{case}: the position is a number: {response}"
        );
        if let Some(position) = position {
            assert_eq!(loc[1], position, "{case}: {response}");
        }
        assert_eq!(
            job_count(&app).await,
            0,
            "{case}: a refused create wrote a job"
        );
    }
}

#[tokio::test]
async fn create_job_refuses_a_body_that_is_not_declared_as_json() {
    // Arrange
    let app = spawn_app().await;
    let body = serde_json::to_vec(&valid_job()).unwrap();
    let cases = [
        ("no Content-Type", None),
        ("text/plain", Some("text/plain")),
        ("a form", Some("application/x-www-form-urlencoded")),
        ("xml", Some("application/xml")),
    ];

    for (case, content_type) in cases {
        // Act
        let response = send_raw(&app, &Method::POST, JOBS, content_type, body.clone()).await;

        // Assert
        let (status, response) = status_and_body(response).await;
        assert_eq!(status, 422, "{case}: {response}");
        assert_eq!(
            response["detail"][0]["loc"],
            json!(["body"]),
            "{case}: {response}"
        );
        assert!(
            response["detail"][0]["msg"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{case}: {response}"
        );
        assert_eq!(
            job_count(&app).await,
            0,
            "{case}: a refused create wrote a job"
        );
    }
}

#[tokio::test]
async fn create_job_accepts_json_content_types_with_parameters_or_a_suffix() {
    // Arrange
    let app = spawn_app().await;
    let body = serde_json::to_vec(&valid_job()).unwrap();
    let cases = [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.backup-monitor+json",
    ];

    for (index, content_type) in cases.into_iter().enumerate() {
        // Act
        let response = send_raw(&app, &Method::POST, JOBS, Some(content_type), body.clone()).await;

        // Assert
        let (status, job) = status_and_body(response).await;
        assert_eq!(status, 201, "{content_type}: {job}");
        assert_eq!(job["id"], index + 1, "{content_type}: {job}");
    }
}

#[tokio::test]
async fn create_job_refuses_an_empty_body() {
    // Arrange
    let app = spawn_app().await;

    for (case, body) in [("empty", ""), ("whitespace only", " \r\n\t ")] {
        // Act
        let response = send_raw(
            &app,
            &Method::POST,
            JOBS,
            Some("application/json"),
            body.as_bytes().to_vec(),
        )
        .await;

        // Assert
        assert_422(response, json!(["body"]), "missing", case).await;
        assert_eq!(
            job_count(&app).await,
            0,
            "{case}: a refused create wrote a job"
        );
    }
}

#[tokio::test]
async fn create_job_refuses_a_body_over_the_size_limit_with_413() {
    // Arrange
    let app = spawn_app().await;
    let body = job_with("padding", json!("x".repeat(1_100_000)));

    // Act
    let (status, response) = status_and_body(app.post_json(JOBS, &body).await).await;

    // Assert
    assert_eq!(status, 413, "{response}");
    assert_eq!(response, json!({"detail": "Request body too large"}));
    assert_eq!(job_count(&app).await, 0);
}

#[tokio::test]
async fn create_job_gives_concurrent_requests_distinct_ids() {
    // Arrange
    let app = spawn_app().await;
    let mut tasks = tokio::task::JoinSet::new();

    // Act
    for i in 0..40 {
        let body = job_with("database_name", json!(format!("db-{i}")));
        let request = app.client.post(app.url(JOBS)).json(&body);
        tasks.spawn(async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        });
    }

    // Assert
    let mut ids = Vec::new();
    while let Some(result) = tasks.join_next().await {
        let (status, job) = result.unwrap();
        assert_eq!(status, 201, "{job}");
        ids.push(job["id"].as_i64().unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=40).collect::<Vec<i64>>());
    assert_eq!(job_count(&app).await, 40);
}

// ---------------------------------------------------------------------------------------
// Get one
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn get_job_returns_the_job_with_that_id() {
    // Arrange
    let app = spawn_app().await;
    let first = app.create_job(json!({})).await;
    let second = app
        .create_job(json!({"database_name": "crm", "city": "Paris"}))
        .await;

    // Act
    let response = app.get("/api/v1/jobs/2").await;

    // Assert
    let (status, job) = status_and_body(response).await;
    assert_eq!(status, 200);
    assert_eq!(job, second);
    assert_ne!(job, first);
}

#[tokio::test]
async fn get_job_answers_404_for_an_unknown_id() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;

    for id in ["2", "0", "-1", "999999", "9223372036854775807"] {
        // Act
        let response = app.get(&format!("/api/v1/jobs/{id}")).await;

        // Assert
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, 404, "job {id}: {body}");
        assert_eq!(body, json!({"detail": "Job not found"}), "job {id}");
    }
}

#[tokio::test]
async fn job_routes_refuse_an_id_that_is_not_an_integer() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;
    let ids = [
        "abc",
        "1.5",
        "1e3",
        "0x10",
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999",
        "%27%3B%20DROP%20TABLE%20jobs",
    ];
    let methods = [Method::GET, Method::PATCH, Method::PUT, Method::DELETE];

    for id in ids {
        for method in &methods {
            // Act
            let response = send_json(
                &app,
                method,
                &format!("/api/v1/jobs/{id}"),
                &json!({"city": "Paris"}),
            )
            .await;

            // Assert
            let case = format!("{method} /api/v1/jobs/{id}");
            assert_422(response, json!(["path", "job_id"]), "int_parsing", &case).await;
        }
        let response = app.get(&format!("/api/v1/jobs/{id}/expected_path")).await;
        let case = format!("expected_path of {id}");
        assert_422(response, json!(["path", "job_id"]), "int_parsing", &case).await;
    }
    assert_eq!(fetch(&app, 1).await["city"], "Lyon", "nothing was changed");
    assert_eq!(job_count(&app).await, 1, "nothing was deleted");
}

// ---------------------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn list_jobs_is_an_empty_array_with_a_zero_total_when_there_are_none() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app.get(JOBS).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(total_count(&response), 0);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn list_jobs_returns_every_job_in_full_ordered_by_id() {
    // Arrange
    let app = spawn_app().await;
    let mut created = Vec::new();
    for name in ["zeta", "alpha", "mid"] {
        created.push(app.create_job(json!({"database_name": name})).await);
    }
    // An update must not move a job in the listing.
    let response = app
        .patch_json("/api/v1/jobs/1", &json!({"company_name": "aaa"}))
        .await;
    assert_eq!(response.status(), 200);
    created[0] = response.json().await.unwrap();

    // Act
    let response = app.get(JOBS).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(total_count(&response), 3);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, Value::Array(created));
}

/// Six jobs with overlapping companies, cities, agents and activity.
async fn filter_fixture(app: &TestApp) {
    let jobs = [
        json!({"company_name": "acme", "city": "Lyon", "agent_id_responsible": "agent-1"}),
        json!({"company_name": "acme", "city": "Paris", "agent_id_responsible": "agent-2"}),
        json!({"company_name": "globex", "city": "Lyon", "agent_id_responsible": "agent-1", "is_active": false}),
        json!({"company_name": "Acme", "city": "Lyon", "agent_id_responsible": "agent-1"}),
        json!({"company_name": "acme corp", "city": "lyon", "agent_id_responsible": "agent-10"}),
        json!({"company_name": "acme", "city": "Lyon", "agent_id_responsible": "agent-2", "is_active": false}),
    ];
    for job in jobs {
        app.create_job(job).await;
    }
}

#[tokio::test]
async fn list_jobs_filters_by_exact_company_city_agent_and_activity() {
    // Arrange
    let app = spawn_app().await;
    filter_fixture(&app).await;
    let cases: [(&str, Vec<i64>); 20] = [
        ("", vec![1, 2, 3, 4, 5, 6]),
        ("?company_name=acme", vec![1, 2, 6]),
        ("?company_name=Acme", vec![4]),
        ("?company_name=acme+corp", vec![5]),
        ("?company_name=acm", vec![]),
        ("?company_name=acme%20", vec![]),
        ("?company_name=", vec![]),
        ("?city=Lyon", vec![1, 3, 4, 6]),
        ("?city=lyon", vec![5]),
        ("?agent_id_responsible=agent-1", vec![1, 3, 4]),
        ("?agent_id_responsible=agent-2", vec![2, 6]),
        ("?is_active=true", vec![1, 2, 4, 5]),
        ("?is_active=false", vec![3, 6]),
        ("?is_active=1", vec![1, 2, 4, 5]),
        ("?is_active=False", vec![3, 6]),
        ("?company_name=acme&city=Lyon", vec![1, 6]),
        ("?company_name=acme&city=Lyon&is_active=true", vec![1]),
        ("?company_name=acme&city=Lyon&is_active=false", vec![6]),
        (
            "?city=Lyon&agent_id_responsible=agent-1&is_active=true",
            vec![1, 4],
        ),
        ("?company_name=globex&is_active=true", vec![]),
    ];

    for (query, expected) in cases {
        // Act
        let (ids, total) = list(&app, query).await;

        // Assert
        let count = i64::try_from(expected.len()).unwrap();
        assert_eq!(ids, expected, "ids of {query}");
        assert_eq!(total, count, "X-Total-Count of {query}");
    }
}

#[tokio::test]
async fn list_jobs_counts_the_total_after_filters_not_the_page() {
    // Arrange
    let app = spawn_app().await;
    filter_fixture(&app).await;

    // Act
    let (ids, total) = list(&app, "?city=Lyon&limit=1&skip=1").await;

    // Assert
    assert_eq!(ids, vec![3]);
    assert_eq!(total, 4);
}

#[tokio::test]
async fn list_jobs_pages_with_skip_and_limit() {
    // Arrange
    let app = spawn_app().await;
    for _ in 0..5 {
        app.create_job(json!({})).await;
    }
    let cases: [(&str, Vec<i64>); 9] = [
        ("?skip=0", vec![1, 2, 3, 4, 5]),
        ("?skip=1&limit=2", vec![2, 3]),
        ("?limit=1", vec![1]),
        ("?skip=4&limit=1", vec![5]),
        ("?skip=3", vec![4, 5]),
        ("?skip=5", vec![]),
        ("?skip=100&limit=10", vec![]),
        ("?skip=9223372036854775807", vec![]),
        ("?limit=1000", vec![1, 2, 3, 4, 5]),
    ];

    for (query, expected) in cases {
        // Act
        let (ids, total) = list(&app, query).await;

        // Assert
        assert_eq!(ids, expected, "ids of {query}");
        assert_eq!(total, 5, "X-Total-Count of {query}");
    }
}

#[tokio::test]
async fn list_jobs_returns_100_by_default_and_up_to_1000_on_request() {
    // Arrange
    let app = spawn_app().await;
    for _ in 0..101 {
        app.create_job(json!({})).await;
    }

    // Act
    let (default_page, default_total) = list(&app, "").await;
    let (large_page, large_total) = list(&app, "?limit=1000").await;

    // Assert
    assert_eq!(default_page, (1..=100).collect::<Vec<i64>>());
    assert_eq!(default_total, 101);
    assert_eq!(large_page, (1..=101).collect::<Vec<i64>>());
    assert_eq!(large_total, 101);
}

#[tokio::test]
async fn list_jobs_refuses_invalid_query_values() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;
    let cases = [
        ("?limit=0", "limit", "greater_than_equal"),
        ("?limit=-1", "limit", "greater_than_equal"),
        ("?limit=1001", "limit", "less_than_equal"),
        ("?limit=abc", "limit", "int_parsing"),
        ("?limit=", "limit", "int_parsing"),
        ("?limit=2.5", "limit", "int_parsing"),
        ("?limit=99999999999999999999", "limit", "int_parsing"),
        ("?skip=-1", "skip", "greater_than_equal"),
        ("?skip=abc", "skip", "int_parsing"),
        ("?skip=1e3", "skip", "int_parsing"),
        ("?is_active=maybe", "is_active", "bool_parsing"),
        ("?is_active=", "is_active", "bool_parsing"),
        ("?is_active=2", "is_active", "bool_parsing"),
    ];

    for (query, name, kind) in cases {
        // Act
        let response = app.get(&format!("{JOBS}{query}")).await;

        // Assert
        assert_422(response, json!(["query", name]), kind, query).await;
    }
}

#[tokio::test]
async fn list_jobs_reports_every_bad_query_value_at_once() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let response = app
        .get("/api/v1/jobs/?skip=-1&limit=0&is_active=maybe")
        .await;

    // Assert
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 422, "{body}");
    let mut found = errors(&body);
    found.sort_by_key(|(loc, _)| loc.to_string());
    assert_eq!(
        found,
        vec![
            (json!(["query", "is_active"]), "bool_parsing".to_owned()),
            (json!(["query", "limit"]), "greater_than_equal".to_owned()),
            (json!(["query", "skip"]), "greater_than_equal".to_owned()),
        ]
    );
}

#[tokio::test]
async fn list_jobs_ignores_unknown_query_parameters() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;
    app.create_job(json!({"company_name": "globex"})).await;

    // Act
    let (ids, total) = list(&app, "?colour=blue&company=globex&database_name=nope").await;

    // Assert
    assert_eq!((ids, total), (vec![1, 2], 2));
}

// ---------------------------------------------------------------------------------------
// Update (PATCH and PUT)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn update_job_changes_only_the_fields_it_is_given() {
    // Arrange
    let app = spawn_app().await;
    let cases: [(&str, Value); 13] = [
        ("database_name", json!("crm")),
        ("agent_id_responsible", json!("agent-paris-2")),
        ("company_name", json!("globex")),
        ("city", json!("Paris")),
        ("expected_hour_utc", json!(23)),
        ("expected_minute_utc", json!(0)),
        ("backup_frequency", json!("weekly")),
        (
            "final_storage_path_template",
            json!("/x/{job_id}/%H%M.dump"),
        ),
        ("expected_weekday", json!(6)),
        ("expected_day_of_month", json!(31)),
        ("grace_minutes", json!(1)),
        ("is_active", json!(false)),
        (
            "notify_emails",
            json!(["ops@example.com", "dba@example.org"]),
        ),
    ];

    for method in [Method::PATCH, Method::PUT] {
        for (field, value) in &cases {
            let case = format!("{method} {field}");
            let before = app
                .create_job(json!({"notify_emails": ["first@example.com"]}))
                .await;
            let id = before["id"].as_i64().unwrap();

            // Act
            let response = send_json(
                &app,
                &method,
                &format!("/api/v1/jobs/{id}"),
                &json!({ *field: value }),
            )
            .await;

            // Assert
            let (status, after) = status_and_body(response).await;
            assert_eq!(status, 200, "{case}: {after}");
            let mut expected = before.clone();
            expected[*field] = value.clone();
            // The schedule in words follows the fields it describes.
            assert_eq!(
                without(
                    &after,
                    &["updated_at", "schedule_description", "next_slots_utc"]
                ),
                without(
                    &expected,
                    &["updated_at", "schedule_description", "next_slots_utc"]
                ),
                "{case}: only {field} changes"
            );
            assert_eq!(fetch(&app, id).await, after, "{case}: stored as returned");
        }
    }
}

#[tokio::test]
async fn update_job_changes_several_fields_at_once() {
    // Arrange
    let app = spawn_app().await;
    let before = app.create_job(json!({})).await;
    let changes = json!({
        "database_name": "crm",
        "city": "Paris",
        "backup_frequency": "monthly",
        "expected_day_of_month": 31,
        "expected_hour_utc": 4,
        "grace_minutes": 1440,
        "is_active": false,
    });

    for method in [Method::PATCH, Method::PUT] {
        // Act
        let response = send_json(&app, &method, "/api/v1/jobs/1", &changes).await;

        // Assert
        let (status, after) = status_and_body(response).await;
        assert_eq!(status, 200, "{method}: {after}");
        let mut expected = before.clone();
        for (field, value) in changes.as_object().unwrap() {
            expected[field] = value.clone();
        }
        assert_eq!(
            without(
                &after,
                &["updated_at", "schedule_description", "next_slots_utc"]
            ),
            without(
                &expected,
                &["updated_at", "schedule_description", "next_slots_utc"]
            ),
            "{method}"
        );
        assert_eq!(
            after["schedule_description"],
            "on day 31 of the month (its last day in shorter months) at 04:30 UTC"
        );
        assert_eq!(fetch(&app, 1).await, after, "{method}: stored as returned");
    }
}

#[tokio::test]
async fn update_job_moves_updated_at_and_keeps_created_at() {
    // Arrange
    let app = spawn_app().await;
    let created = app.create_job(json!({})).await;
    let mut last = instant(&created["updated_at"]);

    for method in [Method::PATCH, Method::PUT] {
        // Act
        let response = send_json(&app, &method, "/api/v1/jobs/1", &json!({"city": "Paris"})).await;

        // Assert
        let (status, job) = status_and_body(response).await;
        assert_eq!(status, 200, "{method}: {job}");
        assert_eq!(job["created_at"], created["created_at"], "{method}");
        let updated_at = instant(&job["updated_at"]);
        assert!(
            updated_at > last,
            "{method}: updated_at {updated_at} did not move past {last}"
        );
        assert!(
            updated_at <= Utc::now() + Duration::seconds(1),
            "{method}: updated_at {updated_at} is in the future"
        );
        last = updated_at;
    }
}

#[tokio::test]
async fn update_job_trims_names_as_create_does() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;

    // Act
    let response = app
        .patch_json(
            "/api/v1/jobs/1",
            &json!({"city": "  Paris \t", "final_storage_path_template": " /b/{city} "}),
        )
        .await;

    // Assert
    let (status, job) = status_and_body(response).await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["city"], "Paris");
    assert_eq!(job["final_storage_path_template"], "/b/{city}");
}

#[tokio::test]
async fn update_job_with_an_empty_object_changes_no_field() {
    // Arrange
    let app = spawn_app().await;
    let before = app
        .create_job(json!({"notify_emails": ["ops@example.com"], "is_active": false}))
        .await;

    for method in [Method::PATCH, Method::PUT] {
        // Act
        let response = send_json(&app, &method, "/api/v1/jobs/1", &json!({})).await;

        // Assert
        let (status, after) = status_and_body(response).await;
        assert_eq!(status, 200, "{method}: {after}");
        assert_eq!(
            without(&after, &["updated_at"]),
            without(&before, &["updated_at"]),
            "{method}"
        );
    }
}

#[tokio::test]
async fn update_job_ignores_the_id_and_timestamps_in_the_body() {
    // Arrange
    let app = spawn_app().await;
    let before = app.create_job(json!({})).await;
    app.create_job(json!({})).await;

    // Act
    let response = app
        .patch_json(
            "/api/v1/jobs/1",
            &json!({
                "id": 2,
                "created_at": "2000-01-01T00:00:00Z",
                "updated_at": "2000-01-01T00:00:00Z",
                "colour": "blue",
                "city": "Paris",
            }),
        )
        .await;

    // Assert
    let (status, after) = status_and_body(response).await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["id"], 1);
    assert_eq!(after["city"], "Paris");
    assert_eq!(after["created_at"], before["created_at"]);
    assert_ne!(after["updated_at"], "2000-01-01T00:00:00Z");
    assert_eq!(after.get("colour"), None);
    assert_eq!(fetch(&app, 2).await["city"], "Lyon", "job 2 is untouched");
}

#[tokio::test]
async fn update_job_refuses_invalid_values_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let original = app.create_job(json!({})).await;
    let mut cases: Vec<(String, Value, Value, &str)> = Vec::new();
    for (field, what, value, kind) in refused_values() {
        if kind == "value_error" && field == "grace_minutes" {
            // Against the stored frequency, not the body: a 409, tested on its own.
            continue;
        }
        let body = json!({ field: value });
        cases.push((
            format!("{field} {what}"),
            body,
            json!(["body", field]),
            kind,
        ));
    }
    // Optional on create, but a stored job always has a value: `null` cannot replace it.
    for (field, kind) in [
        ("grace_minutes", "int_type"),
        ("is_active", "bool_type"),
        ("notify_emails", "list_type"),
    ] {
        let body = json!({ field: null });
        cases.push((format!("{field} null"), body, json!(["body", field]), kind));
    }
    for (what, list, index, kind) in refused_email_lists() {
        let body = json!({ "notify_emails": list });
        let loc = json!(["body", "notify_emails", index]);
        cases.push((format!("notify_emails with {what}"), body, loc, kind));
    }
    for (what, body) in non_object_bodies() {
        let case = format!("a body that is {what}");
        cases.push((case, body, json!(["body"]), "model_attributes_type"));
    }
    cases.push((
        "a body that is null".to_owned(),
        Value::Null,
        json!(["body"]),
        "model_attributes_type",
    ));
    cases.push((
        "a valid field beside a bad one".to_owned(),
        json!({"city": "Paris", "expected_hour_utc": 24}),
        json!(["body", "expected_hour_utc"]),
        "less_than_equal",
    ));

    for method in [Method::PATCH, Method::PUT] {
        for (case, body, loc, kind) in &cases {
            let case = format!("{method} {case}");

            // Act
            let response = send_json(&app, &method, "/api/v1/jobs/1", body).await;

            // Assert
            assert_422(response, loc.clone(), kind, &case).await;
            assert_eq!(fetch(&app, 1).await, original, "{case}: the job changed");
        }
    }
}

#[tokio::test]
async fn update_job_refuses_malformed_or_non_json_bodies_and_changes_nothing() {
    // Arrange
    let app = spawn_app().await;
    let original = app.create_job(json!({})).await;
    let valid = br#"{"city": "Paris"}"#;
    #[rustfmt::skip]
    let cases: [(&str, Option<&str>, &[u8], &str); 5] = [
        ("malformed JSON", Some("application/json"), br#"{"city": "#, "json_invalid"),
        ("a trailing comma", Some("application/json"), br#"{"city": "Paris",}"#, "json_invalid"),
        ("an empty body", Some("application/json"), b"", "missing"),
        ("text/plain", Some("text/plain"), valid, ""),
        ("no Content-Type", None, valid, ""),
    ];

    for method in [Method::PATCH, Method::PUT] {
        for (case, content_type, body, kind) in cases {
            let case = format!("{method} {case}");

            // Act
            let response =
                send_raw(&app, &method, "/api/v1/jobs/1", content_type, body.to_vec()).await;

            // Assert
            let (status, response) = status_and_body(response).await;
            assert_eq!(status, 422, "{case}: {response}");
            let detail = &response["detail"][0];
            assert_eq!(detail["loc"][0], "body", "{case}: {response}");
            if kind == "json_invalid" {
                assert!(detail["loc"][1].is_u64(), "{case}: a position: {response}");
            } else {
                assert_eq!(detail["loc"], json!(["body"]), "{case}: {response}");
            }
            if !kind.is_empty() {
                assert_eq!(detail["type"], kind, "{case}: {response}");
            }
            assert_eq!(fetch(&app, 1).await, original, "{case}: the job changed");
        }
    }
}

#[tokio::test]
async fn update_job_checks_grace_against_the_frequency_it_keeps() {
    // Arrange
    let app = spawn_app().await;
    let hourly = app.create_job(json!({"backup_frequency": "hourly"})).await;
    let daily = app.create_job(json!({})).await;
    let (hourly_id, daily_id) = (
        hourly["id"].as_i64().unwrap(),
        daily["id"].as_i64().unwrap(),
    );
    // With what the job holds: the update conflicts with the job (409).
    #[rustfmt::skip]
    let conflicting = [
        (hourly_id, json!({"grace_minutes": 60}), "grace 60 on an hourly job"),
        (hourly_id, json!({"grace_minutes": 1440}), "grace 1440 on an hourly job"),
        (daily_id, json!({"grace_minutes": 1440}), "grace 1440 on a daily job"),
        (daily_id, json!({"backup_frequency": "hourly"}), "hourly on a job with grace 60"),
    ];
    for (id, body, case) in conflicting {
        // Act
        let response = app.patch_json(&format!("/api/v1/jobs/{id}"), &body).await;

        // Assert
        assert_eq!(response.status(), 409, "{case}");
        let detail: Value = response.json().await.unwrap();
        let detail = detail["detail"].as_str().unwrap_or_default().to_owned();
        assert!(
            detail.contains("shorter than the period")
                && detail.contains("send both fields together"),
            "{case}: {detail}"
        );
    }
    // In the body alone: the body is invalid (422).
    let response = app
        .patch_json(
            &format!("/api/v1/jobs/{daily_id}"),
            &json!({"backup_frequency": "hourly", "grace_minutes": 60}),
        )
        .await;
    assert_422(
        response,
        json!(["body", "grace_minutes"]),
        "value_error",
        "hourly with grace 60",
    )
    .await;
    assert_eq!(
        fetch(&app, hourly_id).await,
        hourly,
        "refused updates changed nothing"
    );
    assert_eq!(
        fetch(&app, daily_id).await,
        daily,
        "refused updates changed nothing"
    );
}

#[tokio::test]
async fn update_job_accepts_a_grace_that_fits_the_frequency() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({"backup_frequency": "hourly"})).await;
    app.create_job(json!({})).await;
    #[rustfmt::skip]
    let accepted = [
        (1, json!({"grace_minutes": 59}), json!({"backup_frequency": "hourly", "grace_minutes": 59})),
        (1, json!({"backup_frequency": "daily"}), json!({"backup_frequency": "daily", "grace_minutes": 59})),
        (1, json!({"grace_minutes": 1439}), json!({"backup_frequency": "daily", "grace_minutes": 1439})),
        (2, json!({"backup_frequency": "hourly", "grace_minutes": 45}), json!({"backup_frequency": "hourly", "grace_minutes": 45})),
        (2, json!({"backup_frequency": "weekly", "grace_minutes": 1440}), json!({"backup_frequency": "weekly", "grace_minutes": 1440})),
    ];

    for (id, body, expected) in accepted {
        let case = format!("job {id} with {body}");

        // Act
        let response = app.patch_json(&format!("/api/v1/jobs/{id}"), &body).await;

        // Assert
        let (status, job) = status_and_body(response).await;
        assert_eq!(status, 200, "{case}: {job}");
        assert_fields(&job, &expected, &case);
        assert_fields(&fetch(&app, id).await, &expected, &case);
    }
}

#[tokio::test]
async fn concurrent_updates_cannot_combine_into_a_grace_longer_than_the_period() {
    // Arrange: each job gets two updates at once, each valid alone, invalid together.
    let app = spawn_app().await;
    let jobs = 20;
    for _ in 0..jobs {
        app.create_job(json!({"grace_minutes": 30})).await;
    }
    let mut tasks = tokio::task::JoinSet::new();

    // Act
    for id in 1..=jobs {
        for body in [
            json!({"backup_frequency": "hourly"}),
            json!({"grace_minutes": 90}),
        ] {
            let request = app
                .client
                .patch(app.url(&format!("/api/v1/jobs/{id}")))
                .json(&body);
            tasks.spawn(async move { (id, request.send().await.unwrap().status()) });
        }
    }

    // Assert
    let mut accepted = vec![0; jobs + 1];
    while let Some(result) = tasks.join_next().await {
        let (id, status) = result.unwrap();
        assert!(status == 200 || status == 409, "job {id}: {status}");
        if status == 200 {
            accepted[id] += 1;
        }
    }
    for (id, count) in accepted.iter().enumerate().skip(1) {
        assert_eq!(*count, 1, "job {id}: exactly one of the two updates wins");
        let job = fetch(&app, i64::try_from(id).unwrap()).await;
        let grace = job["grace_minutes"].as_u64().unwrap();
        let hourly = job["backup_frequency"] == "hourly";
        assert!(
            !hourly || grace < 60,
            "job {id} broke the grace rule: {job}"
        );
    }
}

#[tokio::test]
async fn update_job_answers_404_for_an_unknown_job() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;

    for method in [Method::PATCH, Method::PUT] {
        for id in [2, 0, -1] {
            // Act
            let response = send_json(
                &app,
                &method,
                &format!("/api/v1/jobs/{id}"),
                &json!({"city": "Paris"}),
            )
            .await;

            // Assert
            let (status, body) = status_and_body(response).await;
            assert_eq!(status, 404, "{method} {id}: {body}");
            assert_eq!(body, json!({"detail": "Job not found"}), "{method} {id}");
        }
    }
    assert_eq!(job_count(&app).await, 1, "an update never creates a job");
    assert_eq!(fetch(&app, 1).await["city"], "Lyon");
}

// ---------------------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn delete_job_returns_the_deleted_job_and_forgets_it() {
    // Arrange
    let app = spawn_app().await;
    let first = app.create_job(json!({})).await;
    let second = app.create_job(json!({"database_name": "crm"})).await;

    // Act
    let response = app.delete("/api/v1/jobs/1").await;

    // Assert
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, first);
    let (status, body) = status_and_body(app.get("/api/v1/jobs/1").await).await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"detail": "Job not found"}));
    let (status, body) = status_and_body(app.delete("/api/v1/jobs/1").await).await;
    assert_eq!(status, 404, "a second delete");
    assert_eq!(body, json!({"detail": "Job not found"}));
    assert_eq!(list(&app, "").await, (vec![2], 1));
    assert_eq!(fetch(&app, 2).await, second, "the other job is untouched");
}

#[tokio::test]
async fn delete_job_answers_404_for_an_unknown_job() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;

    for id in [2, 0, -1] {
        // Act
        let (status, body) = status_and_body(app.delete(&format!("/api/v1/jobs/{id}")).await).await;

        // Assert
        assert_eq!(status, 404, "job {id}: {body}");
        assert_eq!(body, json!({"detail": "Job not found"}), "job {id}");
    }
    assert_eq!(job_count(&app).await, 1);
}

#[tokio::test]
async fn delete_job_deletes_its_entries_too() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;
    app.create_job(json!({"database_name": "crm"})).await;
    let gone = [
        app.report(1, "success", "2026-01-01T02:30:00Z").await,
        app.report(1, "failed", "2026-01-02T02:30:00Z").await,
    ];
    let kept = app.report(2, "success", "2026-01-01T02:30:00Z").await;
    let response = app.get("/api/v1/entries/").await;
    assert_eq!(total_count(&response), 3, "three entries before");

    // Act
    let response = app.delete("/api/v1/jobs/1").await;

    // Assert
    assert_eq!(response.status(), 200);
    for entry in gone {
        let id = entry["id"].as_i64().unwrap();
        let response = app.get(&format!("/api/v1/entries/{id}")).await;
        assert_eq!(response.status(), 404, "entry {id} of the deleted job");
    }
    let response = app.get("/api/v1/entries/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        total_count(&response),
        1,
        "only the other job's entry is left"
    );
    let entries: Value = response.json().await.unwrap();
    assert_eq!(entries, json!([kept]));
    let response = app.get("/api/v1/entries/by_job/1").await;
    assert_eq!(response.status(), 404, "the deleted job's entry list");
}

// ---------------------------------------------------------------------------------------
// Paths and methods
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn every_jobs_path_answers_with_and_without_a_trailing_slash() {
    // Arrange
    let app = spawn_app().await;
    let expected_path = json!({
        "job_id": 1,
        "slot_utc": "2026-03-07T02:30:00Z",
        "path": "/backups/acme/Lyon/erp/2026-03-07.dump",
    });
    let not_found = json!({"detail": "Job not found"});
    let (post, patch, put) = (Method::POST, Method::PATCH, Method::PUT);
    let at = "at=2026-03-07T01:30:00Z";
    #[rustfmt::skip]
    let checks: Vec<(Method, String, Option<Value>, u16, Value)> = vec![
        (post.clone(), "/api/v1/jobs".into(), Some(valid_job()), 201, json!({"id": 1})),
        (post, "/api/v1/jobs/".into(), Some(valid_job()), 201, json!({"id": 2})),
        (Method::GET, "/api/v1/jobs/1".into(), None, 200, json!({"id": 1})),
        (Method::GET, "/api/v1/jobs/1/".into(), None, 200, json!({"id": 1})),
        (patch.clone(), "/api/v1/jobs/1".into(), Some(json!({"city": "Paris"})), 200, json!({"city": "Paris"})),
        (patch, "/api/v1/jobs/1/".into(), Some(json!({"city": "Nice"})), 200, json!({"city": "Nice"})),
        (put.clone(), "/api/v1/jobs/1".into(), Some(json!({"city": "Metz"})), 200, json!({"city": "Metz"})),
        (put, "/api/v1/jobs/1/".into(), Some(json!({"city": "Lyon"})), 200, json!({"city": "Lyon"})),
        (Method::GET, format!("/api/v1/jobs/1/expected_path?{at}"), None, 200, expected_path.clone()),
        (Method::GET, format!("/api/v1/jobs/1/expected_path/?{at}"), None, 200, expected_path),
        (Method::GET, "/api/v1/jobs/3".into(), None, 404, not_found.clone()),
        (Method::GET, "/api/v1/jobs/3/".into(), None, 404, not_found),
    ];

    for (method, path, body, status, expected) in checks {
        let case = format!("{method} {path}");

        // Act
        let mut request = app.client.request(method.clone(), app.url(&path));
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();

        // Assert
        assert_eq!(response.headers().get("location"), None, "{case}");
        let (code, response) = status_and_body(response).await;
        assert_eq!(code, status, "{case}: {response}");
        assert_fields(&response, &expected, &case);
    }
    for path in [
        "/api/v1/jobs",
        "/api/v1/jobs/",
        "/api/v1/jobs?company_name=acme",
        "/api/v1/jobs/?company_name=acme",
    ] {
        let (ids, total) = list_at(&app, path).await;
        assert_eq!((ids, total), (vec![1, 2], 2), "GET {path}");
    }
    let (ids, total) = list_at(&app, "/api/v1/jobs/?company_name=globex").await;
    assert_eq!(
        (ids, total),
        (vec![], 0),
        "the query survives the trailing slash"
    );
    for path in ["/api/v1/jobs/1/", "/api/v1/jobs/2"] {
        let (code, response) = status_and_body(app.delete(path).await).await;
        assert_eq!(code, 200, "DELETE {path}: {response}");
    }
    assert_eq!(job_count(&app).await, 0, "both deletes took effect");
}

#[tokio::test]
async fn jobs_paths_refuse_other_methods_with_405() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;
    let collection = "GET,HEAD,POST";
    let one = "DELETE,GET,HEAD,PATCH,PUT";
    let rendered = "GET,HEAD";
    let cases = [
        (Method::DELETE, "/api/v1/jobs/", collection),
        (Method::PUT, "/api/v1/jobs", collection),
        (Method::PATCH, "/api/v1/jobs/", collection),
        (Method::POST, "/api/v1/jobs/1", one),
        (Method::POST, "/api/v1/jobs/1/expected_path", rendered),
        (Method::DELETE, "/api/v1/jobs/1/expected_path/", rendered),
    ];

    for (method, path, allowed) in cases {
        let case = format!("{method} {path}");

        // Act
        let response = send_json(&app, &method, path, &valid_job()).await;

        // Assert
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let mut allow: Vec<&str> = allow.split(',').map(str::trim).collect();
        allow.sort_unstable();
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, 405, "{case}: {body}");
        assert_eq!(body, json!({"detail": "Method Not Allowed"}), "{case}");
        assert_eq!(allow.join(","), allowed, "{case}: the Allow header");
    }
    assert_eq!(job_count(&app).await, 1, "nothing was created or deleted");
}

// ---------------------------------------------------------------------------------------
// Expected path
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn expected_path_renders_every_placeholder_and_time_field_from_the_slot() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;
    app.create_job(json!({
        "database_name": "erp",
        "company_name": "acme",
        "city": "Lyon",
        "agent_id_responsible": "agent-lyon-1",
        "expected_hour_utc": 2,
        "expected_minute_utc": 5,
        "final_storage_path_template":
            "/b/{company_name}/{city}/{database_name}-{agent_id_responsible}-{job_id}/%Y/%m/%d_%H%M_100%%.dump",
    }))
    .await;

    // Act
    let response = app
        .get("/api/v1/jobs/2/expected_path?at=2026-03-07T10:00:00Z")
        .await;

    // Assert
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "job_id": 2,
            "slot_utc": "2026-03-07T02:05:00Z",
            "path": "/b/acme/Lyon/erp-agent-lyon-1-2/2026/03/07_0205_100%.dump",
        })
    );
}

#[tokio::test]
async fn values_of_a_dot_each_never_make_the_path_climb() {
    let app = spawn_app().await;
    let job = app
        .create_job(json!({
            "company_name": ".",
            "city": ".",
            "final_storage_path_template": "/backups/{company_name}{city}/x",
        }))
        .await;

    let response = app
        .get(&format!("/api/v1/jobs/{}/expected_path", job["id"]))
        .await;

    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "/backups/__/x");
}

/// A job stored with names the API refuses (as an older release or a hand-edited database
/// may hold) whose path renders with a `..` segment.
async fn a_job_whose_path_climbs(app: &TestApp) -> i64 {
    let id = app
        .create_job(
            json!({"city": "x", "final_storage_path_template": "/b/.{city}./{database_name}"}),
        )
        .await["id"]
        .as_i64()
        .unwrap();
    let db = app.db();
    let conn = db.conn().unwrap();
    conn.execute("UPDATE jobs SET city = '' WHERE id = ?1", [id])
        .unwrap();
    id
}

#[tokio::test]
async fn a_path_that_would_climb_is_never_handed_out() {
    let app = spawn_app().await;
    let id = a_job_whose_path_climbs(&app).await;

    let response = app.get(&format!("/api/v1/jobs/{id}/expected_path")).await;

    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 409, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("'..'")
            && detail.contains("city \"\"")
            && detail.contains("change one of final_storage_path_template, city"),
        "{detail}"
    );
    assert!(!detail.contains("/b/../"), "{detail}");
}

#[tokio::test]
async fn an_update_that_takes_part_in_a_climbing_path_is_refused_naming_its_fields() {
    let app = spawn_app().await;
    let id = a_job_whose_path_climbs(&app).await;
    let path = format!("/api/v1/jobs/{id}");

    // A change of the template that keeps the climb is refused, naming the template.
    let response = app
        .patch_json(
            &path,
            &json!({"final_storage_path_template": "/c/.{city}./x"}),
        )
        .await;
    assert_422(
        response,
        json!(["body", "final_storage_path_template"]),
        "value_error",
        "a template that climbs with the stored city",
    )
    .await;

    // Unrelated changes still go through, and a template that no longer climbs fixes it.
    let response = app.patch_json(&path, &json!({"is_active": false})).await;
    assert_eq!(response.status(), 200);
    let response = app
        .patch_json(
            &path,
            &json!({"final_storage_path_template": "/c/{city}/x"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = app.get(&format!("{path}/expected_path")).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn expected_path_uses_the_slot_whose_window_holds_at() {
    // Arrange
    let app = spawn_app().await;
    let daily = json!({"expected_hour_utc": 2, "expected_minute_utc": 30, "grace_minutes": 60});
    let midnight = json!({"expected_hour_utc": 0, "expected_minute_utc": 0});
    let hourly = json!({"backup_frequency": "hourly", "expected_minute_utc": 15});
    let sunday = json!({
        "backup_frequency": "weekly", "expected_weekday": 6,
        "expected_hour_utc": 23, "expected_minute_utc": 0, "grace_minutes": 120,
    });
    let monday = json!({
        "backup_frequency": "weekly", "expected_weekday": 0,
        "expected_hour_utc": 0, "expected_minute_utc": 30,
    });
    let day_31 = json!({
        "backup_frequency": "monthly", "expected_day_of_month": 31,
        "expected_hour_utc": 4, "expected_minute_utc": 0,
    });
    let day_1 = json!({
        "backup_frequency": "monthly", "expected_day_of_month": 1,
        "expected_hour_utc": 0, "expected_minute_utc": 0, "grace_minutes": 1440,
    });
    #[rustfmt::skip]
    let cases: [(&str, &Value, &str, &str); 28] = [
        ("daily, window start", &daily, "2026-03-07T01:30:00Z", "2026-03-07T02:30:00Z"),
        ("daily, 1 s before", &daily, "2026-03-07T01:29:59Z", "2026-03-06T02:30:00Z"),
        ("daily, at the slot", &daily, "2026-03-07T02:30:00Z", "2026-03-07T02:30:00Z"),
        ("daily, when due", &daily, "2026-03-07T03:30:00Z", "2026-03-07T02:30:00Z"),
        ("daily, window end", &daily, "2026-03-08T01:29:59.999999Z", "2026-03-07T02:30:00Z"),
        ("daily, +01:00", &daily, "2026-03-07T03:30:00%2B01:00", "2026-03-07T02:30:00Z"),
        ("daily, -05:00", &daily, "2026-03-06T20:29:59-05:00", "2026-03-06T02:30:00Z"),
        ("daily, no offset", &daily, "2026-03-07T01:30:00", "2026-03-07T02:30:00Z"),
        ("midnight, year end", &midnight, "2026-12-31T23:00:00Z", "2027-01-01T00:00:00Z"),
        ("midnight, 1 s before", &midnight, "2026-12-31T22:59:59Z", "2026-12-31T00:00:00Z"),
        ("hourly, window start", &hourly, "2026-03-07T10:45:00Z", "2026-03-07T11:15:00Z"),
        ("hourly, 1 s before", &hourly, "2026-03-07T10:44:59Z", "2026-03-07T10:15:00Z"),
        ("hourly, midnight", &hourly, "2026-03-07T23:50:00Z", "2026-03-08T00:15:00Z"),
        ("Sunday, window start", &sunday, "2026-03-08T21:00:00Z", "2026-03-08T23:00:00Z"),
        ("Sunday, 1 s before", &sunday, "2026-03-08T20:59:59Z", "2026-03-01T23:00:00Z"),
        ("Sunday, mid-week", &sunday, "2026-03-11T12:00:00Z", "2026-03-08T23:00:00Z"),
        ("Monday, from Sunday", &monday, "2026-03-08T23:30:00Z", "2026-03-09T00:30:00Z"),
        ("Monday, year end", &monday, "2027-01-03T23:30:00Z", "2027-01-04T00:30:00Z"),
        ("31st, leap February", &day_31, "2028-02-29T03:00:00Z", "2028-02-29T04:00:00Z"),
        ("31st, 1 s before", &day_31, "2028-02-29T02:59:59Z", "2028-01-31T04:00:00Z"),
        ("31st, mid-March", &day_31, "2028-03-15T00:00:00Z", "2028-02-29T04:00:00Z"),
        ("31st, February 2027", &day_31, "2027-02-28T03:00:00Z", "2027-02-28T04:00:00Z"),
        ("31st, April", &day_31, "2026-04-30T05:00:00Z", "2026-04-30T04:00:00Z"),
        ("31st, March", &day_31, "2028-03-31T03:00:00Z", "2028-03-31T04:00:00Z"),
        ("1st, a day of grace", &day_1, "2026-12-31T00:00:00Z", "2027-01-01T00:00:00Z"),
        ("1st, 1 s before", &day_1, "2026-12-30T23:59:59Z", "2026-12-01T00:00:00Z"),
        ("daily, the epoch", &daily, "1970-01-01T00:00:00Z", "1969-12-31T02:30:00Z"),
        ("31st, year 9999", &day_31, "9999-12-31T23:59:59Z", "9999-12-31T04:00:00Z"),
    ];

    for (case, schedule, at, slot) in cases {
        let changes = with(
            schedule.clone(),
            json!({"final_storage_path_template": "/b/%Y/%m/%d/%H%M"}),
        );
        let id = app.create_job(changes).await["id"].as_i64().unwrap();

        // Act
        let response = app
            .get(&format!("/api/v1/jobs/{id}/expected_path?at={at}"))
            .await;

        // Assert
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, 200, "{case}: {body}");
        let (date, time) = (&slot[..10], &slot[11..16]);
        let path = format!("/b/{}/{}", date.replace('-', "/"), time.replace(':', ""));
        let expected = json!({"job_id": id, "slot_utc": slot, "path": path});
        assert_eq!(body, expected, "{case}");
    }
}

#[tokio::test]
async fn expected_path_agrees_with_every_schedule_vector() {
    // Arrange
    let app = spawn_app().await;
    let vectors: Vec<Value> =
        serde_json::from_str(include_str!("../fixtures/schedule-vectors.json")).unwrap();
    let mut checked = 0;

    for vector in &vectors {
        let schedule = &vector["job"];
        let hourly = schedule["backup_frequency"] == "hourly";
        if hourly && schedule["grace_minutes"].as_u64().unwrap() >= 60 {
            // The API refuses such a job: grace must be shorter than the period.
            continue;
        }
        let job = app
            .create_job(with(
                schedule.clone(),
                json!({"final_storage_path_template": "%Y-%m-%dT%H:%M"}),
            ))
            .await;
        let id = job["id"].as_i64().unwrap();
        let at = vector["at"].as_str().unwrap();
        let slot = vector["slot_utc"].as_str().unwrap();

        // Act
        let response = app
            .get(&format!("/api/v1/jobs/{id}/expected_path?at={}", enc(at)))
            .await;

        // Assert
        let (status, body) = status_and_body(response).await;
        assert_eq!(status, 200, "{vector}: {body}");
        assert_eq!(body["slot_utc"], slot, "{vector}");
        assert_eq!(body["path"], &slot[0..16], "{vector}");
        checked += 1;
    }
    assert!(checked >= 150, "only {checked} vectors were checked");
}

#[tokio::test]
async fn expected_path_without_at_uses_the_current_slot() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({"final_storage_path_template": "/b/%Y-%m-%d_%H%M"}))
        .await;
    let before = Utc::now();

    // Act
    let response = app.get("/api/v1/jobs/1/expected_path").await;

    // Assert
    let after = Utc::now();
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    let slot = instant(&body["slot_utc"]);
    let candidates = [daily_slot(before, 2, 30, 60), daily_slot(after, 2, 30, 60)];
    assert!(
        candidates.contains(&slot),
        "slot {slot} is not the current one ({candidates:?})"
    );
    assert_eq!(body["job_id"], 1);
    assert_eq!(
        body["path"],
        format!("/b/{}", slot.format("%Y-%m-%d_%H%M")),
        "{body}"
    );
}

#[tokio::test]
async fn expected_path_follows_an_updated_schedule_and_names() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;
    app.patch_json(
        "/api/v1/jobs/1",
        &json!({"expected_hour_utc": 5, "expected_minute_utc": 0, "city": "Paris"}),
    )
    .await;

    // Act
    let response = app
        .get("/api/v1/jobs/1/expected_path?at=2026-03-07T04:00:00Z")
        .await;

    // Assert
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "job_id": 1,
            "slot_utc": "2026-03-07T05:00:00Z",
            "path": "/backups/acme/Paris/erp/2026-03-07.dump",
        })
    );
}

#[tokio::test]
async fn expected_path_never_climbs_out_of_the_template_directories() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({
        "company_name": "..",
        "city": "a/../../etc",
        "database_name": "x\\..\\y",
        "final_storage_path_template": "/b/{company_name}/{city}/{database_name}.dump",
    }))
    .await;

    // Act
    let response = app
        .get("/api/v1/jobs/1/expected_path?at=2026-03-07T02:30:00Z")
        .await;

    // Assert
    let (status, body) = status_and_body(response).await;
    assert_eq!(status, 200, "{body}");
    let path = body["path"].as_str().unwrap();
    assert!(
        !path.split(['/', '\\']).any(|segment| segment == ".."),
        "{path} has a .. segment"
    );
    assert_eq!(path, "/b/_/a_.._.._etc/x_.._y.dump");
}

#[tokio::test]
async fn expected_path_refuses_an_invalid_at() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;
    let cases = [
        "yesterday",
        "now",
        "",
        "2026-02-30T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-03-07T25:00:00Z",
        "2026-03-07T02:30:00Z%27%3B--",
    ];

    for at in cases {
        // Act
        let response = app
            .get(&format!("/api/v1/jobs/1/expected_path?at={at}"))
            .await;

        // Assert
        let case = format!("at={at}");
        assert_422(response, json!(["query", "at"]), "datetime_parsing", &case).await;
    }
}

#[tokio::test]
async fn expected_path_answers_404_for_an_unknown_job() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;

    for path in [
        "/api/v1/jobs/2/expected_path?at=2026-03-07T02:30:00Z",
        "/api/v1/jobs/2/expected_path",
        "/api/v1/jobs/0/expected_path",
    ] {
        // Act
        let (status, body) = status_and_body(app.get(path).await).await;

        // Assert
        assert_eq!(status, 404, "{path}: {body}");
        assert_eq!(body, json!({"detail": "Job not found"}), "{path}");
    }
}

// ---------------------------------------------------------------------------------------
// Hostile names
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn names_with_sql_and_path_metacharacters_are_stored_verbatim_and_filtered_exactly() {
    // Arrange
    let app = spawn_app().await;
    let names = [
        "'; DROP TABLE jobs; --",
        "Robert'); DELETE FROM jobs WHERE ('1'='1",
        "\" OR \"\"=\"",
        "../../etc/passwd",
        "..\\..\\windows\\system32",
        "O'Brien \"the\" `quoted`",
        "Zürich 東京 🚀 Ærøskøbing",
        "100% off",
        "%",
        "_",
        "a_c",
        "abc",
        "x&y=z#frag?q",
        "plus+sign",
        "semi;colon",
        "<script>alert(1)</script>",
        "back\\slash",
        "tab\tinside",
        "{job_id}",
        "%Y-%m %%",
        "*",
    ];
    let mut ids = Vec::new();
    for name in names {
        let job = app
            .create_job(json!({
                "database_name": name,
                "company_name": name,
                "city": name,
                "agent_id_responsible": name,
            }))
            .await;
        assert_fields(
            &job,
            &json!({"database_name": name, "company_name": name, "city": name, "agent_id_responsible": name}),
            name,
        );
        ids.push(job["id"].as_i64().unwrap());
    }

    for (name, id) in names.iter().zip(&ids) {
        // Act
        let fetched = fetch(&app, *id).await;
        let by_company = list(&app, &format!("?company_name={}", enc(name))).await;
        let by_city = list(&app, &format!("?city={}", enc(name))).await;
        let by_agent = list(&app, &format!("?agent_id_responsible={}", enc(name))).await;
        let at = "?at=2026-03-07T02:30:00Z";
        let rendered = app
            .get(&format!("/api/v1/jobs/{id}/expected_path{at}"))
            .await;

        // Assert
        for field in NAMES {
            assert_eq!(fetched[field], *name, "{name}: {field} as stored");
        }
        assert_eq!(by_company, (vec![*id], 1), "company_name={name}");
        assert_eq!(by_city, (vec![*id], 1), "city={name}");
        assert_eq!(by_agent, (vec![*id], 1), "agent_id_responsible={name}");
        let (status, rendered) = status_and_body(rendered).await;
        assert_eq!(status, 200, "{name}: {rendered}");
        let segment = name.replace(['/', '\\'], "_");
        assert_eq!(
            rendered["path"],
            format!("/backups/{segment}/{segment}/{segment}/2026-03-07.dump"),
            "{name}: rendered once, never re-expanded"
        );
    }
    let count = i64::try_from(names.len()).unwrap();
    assert_eq!(job_count(&app).await, count, "the jobs table is intact");
}

#[tokio::test]
async fn a_name_with_a_nul_character_is_stored_verbatim() {
    // Arrange
    let app = spawn_app().await;
    let name = "before\u{0}after";

    // Act
    let job = app.create_job(json!({"company_name": name})).await;

    // Assert
    assert_eq!(job["company_name"], name);
    assert_eq!(fetch(&app, 1).await["company_name"], name);
    assert_eq!(
        list(&app, &format!("?company_name={}", enc(name))).await,
        (vec![1], 1)
    );
}
