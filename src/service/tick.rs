//! The scheduler's evaluation: for each active job whose next slot fell due, write one
//! `missing` entry per slot that went unreported and queue the `late` alert.
//!
//! `tick` takes `now` and a connection, so tests drive it a step at a time.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};

use super::reports::log_queued;
use crate::db::{alerts, entries, jobs, status};
use crate::domain::alert::AlertKind;
use crate::domain::entry::{EntryStatus, NewEntry};

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
/// tick costs next to nothing however many jobs there are). For each, the slots that fell
/// due after the job's anchor (creation, re-activation, reschedule) and after the last slot
/// evaluated are checked, oldest first, at most `max_catchup` per job (the rest on the next
/// ticks). A slot with no `success` or `failed` report in its window gets a `missing`
/// entry. Only the job's latest due slot raises a `late` alert: after downtime, one alert
/// per job says it is late, not one per slot missed.
pub fn tick(
    conn: &mut Connection,
    now: DateTime<Utc>,
    max_catchup: usize,
) -> rusqlite::Result<TickOutcome> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcome = TickOutcome::default();
    let candidates = jobs::due(&tx, now)?;
    outcome.jobs_checked = candidates.len();
    for due in candidates {
        let job = due.job;
        let schedule = job.schedule();
        let after = due.anchor.max(due.evaluated_until);
        let slots = schedule.due_slots_between(after, now, max_catchup);
        let Some(&last) = slots.last() else {
            // Nothing due yet (a new or rescheduled job): note when something will be.
            jobs::set_next_due(&tx, job.id, schedule.next_due_after(after))?;
            continue;
        };
        let latest_due = schedule.latest_due_slot(now);
        for slot in slots {
            if status::reported_in(&tx, job.id, schedule.window(slot), now)?.0 {
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
        jobs::set_evaluated(&tx, job.id, evaluated, schedule.next_due_after(evaluated))?;
    }
    tx.commit()?;
    Ok(outcome)
}
