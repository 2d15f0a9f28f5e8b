//! `backup-monitor backup --output FILE` against a running service, and the README's restore
//! steps, run as a sysadmin would.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::common::{command, spawn_app, spawn_app_in, total_count, Ran, Role};

/// Runs `backup-monitor --database DB backup ARGS…` in `dir`, without blocking the runtime.
async fn backup(dir: &Path, db: &Path, args: &[&str]) -> Ran {
    let mut cmd = command(dir);
    cmd.arg("--database").arg(db).arg("backup").args(args);
    tokio::process::Command::from(cmd)
        .output()
        .await
        .unwrap()
        .into()
}

/// The files of `dir`, by name.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn rfc3339(minutes_ago: i64) -> String {
    (Utc::now() - Duration::minutes(minutes_ago)).to_rfc3339()
}

#[tokio::test]
async fn backup_copies_the_live_database_while_reports_keep_being_stored() {
    // Arrange: a service with history, and a client reporting for as long as the backup runs.
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    for minutes in 1..=50 {
        app.report(job, "success", &rfc3339(minutes)).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let reporting = {
        let (client, url, stop) = (
            app.client.clone(),
            app.url("/api/v1/entries/"),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let body = json!({"expected_job_id": job, "status": "success",
                    "backup_timestamp_utc": rfc3339(60), "backup_hash": format!("sha256:{n:064x}")});
                let response = client.post(&url).json(&body).send().await.unwrap();
                statuses.push(response.status().as_u16());
            }
            statuses
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let out_dir = tempfile::tempdir().unwrap();

    // Act
    let ran = backup(out_dir.path(), &app.db_path, &["--output", "copy.db"]).await;
    stop.store(true, Ordering::SeqCst);
    let statuses = reporting.await.unwrap();

    // Assert: the copy is in place, alone, private and whole; no report was refused.
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert!(
        statuses.iter().all(|&s| s == 201),
        "reports refused: {statuses:?}"
    );
    assert!(!statuses.is_empty());
    let copy = out_dir.path().join("copy.db");
    let bytes = std::fs::metadata(&copy).unwrap().len();
    let shown = format!(
        "wrote {}: {bytes} bytes",
        copy.canonicalize().unwrap().display()
    );
    assert!(ran.stdout.starts_with(&shown), "{} vs {shown}", ran.stdout);
    assert!(ran.stdout.contains("integrity check ok"), "{}", ran.stdout);
    assert_eq!(ran.stdout.lines().count(), 1, "{}", ran.stdout);
    assert_eq!(
        names(out_dir.path()),
        ["copy.db"],
        "no partial file, no -wal"
    );
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");

    // The copy is a database this binary serves: restore it beside and read it back.
    let restored = tempfile::tempdir().unwrap();
    std::fs::copy(&copy, restored.path().join("test.db")).unwrap();
    let second = spawn_app_in(restored, |_| {}).await;
    let listed = second
        .get(&format!("/api/v1/entries/by_job/{job}?limit=1"))
        .await;
    let stored = total_count(&listed);
    let all = app
        .get(&format!("/api/v1/entries/by_job/{job}?limit=1"))
        .await;
    assert!(
        (50..=total_count(&all)).contains(&stored),
        "{stored} entries in the copy"
    );
}

#[tokio::test]
async fn backup_replaces_an_existing_file_only_with_force() {
    // Arrange
    let app = spawn_app().await;
    app.create_job(json!({})).await;
    let out_dir = tempfile::tempdir().unwrap();
    let precious = out_dir.path().join("copy.db");
    std::fs::write(&precious, "yesterday's copy").unwrap();

    // Act
    let refused = backup(out_dir.path(), &app.db_path, &["--output", "copy.db"]).await;
    let forced = backup(
        out_dir.path(),
        &app.db_path,
        &["--output", "copy.db", "--force"],
    )
    .await;

    // Assert
    assert_eq!(refused.code, 1, "{}", refused.stdout);
    assert_eq!(
        refused.stderr.trim(),
        "error: copy.db exists: give --force to replace it"
    );
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(names(out_dir.path()), ["copy.db"]);
    let header = std::fs::read(&precious).unwrap();
    assert!(
        header.starts_with(b"SQLite format 3\0"),
        "the copy replaced it"
    );
}

#[tokio::test]
async fn backup_refuses_what_it_cannot_do_in_one_clear_line() {
    let app = spawn_app().await;
    let db = app.db_path.display().to_string();
    let out_dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(out_dir.path().join("sub")).unwrap();
    let cases: [(&str, &[&str], &str); 6] = [
        (
            &db,
            &["--output", &db, "--force"],
            "is the database itself (or one of its files)",
        ),
        (
            &db,
            &["--output", &format!("{db}-wal"), "--force"],
            "is the database itself (or one of its files)",
        ),
        (&db, &["--output", "sub"], "sub is a directory"),
        (
            &db,
            &["--output", "nowhere/copy.db"],
            "directory nowhere does not exist",
        ),
        ("nothing.db", &["--output", "copy.db"], "does not exist"),
        (&db, &["--output", "sub/.."], "give the copy's file name"),
    ];
    for (database, args, expected) in cases {
        let ran = backup(out_dir.path(), Path::new(database), args).await;
        assert_eq!(ran.code, 1, "{args:?}: {}", ran.stderr);
        assert!(
            ran.stderr.starts_with("error: ") && ran.stderr.contains(expected),
            "{args:?}: {:?} should say {expected:?}",
            ran.stderr
        );
        assert_eq!(ran.stderr.trim_end().lines().count(), 1, "{}", ran.stderr);
        assert_eq!(names(out_dir.path()), ["sub"], "{args:?} left a file");
    }
    // The service's database is untouched and still serves.
    assert_eq!(app.get("/api/v1/jobs/").await.status(), 200);
}

#[tokio::test]
async fn the_readmes_restore_steps_bring_back_the_copy() {
    // Arrange: history and a token in the copy; more reports after it.
    let mut app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    for minutes in 1..=3 {
        app.report(job, "success", &rfc3339(minutes)).await;
    }
    let viewer = app.token(Role::Viewer, None);
    let copies = tempfile::tempdir().unwrap();
    let ran = backup(copies.path(), &app.db_path, &["--output", "copy.db"]).await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    for minutes in 4..=5 {
        app.report(job, "failed", &rfc3339(minutes)).await;
    }

    // Act: stop the service, copy the file back, remove -wal and -shm, start, check.
    let dir = std::mem::replace(&mut app.dir, tempfile::tempdir().unwrap());
    let db: PathBuf = app.db_path.clone();
    app.stop().await;
    // The service is stopped when its last connection has closed: SQLite then checkpoints
    // and removes the write-ahead log (a connection still closing after the copy below
    // would write the old log's pages over it). A service stopped by systemd is gone.
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    std::fs::copy(copies.path().join("copy.db"), &db).unwrap();
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let restored = spawn_app_in(dir, |_| {}).await;
    let checked: Ran = command(copies.path())
        .arg("--database")
        .arg(&db)
        .arg("check")
        .output()
        .unwrap()
        .into();

    // Assert: the copy's state, its token, and `check` reads it.
    let listed = restored.get(&format!("/api/v1/entries/by_job/{job}")).await;
    assert_eq!(total_count(&listed), 3);
    let entries: Vec<Value> = listed.json().await.unwrap();
    assert!(entries.iter().all(|e| e["status"] == "success"));
    let as_viewer = crate::common::client_with(Some(&viewer))
        .get(restored.url("/api/v1/jobs/"))
        .send()
        .await
        .unwrap();
    assert_eq!(as_viewer.status(), 200);
    assert!(
        checked.stdout.starts_with("BACKUP OK"),
        "{} {}",
        checked.stdout,
        checked.stderr
    );
    assert_eq!(checked.code, 0);
}
