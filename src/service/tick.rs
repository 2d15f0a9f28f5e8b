//! The scheduler's evaluation: for each active job whose next slot fell due, write one
//! `missing` entry per slot that went unreported and queue the `late` alert.
//!
//! The due work is committed a chunk at a time, so that no transaction keeps the reports
//! waiting for long however many jobs fall due at once: [`plan`] splits the due jobs into
//! chunks of at most [`CHUNK_JOBS`] jobs, agent by agent (all the due jobs of an agent go in
//! one chunk, so that its late jobs are weighed together for one `agent_silent` alert, in
//! the transaction of their `missing` entries), and [`tick_chunk`] evaluates one chunk
//! inside the caller's write transaction. [`tick`] runs them all on one connection, each
//! chunk in its own transaction; the service's scheduler runs each through the group-commit
//! writer instead, between the reports. `tick` takes `now` and a connection, so tests drive
//! it a step at a time.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};

use super::reports::log_queued;
use crate::db::{self, alerts, entries, jobs, status};
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

/// Due jobs in one chunk (one transaction) at most; an agent with more due jobs than this is
/// one chunk of its own. A report queued behind a chunk waits for it: measured
/// (BENCHMARKS.md, "The all-due tick in chunks"), a chunk of 1,000 jobs whose agents'
/// jobs are spread over the whole file took ~500 ms on a busy 2-core machine, not the tens
/// of ms it was meant to; see there for why and what is left.
pub const CHUNK_JOBS: usize = 1000;

/// Page cache a chunk needs per job, in KiB: the pages its evaluation reads and dirties
/// (the leaves of the entries' indexes where the job's slot and `missing` entry go, its
/// row in `jobs` and its counter, the alert's), so that none spills to the WAL before the
/// commit and is written twice. SQLite's default (2 MiB) holds a chunk of ~50 jobs.
pub const CACHE_KIB_PER_JOB: usize = 40;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickOutcome {
    pub jobs_checked: usize,
    pub missing_written: usize,
    pub alerts_queued: usize,
    /// Transactions the due work took (chunks of due jobs).
    pub chunks: usize,
    /// Due jobs in the largest chunk.
    pub largest_chunk: usize,
}

impl std::ops::AddAssign for TickOutcome {
    fn add_assign(&mut self, other: Self) {
        self.jobs_checked += other.jobs_checked;
        self.missing_written += other.missing_written;
        self.alerts_queued += other.alerts_queued;
        self.chunks += other.chunks;
        self.largest_chunk = self.largest_chunk.max(other.largest_chunk);
    }
}

/// The due jobs of one agent or more, evaluated in one transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    ids: Vec<i64>,
}

impl Chunk {
    /// Due jobs in the chunk when it was planned.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// The page cache (KiB) that the largest of `chunks` needs.
pub fn cache_kib_for(chunks: &[Chunk]) -> i64 {
    let jobs = chunks.iter().map(Chunk::len).max().unwrap_or(0);
    i64::try_from(jobs.saturating_mul(CACHE_KIB_PER_JOB)).unwrap_or(i64::MAX)
}

/// Splits the jobs due at `now` into chunks of at most `chunk_jobs` jobs, agent by agent: an
/// agent's due jobs are never split (one agent with more than `chunk_jobs` is a chunk of its
/// own), and agents are packed together while they fit. Needs no write transaction: each
/// chunk re-reads its jobs in its own (see [`tick_chunk`]). A quiet tick reads nothing.
pub fn plan(
    conn: &Connection,
    now: DateTime<Utc>,
    chunk_jobs: usize,
) -> rusqlite::Result<Vec<Chunk>> {
    let due = jobs::due_by_agent(conn, now)?;
    let mut chunks = Vec::new();
    let mut current: Vec<i64> = Vec::new();
    let mut rest = due.as_slice();
    while let Some((agent, _)) = rest.first() {
        let n = rest.iter().take_while(|(a, _)| a == agent).count();
        let (of_agent, after) = rest.split_at(n);
        if !current.is_empty() && current.len() + n > chunk_jobs {
            chunks.push(Chunk {
                ids: std::mem::take(&mut current),
            });
        }
        current.extend(of_agent.iter().map(|(_, id)| *id));
        rest = after;
    }
    if !current.is_empty() {
        chunks.push(Chunk { ids: current });
    }
    Ok(chunks)
}

/// Evaluates one chunk at `now` inside the caller's write transaction. Its jobs are read
/// again here, and only those still due: a job that another tick (or process) evaluated
/// since the plan was made is skipped, so no slot is ever written twice.
///
/// For each job, the slots that fell due after the job's anchor (creation, re-activation,
/// reschedule) and after the last slot evaluated are checked, oldest first, at most
/// `max_catchup` per job (the rest on the next ticks). A slot with no `success` or `failed`
/// report in its window gets a `missing` entry. Only the job's latest due slot raises a
/// `late` alert: after downtime, one alert per job says it is late, not one per slot
/// missed. The late jobs of each agent are then weighed together ([`queue_late`]).
pub fn tick_chunk(
    conn: &Connection,
    chunk: &Chunk,
    now: DateTime<Utc>,
    max_catchup: usize,
) -> rusqlite::Result<TickOutcome> {
    let candidates = jobs::due_among(conn, now, &chunk.ids)?;
    let mut outcome = TickOutcome {
        jobs_checked: candidates.len(),
        chunks: 1,
        largest_chunk: candidates.len(),
        ..TickOutcome::default()
    };
    let mut late = Vec::new();
    for due in candidates {
        let job = due.job;
        let schedule = job.schedule();
        let after = due.anchor.max(due.evaluated_until);
        let slots = schedule.due_slots_between(after, now, max_catchup);
        let Some(&last) = slots.last() else {
            // Nothing due yet (a new or rescheduled job): note when something will be.
            jobs::set_next_due(conn, job.id, schedule.next_due_after(after))?;
            continue;
        };
        let latest_due = schedule.latest_due_slot(now);
        for slot in slots {
            if status::reported_in(conn, job.id, schedule.window(slot), now)?.0 {
                continue;
            }
            let missing = NewEntry::missing(job.id, slot);
            let (entry, created) = entries::insert(conn, &missing, now)?;
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
        jobs::set_evaluated(conn, job.id, evaluated, schedule.next_due_after(evaluated))?;
    }
    outcome.alerts_queued += queue_late(conn, late, now)?;
    Ok(outcome)
}

/// One evaluation at `now` with chunks of at most [`CHUNK_JOBS`] jobs (see
/// [`tick_in_chunks`]).
pub fn tick(
    conn: &mut Connection,
    now: DateTime<Utc>,
    max_catchup: usize,
) -> rusqlite::Result<TickOutcome> {
    tick_in_chunks(conn, now, max_catchup, CHUNK_JOBS)
}

/// One evaluation at `now` on one connection: the due jobs planned in chunks of at most
/// `chunk_jobs` (an agent's due jobs are never split), each chunk in its own immediate
/// transaction ([`tick_chunk`]), then the hung runs in one more. Two ticks (or two processes
/// on the same file) never write the same slot twice: each chunk sees what the other's
/// committed. While the chunks run, the connection's page cache is grown for the largest
/// ([`db::set_for_bulk`]).
pub fn tick_in_chunks(
    conn: &mut Connection,
    now: DateTime<Utc>,
    max_catchup: usize,
    chunk_jobs: usize,
) -> rusqlite::Result<TickOutcome> {
    let chunks = plan(conn, now, chunk_jobs.max(1))?;
    if chunks.is_empty() {
        return run_chunks(conn, &chunks, now, max_catchup);
    }
    let saved = db::set_for_bulk(conn, cache_kib_for(&chunks), true)?;
    let outcome = run_chunks(conn, &chunks, now, max_catchup);
    db::restore_settings(conn, saved)?;
    outcome
}

fn run_chunks(
    conn: &mut Connection,
    chunks: &[Chunk],
    now: DateTime<Utc>,
    max_catchup: usize,
) -> rusqlite::Result<TickOutcome> {
    let mut outcome = TickOutcome::default();
    for chunk in chunks {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        outcome += tick_chunk(&tx, chunk, now, max_catchup)?;
        tx.commit()?;
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    outcome.alerts_queued += hung_runs(&tx, now)?;
    tx.commit()?;
    Ok(outcome)
}
