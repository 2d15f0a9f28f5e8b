//! Upgrades never strand a user's history: a database made by each earlier schema version
//! (`tests/fixtures/schema-v<N>.db`, N = 1…18) is opened by the current service, which
//! migrates it to whatever version is latest, and everything it held is still there and
//! still works: jobs, entries, the entry counts, alerts, tokens, the badge secret, and what
//! later versions added where a fixture has it: runs and content checks (8), agent alerts
//! (8), ping keys (10), snoozes and reminders (11), deliveries (12).
//!
//! The fixtures are small committed files (512-byte pages, 9 to 33 KB each). They are made
//! by [`regenerate_fixtures`], which applies the migrations up to N exactly as that version
//! did (the migration files never change once released; foreign keys off, as `Db::migrate`
//! runs them) and writes the rows with the columns and encodings the code of that version
//! wrote (instants in microseconds, `notify_emails` as a JSON array, tokens as the SHA-256
//! hex of their secret, a cron job's seed fields from its first slot, a run's start closed
//! by its finish, an alert's email delivery). Regenerate them, e.g. after adding a version to [`MIGRATION_SQL`],
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
use serde_json::{json, Value};

use common::{
    at, client_with, command, hash_secret, migrated_db, open_db, spawn_app_in, total_count, Ran,
};

/// The migrations of the schema versions that have fixtures, in order.
const MIGRATION_SQL: [&str; 18] = [
    include_str!("../src/db/migrations/0001_jobs_and_entries.sql"),
    include_str!("../src/db/migrations/0002_scheduler_and_alerts.sql"),
    include_str!("../src/db/migrations/0003_tokens.sql"),
    include_str!("../src/db/migrations/0004_installation.sql"),
    include_str!("../src/db/migrations/0005_entry_counts.sql"),
    include_str!("../src/db/migrations/0006_next_due.sql"),
    include_str!("../src/db/migrations/0007_cron_schedules.sql"),
    include_str!("../src/db/migrations/0008_runs_and_content.sql"),
    include_str!("../src/db/migrations/0009_retention.sql"),
    include_str!("../src/db/migrations/0010_ping_keys.sql"),
    include_str!("../src/db/migrations/0011_snooze_and_reminders.sql"),
    include_str!("../src/db/migrations/0012_deliveries.sql"),
    include_str!("../src/db/migrations/0013_job_changes.sql"),
    include_str!("../src/db/migrations/0014_one_job_index.sql"),
    include_str!("../src/db/migrations/0015_newest_entry_times.sql"),
    include_str!("../src/db/migrations/0016_entry_versions.sql"),
    include_str!("../src/db/migrations/0017_checks_without_lists.sql"),
    include_str!("../src/db/migrations/0018_missing_entries_apart.sql"),
];

/// Job 1's longest run before a `hung` alert (schema version 8 on).
const MAX_DURATION_MINUTES: u32 = 180;
/// Job 1's reminders (schema version 11 on).
const REPEAT_EVERY_MINUTES: u32 = 240;
/// Job 2's snooze (schema version 11 on).
const SNOOZED_UNTIL: &str = "2027-01-04T08:00:00Z";
const SNOOZE_REASON: &str = "datacenter move";

/// A job's ping key as versions 10 on wrote it (earlier jobs get a random one on upgrade).
fn ping_key(job: i64) -> String {
    format!("{:032x}", (0xc0ff_ee00_u64 << 32) | job.unsigned_abs())
}

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
    /// A run (schema version 8 on): its id, and on a `started` entry when the report that
    /// finished it came.
    run_id: Option<&'static str>,
    finished_at: Option<&'static str>,
    /// On the report that finished a run: seconds since its start.
    duration_seconds: Option<i64>,
    /// On a success that failed a content check (its size is then 0 bytes).
    suspect_reason: Option<&'static str>,
}

/// An entry with nothing of a run or a content check.
const PLAIN: FixtureEntry = FixtureEntry {
    job: 0,
    status: "",
    at: "",
    since: 0,
    run_id: None,
    finished_at: None,
    duration_seconds: None,
    suspect_reason: None,
};

/// The run of schema version 8 on (job 1, 2026-11-24): started, then finished 12 minutes on.
const RUN_ID: &str = "5f0c3a9e1d2b4c68";
const SUSPECT_REASON: &str = "size 0 B is below the minimum of 1 B";

const ENTRIES: [FixtureEntry; 9] = [
    FixtureEntry {
        job: 1,
        status: "success",
        at: "2026-11-20T02:31:07Z",
        since: 1,
        ..PLAIN
    },
    FixtureEntry {
        job: 1,
        status: "failed",
        at: "2026-11-21T02:40:00Z",
        since: 1,
        ..PLAIN
    },
    FixtureEntry {
        job: 1,
        status: "missing",
        at: "2026-11-22T02:30:00Z",
        since: 2,
        ..PLAIN
    },
    FixtureEntry {
        job: 1,
        status: "success",
        at: "2026-11-23T02:35:00Z",
        since: 1,
        ..PLAIN
    },
    FixtureEntry {
        job: 2,
        status: "success",
        at: "2026-11-16T03:20:00Z",
        since: 1,
        ..PLAIN
    },
    FixtureEntry {
        job: 3,
        status: "success",
        at: "2026-11-24T01:31:00Z",
        since: 7,
        ..PLAIN
    },
    FixtureEntry {
        job: 2,
        status: "success",
        at: "2026-11-23T03:20:00Z",
        since: 8,
        suspect_reason: Some(SUSPECT_REASON),
        ..PLAIN
    },
    FixtureEntry {
        job: 1,
        status: "started",
        at: "2026-11-24T02:30:02Z",
        since: 8,
        run_id: Some(RUN_ID),
        finished_at: Some("2026-11-24T02:42:02Z"),
        ..PLAIN
    },
    FixtureEntry {
        job: 1,
        status: "success",
        at: "2026-11-24T02:42:02Z",
        since: 8,
        run_id: Some(RUN_ID),
        duration_seconds: Some(720),
        ..PLAIN
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
        if version >= 8 && id == 1 {
            conn.execute(
                "UPDATE jobs SET max_duration_minutes = ?2 WHERE id = ?1",
                params![id, MAX_DURATION_MINUTES],
            )
            .unwrap();
        }
        if version >= 10 {
            conn.execute(
                "UPDATE jobs SET ping_key = ?2 WHERE id = ?1",
                params![id, ping_key(id)],
            )
            .unwrap();
        }
        if version >= 11 && id == 1 {
            conn.execute(
                "UPDATE jobs SET repeat_every_minutes = ?2 WHERE id = ?1",
                params![id, REPEAT_EVERY_MINUTES],
            )
            .unwrap();
        }
        if version >= 11 && id == 2 {
            conn.execute(
                "UPDATE jobs SET snoozed_until_us = ?2, snooze_reason = ?3 WHERE id = ?1",
                params![id, us(SNOOZED_UNTIL), SNOOZE_REASON],
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
        let size = if entry.suspect_reason.is_some() {
            Some(0)
        } else {
            size
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
        let id = conn.last_insert_rowid();
        if version >= 8 {
            conn.execute(
                "UPDATE entries SET run_id = ?2, finished_at_us = ?3, duration_seconds = ?4, \
                 suspect_reason = ?5 WHERE id = ?1",
                params![
                    id,
                    entry.run_id,
                    entry.finished_at.map(us),
                    entry.duration_seconds,
                    entry.suspect_reason
                ],
            )
            .unwrap();
        }
        ids.push((entry.status, id));
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
            let attempts = if sent.is_some() { 1 } else { 3 };
            let next_attempt = us(created) + 600_000_000;
            conn.execute(
                "INSERT INTO alerts (job_id, kind, slot_us, entry_id, created_at_us, attempts, \
                 next_attempt_us, sent_at_us, last_error) VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    kind,
                    us(slot),
                    entry_id,
                    us(created),
                    attempts,
                    next_attempt,
                    sent.map(us),
                    error
                ],
            )
            .unwrap();
            if version >= 12 {
                deliver(
                    conn,
                    conn.last_insert_rowid(),
                    us(created),
                    attempts,
                    sent.map(us),
                    error,
                    next_attempt,
                );
            }
        }
    }
    if version >= 8 {
        // Agent lyon-1 went silent: an agent alert, speaking for job 1's late slot.
        let slot = us("2026-11-22T02:30:00Z");
        let created = us("2026-11-22T03:30:00Z");
        let sent = us("2026-11-22T03:30:05Z");
        conn.execute(
            "INSERT INTO alerts (agent_id, kind, slot_us, created_at_us, attempts, \
             next_attempt_us, sent_at_us) VALUES ('agent-lyon-1', 'agent_silent', ?1, ?2, 1, ?3, ?4)",
            params![slot, created, created + 600_000_000, sent],
        )
        .unwrap();
        let alert = conn.last_insert_rowid();
        let missing = ids.iter().find(|(s, _)| *s == "missing").map(|(_, id)| *id);
        conn.execute(
            "INSERT INTO alert_jobs (alert_id, job_id, slot_us, entry_id) VALUES (?1, 1, ?2, ?3)",
            params![alert, slot, missing],
        )
        .unwrap();
        if version >= 12 {
            deliver(
                conn,
                alert,
                created,
                1,
                Some(sent),
                None,
                created + 600_000_000,
            );
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

/// Routes alert `alert` to email at `routed` and records its delivery there, as version 12
/// did: delivered at `sent`, or failing with `error`, tried again at `next_attempt`.
fn deliver(
    conn: &Connection,
    alert: i64,
    routed: i64,
    attempts: i64,
    sent: Option<i64>,
    error: Option<&str>,
    next_attempt: i64,
) {
    conn.execute(
        "UPDATE alerts SET routed_at_us = ?2 WHERE id = ?1",
        params![alert, routed],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO deliveries (alert_id, channel, attempts, next_attempt_us, sent_at_us, \
         last_error) VALUES (?1, 'email', ?2, ?3, ?4, ?5)",
        params![
            alert,
            attempts,
            sent.is_none().then_some(next_attempt),
            sent,
            error
        ],
    )
    .unwrap();
}

/// A schema-`version` database at `path`: the migrations up to `version`, each in its
/// transaction with `user_version` set after it, as `Db::migrate` ran them; then the rows.
fn write_fixture(version: usize, path: &Path) {
    let _ = std::fs::remove_file(path);
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "PRAGMA page_size = 512; PRAGMA journal_mode = DELETE; PRAGMA foreign_keys = OFF;",
    )
    .unwrap();
    for (index, sql) in MIGRATION_SQL[..version].iter().enumerate() {
        let tx = conn.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.pragma_update(None, "user_version", i64::try_from(index + 1).unwrap())
            .unwrap();
        tx.commit().unwrap();
    }
    conn.pragma_update(None, "foreign_keys", true).unwrap();
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
        // Mostly schema by version 12 (each table and index takes a page at least).
        assert!(bytes <= 40 * 1024, "{} is {bytes} bytes", path.display());
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
        // By its first two columns, or its only one (`job_changes`, version 13).
        let columns = conn
            .prepare(&format!("SELECT * FROM \"{name}\""))
            .unwrap()
            .column_count();
        let order = if columns > 1 { "1, 2" } else { "1" };
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{name}\" ORDER BY {order}"))
            .unwrap();
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
        // …with what later versions added to a job (8: runs, 11: reminders and snoozes)…
        let max_duration = (version >= 8 && id == 1).then_some(MAX_DURATION_MINUTES);
        assert_eq!(
            job["max_duration_minutes"],
            json!(max_duration),
            "{v} job {id}"
        );
        let repeat = (version >= 11 && id == 1).then_some(REPEAT_EVERY_MINUTES);
        assert_eq!(job["repeat_every_minutes"], json!(repeat), "{v} job {id}");
        if version >= 11 && id == 2 {
            assert_eq!(
                datetime(&job["snoozed_until"]),
                at(SNOOZED_UNTIL),
                "{v}: {job}"
            );
            assert_eq!(job["snooze_reason"], SNOOZE_REASON, "{v}: {job}");
        } else {
            assert!(job["snoozed_until"].is_null(), "{v}: {job}");
            assert!(job["snooze_reason"].is_null(), "{v}: {job}");
        }
    }
    // …each with a ping key of its own: the one it had (version 10 on), or one the upgrade
    // gave it…
    let keys: Vec<String> = jobs
        .iter()
        .map(|job| {
            let url = job["ping_url"].as_str().unwrap();
            let (_, key) = url.rsplit_once("/ping/").unwrap();
            assert!(
                key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()),
                "{v}: {url}"
            );
            key.to_owned()
        })
        .collect();
    for ((id, _), key) in jobs_of(version).zip(&keys) {
        if version >= 10 {
            assert_eq!(*key, ping_key(id), "{v} job {id}");
        }
        assert_eq!(
            keys.iter().filter(|k| *k == key).count(),
            1,
            "{v}: {keys:?}"
        );
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
            // The runs and content checks of version 8 on.
            assert_eq!(entry["run_id"], json!(fixture.run_id), "{v}: {entry}");
            assert_eq!(
                entry["duration_seconds"],
                json!(fixture.duration_seconds),
                "{v}: {entry}"
            );
            assert_eq!(
                entry["suspect_reason"],
                json!(fixture.suspect_reason),
                "{v}: {entry}"
            );
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
    // …each job's newest entry of each status, which the counters keep beside each count
    // (the scheduler reads it instead of the entries), the newest there is…
    let conn = Connection::open(&path).unwrap();
    let counted: Vec<(i64, String, Option<i64>, Option<i64>)> = conn
        .prepare(
            "SELECT c.job_id, c.status, c.last_us, (SELECT max(backup_timestamp_us) \
             FROM entries e WHERE e.job_id = c.job_id AND e.status = c.status) FROM entry_counts c",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!counted.is_empty(), "{v}");
    for (job, status, kept, newest) in &counted {
        assert!(newest.is_some(), "{v}: job {job} {status}");
        assert_eq!(kept, newest, "{v}: job {job} {status}");
    }
    // …and a version of them (the writer's remembered successes are trusted by it), which
    // starts at the count and has moved with every entry written since…
    let behind: i64 = conn
        .query_row(
            "SELECT count(*) FROM entry_counts WHERE version < n",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(behind, 0, "{v}");
    // …whose status (and an alert's kind) is checked in place, with no table of the values
    // built at each insert (the definitions as every earlier version left them were found
    // and rewritten)…
    for insert in [
        "INSERT INTO entries (job_id, status, backup_timestamp_us, created_at_us) \
         VALUES (1, 'success', 0, 0)",
        "INSERT INTO alerts (job_id, kind, slot_us, created_at_us, next_attempt_us) \
         VALUES (1, 'late', 0, 0, 0)",
    ] {
        let mut explain = conn.prepare(&format!("EXPLAIN {insert}")).unwrap();
        let ops: Vec<String> = explain
            .query_map([], |r| r.get(1))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(ops.iter().any(|op| op == "Insert"), "{v}: {ops:?}");
        assert!(
            !ops.iter().any(|op| op == "OpenEphemeral"),
            "{v}: {insert}: {ops:?}"
        );
    }
    drop(conn);
    let status = get("/api/v1/status").await.unwrap();
    assert_eq!(status.status(), 200, "{v}");

    // …the alerts…
    let alerts: Vec<Value> = get("/api/v1/alerts").await.unwrap().json().await.unwrap();
    let kinds: Vec<&str> = alerts.iter().map(|a| a["kind"].as_str().unwrap()).collect();
    let expected: &[&str] = match version {
        1 => &[],
        2..=7 => &["recovered", "late", "failed"],
        _ => &["agent_silent", "recovered", "late", "failed"],
    };
    assert_eq!(kinds, expected, "{v}");
    if version >= 8 {
        let silent = &alerts[0];
        assert_eq!(silent["agent_id"], "agent-lyon-1", "{v}: {silent}");
        assert!(silent["job_id"].is_null(), "{v}: {silent}");
    }
    // …each alert sent by email before channels (version 12) still delivered by email…
    for alert in alerts.iter().filter(|a| !a["sent_at"].is_null()) {
        let deliveries = alert["deliveries"].as_array().unwrap();
        assert_eq!(deliveries.len(), 1, "{v}: {alert}");
        assert_eq!(deliveries[0]["channel"], "email", "{v}: {alert}");
        assert_eq!(deliveries[0]["sent_at"], alert["sent_at"], "{v}: {alert}");
        assert!(deliveries[0]["next_attempt_at"].is_null(), "{v}: {alert}");
    }
    let sent = alerts.iter().filter(|a| !a["sent_at"].is_null()).count();
    assert_eq!(sent, expected.len().saturating_sub(1), "{v}: {alerts:?}");

    // …the ping URLs answer: job 1's key finds it and stores a success (and, the agent
    // having been silent, says it is back)…
    let pinged = client_with(None)
        .get(app.url(&format!("/ping/{}", keys[0])))
        .send()
        .await
        .unwrap();
    assert_eq!(pinged.status(), 200, "{v}");
    assert_eq!(pinged.text().await.unwrap(), "OK", "{v}");
    let response = get("/api/v1/entries/by_job/1").await.unwrap();
    let before = entries_of(version).filter(|e| e.job == 1).count();
    assert_eq!(
        total_count(&response),
        i64::try_from(before + 1).unwrap(),
        "{v}"
    );
    let listed: Vec<Value> = response.json().await.unwrap();
    assert_eq!(listed[0]["status"], "success", "{v}: {listed:?}");
    if version >= 8 {
        let alerts: Vec<Value> = get("/api/v1/alerts").await.unwrap().json().await.unwrap();
        assert_eq!(alerts[0]["kind"], "agent_back", "{v}: {alerts:?}");
        assert_eq!(alerts[0]["agent_id"], "agent-lyon-1", "{v}: {alerts:?}");
    }

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
