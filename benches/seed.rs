//! Seeds a database file for the HTTP load test of `benches/run.sh`; not a benchmark itself.
//!
//! `BENCH_SEED_DB=<file> BENCH_SEED_JOBS=1000 BENCH_SEED_ENTRIES=1000000 cargo bench --bench seed`
//!
//! Job 1 is hourly and holds a tenth of the entries (so that `/entries/by_job/1` has a deep
//! page); the other jobs are daily and share the rest. Each job's entries sit a few minutes
//! after its past slots, newest at the last slot before now: 97 % success with a
//! `sha256:` hash and a size, 1 % failed with an error message, 2 % missing. The jobs are
//! anchored a day ahead (their `created_at`), so that no slot of theirs falls due while the
//! suite runs: the scheduler writes nothing, and the entry counts that run.sh checks stay
//! exact. Prints `result …` with the deep `skip` values for run.sh. Without BENCH_SEED_DB
//! it does nothing, so a plain `cargo bench` passes over it.
//!
//! `BENCH_SEED_SHIFT_DAYS=N` ends every job's history N days ago instead of now: with
//! N = 401 every entry is older than the default retention (400 days), which is how
//! run.sh gets a database with a million entries to prune. `BENCH_SEED_TIME_ORDER=1` inserts
//! the entries oldest first across all jobs, as reports arrive in a live database (row ids
//! follow time), instead of job after job.

mod common;

use std::path::PathBuf;
use std::time::Instant;

use backup_monitor::domain::schedule::Frequency;
use chrono::Utc;
use common::{env_or, hash, Seeder};

fn main() {
    let Some(path) = std::env::var_os("BENCH_SEED_DB").map(PathBuf::from) else {
        println!("seed: set BENCH_SEED_DB=<file> to seed a database (see benches/run.sh)");
        return;
    };
    let job_count = env_or("BENCH_SEED_JOBS", 1_000).max(2);
    let total = env_or("BENCH_SEED_ENTRIES", 1_000_000);
    let shift = i64::try_from(env_or("BENCH_SEED_SHIFT_DAYS", 0)).unwrap_or(0);
    let time_order = env_or("BENCH_SEED_TIME_ORDER", 0) == 1;
    let per_daily = total * 9 / 10 / (job_count - 1);
    let hourly = total - per_daily * (job_count - 1);

    let started = Instant::now();
    let now = Utc::now();
    let seeder = Seeder::open(&path);
    // (job id, k-th entry back, timestamp µs, n): n numbers the rows in the job-by-job order,
    // whatever order they are inserted in.
    let mut rows: Vec<(i64, usize, i64, i64)> = Vec::with_capacity(total);
    let mut n = 0i64;
    for i in 0..job_count {
        let (frequency, count) = if i == 0 {
            (Frequency::Hourly, hourly)
        } else {
            (Frequency::Daily, per_daily)
        };
        let anchor = now + chrono::Duration::days(1);
        let job = seeder.job(&common::job(i, frequency, anchor), anchor);
        let schedule = job.schedule();
        let mut slot = schedule.slot_at_or_before(now - chrono::Duration::days(shift));
        for k in 0..count {
            slot = schedule.prev_slot(slot);
            n += 1;
            let at = slot + chrono::Duration::seconds(60 + (n % 600));
            rows.push((job.id, k, at.timestamp_micros(), n));
        }
    }
    if time_order {
        rows.sort_by_key(|&(_, _, at_us, n)| (at_us, n));
    }
    {
        let mut insert = seeder
            .conn()
            .prepare(
                "INSERT INTO entries (job_id, status, backup_timestamp_us, backup_hash, \
                 backup_size_bytes, error_message, created_at_us) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .expect("prepare");
        for (job_id, k, at_us, n) in rows {
            let (status, hash, size, error) = match k % 100 {
                0 => (
                    "failed",
                    Some(hash(n)),
                    None,
                    Some("pg_dump: connection refused"),
                ),
                1 | 2 => ("missing", None, None, None),
                _ => ("success", Some(hash(n)), Some(700_000_000 + n), None),
            };
            insert
                .execute((job_id, status, at_us, hash, size, error, at_us + 30_000_000))
                .expect("insert an entry");
        }
    }
    seeder.finish();
    let entries = common::count_entries(&path);
    println!(
        "seeded {job_count} jobs and {entries} entries in {:.1?}",
        started.elapsed()
    );
    println!(
        "result jobs={job_count} entries={entries} deep_skip={} job1_entries={hourly} job1_deep_skip={}",
        entries * 9 / 10,
        hourly * 9 / 10
    );
}
