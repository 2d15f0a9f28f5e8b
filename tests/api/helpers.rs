//! `spawn_app`: the real service on 127.0.0.1:0 with a temporary database, and a client.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;

use backup_monitor::app::Application;
use backup_monitor::config::{Secret, Settings};
use backup_monitor::db::Db;
use backup_monitor::domain::auth::Role;
use backup_monitor::service::tick::{self, TickOutcome};
use backup_monitor::service::tokens;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub db_path: PathBuf,
    pub dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the service with default settings changed by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let db_path = dir.path().join("test.db");
    let mut settings = Settings::default();
    settings.database.url = format!("sqlite://{}", db_path.display());
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    // Tests drive the tick themselves with an explicit `now`; the cron fires on 29 February
    // only, so that it cannot race them.
    settings.scheduler.tick = "0 0 0 29 2 *".to_owned();
    // Every request of the default client carries this admin token; rate limits are out
    // of the way unless a test sets them.
    settings.auth.admin_token = Some(Secret::new(ADMIN_TOKEN));
    settings.auth.rate_limit_per_second = 1_000_000;
    settings.auth.rate_limit_burst = 1_000_000;
    configure(&mut settings);
    let db_path = settings.database_path();
    let app = Application::build(settings).await.expect("app builds");
    let addr = app.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        client: client_with(Some(ADMIN_TOKEN)),
        db_path,
        dir,
        stop: Some(stop),
        server: Some(server),
    }
}

/// The admin token every test app accepts (as BACKUP_MONITOR_ADMIN_TOKEN).
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A client that sends `token` as a bearer token (None: no Authorization header).
pub fn client_with(token: Option<&str>) -> reqwest::Client {
    backup_monitor::install_crypto_provider();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
    }
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A job body with every field the seed requires, and nothing else.
pub fn valid_job() -> Value {
    json!({
        "database_name": "erp",
        "agent_id_responsible": "agent-lyon-1",
        "company_name": "acme",
        "city": "Lyon",
        "expected_hour_utc": 2,
        "expected_minute_utc": 30,
        "backup_frequency": "daily",
        "final_storage_path_template": "/backups/{company_name}/{city}/{database_name}/%Y-%m-%d.dump"
    })
}

/// `base` with the fields of `changes` set (a `null` in `changes` removes the field).
pub fn with(base: Value, changes: Value) -> Value {
    let mut out = base;
    if let (Some(o), Some(c)) = (out.as_object_mut(), changes.as_object()) {
        for (k, v) in c {
            if v.is_null() {
                o.remove(k);
            } else {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .patch(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Sends raw bytes with the given content type (None: no Content-Type header).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send().await.expect("request")
    }

    /// Creates a job from `valid_job()` with `changes`; panics unless 201.
    pub async fn create_job(&self, changes: Value) -> Value {
        let response = self
            .post_json("/api/v1/jobs/", &with(valid_job(), changes))
            .await;
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, 201, "job creation failed: {body}");
        body
    }

    /// Reports a success for `job_id` at `at`; panics unless 201.
    pub async fn report(&self, job_id: i64, status: &str, at: &str) -> Value {
        let response = self
            .post_json(
                "/api/v1/entries/",
                &json!({"expected_job_id": job_id, "status": status, "backup_timestamp_utc": at}),
            )
            .await;
        let code = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(code, 201, "report failed: {body}");
        body
    }

    /// The service's database, opened beside it (as a second process would).
    pub fn db(&self) -> Db {
        Db::open(&self.db_path).expect("database opens")
    }

    /// One scheduler tick at `now`, on the service's database.
    pub fn tick(&self, now: DateTime<Utc>) -> TickOutcome {
        let db = self.db();
        let mut conn = db.conn().unwrap();
        tick::tick(&mut conn, now, 100).expect("tick")
    }

    /// Moves a job's anchor (creation, for lateness) back to `at`, as if it had been
    /// created then.
    pub fn backdate(&self, job_id: i64, at: DateTime<Utc>) {
        let db = self.db();
        let conn = db.conn().unwrap();
        conn.execute(
            "UPDATE jobs SET schedule_anchor_us = ?2, created_at_us = ?2, next_due_us = 0 WHERE id = ?1",
            (job_id, at.timestamp_micros()),
        )
        .unwrap();
    }

    /// Creates a token in the service's database; returns its secret.
    pub fn token(&self, role: Role, agent: Option<&str>) -> String {
        let db = self.db();
        let conn = db.conn().unwrap();
        tokens::create(&conn, "test", role, agent, Utc::now())
            .unwrap()
            .1
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran");
        }
    }
}

/// The `detail` items of a 422, as (loc, type) pairs, for compact assertions.
pub fn errors(body: &Value) -> Vec<(Value, String)> {
    body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("no detail array in {body}"))
        .iter()
        .map(|e| {
            (
                e["loc"].clone(),
                e["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Asserts a FastAPI-shaped 422 whose errors include one at `loc` of type `kind`.
pub async fn assert_422(response: reqwest::Response, loc: Value, kind: &str, case: &str) {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 422, "{case}: expected 422, got {status}: {body}");
    for item in body["detail"].as_array().unwrap_or(&vec![]) {
        assert!(
            item["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}: empty msg in {body}"
        );
    }
    assert!(
        errors(&body).contains(&(loc.clone(), kind.to_owned())),
        "{case}: expected an error at {loc} of type {kind}, got {body}"
    );
}
