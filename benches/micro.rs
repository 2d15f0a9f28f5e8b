//! Microbenchmarks (divan): the schedule math and the window query the tick runs per job.
//!
//! `cargo bench --bench micro` (divan's options follow `--`, e.g. `-- slot_for`;
//! `-- --test` runs each once). The window query runs on a database seeded with
//! BENCH_MICRO_ENTRIES entries (default 1,000,000: 10,000 daily jobs × 100 days).

mod common;

use std::cell::Cell;

use backup_monitor::db::status::reported_in;
use backup_monitor::db::Db;
use backup_monitor::domain::schedule::{Frequency, Schedule};
use chrono::{DateTime, Duration, TimeZone, Utc};
use divan::{black_box, Bencher};

fn main() {
    divan::main();
}

fn schedule(frequency: Frequency) -> Schedule {
    Schedule {
        frequency,
        hour: 2,
        minute: 30,
        weekday: 6,
        // The 31st: a short month clamps to its last day, the costliest path.
        day_of_month: 31,
        grace_minutes: if frequency == Frequency::Hourly {
            30
        } else {
            60
        },
    }
}

fn origin() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Pseudo-random instants over about three years, the same sequence every run.
fn instants() -> impl FnMut() -> DateTime<Utc> {
    let state = Cell::new(0x2545_f491_4f6c_dd1d_u64);
    move || {
        let x = state
            .get()
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        state.set(x);
        origin() + Duration::seconds(i64::try_from((x >> 33) % 100_000_000).unwrap_or(0))
    }
}

/// The slot a report belongs to: run for every report received.
#[divan::bench(args = Frequency::ALL)]
fn slot_for(bencher: Bencher, frequency: Frequency) {
    let s = schedule(frequency);
    bencher
        .with_inputs(instants())
        .bench_local_values(|at| s.slot_for(at));
}

/// The regular tick: one slot fell due since the last evaluation.
#[divan::bench(args = Frequency::ALL)]
fn due_slots_between_one(bencher: Bencher, frequency: Frequency) {
    let s = schedule(frequency);
    let mut next = instants();
    bencher
        .with_inputs(|| {
            let now = next();
            let last = s.latest_due_slot(now);
            (s.due(s.prev_slot(last)), now)
        })
        .bench_local_values(|(after, now)| {
            let slots = s.due_slots_between(after, now, 100);
            debug_assert_eq!(slots.len(), 1);
            slots
        });
}

/// Catching up after a long downtime: the 100 slots a tick may write per job at most.
#[divan::bench(args = Frequency::ALL)]
fn due_slots_between_catch_up_100(bencher: Bencher, frequency: Frequency) {
    let s = schedule(frequency);
    let mut next = instants();
    bencher
        .with_inputs(|| {
            let now = next() + Duration::days(3660);
            (now - Duration::days(3650), now)
        })
        .bench_local_values(|(after, now)| s.due_slots_between(after, now, 100));
}

/// `db::status::reported_in`: is there a report in this slot's window? The tick asks it for
/// every job with a slot due.
#[divan::bench]
fn reported_in_window(bencher: Bencher) {
    let jobs = common::env_or("BENCH_MICRO_JOBS", 10_000).max(1);
    let entries = common::env_or("BENCH_MICRO_ENTRIES", 1_000_000);
    let per_job = (entries / jobs).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("micro.db");
    let day = Duration::days(1);
    let first_slot = origin() + Duration::minutes(150);
    let seeder = common::Seeder::open(&path);
    {
        let mut insert = seeder
            .conn()
            .prepare(
                "INSERT INTO entries (job_id, status, backup_timestamp_us, backup_hash, \
                 backup_size_bytes, created_at_us) VALUES (?1, 'success', ?2, ?3, 1000, ?2)",
            )
            .expect("prepare");
        let mut n = 0;
        for i in 0..jobs {
            let mut job = common::job(i, Frequency::Daily, origin());
            job.expected_hour_utc = 2;
            job.expected_minute_utc = 30;
            let job = seeder.job(&job, origin());
            for d in 0..per_job {
                n += 1;
                let at = first_slot + day * i32::try_from(d).unwrap_or(0) + Duration::minutes(5);
                insert
                    .execute((job.id, at.timestamp_micros(), common::hash(n)))
                    .expect("insert");
            }
        }
    }
    seeder.finish();
    let db = Db::open(&path).expect("open");
    let conn = db.conn().expect("connection");
    let s = schedule(Frequency::Daily);
    let state = Cell::new(1u64);
    let job_count = u64::try_from(jobs).unwrap_or(1);
    let day_count = u64::try_from(per_job).unwrap_or(1);
    bencher
        .with_inputs(|| {
            let x = state
                .get()
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            state.set(x);
            let job = i64::try_from((x >> 33) % job_count + 1).unwrap_or(1);
            let d = i32::try_from((x >> 13) % day_count).unwrap_or(0);
            (job, s.window(first_slot + day * d))
        })
        .bench_local_values(|(job, window)| {
            reported_in(&conn, black_box(job), window, window.1).expect("query")
        });
}
