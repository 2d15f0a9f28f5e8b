//! The scheduler's evaluation: for each active job whose next slot fell due, write one
//! `missing` entry per slot that went unreported and queue the `late` alert.
//!
//! The due work is committed a chunk at a time, so that no transaction keeps the reports
//! waiting for long however many jobs fall due at once: [`plan`] splits the due jobs into
//! chunks of at most [`CHUNK_JOBS`] jobs in id order (the order of their rows and of their
//! entries in the indexes, so that consecutive chunks touch different pages and each page is
//! written about once per tick), and [`tick_chunk`] evaluates one chunk inside the caller's
//! write transaction. An agent's jobs may fall in several chunks; its late jobs are still
//! weighed together for one `agent_silent` alert ([`queue_late`]): the chunk that finds its
//! first late job looks ahead at its jobs still due, and what it decides is kept in
//! [`Weighed`] for the chunks after it. [`tick`] runs them all on one connection, each chunk
//! in its own transaction; the service's scheduler runs each through the group-commit writer
//! instead, between the reports. `tick` takes `now` and a connection, so tests drive it a
//! step at a time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};

use super::reports::log_queued;
use crate::db::jobs::DueJob;
use crate::db::{self, alerts, entries, jobs, status};
use crate::domain::alert::AlertKind;
use crate::domain::alert::{late_alerts, LateAlerts, SILENT_AGENT_MIN_JOBS};
use crate::domain::entry::NewEntry;

/// A job's latest due slot found unreported by this tick.
#[derive(Debug, Clone)]
struct Late {
    job_id: i64,
    agent: String,
    slot: DateTime<Utc>,
    /// When the slot's window opened.
    opened: DateTime<Utc>,
    /// Its `missing` entry.
    entry_id: i64,
}

/// What one tick has decided about agents, carried from one of its chunks to the next.
#[derive(Debug, Clone, Default)]
pub struct Weighed {
    /// Each agent this tick has weighed, with the `agent_silent` alert its late jobs are
    /// folded into, or none: each gets its own `late` alert. An agent is weighed once a
    /// tick, as of the tick's `now`: should it come back while the tick runs (an
    /// `agent_back` answering the alert), the late jobs the later chunks find still belong to
    /// the silence the tick saw, and are folded into the same alert.
    agents: HashMap<String, Option<i64>>,
}

/// Queues the alerts of the slots this chunk found late, agent by agent (DESIGN §10): while
/// an agent's `agent_silent` alert is open, its late slots are folded into it; when two or
/// more of its jobs are newly late in this tick and it has sent nothing since the earliest
/// of those slots' windows opened, one `agent_silent` alert names them all (the jobs in
/// later chunks are folded into it there); otherwise each job gets its `late` alert, in
/// this chunk and in the later ones. Each agent is weighed at its first late job of the
/// tick ([`decide`], called by [`tick_chunk`] as it finds it), and the decision holds for
/// the tick's other jobs ([`Weighed`]). Returns how many alerts were queued.
fn queue_late(
    conn: &Connection,
    late: Vec<Late>,
    now: DateTime<Utc>,
    max_catchup: usize,
    weighed: &mut Weighed,
) -> rusqlite::Result<usize> {
    let mut by_agent: BTreeMap<String, Vec<Late>> = BTreeMap::new();
    for l in late {
        by_agent.entry(l.agent.clone()).or_default().push(l);
    }
    let mut queued = 0;
    for (agent, late) in by_agent {
        let (fold_into, opened) = decide(conn, &agent, &late, now, max_catchup, weighed)?;
        queued += opened;
        for l in late {
            match fold_into {
                Some(alert_id) => {
                    alerts::add_job(conn, alert_id, l.job_id, l.slot, Some(l.entry_id))?
                }
                None => {
                    if let Some(alert) = alerts::queue(
                        conn,
                        l.job_id,
                        AlertKind::Late,
                        l.slot,
                        Some(l.entry_id),
                        now,
                    )? {
                        // The whole job, for the log line's subject.
                        if let Some(job) = jobs::get(conn, l.job_id)? {
                            log_queued(&alert, &job);
                        }
                        queued += 1;
                    }
                }
            }
        }
    }
    Ok(queued)
}

/// The `agent_silent` alert that `agent`'s late jobs of this tick are folded into, or none
/// (each gets its own `late` alert), and how many alerts deciding it queued (0 or 1): what
/// an earlier chunk or an earlier job of this chunk decided ([`Weighed`]); else its open
/// `agent_silent` alert; else the agent weighed now, its late jobs `late` in this chunk
/// and the look ahead at its jobs still due.
fn decide(
    conn: &Connection,
    agent: &str,
    late: &[Late],
    now: DateTime<Utc>,
    max_catchup: usize,
    weighed: &mut Weighed,
) -> rusqlite::Result<(Option<i64>, usize)> {
    if let Some(decided) = weighed.agents.get(agent) {
        return Ok((*decided, 0));
    }
    let mut queued = 0;
    let decided = if let Some(open) = alerts::open_agent_silent(conn, agent)? {
        Some(open.id)
    } else if let Some((since, jobs)) = weigh(conn, agent, late, now, max_catchup)? {
        let alert =
            alerts::queue_for_agent(conn, agent, AlertKind::AgentSilent, since, false, now)?;
        if let Some(alert) = &alert {
            tracing::warn!(alert_id = alert.id, agent_id = %agent, jobs, kind = alert.kind.as_str(), "alert queued");
            queued += 1;
        }
        alert.map(|a| a.id)
    } else {
        None
    };
    weighed.agents.insert(agent.to_owned(), decided);
    Ok((decided, queued))
}

/// Weighs an agent with no open `agent_silent` alert, the first time this tick finds one of
/// its jobs late: its late jobs in this chunk (`late`) and those the chunks to come will
/// find. `Some((since, jobs))`: one `agent_silent` alert from that slot for that many late
/// jobs; `None`: a `late` alert each.
/// Cheap first: an agent heard since this chunk's earliest window opened was heard since
/// the tick's earliest (which is no later), so its jobs get a `late` alert each with no look
/// ahead; that is the common case (an agent that reports, with a job late).
fn weigh(
    conn: &Connection,
    agent: &str,
    late: &[Late],
    now: DateTime<Utc>,
    max_catchup: usize,
) -> rusqlite::Result<Option<(DateTime<Utc>, usize)>> {
    let opened_here = late.iter().map(|l| l.opened).min().unwrap_or(now);
    if status::agent_heard_since(conn, agent, opened_here, now)? {
        return Ok(None);
    }
    let mut count = late.len();
    let mut opened = opened_here;
    let mut since = late.iter().map(|l| l.slot).min().unwrap_or(now);
    for due in jobs::due_of_agent(conn, agent, now)? {
        if let Some(slot) = late_slot(conn, &due, now, max_catchup, opened_here)? {
            count += 1;
            opened = opened.min(due.schedule.window(slot).0);
            since = since.min(slot);
        }
    }
    // Not heard since `opened_here`; since an earlier `opened`, perhaps.
    let heard = count >= SILENT_AGENT_MIN_JOBS
        && opened < opened_here
        && status::agent_heard_since(conn, agent, opened, now)?;
    Ok((late_alerts(false, count, heard) == LateAlerts::AgentSilent).then_some((since, count)))
}

/// The slot that would make `due` late if this tick evaluated it now: its latest due slot,
/// when that is among the slots the tick evaluates for it and has no report. Its agent sent
/// nothing dated from `silent_since` to `now`: a slot whose window opened since has no
/// report, and is not looked up (with the same schedules, an agent's jobs need no query).
fn late_slot(
    conn: &Connection,
    due: &DueJob,
    now: DateTime<Utc>,
    max_catchup: usize,
    silent_since: DateTime<Utc>,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let schedule = due.schedule;
    let latest_due = schedule.latest_due_slot(now);
    let after = due.anchor.max(due.evaluated_until);
    if !schedule
        .due_slots_between(after, now, max_catchup)
        .contains(&latest_due)
    {
        return Ok(None);
    }
    let window = schedule.window(latest_due);
    let reported = window.0 < silent_since && status::reported_in(conn, due.id, window, now)?.0;
    Ok((!reported).then_some(latest_due))
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

/// Due jobs in one chunk (one transaction) at most. In the service a chunk also stops at
/// [`CHUNK_BUDGET`] (at [`CHUNK_BUDGET_SHARED`] while reports compete), which is what bounds
/// a report's wait behind it: at 100,000 jobs and 10,000,000 entries a chunk does ~850
/// jobs in its 10 ms. Each chunk rewrites the pages all chunks share (the recent end of the
/// entries' table and indexes, the counters' pages, the due index's), so fewer, bigger
/// chunks write less: the all-due tick took 1.44-1.49 s in chunks of 1,000 against
/// 1.57-1.66 s in chunks of 250 (BENCHMARKS.md, "The all-due tick, committed unsynced").
pub const CHUNK_JOBS: usize = 1_000;

/// How long the service's chunk may work before it commits what it did and leaves the rest
/// of its jobs to the next one ([`tick_chunk`]), while no report competes with the tick.
pub const CHUNK_BUDGET: Duration = Duration::from_millis(10);

/// The same while reports compete with the tick (and for its first chunk, before it knows):
/// a report that comes during a chunk waits for the rest of it and for its commit, whose
/// frames the report's own commit then `fsync`s, so the chunk is kept small.
pub const CHUNK_BUDGET_SHARED: Duration = Duration::from_millis(3);

/// How long each of a tick's chunks may work: `alone` while no other write came to the
/// writer since the previous chunk began, `shared` for the first chunk and while some
/// came (see `scheduler::tick_through`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkBudget {
    pub alone: Duration,
    pub shared: Duration,
}

impl ChunkBudget {
    /// The service's: [`CHUNK_BUDGET`] alone, [`CHUNK_BUDGET_SHARED`] beside reports.
    pub const SERVICE: Self = Self {
        alone: CHUNK_BUDGET,
        shared: CHUNK_BUDGET_SHARED,
    };

    /// The same budget in both cases.
    pub const fn flat(budget: Duration) -> Self {
        Self {
            alone: budget,
            shared: budget,
        }
    }

    /// The next chunk's budget, given how many other writes came since the previous chunk
    /// began (`None`: no chunk yet).
    pub fn next(self, others: Option<u64>) -> Duration {
        match others {
            Some(0) => self.alone,
            _ => self.shared,
        }
    }
}

/// Page cache a chunk needs per job, in KiB: the pages its evaluation reads and dirties
/// (the leaves of the entries' indexes where the job's slot and `missing` entry go, its
/// row in `jobs` and its counter, the alert's), so that none spills to the WAL before the
/// commit and is written twice. SQLite's default (2 MiB) holds a chunk of ~50 jobs. At 40
/// KiB a job the tick was no faster (1.44-1.56 s against 1.47 s) and the process's peak
/// memory was 57 MiB against 31 MiB.
pub const CACHE_KIB_PER_JOB: usize = 16;

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

/// Due jobs evaluated in one transaction, in id order.
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

/// Splits the jobs due at `now` into chunks of at most `chunk_jobs` jobs, in id order. Needs
/// no write transaction: each chunk re-reads its jobs in its own (see [`tick_chunk`]). A
/// quiet tick reads nothing.
pub fn plan(
    conn: &Connection,
    now: DateTime<Utc>,
    chunk_jobs: usize,
) -> rusqlite::Result<Vec<Chunk>> {
    let due = jobs::due_ids(conn, now)?;
    Ok(due
        .chunks(chunk_jobs.max(1))
        .map(|ids| Chunk { ids: ids.to_vec() })
        .collect())
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
/// missed. An agent is weighed at its first late job in the tick, with its jobs still due
/// ([`decide`]); `weighed` carries what was decided from one chunk to the next, so the chunks
/// of one tick must share one.
///
/// The chunk stops early, between two jobs, once it has worked for `budget`: a report
/// queued behind it waits about that long at most, even when the chunk weighs many silent
/// agents (each a look at every one of its jobs' entries). Returns what it did, and the
/// chunk of its jobs it left for the next transaction, if any.
pub fn tick_chunk(
    conn: &Connection,
    chunk: &Chunk,
    now: DateTime<Utc>,
    max_catchup: usize,
    weighed: &mut Weighed,
    budget: Duration,
) -> rusqlite::Result<(TickOutcome, Option<Chunk>)> {
    let started = Instant::now();
    let candidates = jobs::due_among(conn, now, &chunk.ids)?;
    let ids: Vec<i64> = candidates.iter().map(|due| due.id).collect();
    let mut outcome = TickOutcome {
        chunks: 1,
        ..TickOutcome::default()
    };
    let mut late = Vec::new();
    let mut rest = None;
    // Recorded together (see `jobs::set_evaluated`), before an agent is weighed (its jobs
    // still due are read then) and at the end.
    let mut evaluated = Vec::new();
    for (i, due) in candidates.into_iter().enumerate() {
        if i > 0 && started.elapsed() >= budget {
            rest = Some(Chunk {
                ids: ids[i..].to_vec(),
            });
            break;
        }
        outcome.jobs_checked += 1;
        let schedule = due.schedule;
        let after = due.anchor.max(due.evaluated_until);
        let slots = schedule.due_slots_between(after, now, max_catchup);
        let Some(&last) = slots.last() else {
            // Nothing due yet (a new or rescheduled job): note when something will be.
            jobs::set_next_due(conn, due.id, schedule.next_due_after(after))?;
            continue;
        };
        let latest_due = schedule.latest_due_slot(now);
        let mut late_slot = None;
        for slot in slots {
            if status::reported_in(conn, due.id, schedule.window(slot), now)?.0 {
                continue;
            }
            let missing = NewEntry::missing(due.id, slot);
            let (entry, created) = entries::insert(conn, &missing, now)?;
            if !created {
                continue;
            }
            outcome.missing_written += 1;
            if slot == latest_due {
                late_slot = Some((slot, entry.id));
            }
        }
        let evaluated_until = schedule.due(last);
        evaluated.push(jobs::Evaluated {
            id: due.id,
            evaluated_until,
            next_due: schedule.next_due_after(evaluated_until),
        });
        if let Some((slot, entry_id)) = late_slot {
            let l = Late {
                job_id: due.id,
                agent: due.agent_id_responsible,
                slot,
                opened: schedule.window(slot).0,
                entry_id,
            };
            // Weighed now, so that the budget sees what weighing cost.
            let agent = l.agent.clone();
            if !weighed.agents.contains_key(&agent) {
                jobs::set_evaluated(conn, &std::mem::take(&mut evaluated))?;
            }
            outcome.alerts_queued += decide(
                conn,
                &agent,
                std::slice::from_ref(&l),
                now,
                max_catchup,
                weighed,
            )?
            .1;
            late.push(l);
        }
    }
    jobs::set_evaluated(conn, &evaluated)?;
    outcome.largest_chunk = outcome.jobs_checked;
    outcome.alerts_queued += queue_late(conn, late, now, max_catchup, weighed)?;
    Ok((outcome, rest))
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
/// `chunk_jobs` in id order, each chunk in its own immediate
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
        return run_chunks(conn, chunks, now, max_catchup);
    }
    let saved = db::set_for_bulk(conn, cache_kib_for(&chunks), true)?;
    let outcome = run_chunks(conn, chunks, now, max_catchup);
    db::restore_settings(conn, saved)?;
    outcome
}

fn run_chunks(
    conn: &mut Connection,
    chunks: Vec<Chunk>,
    now: DateTime<Utc>,
    max_catchup: usize,
) -> rusqlite::Result<TickOutcome> {
    let mut outcome = TickOutcome::default();
    let mut weighed = Weighed::default();
    let mut queue = VecDeque::from(chunks);
    while let Some(chunk) = queue.pop_front() {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (done, rest) = tick_chunk(&tx, &chunk, now, max_catchup, &mut weighed, Duration::MAX)?;
        outcome += done;
        tx.commit()?;
        if let Some(rest) = rest {
            queue.push_front(rest);
        }
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    outcome.alerts_queued += hung_runs(&tx, now)?;
    tx.commit()?;
    Ok(outcome)
}
