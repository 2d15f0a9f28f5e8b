//! The scheduler's evaluation: for each active job whose next slot fell due, write one
//! `missing` entry per slot that went unreported and queue the `late` alert.
//!
//! `tick` takes `now` and a connection, so tests drive it a step at a time.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};

use super::reports::log_queued;
use crate::db::{alerts, entries, jobs, status};
use crate::domain::alert::AlertKind;
use crate::domain::alert::{late_alerts, LateAlerts, SILENT_AGENT_MIN_JOBS};
use crate::domain::entry::NewEntry;
use crate::domain::job::Job;

/// A job's latest due slot found unreported by this tick.
#[derive(Debug, Clone)]
struct Late {
    job: Job,
    slot: DateTime<Utc>,
    /// Its `missing` entry.
    entry_id: i64,
}

/// Queues the alerts of the slots this tick found late, agent by agent (DESIGN §10): while
/// an agent's `agent_silent` alert is open, its late slots are folded into it; when two or
/// more of its jobs are newly late and it has sent nothing since the earliest of those
/// slots' windows opened, one `agent_silent` alert names them all; otherwise each job gets
/// its `late` alert. Returns how many alerts were queued.
fn queue_late(conn: &Connection, late: Vec<Late>, now: DateTime<Utc>) -> rusqlite::Result<usize> {
    let mut by_agent: BTreeMap<String, Vec<Late>> = BTreeMap::new();
    for l in late {
        by_agent
            .entry(l.job.agent_id_responsible.clone())
            .or_default()
            .push(l);
    }
    let mut queued = 0;
    for (agent, late) in by_agent {
        let opened = late
            .iter()
            .map(|l| l.job.schedule().window(l.slot).0)
            .min()
            .unwrap_or(now);
        let open = alerts::open_agent_silent(conn, &agent)?;
        // The cheap conditions first: the query only for two or more late jobs.
        let heard = open.is_some()
            || late.len() < SILENT_AGENT_MIN_JOBS
            || status::agent_heard_since(conn, &agent, opened, now)?;
        let fold_into = match late_alerts(open.is_some(), late.len(), heard) {
            LateAlerts::Fold => open,
            LateAlerts::AgentSilent => {
                let since = late.iter().map(|l| l.slot).min().unwrap_or(now);
                let alert = alerts::queue_for_agent(
                    conn,
                    &agent,
                    AlertKind::AgentSilent,
                    since,
                    false,
                    now,
                )?;
                if let Some(alert) = &alert {
                    tracing::warn!(alert_id = alert.id, agent_id = %agent, jobs = late.len(), kind = alert.kind.as_str(), "alert queued");
                    queued += 1;
                }
                alert
            }
            LateAlerts::EachJob => None,
        };
        for l in late {
            match &fold_into {
                Some(alert) => alerts::add_job(conn, alert.id, l.job.id, l.slot, Some(l.entry_id))?,
                None => {
                    if let Some(alert) = alerts::queue(
                        conn,
                        l.job.id,
                        AlertKind::Late,
                        l.slot,
                        Some(l.entry_id),
                        now,
                    )? {
                        log_queued(&alert, &l.job);
                        queued += 1;
                    }
                }
            }
        }
    }
    Ok(queued)
}

/// Queues one `hung` alert for each run that has gone on longer than its job's
/// `max_duration_minutes` (DESIGN §10): the job's latest open run, named by its `started`
/// entry, under the slot it started in. Returns how many were queued.
pub fn hung_runs(conn: &Connection, now: DateTime<Utc>) -> rusqlite::Result<usize> {
    let mut queued = 0;
    for (job_id, start_id, started) in entries::overdue_runs(conn, now)? {
        let Some(job) = jobs::get(conn, job_id)? else {
            continue;
        };
        let slot = job.schedule().slot_for(started);
        if let Some(alert) =
            alerts::queue(conn, job_id, AlertKind::Hung, slot, Some(start_id), now)?
        {
            log_queued(&alert, &job);
            queued += 1;
        }
    }
    Ok(queued)
}

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
    let mut late = Vec::new();
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
            let missing = NewEntry::missing(job.id, slot);
            let (entry, created) = entries::insert(&tx, &missing, now)?;
            if !created {
                continue;
            }
            outcome.missing_written += 1;
            if slot == latest_due {
                late.push(Late {
                    job: job.clone(),
                    slot,
                    entry_id: entry.id,
                });
            }
        }
        let evaluated = schedule.due(last);
        jobs::set_evaluated(&tx, job.id, evaluated, schedule.next_due_after(evaluated))?;
    }
    outcome.alerts_queued += queue_late(&tx, late, now)?;
    outcome.alerts_queued += hung_runs(&tx, now)?;
    tx.commit()?;
    Ok(outcome)
}
