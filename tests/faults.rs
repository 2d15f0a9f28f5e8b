//! Proof under faults: stalled connections by the hundred, another process holding the
//! database's write lock, a full disk, a write that panics and a writer thread that dies.
//! The service keeps answering, never says 500 or drops a report it acknowledged, and its
//! health check is never green while reports cannot be stored.
//!
//! Each test prints what it measured (`cargo test --test faults -- --nocapture`).
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    client_builder, client_with, send, spawn_app_in, spawn_app_with, wait_for_close, DbError,
    Ended, TestApp, ADMIN_TOKEN,
};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// How long `/healthz` takes, at worst over `n` tries, each on a new connection.
async fn health_latency(app: &TestApp, n: usize) -> Duration {
    let mut worst = Duration::ZERO;
    for _ in 0..n {
        let client = client_builder(None)
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let started = Instant::now();
        let response = client.get(app.url("/healthz")).send().await.unwrap();
        worst = worst.max(started.elapsed());
        assert_eq!(response.status(), 200);
    }
    worst
}

/// Opens `n` connections that send half a request head (even ones) or nothing (odd ones).
async fn stalled_connections(app: &TestApp, n: usize) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let half: &[u8] = if i % 2 == 0 {
            b"POST /api/v1/entries HTTP/1.1\r\nHost: x\r\nContent-Le"
        } else {
            b""
        };
        out.push(send(app.addr, half).await);
    }
    out
}

/// When each connection was closed by the server, counted from `origin` (None: still open
/// after waiting `within`).
async fn close_times(
    streams: Vec<TcpStream>,
    origin: Instant,
    within: Duration,
) -> Vec<Option<Duration>> {
    let mut waiting = JoinSet::new();
    for mut stream in streams {
        waiting.spawn(async move {
            match wait_for_close(&mut stream, within).await {
                Ended::Closed(_) => Some(origin.elapsed()),
                Ended::Open => None,
            }
        });
    }
    let mut times = Vec::new();
    while let Some(time) = waiting.join_next().await {
        times.push(time.unwrap());
    }
    times
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_stalled_connections_neither_slow_the_health_check_nor_stay_open() {
    // Arrange
    const STALLED: usize = 400;
    let app = spawn_app_with(|s| {
        s.server.header_read_timeout_seconds = 1;
        s.server.idle_timeout_seconds = 60;
    })
    .await;
    let opened = Instant::now();
    let stalled = stalled_connections(&app, STALLED).await;
    let opening = opened.elapsed();

    // Act
    let health = health_latency(&app, 10).await;
    let closed = close_times(stalled, opened, Duration::from_secs(10)).await;
    let all_closed = closed.iter().flatten().max().copied().unwrap_or_default();

    // Assert
    let still_open = closed.iter().filter(|t| t.is_none()).count();
    println!(
        "{STALLED} stalled connections (opened in {opening:?}): /healthz took at worst {health:?} \
         over 10 tries; all closed by the server {all_closed:?} after the first was opened \
         (header_read_timeout_seconds = 1); {still_open} still open"
    );
    assert!(health < Duration::from_secs(1), "/healthz took {health:?}");
    assert_eq!(still_open, 0, "stalled connections the server kept open");
    assert!(
        all_closed < Duration::from_secs(1) + opening + Duration::from_secs(3),
        "closed only after {all_closed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_connections_a_new_client_waits_and_is_served_once_stalled_ones_time_out() {
    // Arrange: 200 stalled connections against a limit of 50
    let app = spawn_app_with(|s| {
        s.server.max_connections = 50;
        s.server.header_read_timeout_seconds = 1;
    })
    .await;
    let opened = Instant::now();
    let stalled = stalled_connections(&app, 200).await;
    let closing = tokio::spawn(close_times(stalled, opened, Duration::from_secs(20)));

    // Act: a client behind them in the backlog
    let client = client_builder(None)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let asked = Instant::now();
    let response = client.get(app.url("/healthz")).send().await.unwrap();
    let waited = asked.elapsed();
    let closed = closing.await.unwrap();

    // Assert
    let mut times: Vec<Duration> = closed.iter().map(|t| t.expect("closed")).collect();
    times.sort();
    let within_first_round = times
        .iter()
        .filter(|t| **t < Duration::from_millis(1500))
        .count();
    println!(
        "max_connections = 50, 200 stalled: the new client was served after {waited:?}; \
         {within_first_round} stalled ones closed within 1.5 s of the first's opening, the \
         last after {:?} (all opened within {:?})",
        times.last().unwrap(),
        asked - opened
    );
    assert_eq!(response.status(), 200);
    assert!(
        waited >= Duration::from_millis(900),
        "served after {waited:?}: the limit did not hold it back"
    );
    assert!(
        within_first_round <= 60,
        "{within_first_round} connections were served at once with max_connections = 50"
    );
}

/// A report with its own hash, so that no two are the same report.
fn report(job: &Value, hash: &str) -> Value {
    json!({"expected_job_id": job["id"], "status": "success", "backup_hash": hash,
           "backup_timestamp_utc": "2026-11-24T02:31:00Z"})
}

/// What the service answered to one report.
#[derive(Debug)]
struct Answer {
    hash: String,
    status: u16,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
}

async fn send_report(client: &reqwest::Client, app_url: &str, job: &Value, hash: String) -> Answer {
    let started = Instant::now();
    let response = client
        .post(format!("{app_url}/api/v1/entries/"))
        .json(&report(job, &hash))
        .send()
        .await
        .unwrap_or_else(|e| panic!("report {hash}: the connection failed: {e}"));
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        hash,
        status,
        retry_after,
        body,
        took: started.elapsed(),
    }
}

/// Asserts that a refused report says why in a JSON `detail`, and when to retry.
fn assert_refused_well(answer: &Answer, allowed: &[u16]) {
    assert!(
        allowed.contains(&answer.status),
        "report {}: {} {}",
        answer.hash,
        answer.status,
        answer.body
    );
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "report {}: no JSON detail in {}",
        answer.hash,
        answer.body
    );
    assert!(
        answer.retry_after.is_some(),
        "report {}: {} without Retry-After",
        answer.hash,
        answer.status
    );
}

/// The entries stored in the database at `path`, by hash.
fn stored(path: &Path) -> BTreeMap<String, i64> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT backup_hash, id FROM entries WHERE backup_hash IS NOT NULL")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    rows
}

fn integrity(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_wait_or_get_503_while_another_process_holds_the_write_lock_never_500() {
    // Arrange: another connection takes the write lock and keeps it 7 s (longer than the
    // writer's 5 s busy timeout)
    let app = spawn_app_with(|_| {}).await;
    let job = app.create_job(json!({})).await;
    let path = app.db_path.clone();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(Instant::now()).unwrap();
        std::thread::sleep(Duration::from_secs(7));
        conn.execute_batch("COMMIT").unwrap();
        Instant::now()
    });
    let locked_at = locked_rx.recv().unwrap();

    // Act: 8 reporters, 6 reports each, spread over the lock
    let client = client_builder(Some(ADMIN_TOKEN))
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let mut reporters = JoinSet::new();
    for worker in 0..8 {
        let (client, url, job) = (client.clone(), app.url(""), job.clone());
        reporters.spawn(async move {
            let mut answers = Vec::new();
            for n in 0..6 {
                answers.push(send_report(&client, &url, &job, format!("lock-w{worker}-{n}")).await);
                tokio::time::sleep(Duration::from_millis(700)).await;
            }
            answers
        });
    }
    let health_during_lock = health_latency(&app, 3).await;
    let mut answers = Vec::new();
    while let Some(batch) = reporters.join_next().await {
        answers.extend(batch.unwrap());
    }
    let released_at = holder.join().unwrap();
    let after = send_report(&client, &app.url(""), &job, "lock-after".into()).await;

    // Assert
    let accepted: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
    let refused: Vec<&Answer> = answers.iter().filter(|a| a.status != 201).collect();
    let slowest = answers.iter().map(|a| a.took).max().unwrap();
    println!(
        "write lock held {:?} by another connection: {} reports accepted (201), {} refused \
         (503); slowest answer {slowest:?}; /healthz at worst {health_during_lock:?} meanwhile",
        released_at - locked_at,
        accepted.len(),
        refused.len()
    );
    for answer in &refused {
        assert_refused_well(answer, &[503]);
    }
    assert_eq!(after.status, 201, "after the lock: {}", after.body);
    assert!(health_during_lock < Duration::from_secs(1));
    let stored = stored(&app.db_path);
    for answer in accepted.iter().copied().chain([&after]) {
        assert_eq!(
            stored.get(&answer.hash),
            answer.body["id"].as_i64().as_ref(),
            "acknowledged report {} is not in the database",
            answer.hash
        );
    }
    for answer in &refused {
        assert!(
            !stored.contains_key(&answer.hash),
            "refused report {} was stored",
            answer.hash
        );
    }
}

#[tokio::test]
async fn a_write_that_panics_is_answered_and_the_writer_goes_on() {
    // Arrange
    let app = spawn_app_with(|_| {}).await;
    let job = app.create_job(json!({})).await;

    // Act: a bug in one write, then an ordinary report
    let panicked = app
        .writer
        .write(|_| -> Result<(), DbError> { panic!("a bug in one write") })
        .await;
    let client = client_with(Some(ADMIN_TOKEN));
    let next = send_report(&client, &app.url(""), &job, "after-panic".into()).await;
    let health = app.get("/healthz").await.status();

    // Assert
    assert!(
        matches!(panicked, Err(DbError::WritePanicked)),
        "{panicked:?}"
    );
    assert_eq!(next.status, 201, "{}", next.body);
    assert_eq!(health, 200);
}

#[tokio::test]
async fn a_dead_writer_thread_turns_the_health_check_red_and_reports_get_503() {
    // Arrange
    let app = spawn_app_with(|_| {}).await;
    let job = app.create_job(json!({})).await;
    let client = client_with(Some(ADMIN_TOKEN));
    assert_eq!(
        send_report(&client, &app.url(""), &job, "before".into())
            .await
            .status,
        201
    );

    // Act: the thread dies of a panic outside any write
    app.writer.crash_for_tests();
    let refused = send_report(&client, &app.url(""), &job, "after".into()).await;
    let health = app.get("/healthz").await;
    let health_status = health.status();
    let health_body: Value = health.json().await.unwrap();
    let reads = app.get("/api/v1/jobs").await.status();

    // Assert
    assert_refused_well(&refused, &[503]);
    assert_eq!(health_status, 503, "{health_body}");
    assert!(
        health_body["detail"]
            .as_str()
            .unwrap()
            .contains("Reports cannot be stored"),
        "{health_body}"
    );
    assert_eq!(reads, 200, "the service still answers what it can");
}

/// A tmpfs of `size` mounted at `dir` for the life of the value; unmounted (lazily, so
/// that files still open cannot stop it) when dropped, even when a test fails.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "cannot mount a tmpfs at {} (needs root)",
            dir.display()
        );
        Self(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros to `path` until the disk refuses; returns how many bytes it took.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let mut written = 0;
    for chunk in [64 * 1024, 4096, 512, 1] {
        let zeros = vec![0_u8; chunk];
        while file.write_all(&zeros).is_ok() {
            written += chunk as u64;
        }
    }
    let _ = file.sync_all();
    written
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root to mount a tmpfs: run by .ci/run"]
async fn a_full_disk_refuses_reports_with_507_never_500_and_they_succeed_once_space_is_freed() {
    // Arrange: the database on a 6 MB tmpfs
    let outer = tempfile::tempdir().unwrap();
    let mount_point = outer.path().join("small");
    std::fs::create_dir(&mount_point).unwrap();
    let tmpfs = Tmpfs::mount(&mount_point, "6m");
    let app = spawn_app_in(tempfile::tempdir_in(&tmpfs.0).unwrap(), |_| {}).await;
    let job = app.create_job(json!({})).await;
    let client = client_builder(Some(ADMIN_TOKEN))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = app.url("");
    let mut answers = Vec::new();
    for n in 0..20 {
        answers.push(send_report(&client, &url, &job, format!("before-{n}")).await);
    }
    assert!(answers.iter().all(|a| a.status == 201), "{answers:?}");

    // Act 1: fill the disk, then report until 10 are refused
    let filler = tmpfs.0.join("filler");
    let filled = fill(&filler);
    let mut sent_while_full = 0;
    let mut refused_while_full = 0;
    while refused_while_full < 10 && sent_while_full < 2000 {
        let answer = send_report(&client, &url, &job, format!("full-{sent_while_full}")).await;
        sent_while_full += 1;
        if answer.status != 201 {
            assert_refused_well(&answer, &[507, 503]);
            refused_while_full += 1;
        }
        answers.push(answer);
    }
    let health_full = app.get("/healthz").await;
    let health_full_status = health_full.status();
    let health_full_body: Value = health_full.json().await.unwrap();
    let reads_full = app.get("/api/v1/jobs").await.status();
    // Room for the health check's one-row probe, not for reports to go on.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(filled - 512 * 1024)
        .unwrap();
    let health_nearly_full = app.get("/healthz").await.status();

    // Act 2: free the space, report again
    std::fs::remove_file(&filler).unwrap();
    let health_freed = app.get("/healthz").await.status();
    let mut after_freed = Vec::new();
    for n in 0..20 {
        after_freed.push(send_report(&client, &url, &job, format!("freed-{n}")).await);
    }
    let db_path = app.db_path.clone();
    let stored = stored(&db_path);
    let integrity = integrity(&db_path);
    app.stop().await;

    // Assert
    let statuses: BTreeMap<u16, usize> = answers.iter().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a.status).or_default() += 1;
        m
    });
    println!(
        "disk full ({filled} bytes of filler on a 6 MB tmpfs): {sent_while_full} reports sent \
         while full, {refused_while_full} refused; statuses overall {statuses:?}; /healthz \
         {health_full_status} ({}) while full, {health_nearly_full} with 512 KiB free, \
         {health_freed} once freed; 20 of 20 after freeing: {:?}",
        health_full_body["detail"],
        after_freed.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(refused_while_full, 10, "the disk never refused a report");
    assert_eq!(health_full_status, 503, "green while reports are refused");
    assert!(
        health_full_body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("disk is full")),
        "{health_full_body}"
    );
    assert_eq!(
        health_nearly_full, 503,
        "green with less than 1 MiB free after a refusal"
    );
    assert_eq!(reads_full, 200, "the service still answers what it can");
    assert_eq!(health_freed, 200);
    assert!(
        after_freed.iter().all(|a| a.status == 201),
        "{after_freed:?}"
    );
    let acknowledged: Vec<&Answer> = answers
        .iter()
        .chain(&after_freed)
        .filter(|a| a.status == 201)
        .collect();
    for answer in &acknowledged {
        assert_eq!(
            stored.get(&answer.hash),
            answer.body["id"].as_i64().as_ref(),
            "acknowledged report {} is not on disk",
            answer.hash
        );
    }
    assert_eq!(
        stored.len(),
        acknowledged.len(),
        "refused reports were stored"
    );
    assert_eq!(integrity, "ok");
    drop(tmpfs);
}
