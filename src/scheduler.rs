//! The in-process scheduler: at start and then at every tick it compares each active job's
//! schedule with what was reported, writes one `missing` entry per slot that fell due
//! unreported, and queues the alerts. Also the rules that queue alerts when a report comes.
//!
//! `tick` takes `now` and a connection, so tests drive it a step at a time.

use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, TransactionBehavior};
use tokio::sync::{Mutex, Notify};

use crate::db::{alerts, entries, jobs, status, Db};
use crate::domain::alert::{self, Alert, AlertKind};
use crate::domain::entry::{Entry, EntryStatus, NewEntry};
use crate::domain::job::Job;
use crate::domain::time::{from_micros, to_micros};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickOutcome {
    pub jobs_checked: usize,
    pub missing_written: usize,
    pub alerts_queued: usize,
}

/// One evaluation at `now`, in one transaction, so that two ticks (or two processes on the
/// same file) never write the same slot twice: the second sees the first's work.
///
/// Only the active jobs whose next due time has come are read (an index lookup, so a quiet
/// tick costs next to nothing however many jobs there are). For each, the slots that fell due after the job's anchor (creation,
/// re-activation, reschedule) and after the last slot evaluated are checked, oldest first,
/// at most `max_catchup` per job (the rest on the next ticks). A slot with no `success` or
/// `failed` report in its window gets a `missing` entry. Only the job's latest due slot
/// raises a `late` alert: after downtime, one alert per job says it is late, not one per
/// slot missed.
pub fn tick(
    conn: &mut Connection,
    now: DateTime<Utc>,
    max_catchup: usize,
) -> rusqlite::Result<TickOutcome> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcome = TickOutcome::default();
    let candidates: Vec<(Job, i64, i64)> = {
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {}, schedule_anchor_us, evaluated_until_us FROM jobs \
             WHERE is_active = 1 AND next_due_us <= ?1",
            jobs::COLUMNS
        ))?;
        let rows = stmt.query_map([to_micros(now)], |row| {
            Ok((
                jobs::from_row(row)?,
                row.get::<_, i64>(16)?,
                row.get::<_, i64>(17)?,
            ))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    outcome.jobs_checked = candidates.len();
    for (job, anchor_us, evaluated_us) in candidates {
        let schedule = job.schedule();
        let after = from_micros(anchor_us.max(evaluated_us));
        let slots = schedule.due_slots_between(after, now, max_catchup);
        let Some(&last) = slots.last() else {
            // Nothing due yet (a new or rescheduled job): note when something will be.
            crate::db::cached_execute(
                &tx,
                "UPDATE jobs SET next_due_us = ?2 WHERE id = ?1",
                params![job.id, to_micros(schedule.next_due_after(after))],
            )?;
            continue;
        };
        let latest_due = schedule.latest_due_slot(now);
        for slot in slots {
            if status::reported_in(&tx, job.id, schedule.window(slot))?.0 {
                continue;
            }
            let missing = NewEntry {
                expected_job_id: job.id,
                status: EntryStatus::Missing,
                backup_timestamp_utc: slot,
                backup_hash: None,
                backup_size_bytes: None,
                error_message: None,
            };
            let (entry, created) = entries::insert(&tx, &missing, now)?;
            if !created {
                continue;
            }
            outcome.missing_written += 1;
            if slot == latest_due {
                if let Some(queued) =
                    alerts::queue(&tx, job.id, AlertKind::Late, slot, Some(entry.id), now)?
                {
                    log_queued(&queued, &job);
                    outcome.alerts_queued += 1;
                }
            }
        }
        let evaluated = schedule.due(last);
        crate::db::cached_execute(
            &tx,
            "UPDATE jobs SET evaluated_until_us = ?2, next_due_us = ?3 WHERE id = ?1",
            params![
                job.id,
                to_micros(evaluated),
                to_micros(schedule.next_due_after(evaluated))
            ],
        )?;
    }
    tx.commit()?;
    Ok(outcome)
}

/// The alert a new report raises, if any: `failed` at once for a failure; `recovered` for a
/// success at or after the slot of an unanswered `late` or `failed` alert. Call it in the
/// transaction that stored the entry.
pub fn on_report(
    conn: &Connection,
    job: &Job,
    entry: &Entry,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<Alert>> {
    let slot = job.schedule().slot_for(entry.backup_timestamp_utc);
    let queued = match entry.status {
        EntryStatus::Failed => {
            alerts::queue(conn, job.id, AlertKind::Failed, slot, Some(entry.id), now)?
        }
        EntryStatus::Success => match alerts::open_problem(conn, job.id)? {
            Some(problem_slot) if slot >= problem_slot => alerts::queue(
                conn,
                job.id,
                AlertKind::Recovered,
                slot,
                Some(entry.id),
                now,
            )?,
            _ => None,
        },
        EntryStatus::Missing => None,
    };
    if let Some(alert) = &queued {
        log_queued(alert, job);
    }
    Ok(queued)
}

fn log_queued(alert: &Alert, job: &Job) {
    tracing::warn!(alert_id = alert.id, job_id = job.id, kind = alert.kind.as_str(), subject = %alert::subject(alert, job), "alert queued");
}

/// The tick on its cron schedule, never two at once.
pub struct Scheduler {
    cron: tokio_cron_scheduler::JobScheduler,
    running: Arc<Mutex<()>>,
}

/// Runs one tick on the blocking pool; skipped if the previous one is still running.
async fn run_tick(db: &Db, running: &Mutex<()>, max_catchup: usize, wake: &Notify) {
    let Ok(_guard) = running.try_lock() else {
        tracing::warn!("previous tick still running; skipping this one");
        return;
    };
    let started = std::time::Instant::now();
    let result = db
        .run(move |conn| Ok(tick(conn, Utc::now(), max_catchup)?))
        .await;
    crate::metrics::tick_took(started.elapsed().as_secs_f64());
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
                    "tick found missing backups"
                );
            }
        }
        Err(e) => tracing::error!(error = %e, "tick failed"),
    }
}

impl Scheduler {
    /// Ticks once now, then on `expression` (6 fields, seconds first, UTC).
    pub async fn start(
        db: Db,
        expression: &str,
        max_catchup: usize,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        let running = Arc::new(Mutex::new(()));
        run_tick(&db, &running, max_catchup, &wake).await;
        let cron = tokio_cron_scheduler::JobScheduler::new()
            .await
            .context("Failed to create the scheduler")?;
        let job_running = running.clone();
        let job = tokio_cron_scheduler::Job::new_async_tz(expression, Utc, move |_, _| {
            let db = db.clone();
            let running = job_running.clone();
            let wake = wake.clone();
            Box::pin(async move { run_tick(&db, &running, max_catchup, &wake).await })
        })
        .with_context(|| format!("Invalid scheduler.tick {expression:?}"))?;
        cron.add(job).await.context("Failed to schedule the tick")?;
        cron.start()
            .await
            .context("Failed to start the scheduler")?;
        tracing::info!(tick = expression, "scheduler started");
        Ok(Self { cron, running })
    }

    /// Stops ticking and waits for a tick in progress to finish.
    pub async fn stop(mut self) {
        if let Err(e) = self.cron.shutdown().await {
            tracing::warn!(error = %e, "scheduler did not shut down cleanly");
        }
        let _finished = self.running.lock().await;
        tracing::info!("scheduler stopped");
    }
}

/// Whether `expression` is a tick schedule the scheduler accepts.
pub fn check_expression(expression: &str) -> Result<(), String> {
    tokio_cron_scheduler::Job::new_async_tz(expression, Utc, |_, _| Box::pin(async {}))
        .map(|_| ())
        .map_err(|e| format!("{expression:?} is not a 6-field cron expression (seconds first, e.g. \"0 * * * * *\"): {e}"))
}
