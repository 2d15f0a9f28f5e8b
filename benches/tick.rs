//! The scheduler tick over many jobs and entries: `cargo bench --bench tick`.
//!
//! Seeds a temporary database with JOBS daily jobs (default 10,000) and ENTRIES_PER_JOB
//! past reports each (default 100, so 1,000,000 entries), then times:
//! - a *due* tick: every job's slot has just fallen due; half of them were reported, so the
//!   tick checks 10,000 windows and writes 5,000 `missing` entries and 5,000 alerts;
//! - a *quiet* tick a minute later: nothing new is due (the common case).
//!
//! Environment: BENCH_JOBS, BENCH_ENTRIES_PER_JOB, BENCH_ROUNDS (default 5).

use std::time::{Duration, Instant};

use backup_monitor::db::{jobs, Db};
use backup_monitor::domain::job::Job;
use backup_monitor::domain::schedule::Frequency;
use backup_monitor::scheduler;
use chrono::{DateTime, TimeZone, Utc};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn job(i: usize, now: DateTime<Utc>) -> Job {
    Job {
        id: 0,
        database_name: format!("db{i}"),
        agent_id_responsible: format!("agent{}", i % 100),
        company_name: format!("company{}", i % 500),
        city: format!("city{}", i % 50),
        expected_hour_utc: 2,
        expected_minute_utc: 30,
        backup_frequency: Frequency::Daily,
        final_storage_path_template: "/b/{company_name}/{database_name}/%Y%m%d.dump".to_owned(),
        expected_weekday: 0,
        expected_day_of_month: 1,
        grace_minutes: 60,
        is_active: true,
        notify_emails: Vec::new(),
        created_at: now,
        updated_at: now,
    }
}

/// Seeds the database; returns the instant of the due tick.
fn seed(db: &Db, job_count: usize, per_job: usize) -> DateTime<Utc> {
    let created = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let first_slot = Utc
        .with_ymd_and_hms(2026, 1, 1, 2, 30, 0)
        .single()
        .unwrap_or_default();
    let day = chrono::Duration::days(1);
    let due_slot = first_slot + day * i32::try_from(per_job).unwrap_or(i32::MAX);
    let mut conn = db.conn().expect("connection");
    let tx = conn.transaction().expect("transaction");
    {
        let mut entry = tx
            .prepare(
                "INSERT INTO entries (job_id, status, backup_timestamp_us, backup_hash, backup_size_bytes, created_at_us) \
                 VALUES (?1, 'success', ?2, 'sha256:00', 1000, ?2)",
            )
            .expect("prepare");
        for i in 0..job_count {
            let stored = jobs::insert(&tx, &job(i, created), created).expect("job");
            for d in 0..per_job {
                let at =
                    first_slot + day * i32::try_from(d).unwrap_or(0) + chrono::Duration::minutes(5);
                entry
                    .execute((stored.id, at.timestamp_micros()))
                    .expect("entry");
            }
            // Half of the jobs report the slot that is about to fall due.
            if i % 2 == 0 {
                let at = due_slot + chrono::Duration::minutes(5);
                entry
                    .execute((stored.id, at.timestamp_micros()))
                    .expect("entry");
            }
        }
        // Every slot before the due one counts as evaluated already.
        tx.execute(
            "UPDATE jobs SET evaluated_until_us = ?1",
            [(due_slot - day + chrono::Duration::minutes(60)).timestamp_micros()],
        )
        .expect("evaluated");
    }
    tx.commit().expect("commit");
    due_slot + chrono::Duration::minutes(60)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too: both run this.
    let job_count = env_or("BENCH_JOBS", 10_000);
    let per_job = env_or("BENCH_ENTRIES_PER_JOB", 100);
    let rounds = env_or("BENCH_ROUNDS", 5).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut due_times = Vec::new();
    let mut quiet_times = Vec::new();
    let mut outcome = scheduler::TickOutcome::default();
    for round in 0..rounds {
        let db = Db::open(&dir.path().join(format!("bench{round}.db"))).expect("open");
        db.migrate().expect("migrate");
        let seeding = Instant::now();
        let due_at = seed(&db, job_count, per_job);
        if round == 0 {
            let entries: i64 = db
                .conn()
                .expect("conn")
                .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
                .expect("count");
            println!(
                "seeded {job_count} jobs and {entries} entries in {:.1?}",
                seeding.elapsed()
            );
        }
        let mut conn = db.conn().expect("conn");
        let started = Instant::now();
        outcome = scheduler::tick(&mut conn, due_at, 100).expect("tick");
        due_times.push(started.elapsed());
        let started = Instant::now();
        let quiet =
            scheduler::tick(&mut conn, due_at + chrono::Duration::minutes(1), 100).expect("tick");
        quiet_times.push(started.elapsed());
        assert_eq!(quiet.missing_written, 0);
        drop(conn);
        drop(db);
        let _ = std::fs::remove_file(dir.path().join(format!("bench{round}.db")));
    }
    println!(
        "due tick   (checks {} jobs, writes {} missing + {} alerts): median {:.1?} over {rounds} rounds (all: {due_times:.1?})",
        outcome.jobs_checked, outcome.missing_written, outcome.alerts_queued, median(due_times.clone())
    );
    println!(
        "quiet tick (nothing new due): median {:.1?} (all: {quiet_times:.1?})",
        median(quiet_times.clone())
    );
}
