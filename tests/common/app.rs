//! The real service on 127.0.0.1 over a temporary SQLite file, and what tests do with it.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::library::{
    self, Application, Clock, Db, PruneOutcome, Role, Secret, Settings, TickOutcome, TokenInfo,
    Writer,
};
use super::{client_with, valid_job, with, ADMIN_TOKEN};

pub struct TestApp {
    pub addr: SocketAddr,
    /// Sends [`ADMIN_TOKEN`] with every request.
    pub client: reqwest::Client,
    pub db_path: PathBuf,
    /// The directory of the database (unless a test moved it), removed with the app.
    pub dir: TempDir,
    /// The service's clock: the system's until a test sets it (`set_now`).
    pub clock: Clock,
    /// The service's group-commit writer, for tests of its faults.
    pub writer: Writer,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the service with the test settings changed by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_in(tempfile::tempdir().expect("temp dir"), configure).await
}

/// Starts the service over `dir/test.db` (a directory the test may have prepared) on a free
/// port, with the test settings changed by `configure` (which may set the address too).
pub async fn spawn_app_in(dir: TempDir, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::default();
    settings.database.url = format!("sqlite://{}", dir.path().join("test.db").display());
    settings.server.bind = "127.0.0.1:0".parse().unwrap();
    // Tests drive the tick themselves with an explicit `now` (`TestApp::tick`): the service
    // runs none, not even at start, so that it cannot race them.
    settings.scheduler.enabled = false;
    // Every request of the default client carries this admin token; rate limits are out
    // of the way unless a test sets them.
    settings.auth.admin_token = Some(Secret::new(ADMIN_TOKEN));
    settings.auth.rate_limit_per_second = 1_000_000;
    settings.auth.rate_limit_burst = 1_000_000;
    configure(&mut settings);
    let db_path = settings.database_path();
    let clock = Clock::system();
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .expect("app builds");
    let addr = app.local_addr().unwrap();
    let writer = app.writer();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        addr,
        client: client_with(Some(ADMIN_TOKEN)),
        db_path,
        dir,
        clock,
        writer,
        stop: Some(stop),
        server: Some(server),
    }
}

impl TestApp {
    /// From now on the service's handlers take `now` to be `at` (None: the system clock).
    pub fn set_now(&self, at: Option<DateTime<Utc>>) {
        self.clock.set(at);
    }

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

    /// `GET /api/v1/alerts`, up to 1,000 of them, newest first.
    pub async fn alerts(&self) -> Vec<serde_json::Value> {
        self.get("/api/v1/alerts?limit=1000")
            .await
            .json()
            .await
            .expect("alerts")
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

    /// Reports `status` for `job_id` at `at`; panics unless 201.
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
        library::open_db(&self.db_path)
    }

    /// One scheduler tick at `now`, on the service's database.
    pub fn tick(&self, now: DateTime<Utc>) -> TickOutcome {
        library::tick(&self.db_path, now)
    }

    /// One whole retention run at `now` keeping `keep_days` days, on the service's database.
    pub fn prune(&self, now: DateTime<Utc>, keep_days: u32) -> PruneOutcome {
        library::prune(&self.db_path, now, keep_days)
    }

    /// Writes an entry straight into the database, past every rule of the API, as an old
    /// database (or a bug) may hold one: e.g. a success dated years ahead.
    pub fn insert_entry_directly(&self, job_id: i64, status: &str, at: DateTime<Utc>) {
        let db = self.db();
        let conn = db.conn().unwrap();
        conn.execute(
            "INSERT INTO entries (job_id, status, backup_timestamp_us, created_at_us) VALUES (?1, ?2, ?3, ?3)",
            (job_id, status, at.timestamp_micros()),
        )
        .unwrap();
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
        library::create_token(&self.db_path, "test", role, agent)
    }

    /// The id of the live token whose secret is `secret`.
    pub fn token_id(&self, secret: &str) -> i64 {
        library::token_id(&self.db_path, secret)
    }

    /// Revokes the live token `id` in the database, behind the service's back.
    pub fn revoke_token(&self, id: i64) {
        library::revoke_token(&self.db_path, id);
    }

    /// Every token the database holds, oldest first.
    pub fn stored_tokens(&self) -> Vec<TokenInfo> {
        library::stored_tokens(&self.db_path)
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
