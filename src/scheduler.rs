//! The in-process scheduler: runs the tick (`service::tick`) at start and then on its cron
//! schedule (tokio-cron-scheduler), never two at once, each chunk of its due work through
//! the group-commit writer between the reports, and wakes the alert delivery when a tick
//! queued alerts. It also prunes what retention lets go (`service::retention`), once right
//! after the first tick and then every hour.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use tokio::sync::{watch, Mutex, Notify};
use tokio::task::JoinHandle;

use crate::db::writer::Writer;
use crate::db::{self, Db, DbError};
use crate::metrics;
use crate::service::reminders::remind;
use crate::service::retention::Pruning;
use crate::service::tick::{self, ChunkBudget, TickOutcome};

/// What each tick needs of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct TickSettings {
    /// Slots evaluated per job and tick at most (`scheduler.max_catchup_slots`).
    pub max_catchup: usize,
    /// `alerts.repeat_every_minutes`: the reminders' default interval.
    pub repeat_every_minutes: Option<u32>,
}
/// A tick checkpoints the WAL after this many due jobs' chunks (and after its last), beside
/// the next chunks, one checkpoint at a time; the chunks never wait for one (but for the
/// continual checkpoint's hand-off, run by the writer between two chunks: a copy of what its
/// round left, and a sync of the database file). A checkpoint
/// copies only the frames written before it began, and the WAL restarts from its beginning
/// only once one has copied them all, which beside a busy tick is seldom: the WAL could
/// hold much of the tick's work (up to ~300 MiB over 100,000 due jobs, 50,000 of them
/// late). The service's continual checkpoint has the writer copy the rest and restart it
/// between two chunks once it is past 8 MiB (46-78 MiB at most over that tick), and
/// empties the file once the writer is quiet after it ([`db::Checkpointer`]). Awaiting one
/// in four of these checkpoints kept it under 35 MiB, but the tick then waited for the
/// copying and for the `fsync`s of the file it copied to, with the commits of its chunks
/// queued behind them on the disk: 0.5-0.7 s of a 2.5 s all-due tick (BENCHMARKS.md).
const CHECKPOINT_EVERY_JOBS: usize = 2 * tick::CHUNK_JOBS;

/// How often retention runs, besides once at start.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// How long one pruning step may work before it commits, so that the reports queued behind
/// it wait about this long at most (a step stops early, between two batches of rows).
const PRUNE_STEP_BUDGET: Duration = Duration::from_millis(10);

/// The least pause between two pruning steps. Each pause is also at least as long as the
/// step before it took, so pruning never has the writer more than half of the time.
const PRUNE_PAUSE_MIN: Duration = Duration::from_millis(5);

/// The tick on its cron schedule, never two at once, and the pruning task.
pub struct Scheduler {
    cron: tokio_cron_scheduler::JobScheduler,
    running: Arc<Mutex<()>>,
    pruning: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

/// One tick at `now` through the group-commit writer: the due jobs are planned on a pooled
/// connection, then each chunk (at most `chunk_jobs` jobs in id order, and at most about
/// its budget of work: the jobs it did not reach go in the next) is one write of its own, so
/// a report waits for one chunk at most, never for the whole tick, and never for the lock.
/// The budget is `budget.shared` for the first chunk and after one during which other writes
/// (reports) came to the writer, `budget.alone` after one with none ([`ChunkBudget::next`]):
/// a report waits for a short chunk, and a tick alone commits fewer, bigger ones.
/// A chunk's commit does not wait for the disk ([`Writer::write_alone_unsynced`]): what it
/// writes follows from the reports on disk, and a tick after a power cut writes it again.
/// While the chunks run, the writer's page cache is grown for the largest and its automatic
/// checkpoints are off ([`db::set_for_bulk`]): the WAL is checkpointed every few chunks on a
/// pooled connection, beside the reports and the next chunks ([`CHECKPOINT_EVERY_JOBS`]).
/// When reports came while a chunk ran, the next waits as long as it took
/// ([`pause_after_chunk`]). The hung runs are one more write.
pub async fn tick_through(
    db: &Db,
    writer: &Writer,
    now: chrono::DateTime<Utc>,
    max_catchup: usize,
    chunk_jobs: usize,
    budget: ChunkBudget,
) -> Result<TickOutcome, DbError> {
    let chunks = db
        .run(move |conn| tick::plan(conn, now, chunk_jobs.max(1)).map_err(DbError::from))
        .await?;
    let saved = if chunks.is_empty() {
        None
    } else {
        let kib = tick::cache_kib_for(&chunks);
        Some(
            writer
                .write(move |conn| db::set_for_bulk(conn, kib, false).map_err(DbError::from))
                .await?,
        )
    };
    let mut outcome = TickOutcome::default();
    let mut weighed = tick::Weighed::default();
    let mut failed = None;
    let mut since_checkpoint = 0;
    let mut copying: Option<JoinHandle<()>> = None;
    let mut queue = std::collections::VecDeque::from(chunks);
    // Writes submitted before the previous chunk began, its own included.
    let mut submitted_by_last: Option<u64> = None;
    while let Some(chunk) = queue.pop_front() {
        let carried = std::mem::take(&mut weighed);
        let chunk_began = Instant::now();
        let submitted_before = writer.submitted();
        let budget = budget.next(submitted_by_last.map(|n| submitted_before.saturating_sub(n)));
        submitted_by_last = Some(submitted_before + 1);
        let done = writer
            .write_alone_unsynced(move |conn| {
                let mut weighed = carried;
                tick::tick_chunk(conn, &chunk, now, max_catchup, &mut weighed, budget)
                    .map(|(done, rest)| (done, rest, weighed))
                    .map_err(DbError::from)
            })
            .await;
        let done_jobs = match done {
            Ok((done, rest, carried)) => {
                outcome += done;
                weighed = carried;
                if let Some(rest) = rest {
                    queue.push_front(rest);
                }
                done.jobs_checked
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        };
        // The pause runs while the checkpoint below does, as retention's does.
        let others = writer.submitted().saturating_sub(submitted_before + 1);
        let pause = pause_after_chunk(chunk_began.elapsed(), others, !queue.is_empty())
            .map(tokio::time::sleep);
        // The chunks' pages, copied into the database file off the writer's thread (as
        // retention does between its steps), while the chunks and the reports go on: every
        // few chunks, so that a page that several chunks wrote is copied once, and a reader
        // searches only the WAL's frames not copied yet. One at a time: while one copies,
        // the next waits for the chunks after.
        since_checkpoint += done_jobs;
        if since_checkpoint >= CHECKPOINT_EVERY_JOBS
            && copying.as_ref().is_none_or(JoinHandle::is_finished)
        {
            since_checkpoint = 0;
            copying = Some(tokio::spawn(checkpoint_after_chunks(db.clone())));
        }
        if let Some(pause) = pause {
            pause.await;
        }
    }
    // The last frames, copied after the one still copying (the tick is done: its chunks are
    // committed); they reach the disk with it, or with the next report's commit.
    let db_after = db.clone();
    tokio::spawn(async move {
        if let Some(copying) = copying {
            let _ = copying.await;
        }
        checkpoint_after_chunks(db_after).await;
    });
    if let Some(saved) = saved {
        writer
            .write(move |conn| db::restore_settings(conn, saved).map_err(DbError::from))
            .await?;
    }
    if let Some(e) = failed {
        return Err(e);
    }
    outcome.alerts_queued += writer
        .write(move |conn| tick::hung_runs(conn, now).map_err(DbError::from))
        .await?;
    Ok(outcome)
}

/// A passive checkpoint between a tick's chunks; a failure is only logged (the writer's
/// own checkpoints take over).
async fn checkpoint_after_chunks(db: Db) {
    if let Err(e) = db
        .run(|conn| db::checkpoint(conn).map(drop).map_err(DbError::from))
        .await
    {
        tracing::debug!(error = %e, "checkpoint after a tick's chunks failed");
    }
}

/// How long a tick waits before its next chunk, after one that took `took` while `others`
/// writes (reports, mostly) came to the writer: when some came and chunks remain, as long as
/// the chunk took, so that while reports compete the tick has the writer half of the time at
/// most (as pruning does); with none, no wait: a tick alone runs flat out.
/// Measured (BENCHMARKS.md, "Reports during the all-due tick, paced"): 1.7× the reports
/// stored during an all-due tick over 100,000 jobs, for a tick 1.2× longer.
fn pause_after_chunk(took: Duration, others: u64, more: bool) -> Option<Duration> {
    (others > 0 && more).then_some(took)
}

/// Runs one tick and the reminders; skipped if the previous tick is still running.
async fn run_tick(
    db: &Db,
    writer: &Writer,
    running: &Mutex<()>,
    settings: TickSettings,
    wake: &Notify,
) {
    let Ok(_guard) = running.try_lock() else {
        tracing::warn!("previous tick still running; skipping this one");
        return;
    };
    let started = std::time::Instant::now();
    let now = Utc::now();
    let result = async {
        let mut outcome = tick_through(
            db,
            writer,
            now,
            settings.max_catchup,
            tick::CHUNK_JOBS,
            ChunkBudget::SERVICE,
        )
        .await?;
        outcome.alerts_queued += db
            .run(move |conn| {
                remind(conn, now, settings.repeat_every_minutes).map_err(DbError::from)
            })
            .await?;
        Ok::<_, DbError>(outcome)
    }
    .await;
    metrics::tick_took(started.elapsed().as_secs_f64());
    match result {
        Ok(outcome) => {
            if outcome.alerts_queued > 0 {
                wake.notify_one();
            }
            tracing::debug!(?outcome, elapsed_ms = started.elapsed().as_millis(), "tick");
            if outcome.missing_written > 0 {
                tracing::info!(
                    missing = outcome.missing_written,
                    alerts = outcome.alerts_queued,
                    jobs = outcome.jobs_checked,
                    chunks = outcome.chunks,
                    elapsed_ms = started.elapsed().as_millis(),
                    "tick found missing backups"
                );
            }
        }
        Err(e) => tracing::error!(error = %e, "tick failed"),
    }
}

/// Prunes now and then every [`PRUNE_EVERY`] until `stop` says so.
async fn prune_every_hour(db: Db, writer: Writer, keep_days: u32, mut stop: watch::Receiver<bool>) {
    loop {
        prune_once(&db, &writer, keep_days, &mut stop).await;
        tokio::select! {
            () = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One retention run at the current time: each step (at most `CHUNK` rows, at most about
/// [`PRUNE_STEP_BUDGET`] of work) is one write of the group-commit writer, the same single
/// writer that stores the reports, so a report waits for at most one step and is never
/// refused as busy because of pruning. Between steps it checkpoints the WAL and pauses at
/// least as long as the step took. A failed step ends the run; the next run starts afresh.
async fn prune_once(db: &Db, writer: &Writer, keep_days: u32, stop: &mut watch::Receiver<bool>) {
    let started = Instant::now();
    let now = Utc::now();
    let begun = db
        .run(move |conn| Pruning::start(conn, now, keep_days).map_err(DbError::from))
        .await;
    let mut pruning = match begun {
        Ok(Some(pruning)) => pruning,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "retention could not start; it will try again in an hour");
            return;
        }
    };
    loop {
        // Stopped, or the scheduler is gone without saying so.
        if *stop.borrow() || stop.has_changed().is_err() {
            tracing::info!("stopping: retention ends its run early");
            break;
        }
        let step_started = Instant::now();
        let stepped = writer
            .write(move |conn| {
                let more = pruning.step(conn, PRUNE_STEP_BUDGET)?;
                Ok::<_, DbError>((pruning, more))
            })
            .await;
        let more;
        (pruning, more) = match stepped {
            Ok(stepped) => stepped,
            Err(e) => {
                tracing::error!(error = %e, "retention step failed; it will try again in an hour");
                return;
            }
        };
        if !more {
            break;
        }
        let pause = tokio::time::sleep(step_started.elapsed().max(PRUNE_PAUSE_MIN));
        // Deleting rows rewrites many pages; copying them from the WAL into the database is
        // done here, off the writer's thread, rather than by a checkpoint at the end of some
        // report's commit.
        if let Err(e) = db
            .run(|conn| db::checkpoint(conn).map(drop).map_err(DbError::from))
            .await
        {
            tracing::debug!(error = %e, "checkpoint after a retention step failed");
        }
        tokio::select! {
            () = pause => {}
            _ = stop.changed() => {}
        }
    }
    let outcome = pruning.outcome();
    if outcome.entries_deleted + outcome.alerts_deleted > 0 {
        tracing::info!(
            entries = outcome.entries_deleted,
            alerts = outcome.alerts_deleted,
            steps = outcome.steps,
            elapsed_ms = started.elapsed().as_millis(),
            keep_days,
            "retention deleted old entries and alerts"
        );
    } else {
        tracing::debug!(
            ?outcome,
            elapsed_ms = started.elapsed().as_millis(),
            "retention"
        );
    }
}

impl Scheduler {
    /// Ticks once now, then on `expression` (6 fields, seconds first, UTC). Then, unless
    /// `keep_days` is 0, prunes in the background now and every hour.
    pub async fn start(
        db: Db,
        writer: Writer,
        expression: &str,
        settings: TickSettings,
        keep_days: u32,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        let running = Arc::new(Mutex::new(()));
        run_tick(&db, &writer, &running, settings, &wake).await;
        let pruning = if keep_days == 0 {
            tracing::info!(
                "retention off (retention.keep_days = 0): entries and alerts are kept for ever"
            );
            None
        } else {
            let (stop, stopped) = watch::channel(false);
            let task = tokio::spawn(prune_every_hour(
                db.clone(),
                writer.clone(),
                keep_days,
                stopped,
            ));
            Some((stop, task))
        };
        let cron = tokio_cron_scheduler::JobScheduler::new()
            .await
            .context("Failed to create the scheduler")?;
        let job_running = running.clone();
        let job = tokio_cron_scheduler::Job::new_async_tz(expression, Utc, move |_, _| {
            let db = db.clone();
            let writer = writer.clone();
            let running = job_running.clone();
            let wake = wake.clone();
            Box::pin(async move { run_tick(&db, &writer, &running, settings, &wake).await })
        })
        .with_context(|| format!("Invalid scheduler.tick {expression:?}"))?;
        cron.add(job).await.context("Failed to schedule the tick")?;
        cron.start()
            .await
            .context("Failed to start the scheduler")?;
        tracing::info!(tick = expression, "scheduler started");
        Ok(Self {
            cron,
            running,
            pruning,
        })
    }

    /// Stops ticking and pruning; waits for a tick in progress to finish, and for a pruning
    /// step in progress (a run in progress ends after its current step).
    pub async fn stop(mut self) {
        if let Err(e) = self.cron.shutdown().await {
            tracing::warn!(error = %e, "scheduler did not shut down cleanly");
        }
        if let Some((stop, task)) = self.pruning.take() {
            let _ = stop.send(true);
            if let Err(e) = task.await {
                tracing::error!(error = %e, "retention ended abnormally");
            }
        }
        let _finished = self.running.lock().await;
        tracing::info!("scheduler stopped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_yields_to_the_reports_that_came_during_its_chunk_and_runs_flat_out_alone() {
        let took = Duration::from_millis(12);

        let competed = pause_after_chunk(took, 3, true);
        let alone = pause_after_chunk(took, 0, true);
        let last_chunk = pause_after_chunk(took, 3, false);

        assert_eq!(competed, Some(took));
        assert_eq!(alone, None);
        assert_eq!(last_chunk, None);
    }

    #[test]
    fn a_tick_works_in_short_chunks_first_and_while_reports_compete_and_in_long_ones_alone() {
        let (long, short) = (Duration::from_millis(10), Duration::from_millis(3));
        let budget = ChunkBudget {
            alone: long,
            shared: short,
        };

        let first = budget.next(None);
        let after_reports = budget.next(Some(2));
        let alone = budget.next(Some(0));

        assert_eq!((first, after_reports, alone), (short, short, long));
        assert!(ChunkBudget::SERVICE.shared < ChunkBudget::SERVICE.alone);
    }
}
