//! Backup reports: storing what an agent says happened, the alerts a report raises, and
//! reading the entries back.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use tokio::sync::Notify;

use super::access::{ensure_access, job_for};
use super::{FieldError, LocItem, ServiceError};
use crate::db::entries::{self, EntryFilter};
use crate::db::{alerts, jobs};
use crate::domain::alert::{self, Alert, AlertKind};
use crate::domain::auth::Principal;
use crate::domain::entry::{Entry, EntryStatus, NewEntry};
use crate::domain::job::Job;
use crate::metrics;

/// What storing reports did; call [`Reported::committed`] once the transaction is on disk.
#[derive(Debug)]
pub struct Reported {
    /// The entries, in the order of the reports.
    pub entries: Vec<Entry>,
    /// For each entry, whether it is new (false: an identical report was already stored).
    pub created: Vec<bool>,
    /// Whether an alert was queued.
    pub alerted: bool,
}

impl Reported {
    /// After the commit: counts the new entries, logs them and wakes the alert delivery.
    pub fn committed(&self, wake: &Notify) {
        for (entry, created) in self.entries.iter().zip(&self.created) {
            if *created {
                metrics::entry_received(entry.status.as_str());
            }
        }
        if self.alerted {
            wake.notify_one();
        }
        match self.entries.as_slice() {
            [entry] if self.created[0] => tracing::info!(
                entry_id = entry.id,
                job_id = entry.expected_job_id,
                status = entry.status.as_str(),
                "backup reported"
            ),
            [_] => {}
            many => tracing::info!(count = many.len(), "backup batch reported"),
        }
    }

    /// The one entry of a single report, and whether it is new.
    pub fn single(self) -> Option<(Entry, bool)> {
        let created = *self.created.first()?;
        self.entries.into_iter().next().map(|e| (e, created))
    }
}

/// Stores one report from `caller`: the job must exist and be reachable. An identical
/// repeat returns the stored entry. Call inside the transaction that will commit it.
pub fn report(
    conn: &Connection,
    caller: &Principal,
    new: &NewEntry,
    now: DateTime<Utc>,
) -> Result<Reported, ServiceError> {
    let job = job_for(conn, caller, new.expected_job_id)?;
    let (entry, created) = entries::insert(conn, new, now)?;
    let alerted = created && on_report(conn, &job, &entry, now)?.is_some();
    Ok(Reported {
        entries: vec![entry],
        created: vec![created],
        alerted,
    })
}

/// Stores a batch of reports, all or nothing: one report for another agent's job refuses
/// the whole batch, and so does one for a job that does not exist (naming each such item).
pub fn report_batch(
    conn: &Connection,
    caller: &Principal,
    reports: &[NewEntry],
    now: DateTime<Utc>,
) -> Result<Reported, ServiceError> {
    let mut known: BTreeMap<i64, Option<Job>> = BTreeMap::new();
    for report in reports {
        if let std::collections::btree_map::Entry::Vacant(slot) =
            known.entry(report.expected_job_id)
        {
            slot.insert(jobs::get(conn, report.expected_job_id)?);
        }
    }
    for (i, report) in reports.iter().enumerate() {
        if let Some(Some(job)) = known.get(&report.expected_job_id) {
            ensure_access(caller, job).map_err(|e| match e {
                ServiceError::Forbidden(detail) => {
                    ServiceError::Forbidden(format!("Item {i}: {detail}"))
                }
                other => other,
            })?;
        }
    }
    let unknown: Vec<FieldError> = reports
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(known.get(&r.expected_job_id), Some(None)))
        .map(|(i, _)| {
            FieldError::new(
                vec!["body".into(), LocItem::Index(i), "expected_job_id".into()],
                "value_error",
                "Job not found",
            )
        })
        .collect();
    if !unknown.is_empty() {
        return Err(ServiceError::Invalid(unknown));
    }
    let mut out = Reported {
        entries: Vec::with_capacity(reports.len()),
        created: Vec::with_capacity(reports.len()),
        alerted: false,
    };
    for report in reports {
        let (entry, created) = entries::insert(conn, report, now)?;
        if let (true, Some(Some(job))) = (created, known.get(&entry.expected_job_id)) {
            out.alerted |= on_report(conn, job, &entry, now)?.is_some();
        }
        out.entries.push(entry);
        out.created.push(created);
    }
    Ok(out)
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

/// One warning line per queued alert, with the subject a person would read.
pub fn log_queued(alert: &Alert, job: &Job) {
    tracing::warn!(alert_id = alert.id, job_id = job.id, kind = alert.kind.as_str(), subject = %alert::subject(alert, job), "alert queued");
}

/// One entry, if `caller` may see its job.
pub fn get(conn: &Connection, caller: &Principal, id: i64) -> Result<Entry, ServiceError> {
    let entry = entries::get(conn, id)?
        .ok_or_else(|| ServiceError::NotFound("Entry not found".to_owned()))?;
    if let Some(job) = jobs::get(conn, entry.expected_job_id)? {
        ensure_access(caller, &job)?;
    }
    Ok(entry)
}

/// A page of entries newest first, and the total after filters: only the caller's own
/// jobs' for an agent token; only one job's (which must exist and be reachable) when
/// `filter.job_id` is set.
pub fn list(
    conn: &Connection,
    caller: &Principal,
    mut filter: EntryFilter,
    skip: i64,
    limit: i64,
) -> Result<(Vec<Entry>, i64), ServiceError> {
    match filter.job_id {
        Some(job_id) => {
            job_for(conn, caller, job_id)?;
        }
        None => filter.agent = caller.agent().map(str::to_owned),
    }
    Ok(entries::list(conn, &filter, skip, limit)?)
}
