//! Retention (DESIGN §14): old entries and alerts go, each job's latest success and latest
//! failure stay however old, the counts follow, and the service prunes on its own.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{json, Value};

use crate::common::{
    at, migrated_db, spawn_app, spawn_app_in, total_count, Pruning, TestApp, BATCH, CHUNK,
};

const NOW: &str = "2026-11-30T12:00:00Z";

/// Creates a job named `name`; returns its id.
async fn job(app: &TestApp, name: &str) -> i64 {
    app.create_job(json!({ "database_name": name })).await["id"]
        .as_i64()
        .unwrap()
}

/// Stores an entry of `job` straight in the database (as old history would be), returns
/// its id.
fn entry(app: &TestApp, job: i64, status: &str, when: &str) -> i64 {
    let db = app.db();
    let conn = db.conn().unwrap();
    conn.execute(
        "INSERT INTO entries (job_id, status, backup_timestamp_us, created_at_us) VALUES (?1, ?2, ?3, ?3)",
        (job, status, at(when).timestamp_micros()),
    )
    .unwrap();
    conn.last_insert_rowid()
}

/// Queues an alert of `job` created at `when`, pointing at `entry`; returns its id.
fn alert(app: &TestApp, job: i64, kind: &str, when: &str, entry: Option<i64>) -> i64 {
    let db = app.db();
    let conn = db.conn().unwrap();
    let us = at(when).timestamp_micros();
    conn.execute(
        "INSERT INTO alerts (job_id, kind, slot_us, entry_id, created_at_us, next_attempt_us) \
         VALUES (?1, ?2, ?3, ?4, ?3, ?3)",
        (job, kind, us, entry),
    )
    .unwrap();
    conn.last_insert_rowid()
}

/// The ids of a job's entries, through the API, and the listing's X-Total-Count.
async fn entry_ids(app: &TestApp, job: i64) -> (BTreeSet<i64>, i64) {
    let response = app
        .get(&format!("/api/v1/entries/by_job/{job}?limit=1000"))
        .await;
    assert_eq!(response.status(), 200);
    let total = total_count(&response);
    let body: Vec<Value> = response.json().await.unwrap();
    (
        body.iter().map(|e| e["id"].as_i64().unwrap()).collect(),
        total,
    )
}

/// The ids of every alert, and the entry each points at, straight from the database.
fn alerts(app: &TestApp) -> Vec<(i64, Option<i64>)> {
    let db = app.db();
    let conn = db.conn().unwrap();
    let mut stmt = conn
        .prepare("SELECT id, entry_id FROM alerts ORDER BY id")
        .unwrap();
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    rows
}

/// Each job's entries per status as counted by the triggers, against a real count.
fn counts_agree(app: &TestApp) {
    let db = app.db();
    let conn = db.conn().unwrap();
    let wrong: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT job_id, status, count(*) AS n FROM entries GROUP BY 1, 2) e \
             FULL JOIN (SELECT job_id, status, n FROM entry_counts WHERE n != 0) c USING (job_id, status) \
             WHERE e.n IS NOT c.n",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(wrong, 0, "entry_counts disagrees with the entries");
}

fn ids(list: &[i64]) -> BTreeSet<i64> {
    list.iter().copied().collect()
}

#[tokio::test]
async fn old_entries_go_but_each_jobs_latest_success_and_latest_failure_stay() {
    // Arrange: job A has a recent success, old successes, old failures and an old missing
    // slot; job B has only old history; job C nothing old.
    let app = spawn_app().await;
    let a = job(&app, "a").await;
    let b = job(&app, "b").await;
    let c = job(&app, "c").await;
    let a_old_success = entry(&app, a, "success", "2024-01-01T02:31:00Z");
    let a_old_success2 = entry(&app, a, "success", "2024-01-02T02:31:00Z");
    let a_old_failed = entry(&app, a, "failed", "2024-01-03T02:31:00Z");
    let a_latest_failed = entry(&app, a, "failed", "2024-01-04T02:31:00Z");
    let a_old_missing = entry(&app, a, "missing", "2024-01-05T02:30:00Z");
    let a_recent_missing = entry(&app, a, "missing", "2026-11-20T02:30:00Z");
    let a_recent_success = entry(&app, a, "success", "2026-11-29T02:31:00Z");
    let b_old_success = entry(&app, b, "success", "2024-02-01T02:31:00Z");
    let b_latest_success = entry(&app, b, "success", "2024-02-02T02:31:00Z");
    let b_latest_failed = entry(&app, b, "failed", "2024-02-03T02:31:00Z");
    let b_old_missing = entry(&app, b, "missing", "2024-02-04T02:30:00Z");
    // A success dated in the future is not the latest yet: the old one still counts.
    let b_future_success = entry(&app, b, "success", "2027-01-01T02:31:00Z");
    let c_recent = entry(&app, c, "failed", "2026-11-29T02:31:00Z");

    // Act
    let outcome = app.prune(at(NOW), 400);

    // Assert
    assert_eq!(outcome.entries_deleted, 6, "{outcome:?}");
    assert_eq!(
        entry_ids(&app, a).await,
        (
            ids(&[a_latest_failed, a_recent_missing, a_recent_success]),
            3
        )
    );
    assert_eq!(
        entry_ids(&app, b).await,
        (
            ids(&[b_latest_success, b_latest_failed, b_future_success]),
            3
        )
    );
    assert_eq!(entry_ids(&app, c).await, (ids(&[c_recent]), 1));
    for gone in [
        a_old_success,
        a_old_success2,
        a_old_failed,
        a_old_missing,
        b_old_success,
        b_old_missing,
    ] {
        assert_eq!(
            app.get(&format!("/api/v1/entries/{gone}")).await.status(),
            404,
            "entry {gone} should be gone"
        );
    }
    counts_agree(&app);
    let total = app.get("/api/v1/entries/?limit=1").await;
    assert_eq!(total_count(&total), 7, "the global count follows");

    // Job B's status still says when it last worked (and its state is unchanged).
    app.set_now(Some(at(NOW)));
    let status: Vec<Value> = app.get("/api/v1/status").await.json().await.unwrap();
    let b_status = status.iter().find(|s| s["job_id"] == b).unwrap();
    assert_eq!(b_status["last_success_utc"], "2024-02-02T02:31:00Z");

    // A second run at the same time finds nothing more.
    assert_eq!(app.prune(at(NOW), 400).entries_deleted, 0);
}

#[tokio::test]
async fn old_alerts_go_but_each_jobs_latest_alert_stays_and_recovery_still_answers_it() {
    // Arrange: job A's problem was alerted long ago and never answered; job B's old problem
    // was answered by an old recovered alert.
    let app = spawn_app().await;
    let a = job(&app, "a").await;
    let b = job(&app, "b").await;
    let a_missing = entry(&app, a, "missing", "2024-01-05T02:30:00Z");
    let a_failed = entry(&app, a, "failed", "2024-01-06T02:31:00Z");
    let a_late = alert(&app, a, "late", "2024-01-05T03:30:00Z", Some(a_missing));
    let a_open = alert(&app, a, "failed", "2024-01-06T02:31:00Z", Some(a_failed));
    // The latest failure of A is newer: its old failed entry goes, the alert stays.
    entry(&app, a, "failed", "2026-11-01T02:31:00Z");
    let b_failed = alert(&app, b, "failed", "2024-03-01T02:31:00Z", None);
    let b_recovered = alert(&app, b, "recovered", "2024-03-02T02:31:00Z", None);
    let b_recent = alert(&app, b, "late", "2026-11-20T03:30:00Z", None);

    // Act
    let outcome = app.prune(at(NOW), 400);

    // Assert
    assert_eq!(outcome.alerts_deleted, 3, "{outcome:?}");
    assert_eq!(alerts(&app), vec![(a_open, None), (b_recent, None)]);
    for gone in [a_late, b_failed, b_recovered] {
        assert!(alerts(&app).iter().all(|(id, _)| *id != gone));
    }
    // Job A's problem is still open: a success now answers it with a recovered alert.
    app.set_now(Some(at(NOW)));
    app.report(a, "success", "2026-11-30T02:31:00Z").await;
    let listed: Vec<Value> = app.get("/api/v1/alerts").await.json().await.unwrap();
    assert_eq!(listed[0]["kind"], "recovered", "{listed:?}");
    assert_eq!(listed[0]["job_id"], a);
}

#[tokio::test]
async fn keep_days_0_keeps_everything() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    for day in 1..=5 {
        entry(&app, job, "success", &format!("2001-01-0{day}T02:31:00Z"));
    }
    alert(&app, job, "late", "2001-01-01T03:30:00Z", None);
    alert(&app, job, "late", "2001-01-02T03:30:00Z", None);
    assert_eq!(app.prune(at(NOW), 0), Default::default());
    assert_eq!(entry_ids(&app, job).await.1, 5);
    assert_eq!(alerts(&app).len(), 2);
    // And the cut is exactly keep_days back: an entry one second younger stays.
    let younger = entry(&app, job, "missing", "2025-10-26T12:00:01Z");
    let older = entry(&app, job, "missing", "2025-10-26T11:59:59Z");
    app.prune(at(NOW), 400);
    let (left, _) = entry_ids(&app, job).await;
    assert!(
        left.contains(&younger) && !left.contains(&older),
        "{left:?}"
    );
}

/// Two jobs and `n` old `missing` entries spread over them, an hour apart from 2020 on.
async fn old_history(app: &TestApp, n: usize) -> [i64; 2] {
    let jobs = [job(app, "a").await, job(app, "b").await];
    let db = app.db();
    let mut conn = db.conn().unwrap();
    let tx = conn.transaction().unwrap();
    let start = at("2020-01-01T00:00:00Z").timestamp_micros();
    for i in 0..n {
        let us = start + i64::try_from(i).unwrap() * 3_600_000_000;
        tx.execute(
            "INSERT INTO entries (job_id, status, backup_timestamp_us, created_at_us) VALUES (?1, 'missing', ?2, ?2)",
            (jobs[i % 2], us),
        )
        .unwrap();
    }
    tx.commit().unwrap();
    jobs
}

/// A run at NOW step by step, each in its own transaction with `budget`: the entries each
/// step deleted.
fn steps(app: &TestApp, budget: Duration) -> Vec<usize> {
    let db = app.db();
    let mut conn = db.conn().unwrap();
    let mut pruning = Pruning::start(&conn, at(NOW), 400).unwrap().unwrap();
    let mut deleted = Vec::new();
    loop {
        let before = pruning.outcome().entries_deleted;
        let tx = conn.transaction().unwrap();
        let more = pruning.step(&tx, budget).unwrap();
        tx.commit().unwrap();
        deleted.push(pruning.outcome().entries_deleted - before);
        if !more {
            return deleted;
        }
    }
}

#[tokio::test]
async fn each_step_deletes_a_chunk_at_most_and_a_run_goes_through_them_all() {
    // Arrange: two chunks and a half of old entries.
    let app = spawn_app().await;
    let jobs = old_history(&app, CHUNK * 5 / 2).await;

    // Act
    let deleted = steps(&app, Duration::MAX);

    // Assert
    assert_eq!(deleted, vec![CHUNK, CHUNK, CHUNK / 2]);
    counts_agree(&app);
    for job in jobs {
        assert_eq!(entry_ids(&app, job).await.1, 0);
    }
}

#[tokio::test]
async fn a_step_whose_time_is_spent_stops_after_a_batch_and_the_next_goes_on() {
    let app = spawn_app().await;
    old_history(&app, BATCH * 5 / 2).await;

    let deleted = steps(&app, Duration::ZERO);

    assert_eq!(deleted, vec![BATCH, BATCH, BATCH / 2]);
    counts_agree(&app);
}

#[tokio::test]
async fn the_service_prunes_on_its_own_at_start() {
    // Arrange: a database with a year-old history, then the service with its scheduler on
    // and 30 days of retention.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    let old_ids = {
        let db = migrated_db(&path);
        let conn = db.conn().unwrap();
        let now = Utc::now().timestamp_micros();
        conn.execute(
            "INSERT INTO jobs (database_name, agent_id_responsible, company_name, city, \
             expected_hour_utc, expected_minute_utc, backup_frequency, final_storage_path_template, \
             grace_minutes, schedule_anchor_us, created_at_us, updated_at_us) \
             VALUES ('erp', 'agent', 'acme', 'Lyon', 2, 30, 'daily', '/b/{job_id}.dump', 60, ?1, ?1, ?1)",
            [now],
        )
        .unwrap();
        let job = conn.last_insert_rowid();
        let mut ids = Vec::new();
        for days in [400, 399, 398] {
            let us = now - days * 86_400_000_000;
            conn.execute(
                "INSERT INTO entries (job_id, status, backup_timestamp_us, created_at_us) VALUES (?1, 'success', ?2, ?2)",
                (job, us),
            )
            .unwrap();
            ids.push(conn.last_insert_rowid());
        }
        ids
    };

    // Act
    let app = spawn_app_in(dir, |s| {
        s.scheduler.enabled = true;
        s.retention.keep_days = 30;
    })
    .await;

    // Assert: the two older successes go; the latest stays.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed: Vec<Value> = app
            .get("/api/v1/entries/?limit=10")
            .await
            .json()
            .await
            .unwrap();
        let left: Vec<i64> = listed.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        if left == [old_ids[2]] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {left:?} after 20 s, expected only {}",
            old_ids[2]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

#[tokio::test]
async fn metrics_show_the_database_bytes_and_the_entries_stored() {
    // Arrange
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    for when in [
        "2020-01-01T02:31:00Z",
        "2020-01-02T02:31:00Z",
        "2026-11-29T02:31:00Z",
    ] {
        app.report(job, "success", when).await;
    }

    // Act
    let before = app.get("/metrics").await.text().await.unwrap();
    app.prune(at(NOW), 400);
    let after = app.get("/metrics").await.text().await.unwrap();

    // Assert
    let sample = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
    };
    assert_eq!(sample(&before, "backup_monitor_entries_stored"), 3.0);
    assert_eq!(sample(&after, "backup_monitor_entries_stored"), 1.0);
    let bytes = sample(&after, "backup_monitor_database_bytes");
    let on_disk = std::fs::metadata(&app.db_path).unwrap().len()
        + std::fs::metadata(format!("{}-wal", app.db_path.display()))
            .map(|m| m.len())
            .unwrap_or(0);
    assert!(bytes >= 4096.0, "{bytes}");
    assert!(
        (bytes - on_disk as f64).abs() <= 1_000_000.0,
        "{bytes} against {on_disk} on disk"
    );
    for family in [
        "# TYPE backup_monitor_database_bytes gauge",
        "# TYPE backup_monitor_entries_stored gauge",
    ] {
        assert!(after.contains(family), "{family} missing");
    }
}
