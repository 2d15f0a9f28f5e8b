//! Durability: concurrent reports, `kill -9` of the server in the middle, restart. Every
//! report that got a 201 is on disk, no batch is half-written, and SQLite's integrity check
//! passes.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{client_builder, command, valid_job, wait_for_listening, with, ADMIN_TOKEN};
use serde_json::{json, Value};

const BATCH: usize = 50;

fn start(dir: &std::path::Path) -> (Child, String) {
    let mut child = command(dir)
        .env("BACKUP_MONITOR_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("BACKUP_MONITOR_AUTH_RATE_LIMIT_PER_SECOND", "1000000")
        .env("BACKUP_MONITOR_AUTH_RATE_LIMIT_BURST", "1000000")
        .args(["--log-format", "json", "serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _) = wait_for_listening(&mut child);
    (child, format!("http://{addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_report_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start(dir.path());
    let client = client_builder(Some(ADMIN_TOKEN))
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let mut job_ids = Vec::new();
    for i in 0..8 {
        let job: Value = client
            .post(format!("{base}/api/v1/jobs/"))
            .json(&with(
                valid_job(),
                json!({"database_name": format!("db{i}")}),
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        job_ids.push(job["id"].as_i64().unwrap());
    }

    // Reporters: single reports and batches, each with a unique hash, as fast as they can.
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for worker in 0..12usize {
        let (client, base, stop, jobs) =
            (client.clone(), base.clone(), stop.clone(), job_ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut acknowledged: Vec<(i64, String)> = Vec::new();
            let mut batches: Vec<(String, bool)> = Vec::new();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let job = jobs[n % jobs.len()];
                if worker % 4 == 0 {
                    let marker = format!("w{worker}-b{n}");
                    let items: Vec<Value> = (0..BATCH)
                        .map(|k| json!({"expected_job_id": job, "status": "success",
                                        "backup_hash": format!("{marker}-{k}"),
                                        "backup_timestamp_utc": format!("2026-01-01T00:00:{:02}.{:06}Z", k % 60, n)}))
                        .collect();
                    let sent = client.post(format!("{base}/api/v1/entries/batch")).json(&items).send().await;
                    let ok = matches!(&sent, Ok(r) if r.status() == 201);
                    batches.push((marker, ok));
                } else {
                    let hash = format!("w{worker}-r{n}");
                    let sent = client
                        .post(format!("{base}/api/v1/entries/"))
                        .json(&json!({"expected_job_id": job, "status": "success", "backup_hash": hash,
                                      "backup_timestamp_utc": format!("2026-02-01T00:00:00.{:06}Z", n)}))
                        .send()
                        .await;
                    if let Ok(response) = sent {
                        if response.status() == 201 {
                            if let Ok(entry) = response.json::<Value>().await {
                                acknowledged.push((entry["id"].as_i64().unwrap(), hash));
                            }
                        }
                    }
                }
                if n > 20_000 {
                    break;
                }
            }
            (acknowledged, batches)
        }));
    }

    // Let them run, then kill the server without warning.
    let started = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    let mut batches = Vec::new();
    for task in tasks {
        let (a, b) = task.await.unwrap();
        acknowledged.extend(a);
        batches.extend(b);
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        acknowledged.len() > 50,
        "too few reports before the kill: {}",
        acknowledged.len()
    );

    // Restart on the same file: it opens, recovers the WAL, and serves.
    let (mut again, base) = start(dir.path());
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    again.kill().unwrap();
    again.wait().unwrap();

    let conn = rusqlite::Connection::open(dir.path().join("backup-monitor.db")).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let stored: BTreeMap<i64, String> = {
        let mut stmt = conn.prepare("SELECT id, backup_hash FROM entries").unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get::<_, String>(1)?)))
            .unwrap();
        rows.map(Result::unwrap).collect()
    };
    for (id, hash) in &acknowledged {
        assert_eq!(
            stored.get(id),
            Some(hash),
            "acknowledged entry {id} ({hash}) was lost"
        );
    }
    let mut whole = 0;
    for (marker, ok) in &batches {
        let prefix = format!("{marker}-");
        let count = stored.values().filter(|h| h.starts_with(&prefix)).count();
        assert!(
            count == 0 || count == BATCH,
            "batch {marker} is half-written: {count} of {BATCH}"
        );
        if *ok {
            assert_eq!(count, BATCH, "acknowledged batch {marker} was lost");
            whole += 1;
        }
    }
    println!(
        "{} reports and {whole} batches acknowledged before kill -9; all on disk",
        acknowledged.len()
    );
}
