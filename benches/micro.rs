//! Microbenchmarks (divan): the schedule math and the window query the tick runs per job.
//!
//! `cargo bench --bench micro` (divan's options follow `--`, e.g. `-- slot_for`;
//! `-- --test` runs each once). The `cron_*` cases are the same questions for cron
//! expressions in time zones (DESIGN §11). The window query runs on a database seeded with
//! BENCH_MICRO_ENTRIES entries (default 1,000,000: 10,000 daily jobs × 100 days).

mod common;

use std::cell::Cell;

use backup_monitor::db::status::reported_in;
use backup_monitor::db::Db;
use backup_monitor::domain::cron::CronExpr;
use backup_monitor::domain::schedule::{CronSchedule, Frequency, FrequencySchedule, Schedule};
use backup_monitor::domain::zone::Zone;
use chrono::{DateTime, Duration, TimeZone, Utc};
use divan::{black_box, Bencher};

fn main() {
    divan::main();
}

fn schedule(frequency: Frequency) -> Schedule {
    Schedule::Frequency(FrequencySchedule {
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
    })
}

/// Cron schedules: the seed's four shapes written as cron, each in a zone with daylight
/// saving time (the instants land on both sides of its changes), and two that make the
/// search skip: the Vixie day rule, and Feb 29 (a slot every four years).
const CRON: [(&str, &str, u32); 7] = [
    ("30 * * * *", "Europe/Paris", 30),
    ("30 2 * * *", "Europe/Paris", 60),
    ("30 2 * * 0", "America/New_York", 60),
    ("30 2 31 * *", "Australia/Lord_Howe", 60),
    ("*/15 9-17 * * MON-FRI", "America/Santiago", 10),
    ("0 2 1 * MON", "Pacific/Auckland", 60),
    ("0 0 29 2 *", "Europe/London", 60),
];

fn cron(case: (&str, &str, u32)) -> Schedule {
    let (expr, zone, grace_minutes) = case;
    Schedule::Cron(CronSchedule {
        expr: CronExpr::parse(expr).expect("a valid expression"),
        zone: Zone::parse(zone).expect("a known zone"),
        grace_minutes,
    })
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
    bench_slot_for(bencher, schedule(frequency));
}

fn bench_slot_for(bencher: Bencher, s: Schedule) {
    bencher
        .with_inputs(instants())
        .bench_local_values(|at| s.slot_for(at));
}

/// The slot a report belongs to, for a cron schedule in a zone.
#[divan::bench(args = CRON)]
fn cron_slot_for(bencher: Bencher, case: (&str, &str, u32)) {
    bench_slot_for(bencher, cron(case));
}

/// The next slot after a slot: what the tick asks per due job (`next_due_after`, and each
/// step of `due_slots_between`).
#[divan::bench(args = CRON)]
fn cron_next_slot(bencher: Bencher, case: (&str, &str, u32)) {
    let s = cron(case);
    let mut next = instants();
    bencher
        .with_inputs(|| s.slot_at_or_before(next()))
        .bench_local_values(|slot| s.next_slot(slot));
}

/// Validating a cron job's grace (DESIGN §11): the shortest interval between slots over
/// the coming 366 days, walked slot by slot. Input validation only, never the tick.
#[divan::bench(args = [
    ("30 2 * * *", "Europe/Paris", 60),
    ("0 * * * *", "Australia/Lord_Howe", 10),
    ("*/5 * * * *", "Europe/Paris", 2),
], sample_count = 10)]
fn cron_shortest_interval(bencher: Bencher, case: (&str, &str, u32)) {
    let s = cron(case);
    bencher.bench_local(|| s.shortest_interval(black_box(origin())));
}

/// The regular tick for a cron schedule: one slot fell due since the last evaluation.
#[divan::bench(args = CRON)]
fn cron_due_slots_between_one(bencher: Bencher, case: (&str, &str, u32)) {
    bench_due_slots_between_one(bencher, cron(case));
}

/// The regular tick: one slot fell due since the last evaluation.
#[divan::bench(args = Frequency::ALL)]
fn due_slots_between_one(bencher: Bencher, frequency: Frequency) {
    bench_due_slots_between_one(bencher, schedule(frequency));
}

fn bench_due_slots_between_one(bencher: Bencher, s: Schedule) {
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
