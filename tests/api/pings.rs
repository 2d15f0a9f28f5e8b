//! Ping URLs (DESIGN §12): healthchecks.io's protocol and answers, Uptime Kuma's push, key
//! rotation, the per-key rate limit, and the key never in the logs. The real clients
//! (curl as people write it in a crontab; borgmatic) are in tests/pings.rs.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};

use crate::common::{client_with, spawn_app, spawn_app_with, TestApp};

async fn job(app: &TestApp) -> (i64, String) {
    let job = app.create_job(json!({})).await;
    let url = job["ping_url"].as_str().unwrap().to_owned();
    (job["id"].as_i64().unwrap(), url)
}

async fn entries(app: &TestApp, job: i64) -> Vec<Value> {
    let mut all: Vec<Value> = app
        .get(&format!("/api/v1/entries/by_job/{job}"))
        .await
        .json()
        .await
        .unwrap();
    all.reverse();
    all
}

/// A ping without a token, as a backup tool sends it.
async fn ping(app: &TestApp, method: reqwest::Method, path: &str, body: &str) -> (u16, String) {
    let response = client_with(None)
        .request(method, app.url(path))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn every_job_answers_its_ping_url_and_each_path_records_what_healthchecks_does() {
    let app = spawn_app().await;
    let (id, url) = job(&app).await;
    assert!(
        url.starts_with("/ping/"),
        "no public_url: the path alone ({url})"
    );
    let key = url.trim_start_matches("/ping/");
    assert_eq!(key.len(), 32, "128 bits in hex");
    use reqwest::Method;

    assert_eq!(
        ping(&app, Method::GET, &format!("{url}/start?rid=r1"), "").await,
        (200, "OK".into())
    );
    assert_eq!(
        ping(
            &app,
            Method::POST,
            &format!("{url}?rid=r1&size=2048&hash=sha256:ab"),
            "dumped 12 tables"
        )
        .await,
        (200, "OK".into())
    );
    assert_eq!(
        ping(
            &app,
            Method::POST,
            &format!("{url}/fail"),
            "pg_dump: connection refused"
        )
        .await
        .0,
        200
    );
    assert_eq!(
        ping(&app, Method::POST, &format!("{url}/0"), "").await.0,
        200
    );
    assert_eq!(
        ping(&app, Method::POST, &format!("{url}/3/"), "disk full")
            .await
            .0,
        200
    );
    assert_eq!(
        ping(
            &app,
            Method::POST,
            &format!("{url}/log"),
            "rotated the logs"
        )
        .await
        .0,
        200
    );
    assert_eq!(ping(&app, Method::HEAD, &url, "").await.0, 200);

    let stored = entries(&app, id).await;
    let got: Vec<(&str, Value, Value, Value)> = stored
        .iter()
        .map(|e| {
            (
                e["status"].as_str().unwrap(),
                e["error_message"].clone(),
                e["log"].clone(),
                e["run_id"].clone(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("started", Value::Null, Value::Null, json!("r1")),
            (
                "success",
                Value::Null,
                json!("dumped 12 tables"),
                json!("r1")
            ),
            (
                "failed",
                json!("pg_dump: connection refused"),
                Value::Null,
                Value::Null
            ),
            ("success", Value::Null, Value::Null, Value::Null),
            (
                "failed",
                json!("exit status 3\ndisk full"),
                Value::Null,
                Value::Null
            ),
            ("log", Value::Null, json!("rotated the logs"), Value::Null),
            ("success", Value::Null, Value::Null, Value::Null),
        ],
        "{stored:#?}"
    );
    assert_eq!(stored[1]["backup_size_bytes"], 2048);
    assert_eq!(stored[1]["backup_hash"], "sha256:ab");
    assert!(
        stored[1]["duration_seconds"].is_i64(),
        "the start opened a run"
    );
}

#[tokio::test]
async fn answers_are_healthchecks_own() {
    let app = spawn_app().await;
    let (_, url) = job(&app).await;
    use reqwest::Method;
    for (path, expected) in [
        (
            "/ping/0123456789abcdef0123456789abcdef".to_owned(),
            (404, "not found"),
        ),
        ("/ping/not-a-key".to_owned(), (404, "not found")),
        (
            "/ping/0123456789abcdef0123456789abcdef/fail".to_owned(),
            (404, "not found"),
        ),
        (
            format!("{url}/256"),
            (400, "exit status 256 is out of range 0-255"),
        ),
        (
            format!("{url}?size=-5"),
            (400, "size \"-5\" is not a whole number of bytes, 0 or more"),
        ),
        (
            format!("{url}/stop"),
            (
                400,
                "unknown ping \"stop\": use /start, /fail, /log or an exit status 0-255",
            ),
        ),
    ] {
        let (status, body) = ping(&app, Method::GET, &path, "").await;
        assert_eq!((status, body.as_str()), expected, "{path}");
    }
    // The answer is plain text, as curl -fsS expects.
    let response = client_with(None).get(app.url(&url)).send().await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; charset=utf-8"
    );
}

#[tokio::test]
async fn a_ping_runs_the_rules_of_a_report() {
    let app = spawn_app().await;
    let (id, url) = job(&app).await;

    // A zero-byte dump announced by a one-liner is suspect, as over the API.
    let (status, _) = ping(&app, reqwest::Method::GET, &format!("{url}?size=0"), "").await;

    assert_eq!(status, 200);
    let stored = entries(&app, id).await;
    assert_eq!(
        stored[0]["suspect_reason"],
        "size 0 B is below the minimum of 1 B"
    );
}

#[tokio::test]
async fn a_rotated_key_stops_working_at_once() {
    let app = spawn_app().await;
    let (id, old) = job(&app).await;

    let response = app
        .post_json(&format!("/api/v1/jobs/{id}/ping_key"), &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new = rotated["ping_url"].as_str().unwrap();

    assert_ne!(new, old);
    assert_eq!(
        ping(&app, reqwest::Method::GET, &old, "").await,
        (404, "not found".into())
    );
    assert_eq!(
        ping(&app, reqwest::Method::GET, new, "").await,
        (200, "OK".into())
    );
    // Only an admin rotates.
    let viewer = app.token(crate::common::Role::Viewer, None);
    let refused = client_with(Some(&viewer))
        .post(app.url(&format!("/api/v1/jobs/{id}/ping_key")))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let missing = app.post_json("/api/v1/jobs/999/ping_key", &json!({})).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_ping_url_starts_with_the_public_url_when_set() {
    let app = spawn_app_with(|s| {
        s.server.public_url = Some("https://monitor.example.com/".to_owned());
    })
    .await;
    let (_, url) = job(&app).await;
    assert!(
        url.starts_with("https://monitor.example.com/ping/"),
        "{url}"
    );
    assert_eq!(url.len(), "https://monitor.example.com/ping/".len() + 32);
}

#[tokio::test]
async fn uptime_kumas_push_records_up_and_down() {
    let app = spawn_app().await;
    let (id, url) = job(&app).await;
    let key = url.trim_start_matches("/ping/");

    let up: Value = client_with(None)
        .get(app.url(&format!("/api/push/{key}?status=up&msg=OK&ping=")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(up, json!({"ok": true}));
    let down = client_with(None)
        .get(app.url(&format!("/api/push/{key}?status=down&msg=backup%20failed")))
        .send()
        .await
        .unwrap();
    assert_eq!(down.status(), 200);
    let unknown = client_with(None)
        .get(app.url("/api/push/0123456789abcdef0123456789abcdef"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.json::<Value>().await.unwrap(),
        json!({"ok": false, "msg": "Monitor not found or not active."})
    );

    let stored = entries(&app, id).await;
    assert_eq!(stored[0]["status"], "success");
    assert_eq!(stored[1]["status"], "failed");
    assert_eq!(stored[1]["error_message"], "backup failed");
}

#[tokio::test]
async fn pings_are_rate_limited_per_key() {
    let app = spawn_app_with(|s| {
        s.auth.rate_limit_per_second = 1;
        s.auth.rate_limit_burst = 3;
    })
    .await;
    let (_, first) = job(&app).await;
    let second = app.create_job(json!({"database_name": "crm"})).await["ping_url"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(ping(&app, reqwest::Method::GET, &first, "").await.0);
    }

    assert_eq!(&codes[..3], [200, 200, 200]);
    assert!(codes[3..].contains(&429), "{codes:?}");
    assert_eq!(
        ping(&app, reqwest::Method::GET, &second, "").await.0,
        200,
        "another key has its own budget"
    );
}
