//! Reminders (DESIGN §13): while a job stays late, failed, suspect or its run hung, a
//! `reminder` alert every N minutes after the first alert (`repeat_every_minutes` of the
//! job, else `alerts.repeat_every_minutes`; neither: never).

use chrono::{DateTime, Duration, Utc};
use rusqlite::{Connection, TransactionBehavior};

use super::reports::log_queued;
use crate::db::{alerts, jobs, status};
use crate::domain::alert::AlertKind;
use crate::domain::status::JobState;

/// Queues the reminders due at `now`, in one transaction; returns how many. Only jobs with
/// an unanswered (and not suppressed) problem alert are read, and none at all when no job
/// and no default asks for reminders.
pub fn remind(
    conn: &mut Connection,
    now: DateTime<Utc>,
    default_every: Option<u32>,
) -> rusqlite::Result<usize> {
    if default_every.is_none() && !jobs::any_repeating(conn)? {
        return Ok(0);
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut queued = 0;
    for problem in alerts::open_problems(&tx, default_every.is_some())? {
        let Some(job) = problem
            .job_id
            .map(|id| jobs::get(&tx, id))
            .transpose()?
            .flatten()
        else {
            continue;
        };
        let Some(every) = job.repeat_every_minutes.or(default_every) else {
            continue;
        };
        if !job.is_active {
            continue;
        }
        let every = Duration::minutes(i64::from(every.max(1)));
        let last =
            alerts::last_reminder_after(&tx, job.id, problem.id)?.unwrap_or(problem.created_at);
        if now < last + every {
            continue;
        }
        let evaluated = status::evaluate(&tx, &job, now)?;
        let still_bad = match problem.kind {
            AlertKind::Hung => evaluated.running_since.is_some(),
            _ => matches!(
                evaluated.state,
                JobState::Late | JobState::Failed | JobState::Suspect
            ),
        };
        if !still_bad {
            continue;
        }
        // After downtime, one reminder on the cadence, not one per interval missed.
        let intervals = (now - last).num_seconds() / every.num_seconds().max(1);
        let due = last + every * i32::try_from(intervals).unwrap_or(i32::MAX);
        if let Some(alert) =
            alerts::queue(&tx, job.id, AlertKind::Reminder, due, problem.entry_id, now)?
        {
            log_queued(&alert, &job);
            queued += 1;
        }
    }
    tx.commit()?;
    Ok(queued)
}
