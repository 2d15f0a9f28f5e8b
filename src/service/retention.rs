//! Retention (DESIGN §14): entries and alerts older than `retention.keep_days` are deleted a
//! chunk at a time, so that no transaction holds the database for long.
//!
//! What is kept, however old:
//! - each job's latest `success` and latest `failed` entry (dated no later than `now`), so
//!   that the status, the badges and `check` still say when a job last worked and last
//!   failed; every other old entry goes, whatever its status;
//! - each job's latest alert, so that a success still answers a problem alerted long ago
//!   with a `recovered` alert. An old alert goes whether or not it was delivered: one still
//!   undelivered after `keep_days` is no longer news, and without SMTP the outbox would
//!   otherwise grow for ever.
//!
//! A run starts by reading, outside any write transaction, when each job's latest success
//! and latest failure ran ([`Pruning::start`]); then each [`Pruning::step`] weighs at most
//! [`CHUNK`] old rows, oldest first, and deletes those that may go, inside the caller's write
//! transaction, stopping earlier when its time budget is spent: old rows of many jobs sit on
//! as many pages of the job-ordered indexes, and a thousand of them can take a hundred
//! milliseconds on a small machine. What the run learnt at its start can only be older than the truth: a report
//! stored meanwhile is newer, so it can only make the run keep a row that the next run
//! deletes, never delete one it had to keep. A job created meanwhile keeps everything until
//! the next run.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};

use crate::db::retention::{self, OldEntry};
use crate::domain::entry::EntryStatus;
use crate::domain::time::to_micros;

/// Rows weighed (and so deleted) at most per step, hence per transaction.
pub const CHUNK: usize = 1000;

/// Rows read at a time within a step, between two looks at its time budget.
pub const BATCH: usize = 100;

/// What a run deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneOutcome {
    pub entries_deleted: usize,
    pub alerts_deleted: usize,
    /// Steps taken, i.e. write transactions.
    pub steps: usize,
}

/// The instant before which entries and alerts are old: `keep_days` days before `now`. None
/// when nothing is ever old: `keep_days` is 0 (keep everything), or so large that the
/// instant would be before the calendar's start.
pub fn cutoff(now: DateTime<Utc>, keep_days: u32) -> Option<DateTime<Utc>> {
    if keep_days == 0 {
        return None;
    }
    now.checked_sub_signed(chrono::Duration::try_days(i64::from(keep_days))?)
}

/// A run in progress: what must be kept, and how far it has gone.
#[derive(Debug, Clone)]
pub struct Pruning {
    cutoff_us: i64,
    /// Per job, when its latest success ran.
    latest_success: HashMap<i64, i64>,
    /// Per job, when its latest failure ran.
    latest_failure: HashMap<i64, i64>,
    stage: Stage,
    outcome: PruneOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Alerts first, by id, after this one.
    Alerts {
        after: i64,
    },
    /// Then entries, oldest first, after this `(backup_timestamp_us, id)`.
    Entries {
        after: (i64, i64),
    },
    Done,
}

impl Pruning {
    /// Begins a run at `now`: reads when each job's latest success and failure ran. None
    /// when nothing is ever old (see [`cutoff`]). Needs no write transaction.
    pub fn start(
        conn: &Connection,
        now: DateTime<Utc>,
        keep_days: u32,
    ) -> rusqlite::Result<Option<Self>> {
        let Some(cutoff) = cutoff(now, keep_days) else {
            return Ok(None);
        };
        let now_us = to_micros(now);
        Ok(Some(Self {
            cutoff_us: to_micros(cutoff),
            latest_success: retention::latest_by_job(conn, EntryStatus::Success.as_str(), now_us)?,
            latest_failure: retention::latest_by_status(
                conn,
                EntryStatus::Failed.as_str(),
                now_us,
            )?,
            stage: Stage::Alerts { after: 0 },
            outcome: PruneOutcome::default(),
        }))
    }

    /// Weighs at most [`CHUNK`] old rows, [`BATCH`] at a time, and deletes those that may
    /// go; stops early, after a batch, once `budget` is spent (a step always weighs a row at
    /// least, unless none is left, so a run always ends). Run it inside a write transaction: the budget
    /// bounds how long the transaction keeps the database from the reports. Answers whether
    /// there is more to do.
    pub fn step(&mut self, conn: &Connection, budget: Duration) -> rusqlite::Result<bool> {
        let started = Instant::now();
        let mut weighed = 0;
        while weighed < CHUNK && self.stage != Stage::Done {
            weighed += self.batch(conn, BATCH.min(CHUNK - weighed))?;
            if weighed > 0 && started.elapsed() >= budget {
                break;
            }
        }
        self.outcome.steps += 1;
        Ok(self.stage != Stage::Done)
    }

    /// Weighs the next `limit` old rows (or what is left of the stage) and deletes those
    /// that may go; answers how many it weighed.
    fn batch(&mut self, conn: &Connection, limit: usize) -> rusqlite::Result<usize> {
        match self.stage {
            Stage::Alerts { after } => {
                let old = retention::old_alerts(conn, self.cutoff_us, after, limit)?;
                for alert in old.iter().filter(|a| a.superseded) {
                    self.outcome.alerts_deleted += retention::delete_alert(conn, alert.id)?;
                }
                self.stage = match old.last() {
                    Some(last) if old.len() == limit => Stage::Alerts { after: last.id },
                    _ => Stage::Entries {
                        after: (i64::MIN, i64::MIN),
                    },
                };
                Ok(old.len())
            }
            Stage::Entries { after } => {
                let old = retention::old_entries(conn, self.cutoff_us, after, limit)?;
                let mut deleted = 0;
                for entry in old.iter().filter(|e| self.may_go(e)) {
                    deleted += retention::delete_entry(conn, entry.id)?;
                }
                self.outcome.entries_deleted += deleted;
                self.stage = match old.last() {
                    Some(last) if old.len() == limit => Stage::Entries {
                        after: (last.backup_timestamp_us, last.id),
                    },
                    _ => Stage::Done,
                };
                Ok(old.len())
            }
            Stage::Done => Ok(0),
        }
    }

    /// An old entry may go unless it is its job's latest success or latest failure (an
    /// entry of the same job and status at the same instant is kept with it). A job whose
    /// latest is unknown to this run (created since it began) keeps them all.
    fn may_go(&self, entry: &OldEntry) -> bool {
        let latest = if entry.status == EntryStatus::Success.as_str() {
            &self.latest_success
        } else if entry.status == EntryStatus::Failed.as_str() {
            &self.latest_failure
        } else {
            return true;
        };
        latest
            .get(&entry.job_id)
            .is_some_and(|&at| entry.backup_timestamp_us < at)
    }

    pub fn outcome(&self) -> PruneOutcome {
        self.outcome
    }
}

/// A whole run at `now`, each step (a whole [`CHUNK`], no time budget) in its own immediate
/// transaction, one after the other: for tests and one-shot use. The service's scheduler
/// runs the steps through the report writer instead, with a budget and pauses.
pub fn prune(
    conn: &mut Connection,
    now: DateTime<Utc>,
    keep_days: u32,
) -> rusqlite::Result<PruneOutcome> {
    let Some(mut pruning) = Pruning::start(conn, now, keep_days)? else {
        return Ok(PruneOutcome::default());
    };
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let more = pruning.step(&tx, Duration::MAX)?;
        tx.commit()?;
        if !more {
            return Ok(pruning.outcome());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_old_when_retention_is_off_or_reaches_before_the_calendar() {
        let now = DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        assert_eq!(cutoff(now, 0), None);
        assert_eq!(cutoff(now, u32::MAX), None);
        assert_eq!(
            cutoff(now, 400).map(|t| t.to_rfc3339()),
            Some("2025-10-26T12:00:00+00:00".to_owned())
        );
    }
}
