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
//! The tick commits its due work in chunks (`service::tick::CHUNK_JOBS` jobs at most, in id
//! order; the seed's jobs belong to 100 agents round-robin, 1,000 each); BENCH_TICK_CHUNK
//! sets another bound. The due tick is timed on the service's own path
//! (`scheduler::tick_through`: each chunk a write of the group-commit writer of at most
//! `CHUNK_BUDGET` of work, `CHUNK_BUDGET_SHARED` for the first, checkpoints on a pooled
//! connection; the writer's connection and the continual checkpoint beside it as `serve`
//! has them); BENCH_TICK_PATH=direct times `service::tick::tick_in_chunks` on one
//! connection instead (what the tests and the CLI use). BENCH_TICK_SEEDED=<file> keeps the
//! seed there for the next run with the same sizes.
//!
//! The seed builds the indexes at the end, which packs their leaves full: each `missing`
//! entry then splits its job's leaf. BENCH_TICK_GROWN=1 seeds as a live database grows
//! instead: the entries day by day across the jobs, the indexes updated row by row (slower).
//!
//! Environment: BENCH_JOBS, BENCH_ENTRIES_PER_JOB, BENCH_ROUNDS (default 5), BENCH_SCHEDULE,
//! BENCH_TICK_CHUNK, BENCH_TICK_BUDGET_MS, BENCH_TICK_PATH, BENCH_TICK_SEEDED, BENCH_TICK_GROWN,
//! BENCH_TICK_CONTINUAL (0: the service's path without its continual checkpoint beside).
//! `benches/run.sh` runs it at 100,000 jobs and 10,000,000 entries. The last line,
//! `result …`, is what run.sh reads.
//!
//! For `benches/tick.sh` (reports during an all-due tick, on a real server) it also seeds a
//! database for a server and exits: `BENCH_TICK_SEED_DB=<file>` seeds the same jobs and
//! entries with the due slot an hour and a minute before now, every job *parked* (its next
//! due time far ahead, so the server's ticks pass over it); `BENCH_TICK_ARM=<file>` then
//! makes every job due at once (as a job just created is), for the server's next tick.

mod common;

use std::time::{Duration, Instant};

use backup_monitor::db::writer::Writer;
use backup_monitor::db::Db;
use backup_monitor::domain::job::CronText;
use backup_monitor::domain::schedule::Frequency;
use backup_monitor::domain::zone::Zone;
use backup_monitor::scheduler::tick_through;
use backup_monitor::service::tick::{self as scheduler, ChunkBudget};
use chrono::{DateTime, TimeZone, Timelike, Utc};
use common::{env_or, hash, Seeder};

/// A next due time no tick reaches: the job is passed over until armed.
const PARKED_US: i64 = i64::MAX / 2;

/// Seeds the database with daily jobs whose slot `due_slot` is the one about to fall due
/// (an hour later: their grace); returns the instant of the due tick. `parked`: every job's
/// next due time is far ahead instead of due. `grown`: the entries go in day by day across
/// the jobs with the indexes kept up to date, as a live database's reports do
/// (`Seeder::open_grown`), instead of job by job with the indexes built at the end.
fn seed(
    path: &std::path::Path,
    job_count: usize,
    per_job: usize,
    cron: bool,
    due_slot: DateTime<Utc>,
    parked: bool,
    grown: bool,
) -> DateTime<Utc> {
    let day = chrono::Duration::days(1);
    let first_slot = due_slot - day * i32::try_from(per_job).unwrap_or(i32::MAX);
    let created = first_slot - chrono::Duration::minutes(150);
    // Every slot before the due one counts as evaluated already.
    let evaluated = (due_slot - day + chrono::Duration::minutes(60)).timestamp_micros();
    let seeder = if grown {
        Seeder::open_grown(path)
    } else {
        Seeder::open(path)
    };
    {
        let ids: Vec<i64> = (0..job_count)
            .map(|i| {
                let mut template = common::job(i, Frequency::Daily, created);
                template.expected_hour_utc = due_slot.hour();
                template.expected_minute_utc = due_slot.minute();
                if cron {
                    template.schedule = Some(CronText::parse("30 11 * * *").expect("cron"));
                    template.timezone = Zone::parse("Asia/Tokyo").expect("zone");
                }
                seeder.job(&template, created).id
            })
            .collect();
        // (job index, day): the report of day `per_job` is the due slot's, which half of
        // the jobs (the even ones) sent.
        let mut reports: Vec<(usize, usize)> = (0..job_count)
            .flat_map(|i| {
                let days = if i % 2 == 0 { per_job + 1 } else { per_job };
                (0..days).map(move |d| (i, d))
            })
            .collect();
        if grown {
            reports.sort_by_key(|&(i, d)| (d, i));
        }
        let mut entry = seeder
            .conn()
            .prepare(
                "INSERT INTO entries (job_id, status, backup_timestamp_us, backup_hash, \
                 backup_size_bytes, created_at_us) VALUES (?1, 'success', ?2, ?3, ?4, ?2)",
            )
            .expect("prepare");
        for (n, (i, d)) in (1i64..).zip(reports) {
            let at =
                first_slot + day * i32::try_from(d).unwrap_or(0) + chrono::Duration::minutes(5);
            entry
                .execute((ids[i], at.timestamp_micros(), hash(n), 1_000_000 + n))
                .expect("entry");
        }
        let next_due = if parked { PARKED_US } else { 0 };
        seeder
            .conn()
            .execute(
                "UPDATE jobs SET evaluated_until_us = ?1, next_due_us = ?2",
                [evaluated, next_due],
            )
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

/// This process's CPU time (user + system), bytes passed to `write` calls and bytes the
/// kernel counted as sent to storage (`write_bytes`) so far, from `/proc/self/{stat,io}`:
/// what a round cost besides its wall time. The first is what reaches the disk; the kernel's
/// count can be far off: in the all-due tick over 100,000 jobs on the grown seed, 705 MiB
/// went through `write` calls and the device wrote 666 MiB (`/sys/block/vda/stat`, nothing
/// else running), while `write_bytes` said 2,500 MiB (on the packed seed both say ~2,300).
fn cpu_and_written() -> (Duration, u64, u64) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command's ")": state, then ten numbers, then utime and stime.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let field = |i: usize| -> u64 {
        after
            .split_whitespace()
            .nth(i)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    };
    let ticks = field(11) + field(12);
    // USER_HZ is 100 on Linux.
    let cpu = Duration::from_millis(ticks * 10);
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let io_field = |name: &str| -> u64 {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (cpu, io_field("wchar: "), io_field("write_bytes: "))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `BENCH_TICK_GROWN=1`: seed as a live database grows (see [`seed`]).
fn grown() -> bool {
    env_or("BENCH_TICK_GROWN", 0) == 1
}

/// How the seed's indexes were built, as the result lines say it.
fn layout() -> &'static str {
    if grown() {
        "grown"
    } else {
        "packed"
    }
}

/// Seeds a parked database for a server (see the module's comment).
fn seed_for_server(path: &std::path::Path, job_count: usize, per_job: usize) {
    let started = Instant::now();
    let now = Utc::now();
    let due_slot = now - chrono::Duration::minutes(61);
    let due_slot = due_slot - chrono::Duration::seconds(i64::from(due_slot.second()));
    seed(path, job_count, per_job, false, due_slot, true, grown());
    sync(path);
    println!(
        "seeded {job_count} parked jobs and {} entries for a server in {:.1?}",
        common::count_entries(path),
        started.elapsed()
    );
    println!(
        "result jobs={job_count} entries={} layout={}",
        common::count_entries(path),
        layout()
    );
}

/// Makes every job of the database due at its server's next tick.
fn arm(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).expect("open");
    conn.busy_timeout(Duration::from_secs(30))
        .expect("busy timeout");
    let armed = conn
        .execute(
            "UPDATE jobs SET next_due_us = 0 WHERE next_due_us = ?1",
            [PARKED_US],
        )
        .expect("arm");
    println!("result armed={armed}");
}

/// `BENCH_TICK_BUDGET_MS`: another bound on a chunk's work than the service's
/// (`ChunkBudget::SERVICE`), the same whether or not reports compete.
fn budget() -> ChunkBudget {
    std::env::var("BENCH_TICK_BUDGET_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(ChunkBudget::SERVICE, |ms| {
            ChunkBudget::flat(Duration::from_millis(ms))
        })
}

/// The service's own path: each chunk a write of the group-commit writer, with the WAL
/// checkpointed continually beside it as `serve` does (`db::checkpoint_continually`). Answers what it
/// did and how long it took, until its last chunk was committed; the checkpoint it leaves
/// running then (the WAL's last frames copied into the file) is timed apart, from then
/// until a checkpoint after it has copied them all.
fn through_writer(
    db: &Db,
    now: DateTime<Utc>,
    chunk_jobs: usize,
) -> (scheduler::TickOutcome, Duration, Duration) {
    let writer = Writer::start(db.writer_conn().expect("conn")).expect("writer");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // The WAL's size, sampled while the tick runs.
    let wal = backup_monitor::db::wal_path(db.path());
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let watcher = {
        let watching = watching.clone();
        std::thread::spawn(move || {
            let mut largest = 0;
            while watching.load(std::sync::atomic::Ordering::Relaxed) {
                largest = std::fs::metadata(&wal).map_or(largest, |m| m.len().max(largest));
                std::thread::sleep(Duration::from_millis(5));
            }
            largest
        })
    };
    // The service checkpoints the WAL beside the writer all the time (`serve`), the tick's
    // chunks included; BENCH_TICK_CONTINUAL=0 times the tick without it.
    let continual = (std::env::var("BENCH_TICK_CONTINUAL").as_deref() != Ok("0")).then(|| {
        runtime.spawn(backup_monitor::db::checkpoint_continually(
            db.clone(),
            writer.clone(),
            backup_monitor::db::CHECKPOINT_EVERY,
        ))
    });
    let started = Instant::now();
    let outcome = runtime
        .block_on(tick_through(db, &writer, now, 100, chunk_jobs, budget()))
        .expect("tick");
    let committed = started.elapsed();
    if let Some(continual) = continual {
        continual.abort();
    }
    let conn = db.conn().expect("conn");
    conn.busy_timeout(Duration::from_secs(60))
        .expect("busy timeout");
    // The checkpoint the tick left may hold the checkpoint lock: wait for it.
    while !backup_monitor::db::checkpoint(&conn).expect("checkpoint") {
        std::thread::sleep(Duration::from_millis(1));
    }
    let copied = started.elapsed() - committed;
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    let largest = watcher.join().unwrap_or(0);
    println!("the WAL at most {} MiB during the tick", largest >> 20);
    (outcome, committed, copied)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too: both run this.
    let job_count = env_or("BENCH_JOBS", 10_000);
    let per_job = env_or("BENCH_ENTRIES_PER_JOB", 100);
    if let Some(path) = std::env::var_os("BENCH_TICK_SEED_DB") {
        seed_for_server(std::path::Path::new(&path), job_count, per_job);
        return;
    }
    if let Some(path) = std::env::var_os("BENCH_TICK_ARM") {
        arm(std::path::Path::new(&path));
        return;
    }
    let rounds = env_or("BENCH_ROUNDS", 5).max(1);
    let chunk_jobs = env_or("BENCH_TICK_CHUNK", scheduler::CHUNK_JOBS).max(1);
    let cron = std::env::var("BENCH_SCHEDULE").is_ok_and(|v| v == "cron");
    let form = if cron { "cron" } else { "daily" };
    let layout = layout();
    let path_kind = std::env::var("BENCH_TICK_PATH").unwrap_or_else(|_| "writer".to_owned());
    let dir = tempfile::tempdir().expect("temp dir");
    let seeded = std::env::var_os("BENCH_TICK_SEEDED")
        .map_or_else(|| dir.path().join("seeded.db"), std::path::PathBuf::from);

    let seeding = Instant::now();
    let first_slot = Utc
        .with_ymd_and_hms(2026, 1, 1, 2, 30, 0)
        .single()
        .unwrap_or_default();
    let due_slot = first_slot + chrono::Duration::days(1) * i32::try_from(per_job).unwrap_or(0);
    let due_at = due_slot + chrono::Duration::minutes(60);
    if !seeded.exists() {
        seed(&seeded, job_count, per_job, cron, due_slot, false, grown());
    }
    sync(&seeded);
    let entries = common::count_entries(&seeded);
    let size = std::fs::metadata(&seeded).map(|m| m.len()).unwrap_or(0);
    println!(
        "seeded {job_count} {form} jobs and {entries} entries ({} MiB, indexes {layout}) in {:.1?}",
        size >> 20,
        seeding.elapsed()
    );

    let mut due_times = Vec::new();
    let mut quiet_times = Vec::new();
    let mut copied_times = Vec::new();
    let mut outcome = scheduler::TickOutcome::default();
    let mut quiet = scheduler::TickOutcome::default();
    for round in 0..rounds {
        // The seed left no -wal file (journal_mode was OFF), so the .db file is all of it.
        let path = dir.path().join(format!("round{round}.db"));
        std::fs::copy(&seeded, &path).expect("copy the seeded database");
        // Flushed before timing, or the kernel's writeback would compete with the tick's.
        sync(&path);
        let db = Db::open(&path).expect("open");
        // A seed kept from an earlier schema version is brought up to date, untimed.
        db.migrate().expect("migrate");
        let mut conn = db.conn().expect("conn");
        let (cpu_before, written_before, storage_before) = cpu_and_written();
        let started = Instant::now();
        let took;
        let copied;
        (outcome, took, copied) = match path_kind.as_str() {
            "direct" => {
                let outcome =
                    scheduler::tick_in_chunks(&mut conn, due_at, 100, chunk_jobs).expect("tick");
                (outcome, started.elapsed(), Duration::ZERO)
            }
            _ => through_writer(&db, due_at, chunk_jobs),
        };
        due_times.push(took);
        copied_times.push(copied);
        let (cpu_after, written_after, storage_after) = cpu_and_written();
        println!(
            "round {round}: due tick {took:.1?} (its WAL copied into the file {copied:.1?} after), {:.1?} of CPU, {} MiB written ({} MiB of pages dirtied)",
            cpu_after.saturating_sub(cpu_before),
            written_after.saturating_sub(written_before) >> 20,
            storage_after.saturating_sub(storage_before) >> 20
        );
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
    let copied = median(copied_times.clone());
    println!(
        "due tick, {path_kind} (checks {} jobs, writes {} missing + {} alerts, in {} chunks of {} jobs at most): median {due:.1?} over {rounds} rounds (all: {due_times:.1?}); its WAL copied {copied:.1?} after (all: {copied_times:.1?})",
        outcome.jobs_checked, outcome.missing_written, outcome.alerts_queued, outcome.chunks, outcome.largest_chunk
    );
    println!(
        "quiet tick (nothing new due, reads {} jobs): median {quiet_ms:.1?} (all: {quiet_times:.1?})",
        quiet.jobs_checked
    );
    println!(
        "result schedule={form} layout={layout} jobs={job_count} entries={entries} due_ms={:.1} copied_ms={:.1} quiet_ms={:.1} missing={} alerts={} chunks={} largest_chunk={}",
        ms(due),
        ms(copied),
        ms(quiet_ms),
        outcome.missing_written,
        outcome.alerts_queued,
        outcome.chunks,
        outcome.largest_chunk
    );
}
