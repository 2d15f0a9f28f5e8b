//! Upgrades never strand a user's history: a database made by each earlier schema version
//! (`tests/fixtures/schema-v<N>.db`, N = 1…7) is opened by the current service, which
//! migrates it to whatever version is latest, and everything it held is still there and
//! still works: jobs, entries, the entry counts, alerts, tokens, the badge secret.
//!
//! The fixtures are small committed files (512-byte pages, a few KB each). They are made by
//! [`regenerate_fixtures`], which applies the migrations up to N exactly as that version
//! did (the migration files never change once released) and writes the rows with the columns
//! and encodings the code of that version wrote (instants in microseconds, `notify_emails`
//! as a JSON array, tokens as the SHA-256 hex of their secret, a cron job's seed fields
//! from its first slot). Regenerate them, e.g. after adding a version to [`MIGRATION_SQL`],
//! with
//!
//! ```sh
//! cargo test --test migrations -- --ignored regenerate_fixtures
//! ```
//!
//! The checks do not name the latest version: a new migration must keep them passing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde_json::Value;

use common::{
    at, client_with, command, hash_secret, migrated_db, open_db, spawn_app_in, total_count, Ran,
};

/// The migrations of the schema versions that have fixtures, in order.
const MIGRATION_SQL: [&str; 7] = [
    include_str!("../src/db/migrations/0001_jobs_and_entries.sql"),
    include_str!("../src/db/migrations/0002_scheduler_and_alerts.sql"),
    include_str!("../src/db/migrations/0003_tokens.sql"),
    include_str!("../src/db/migrations/0004_installation.sql"),
    include_str!("../src/db/migrations/0005_entry_counts.sql"),
    include_str!("../src/db/migrations/0006_next_due.sql"),
    include_str!("../src/db/migrations/0007_cron_schedules.sql"),
];

const ADMIN_SECRET: &str = "fixture-admin-0123456789abcdef";
const AGENT_SECRET: &str = "fixture-agent-lyon-0123456789abcdef";
const REVOKED_SECRET: &str = "fixture-viewer-revoked-0123456789abcdef";
const BADGE_SECRET: &str = "fixture-badge-secret-0123456789abcdef";

fn fixture(version: usize) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/schema-v{version}.db"))
}

fn us(when: &str) -> i64 {
    at(when).timestamp_micros()
}

/// A job as each version stored it.
struct FixtureJob {
    database_name: &'static str,
    agent: &'static str,
    company: &'static str,
    city: &'static str,
    frequency: &'static str,
    hour: u32,
    minute: u32,
    weekday: u32,
    template: &'static str,
    grace: u32,
    notify_emails: &'static str,
    /// A cron expression and its zone (schema version 7 on).
    cron: Option<(&'static str, &'static str)>,
    since: usize,
}

const JOBS: [FixtureJob; 3] = [
    FixtureJob {
        database_name: "erp",
        agent: "agent-lyon-1",
        company: "acme",
        city: "Lyon",
        frequency: "daily",
        hour: 2,
        minute: 30,
        weekday: 0,
        template: "/backups/{company_name}/{city}/{database_name}/%Y-%m-%d.dump",
        grace: 60,
        notify_emails: "[]",
        cron: None,
        since: 1,
    },
    FixtureJob {
        database_name: "crm",
        agent: "agent-paris-1",
        company: "globex",
        city: "Paris",
        frequency: "weekly",
        hour: 3,
        minute: 15,
        weekday: 0,
        template: "/srv/{database_name}/{job_id}/%Y%m%d.sql.gz",
        grace: 120,
        notify_emails: "[\"dba@globex.example\"]",
        cron: None,
        since: 1,
    },
    FixtureJob {
        database_name: "payroll",
        agent: "agent-lyon-1",
        company: "acme",
        city: "Lyon",
        frequency: "daily",
        // 02:30 in Paris (CET) is 01:30 UTC: the seed fields of the first slot.
        hour: 1,
        minute: 30,
        weekday: 0,
        template: "/backups/{company_name}/payroll/%Y-%m-%d.dump",
        grace: 60,
        notify_emails: "[]",
        cron: Some(("30 2 * * 1-5", "Europe/Paris")),
        since: 7,
    },
];

/// An entry: its job (1-based), status, time, and whether it carries a hash and size or an
/// error; `since` is the first schema version that could hold it (`missing` entries need
/// the scheduler of version 2).
struct FixtureEntry {
    job: usize,
    status: &'static str,
    at: &'static str,
    since: usize,
}

const ENTRIES: [FixtureEntry; 6] = [
    FixtureEntry {
        job: 1,
        status: "success",
        at: "2026-11-20T02:31:07Z",
        since: 1,
    },
    FixtureEntry {
        job: 1,
        status: "failed",
        at: "2026-11-21T02:40:00Z",
        since: 1,
    },
    FixtureEntry {
        job: 1,
        status: "missing",
        at: "2026-11-22T02:30:00Z",
        since: 2,
    },
    FixtureEntry {
        job: 1,
        status: "success",
        at: "2026-11-23T02:35:00Z",
        since: 1,
    },
    FixtureEntry {
        job: 2,
        status: "success",
        at: "2026-11-16T03:20:00Z",
        since: 1,
    },
    FixtureEntry {
        job: 3,
        status: "success",
        at: "2026-11-24T01:31:00Z",
        since: 7,
    },
];

fn jobs_of(version: usize) -> impl Iterator<Item = (i64, &'static FixtureJob)> {
    JOBS.iter()
        .filter(move |j| j.since <= version)
        .zip(1..)
        .map(|(j, id)| (id, j))
}

fn entries_of(version: usize) -> impl Iterator<Item = &'static FixtureEntry> {
    ENTRIES.iter().filter(move |e| e.since <= version)
}

/// Writes the rows of a schema-`version` database, as that version's code wrote them.
fn fill(conn: &Connection, version: usize) {
    let created = us("2026-11-01T09:00:00Z");
    for (_, job) in jobs_of(version) {
        conn.execute(
            "INSERT INTO jobs (database_name, agent_id_responsible, company_name, city, \
             expected_hour_utc, expected_minute_utc, backup_frequency, final_storage_path_template, \
             expected_weekday, expected_day_of_month, grace_minutes, is_active, notify_emails, \
             schedule_anchor_us, created_at_us, updated_at_us) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 1, ?10, 1, ?11, ?12, ?12, ?12)",
            params![
                job.database_name,
                job.agent,
                job.company,
                job.city,
                job.hour,
                job.minute,
                job.frequency,
                job.template,
                job.weekday,
                job.grace,
                job.notify_emails,
                created
            ],
        )
        .unwrap();
        let id = conn.last_insert_rowid();
        if version >= 2 {
            conn.execute(
                "UPDATE jobs SET evaluated_until_us = ?2 WHERE id = ?1",
                params![id, us("2026-11-23T03:30:00Z")],
            )
            .unwrap();
        }
        if version >= 6 {
            conn.execute(
                "UPDATE jobs SET next_due_us = ?2 WHERE id = ?1",
                params![id, us("2026-11-24T03:30:00Z")],
            )
            .unwrap();
        }
        if let Some((expr, zone)) = job.cron {
            conn.execute(
                "UPDATE jobs SET schedule = ?2, timezone = ?3 WHERE id = ?1",
                params![id, expr, zone],
            )
            .unwrap();
        }
    }
    let mut ids = Vec::new();
    for (n, entry) in entries_of(version).enumerate() {
        let when = us(entry.at);
        let (hash, size, error) = match entry.status {
            "success" => (
                Some(format!("sha256:{:064x}", n + 1)),
                Some(734_003_200 + i64::try_from(n).unwrap()),
                None,
            ),
            "failed" => (None, None, Some("pg_dump: connection refused")),
            _ => (None, None, None),
        };
        conn.execute(
            "INSERT INTO entries (job_id, status, backup_timestamp_us, backup_hash, \
             backup_size_bytes, error_message, created_at_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                i64::try_from(entry.job).unwrap(),
                entry.status,
                when,
                hash,
                size,
                error,
                when + 30_000_000
            ],
        )
        .unwrap();
        ids.push((entry.status, conn.last_insert_rowid()));
    }
    if version >= 2 {
        let entry = |status: &str, nth: usize| {
            ids.iter()
                .filter(|(s, _)| *s == status)
                .nth(nth)
                .map(|(_, id)| *id)
        };
        let alerts = [
            (
                "failed",
                "2026-11-21T02:30:00Z",
                entry("failed", 0),
                "2026-11-21T02:40:31Z",
                Some("2026-11-21T02:40:35Z"),
                None,
            ),
            (
                "late",
                "2026-11-22T02:30:00Z",
                entry("missing", 0),
                "2026-11-22T03:30:00Z",
                Some("2026-11-22T03:30:04Z"),
                None,
            ),
            (
                "recovered",
                "2026-11-23T02:30:00Z",
                entry("success", 1),
                "2026-11-23T02:35:31Z",
                None,
                Some("connection refused (smtp.example.com:587)"),
            ),
        ];
        for (kind, slot, entry_id, created, sent, error) in alerts {
            conn.execute(
                "INSERT INTO alerts (job_id, kind, slot_us, entry_id, created_at_us, attempts, \
                 next_attempt_us, sent_at_us, last_error) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    kind,
                    us(slot),
                    entry_id,
                    us(created),
                    if sent.is_some() { 1 } else { 3 },
                    us(created) + 600_000_000,
                    sent.map(us),
                    error
                ],
            )
            .unwrap();
        }
    }
    if version >= 3 {
        let tokens = [
            ("first admin", "admin", None, ADMIN_SECRET, None),
            (
                "lyon agent",
                "agent",
                Some("agent-lyon-1"),
                AGENT_SECRET,
                None,
            ),
            (
                "old viewer",
                "viewer",
                None,
                REVOKED_SECRET,
                Some(us("2026-11-10T08:00:00Z")),
            ),
        ];
        for (name, role, agent, secret, revoked) in tokens {
            conn.execute(
                "INSERT INTO tokens (name, role, agent_id, secret_sha256, created_at_us, revoked_at_us) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, role, agent, hash_secret(secret), created, revoked],
            )
            .unwrap();
        }
    }
    if version >= 4 {
        conn.execute(
            "INSERT INTO installation (key, value) VALUES ('badge_secret', ?1)",
            [BADGE_SECRET],
        )
        .unwrap();
    }
}

/// A schema-`version` database at `path`: the migrations up to `version`, each in its
/// transaction with `user_version` set after it, as `Db::migrate` ran them; then the rows.
fn write_fixture(version: usize, path: &Path) {
    let _ = std::fs::remove_file(path);
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch("PRAGMA page_size = 512; PRAGMA journal_mode = DELETE;")
        .unwrap();
    for (index, sql) in MIGRATION_SQL[..version].iter().enumerate() {
        let tx = conn.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.pragma_update(None, "user_version", i64::try_from(index + 1).unwrap())
            .unwrap();
        tx.commit().unwrap();
    }
    fill(&conn, version);
    conn.execute_batch("VACUUM").unwrap();
}

#[test]
#[ignore = "writes tests/fixtures/schema-v*.db: run by hand (see the top of this file)"]
fn regenerate_fixtures() {
    for version in 1..=MIGRATION_SQL.len() {
        write_fixture(version, &fixture(version));
    }
}

#[test]
fn the_fixtures_are_small_and_each_is_the_version_its_name_says() {
    for version in 1..=MIGRATION_SQL.len() {
        let path = fixture(version);
        let bytes = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .len();
        assert!(bytes <= 24 * 1024, "{} is {bytes} bytes", path.display());
        let conn =
            Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let stored: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            stored,
            i64::try_from(version).unwrap(),
            "{}",
            path.display()
        );
    }
}

/// The generator makes what is committed: the same rows (byte-identical files are not
/// expected across SQLite versions).
#[test]
fn the_committed_fixtures_hold_what_the_generator_writes() {
    let dir = tempfile::tempdir().unwrap();
    for version in 1..=MIGRATION_SQL.len() {
        let fresh = dir.path().join(format!("v{version}.db"));
        write_fixture(version, &fresh);
        assert_eq!(
            dump(&fixture(version)),
            dump(&fresh),
            "schema-v{version}.db is stale: regenerate it (see the top of tests/migrations.rs)"
        );
    }
}

/// Every row of every table, and the schema, as text.
fn dump(path: &Path) -> Vec<String> {
    let conn =
        Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let mut out: Vec<String> = Vec::new();
    let tables: Vec<(String, String)> = {
        let mut stmt = conn
            .prepare("SELECT name, ifnull(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        rows
    };
    for (name, sql) in tables {
        out.push(sql.clone());
        if !sql.starts_with("CREATE TABLE") {
            continue;
        }
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{name}\" ORDER BY 1, 2"))
            .unwrap();
        let columns = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..columns)
                    .map(|i| {
                        r.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap();
        for row in rows {
            out.push(format!("{name}: {}", row.unwrap().join(", ")));
        }
    }
    out
}

fn datetime(value: &Value) -> DateTime<Utc> {
    at(value.as_str().unwrap())
}

#[tokio::test]
async fn every_earlier_schema_version_migrates_with_its_history_intact() {
    for version in 1..=MIGRATION_SQL.len() {
        upgrade_keeps_history(version).await;
    }
}

async fn upgrade_keeps_history(version: usize) {
    // Arrange: the fixture as a user's database.
    let v = format!("schema v{version}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test.db");
    std::fs::copy(fixture(version), &path).unwrap();

    // Act: the service opens it (and migrates it to the latest version).
    let mut app = spawn_app_in(dir, |_| {}).await;

    // Assert: the database is current…
    open_db(&path)
        .ensure_current()
        .unwrap_or_else(|e| panic!("{v}: {e}"));
    let token = if version >= 3 {
        ADMIN_SECRET
    } else {
        common::ADMIN_TOKEN
    };
    let admin = client_with(Some(token));
    let get = |path: &str| admin.get(app.url(path)).send();

    // …the jobs are the same jobs…
    let jobs: Vec<Value> = get("/api/v1/jobs/").await.unwrap().json().await.unwrap();
    assert_eq!(jobs.len(), jobs_of(version).count(), "{v}: {jobs:?}");
    for ((id, expected), job) in jobs_of(version).zip(&jobs) {
        assert_eq!(job["id"], id, "{v}");
        assert_eq!(job["database_name"], expected.database_name, "{v}");
        assert_eq!(job["agent_id_responsible"], expected.agent, "{v}");
        assert_eq!(job["company_name"], expected.company, "{v}");
        assert_eq!(job["city"], expected.city, "{v}");
        assert_eq!(job["final_storage_path_template"], expected.template, "{v}");
        assert_eq!(job["grace_minutes"], expected.grace, "{v}");
        assert_eq!(
            job["notify_emails"].to_string(),
            expected.notify_emails.replace(' ', ""),
            "{v}"
        );
        assert_eq!(
            datetime(&job["created_at"]),
            at("2026-11-01T09:00:00Z"),
            "{v}"
        );
        match expected.cron {
            None => {
                assert_eq!(job["backup_frequency"], expected.frequency, "{v}");
                assert_eq!(job["expected_hour_utc"], expected.hour, "{v}");
                assert_eq!(job["expected_minute_utc"], expected.minute, "{v}");
            }
            Some((expr, zone)) => {
                assert_eq!(job["schedule"], expr, "{v}");
                assert_eq!(job["timezone"], zone, "{v}");
            }
        }
    }

    // …with every entry, and counts that agree with them…
    let mut total = 0;
    for (id, _) in jobs_of(version) {
        let response = get(&format!("/api/v1/entries/by_job/{id}")).await.unwrap();
        let counted = total_count(&response);
        let listed: Vec<Value> = response.json().await.unwrap();
        let mut expected: Vec<&FixtureEntry> = entries_of(version)
            .filter(|e| e.job == usize::try_from(id).unwrap())
            .collect();
        expected.reverse();
        assert_eq!(
            counted,
            i64::try_from(expected.len()).unwrap(),
            "{v} job {id}"
        );
        assert_eq!(listed.len(), expected.len(), "{v} job {id}");
        for (entry, fixture) in listed.iter().zip(expected) {
            assert_eq!(entry["status"], fixture.status, "{v} job {id}");
            assert_eq!(
                datetime(&entry["backup_timestamp_utc"]),
                at(fixture.at),
                "{v}"
            );
            if fixture.status == "success" {
                assert!(
                    entry["backup_hash"]
                        .as_str()
                        .is_some_and(|h| h.starts_with("sha256:")),
                    "{v}: {entry}"
                );
            }
        }
        total += counted;
    }
    let all = get("/api/v1/entries/?limit=1").await.unwrap();
    assert_eq!(total_count(&all), total, "{v}");
    assert_eq!(
        total,
        i64::try_from(entries_of(version).count()).unwrap(),
        "{v}"
    );
    let status = get("/api/v1/status").await.unwrap();
    assert_eq!(status.status(), 200, "{v}");

    // …the alerts…
    let alerts: Vec<Value> = get("/api/v1/alerts").await.unwrap().json().await.unwrap();
    let kinds: Vec<&str> = alerts.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    let expected: &[&str] = if version >= 2 {
        &["recovered", "late", "failed"]
    } else {
        &[]
    };
    assert_eq!(kinds, expected, "{v}");

    // …the tokens, which still let in whom they let in…
    if version >= 3 {
        let agent = client_with(Some(AGENT_SECRET));
        let seen: Vec<Value> = agent
            .get(app.url("/api/v1/jobs/"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            !seen.is_empty()
                && seen
                    .iter()
                    .all(|j| j["agent_id_responsible"] == "agent-lyon-1"),
            "{v}: {seen:?}"
        );
        let other = agent.get(app.url("/api/v1/jobs/2")).send().await.unwrap();
        assert_eq!(other.status(), 403, "{v}");
        let revoked = client_with(Some(REVOKED_SECRET))
            .get(app.url("/api/v1/jobs/"))
            .send()
            .await
            .unwrap();
        assert_eq!(revoked.status(), 401, "{v}");
    }

    // …the badge secret (badge URLs handed out before the upgrade keep working)…
    if version >= 4 {
        let db = migrated_db(&path);
        let conn = db.conn().unwrap();
        let secret: String = conn
            .query_row(
                "SELECT value FROM installation WHERE key = 'badge_secret'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(secret, BADGE_SECRET, "{v}");
    }
    let dir = std::mem::replace(&mut app.dir, tempfile::tempdir().unwrap());
    app.stop().await;

    // …and `check` reads it.
    let checked: Ran = command(&std::env::temp_dir())
        .arg("--database")
        .arg(&path)
        .arg("check")
        .output()
        .unwrap()
        .into();
    assert!(
        checked.stdout.starts_with("BACKUP "),
        "{v}: {} {}",
        checked.stdout,
        checked.stderr
    );
    assert_ne!(checked.code, 3, "{v}");
    drop(dir);
}
