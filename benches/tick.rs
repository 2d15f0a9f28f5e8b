//! The scheduler tick over many jobs and entries: `cargo bench --bench tick`.
//!
//! Seeds a temporary database with BENCH_JOBS daily jobs (default 10,000) and
//! BENCH_ENTRIES_PER_JOB past reports each (default 100, so 1,000,000 entries), then times:
//! - a *due* tick: every job's slot has just fallen due; half of them were reported, so the
//!   tick checks every job's window and writes a `missing` entry and a late alert for the
//!   other half;
//! - a *quiet* tick a minute later: nothing new is due (the common case).
//!
//! The database is seeded once (see `common`: one transaction, no journal, indexes rebuilt
//! at the end) and each round ticks on a fresh copy of that file, so every round runs the
//! same due tick on the same data (and in the page cache: the copy has just been read).
//!
//! BENCH_SCHEDULE=cron gives every job the same slots as a cron schedule in a time zone
//! (`30 11 * * *` in Asia/Tokyo, 02:30 UTC) instead of the seed's daily form, so the two
//! runs compare the tick's cost for the two forms on the same data (issue 12: within 2×).
//!
//! Environment: BENCH_JOBS, BENCH_ENTRIES_PER_JOB, BENCH_ROUNDS (default 5), BENCH_SCHEDULE. `benches/run.sh`
//! runs it at 100,000 jobs and 10,000,000 entries. The last line, `result …`, is what
//! run.sh reads.

mod common;

use std::time::{Duration, Instant};

use backup_monitor::db::Db;
use backup_monitor::domain::job::CronText;
use backup_monitor::domain::schedule::Frequency;
use backup_monitor::domain::zone::Zone;
use backup_monitor::service::tick as scheduler;
use chrono::{DateTime, TimeZone, Utc};
use common::{env_or, hash, Seeder};

/// Seeds the database; returns the instant of the due tick.
fn seed(path: &std::path::Path, job_count: usize, per_job: usize, cron: bool) -> DateTime<Utc> {
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
    // Every slot before the due one counts as evaluated already.
    let evaluated = (due_slot - day + chrono::Duration::minutes(60)).timestamp_micros();
    let seeder = Seeder::open(path);
    {
        let mut entry = seeder
            .conn()
            .prepare(
                "INSERT INTO entries (job_id, status, backup_timestamp_us, backup_hash, \
                 backup_size_bytes, created_at_us) VALUES (?1, 'success', ?2, ?3, ?4, ?2)",
            )
            .expect("prepare");
        let mut n = 0i64;
        for i in 0..job_count {
            let mut template = common::job(i, Frequency::Daily, created);
            template.expected_hour_utc = 2;
            template.expected_minute_utc = 30;
            if cron {
                template.schedule = Some(CronText::parse("30 11 * * *").expect("cron"));
                template.timezone = Zone::parse("Asia/Tokyo").expect("zone");
            }
            let stored = seeder.job(&template, created);
            let mut report = |at: DateTime<Utc>| {
                n += 1;
                entry
                    .execute((stored.id, at.timestamp_micros(), hash(n), 1_000_000 + n))
                    .expect("entry");
            };
            for d in 0..per_job {
                report(
                    first_slot + day * i32::try_from(d).unwrap_or(0) + chrono::Duration::minutes(5),
                );
            }
            // Half of the jobs report the slot that is about to fall due.
            if i % 2 == 0 {
                report(due_slot + chrono::Duration::minutes(5));
            }
        }
        seeder
            .conn()
            .execute("UPDATE jobs SET evaluated_until_us = ?1", [evaluated])
            .expect("evaluated");
    }
    seeder.finish();
    due_slot + chrono::Duration::minutes(60)
}

fn sync(path: &std::path::Path) {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .expect("sync the database file");
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too: both run this.
    let job_count = env_or("BENCH_JOBS", 10_000);
    let per_job = env_or("BENCH_ENTRIES_PER_JOB", 100);
    let rounds = env_or("BENCH_ROUNDS", 5).max(1);
    let cron = std::env::var("BENCH_SCHEDULE").is_ok_and(|v| v == "cron");
    let form = if cron { "cron" } else { "daily" };
    let dir = tempfile::tempdir().expect("temp dir");
    let seeded = dir.path().join("seeded.db");

    let seeding = Instant::now();
    let due_at = seed(&seeded, job_count, per_job, cron);
    sync(&seeded);
    let entries = common::count_entries(&seeded);
    let size = std::fs::metadata(&seeded).map(|m| m.len()).unwrap_or(0);
    println!(
        "seeded {job_count} {form} jobs and {entries} entries ({} MiB) in {:.1?}",
        size >> 20,
        seeding.elapsed()
    );

    let mut due_times = Vec::new();
    let mut quiet_times = Vec::new();
    let mut outcome = scheduler::TickOutcome::default();
    let mut quiet = scheduler::TickOutcome::default();
    for round in 0..rounds {
        // The seed left no -wal file (journal_mode was OFF), so the .db file is all of it.
        let path = dir.path().join(format!("round{round}.db"));
        std::fs::copy(&seeded, &path).expect("copy the seeded database");
        // Flushed before timing, or the kernel's writeback would compete with the tick's.
        sync(&path);
        let db = Db::open(&path).expect("open");
        let mut conn = db.conn().expect("conn");
        let started = Instant::now();
        outcome = scheduler::tick(&mut conn, due_at, 100).expect("tick");
        due_times.push(started.elapsed());
        let started = Instant::now();
        quiet =
            scheduler::tick(&mut conn, due_at + chrono::Duration::minutes(1), 100).expect("tick");
        quiet_times.push(started.elapsed());
        assert_eq!(quiet.missing_written, 0);
        drop(conn);
        drop(db);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.path().join(format!("round{round}.db{suffix}")));
        }
    }
    let (due, quiet_ms) = (median(due_times.clone()), median(quiet_times.clone()));
    println!(
        "due tick   (checks {} jobs, writes {} missing + {} alerts): median {due:.1?} over {rounds} rounds (all: {due_times:.1?})",
        outcome.jobs_checked, outcome.missing_written, outcome.alerts_queued
    );
    println!(
        "quiet tick (nothing new due, reads {} jobs): median {quiet_ms:.1?} (all: {quiet_times:.1?})",
        quiet.jobs_checked
    );
    println!(
        "result schedule={form} jobs={job_count} entries={entries} due_ms={:.1} quiet_ms={:.1} missing={} alerts={}",
        ms(due),
        ms(quiet_ms),
        outcome.missing_written,
        outcome.alerts_queued
    );
}
