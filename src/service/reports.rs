//! Backup reports: the contract of a report, storing what an agent says happened, the
//! alerts a report raises, and reading the entries back.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use rusqlite::Connection;
use serde_json::Value;
use tokio::sync::Notify;
use utoipa::ToSchema;

use super::access::{ensure_access, job_for};
use super::input::{Fields, Need};
use super::{FieldError, LocItem, ServiceError};
use crate::db::entries::{self, EntryFilter};
use crate::db::jobs::JobCache;
use crate::db::{alerts, jobs, status};
use crate::domain::alert::{self, Alert, AlertKind};
use crate::domain::auth::Principal;
use crate::domain::content::{self, History, SIZE_HISTORY};
use crate::domain::entry::{
    Entry, EntryStatus, NewEntry, ReportStatus, BATCH_MAX, ERROR_MESSAGE_MAX, HASH_MAX, RUN_ID_MAX,
    SIZE_MIN,
};
use crate::domain::job::Job;
use crate::domain::status::JobState;
use crate::domain::time;
use crate::metrics;

/// A report of one backup run.
// The schema's bounds are not written here: `openapi::RequestBounds` sets them from the
// same constants `EntryCreate::parse` checks.
#[derive(Debug, Clone, ToSchema)]
pub struct EntryCreate {
    /// Any whole number: one that names no job is answered 404.
    pub expected_job_id: i64,
    pub status: ReportStatus,
    /// When the backup ran (RFC 3339); default: now.
    pub backup_timestamp_utc: Option<DateTime<Utc>>,
    /// `sha256:<64 hex>` recommended.
    pub backup_hash: Option<String>,
    pub backup_size_bytes: Option<i64>,
    pub error_message: Option<String>,
    /// Names the run a `started` entry begins and the `success` or `failed` that finishes
    /// it (at most 64 characters); without one, a report finishes the job's latest open run.
    pub run_id: Option<String>,
}

fn body_field_is_empty_string(value: &Value, key: &str) -> bool {
    value
        .get(key)
        .and_then(Value::as_str)
        .is_some_and(|s| s.trim().is_empty())
}

impl EntryCreate {
    /// Reads one report found at `loc` (`["body"]`, or `["body", i]` in a batch).
    pub fn parse(value: &Value, loc: Vec<LocItem>) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::of(value, loc.clone()).map_err(|e| vec![e])?;
        let job_id = f.int("expected_job_id", i64::MIN, i64::MAX, Need::Required);
        let status = f.choice("status", Need::Required);
        let report = Self {
            expected_job_id: job_id.unwrap_or_default(),
            status: status.unwrap_or(ReportStatus::Success),
            // Absent, null or empty: the backup ran now.
            backup_timestamp_utc: if body_field_is_empty_string(value, "backup_timestamp_utc") {
                None
            } else {
                f.datetime("backup_timestamp_utc", Need::Nullable)
            },
            // An empty hash is no hash: the two are the same report when repeated.
            backup_hash: f
                .text("backup_hash", HASH_MAX, Need::Nullable)
                .filter(|h| !h.is_empty()),
            backup_size_bytes: f.int("backup_size_bytes", SIZE_MIN, i64::MAX, Need::Nullable),
            error_message: f.text("error_message", ERROR_MESSAGE_MAX, Need::Nullable),
            // An empty run id is no run id.
            run_id: f
                .text("run_id", RUN_ID_MAX, Need::Nullable)
                .filter(|id| !id.is_empty()),
        };
        f.finish()?;
        Ok(report)
    }

    /// Reads a batch: a JSON array of 1 to [`BATCH_MAX`] reports, each at
    /// `["body", index]`; every item's problems are reported at once.
    pub fn parse_batch(
        body: &Value,
        now: DateTime<Utc>,
        max_skew: Duration,
    ) -> Result<Vec<NewEntry>, ServiceError> {
        let Value::Array(items) = body else {
            return Err(ServiceError::invalid(
                vec!["body".into()],
                "list_type",
                "Input should be a valid list",
            ));
        };
        if items.is_empty() {
            return Err(ServiceError::invalid(
                vec!["body".into()],
                "too_short",
                "List should have at least 1 item after validation, not 0",
            ));
        }
        if items.len() > BATCH_MAX {
            return Err(ServiceError::invalid(
                vec!["body".into()],
                "too_long",
                format!(
                    "List should have at most {BATCH_MAX} items after validation, not {}",
                    items.len()
                ),
            ));
        }
        let mut reports = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let loc = vec!["body".into(), LocItem::Index(i)];
            match Self::parse(item, loc.clone()).and_then(|r| r.into_new(now, max_skew, loc)) {
                Ok(r) => reports.push(r),
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() {
            Ok(reports)
        } else {
            Err(ServiceError::Invalid(errors))
        }
    }

    /// Reads one report at `["body"]`, dated no later than `now + max_skew`.
    pub fn parse_one(
        body: &Value,
        now: DateTime<Utc>,
        max_skew: Duration,
    ) -> Result<NewEntry, ServiceError> {
        let loc = vec![LocItem::from("body")];
        Self::parse(body, loc.clone())
            .and_then(|r| r.into_new(now, max_skew, loc))
            .map_err(ServiceError::Invalid)
    }

    /// The entry to store (dated `now` when the report gives no time). A report dated more
    /// than `max_skew` after `now` is refused: a host whose clock runs ahead must not hide
    /// the failures that follow it (DESIGN §9). `loc` is where the report is.
    pub fn into_new(
        self,
        now: DateTime<Utc>,
        max_skew: Duration,
        loc: Vec<LocItem>,
    ) -> Result<NewEntry, Vec<FieldError>> {
        let at = self.backup_timestamp_utc.unwrap_or(now);
        let ahead = at - now;
        if ahead > max_skew {
            let mut loc = loc;
            loc.push("backup_timestamp_utc".into());
            return Err(vec![FieldError::new(
                loc,
                "value_error",
                format!(
                    "Value error, backup_timestamp_utc {} is in the future by {}{} (more than the {} s allowed by ingest.max_clock_skew_seconds): check the clock of the host that reports",
                    time::format(at),
                    time::span(ahead),
                    if (120..172_800).contains(&ahead.num_seconds()) {
                        format!(" ({} s)", ahead.num_seconds())
                    } else {
                        String::new()
                    },
                    max_skew.num_seconds()
                ),
            )]);
        }
        Ok(NewEntry {
            expected_job_id: self.expected_job_id,
            status: self.status.into(),
            backup_timestamp_utc: at,
            backup_hash: self.backup_hash,
            backup_size_bytes: self.backup_size_bytes,
            error_message: self.error_message,
            run_id: self.run_id,
            duration_seconds: None,
            suspect_reason: None,
            log: None,
        })
    }
}

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
    /// After the commit: counts the new entries, names a single new one on the request's
    /// log line (the `entry_id`, `job_id` and `entry_status` of its span; a batch gets a
    /// line of its own) and wakes the alert delivery.
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
            // Named on the request's own line (its span), not on a line of its own: one
            // line per report is what a busy server can afford to write.
            [entry] if self.created[0] => {
                let span = tracing::Span::current();
                span.record("entry_id", entry.id);
                span.record("job_id", entry.expected_job_id);
                span.record("entry_status", entry.status.as_str());
            }
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
/// repeat returns the stored entry. Call inside the transaction that will commit it, with
/// the cache of job rows of that transaction's connection (the writer's: `Writer::jobs`).
pub fn report(
    conn: &Connection,
    jobs: &JobCache,
    caller: &Principal,
    new: &NewEntry,
    now: DateTime<Utc>,
) -> Result<Reported, ServiceError> {
    let job = jobs
        .get(conn, new.expected_job_id)?
        .ok_or_else(ServiceError::job_not_found)?;
    ensure_access(caller, &job)?;
    let (entry, created, alerted) = store(conn, &job, new, now, Some(jobs))?;
    Ok(Reported {
        entries: vec![entry],
        created: vec![created],
        alerted,
    })
}

/// Stores one report for `job`, found by other means than a token (a ping URL's key).
pub fn report_for(
    conn: &Connection,
    job: &Job,
    new: &NewEntry,
    now: DateTime<Utc>,
) -> rusqlite::Result<Reported> {
    let (entry, created, alerted) = store(conn, job, new, now, None)?;
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
    // A report for a job that does not exist refuses the batch with 404, naming the item:
    // the request matched the schema, so it is not a 422.
    let unknown: Vec<String> = reports
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(known.get(&r.expected_job_id), Some(None)))
        .map(|(i, r)| format!("item {i} (expected_job_id {})", r.expected_job_id))
        .collect();
    if let Some(first) = unknown.first() {
        let more = match unknown.len() {
            1 => String::new(),
            n => format!(" and {} more", n - 1),
        };
        return Err(ServiceError::NotFound(format!(
            "Job not found: {first}{more}"
        )));
    }
    let mut out = Reported {
        entries: Vec::with_capacity(reports.len()),
        created: Vec::with_capacity(reports.len()),
        alerted: false,
    };
    for report in reports {
        let Some(Some(job)) = known.get(&report.expected_job_id) else {
            continue;
        };
        let (entry, created, alerted) = store(conn, job, report, now, None)?;
        out.alerted |= alerted;
        out.entries.push(entry);
        out.created.push(created);
    }
    Ok(out)
}

/// Stores one report of `job`: finds the run it finishes (its duration) and runs the
/// content checks of a success (its `suspect_reason`) before the insert, then closes the
/// run and queues the alerts the new entry raises. Returns the entry, whether it is new
/// (an identical repeat is not), and whether an alert was queued. With the writer's `jobs`,
/// the successes a success is compared with come from what it remembers of the job.
fn store(
    conn: &Connection,
    job: &Job,
    report: &NewEntry,
    now: DateTime<Utc>,
    jobs: Option<&JobCache>,
) -> rusqlite::Result<(Entry, bool, bool)> {
    let mut new = report.clone();
    let at = new.backup_timestamp_utc;
    let run = match new.status {
        EntryStatus::Success | EntryStatus::Failed => {
            entries::open_run(conn, job.id, new.run_id.as_deref(), at)?
        }
        _ => None,
    };
    if let Some((_, started)) = run {
        new.duration_seconds = Some((at - started).num_seconds());
    }
    let mut successes_seen = None;
    if new.status == EntryStatus::Success {
        // Compared with the earlier slots only: a second report of the same backup (`exec`
        // then `verify` of the same file) is not "the same file again", and counts once.
        let schedule = job.schedule();
        let (slot_opened, _) = schedule.window(schedule.slot_for(at));
        // Only what this report's checks compare: sizes for a size, the last hash for a hash.
        let sizes_wanted = if new.backup_size_bytes.is_some() {
            SIZE_HISTORY
        } else {
            0
        };
        let latest_wanted = new.backup_hash.is_some();
        let previous = match jobs {
            Some(jobs) if sizes_wanted > 0 || latest_wanted => {
                let (previous, seen) = jobs.previous_successes(
                    conn,
                    job.id,
                    slot_opened,
                    sizes_wanted,
                    latest_wanted,
                )?;
                successes_seen = Some(seen);
                previous
            }
            _ => {
                entries::previous_successes(conn, job.id, slot_opened, sizes_wanted, latest_wanted)?
            }
        };
        let history = History {
            previous_sizes: &previous.sizes,
            previous_success: previous
                .latest
                .as_ref()
                .map(|(hash, when)| (hash.as_deref(), *when)),
        };
        new.suspect_reason = content::suspect_reason(
            &job.content_rules(),
            new.backup_size_bytes,
            new.backup_hash.as_deref(),
            &history,
        );
    }
    let (entry, created) = entries::insert(conn, &new, now)?;
    if !created {
        return Ok((entry, false, false));
    }
    if let (Some(jobs), Some(seen)) = (jobs, successes_seen) {
        jobs.stored_success(seen, &entry);
    }
    if let Some((start_id, _)) = run {
        entries::finish_run(conn, start_id, at)?;
    }
    let mut alerted = on_report(conn, job, &entry, now)?.is_some();
    alerted |= on_agent_report(conn, job, now)?;
    Ok((entry, true, alerted))
}

/// The first report from an agent whose `agent_silent` alert is open queues one
/// `agent_back` alert (DESIGN §10). Returns whether it did.
fn on_agent_report(conn: &Connection, job: &Job, now: DateTime<Utc>) -> rusqlite::Result<bool> {
    let Some(silent) = alerts::open_agent_silent(conn, &job.agent_id_responsible)? else {
        return Ok(false);
    };
    let back = alerts::queue_for_agent(
        conn,
        &job.agent_id_responsible,
        AlertKind::AgentBack,
        silent.slot_utc,
        // Nobody heard it go silent: nobody needs to hear it come back.
        silent.suppressed,
        now,
    )?;
    if let Some(alert) = &back {
        for (job_id, slot) in alerts::jobs_of(conn, silent.id)? {
            alerts::add_job(conn, alert.id, job_id, slot, None)?;
        }
        tracing::warn!(alert_id = alert.id, agent_id = %job.agent_id_responsible, kind = alert.kind.as_str(), "alert queued");
    }
    Ok(back.is_some())
}

/// The alert a new report raises, if any, following the order of events rather than the
/// order of arrival. Call it in the transaction that stored the entry.
///
/// - `failed`: only for the job's latest report, and only when its slot is the latest due
///   slot or later: a failure re-sent from history (a week of past runs, an import) is
///   stored and counted, and pages no one.
/// - `suspect`: a success that failed a content check, on the same terms as `failed`.
/// - `recovered`: only for the job's latest report, after an unanswered `late`, `failed`,
///   `suspect` or `hung` alert of an earlier or the same slot, and only when the job's
///   state is `ok` again (so a success must pass the content checks).
pub fn on_report(
    conn: &Connection,
    job: &Job,
    entry: &Entry,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<Alert>> {
    let schedule = job.schedule();
    let slot = schedule.slot_for(entry.backup_timestamp_utc);
    // A report a little ahead of the server's clock (within the allowed skew) is judged
    // at its own time. The cheap conditions come first: most reports raise nothing.
    let at = now.max(entry.backup_timestamp_utc);
    let is_latest = || -> rusqlite::Result<bool> {
        Ok(status::last_report(conn, job.id, at)?.map(|e| e.id) == Some(entry.id))
    };
    let queued = match entry.status {
        EntryStatus::Failed if slot >= schedule.latest_due_slot(now) && is_latest()? => {
            alerts::queue(conn, job.id, AlertKind::Failed, slot, Some(entry.id), now)?
        }
        EntryStatus::Success if entry.suspect_reason.is_some() => {
            if slot >= schedule.latest_due_slot(now) && is_latest()? {
                alerts::queue(conn, job.id, AlertKind::Suspect, slot, Some(entry.id), now)?
            } else {
                None
            }
        }
        EntryStatus::Success => match alerts::open_problem(conn, job.id)? {
            Some(problem_slot)
                if slot >= problem_slot
                    && is_latest()?
                    && status::evaluate(conn, job, at)?.state == JobState::Ok =>
            {
                alerts::queue(
                    conn,
                    job.id,
                    AlertKind::Recovered,
                    slot,
                    Some(entry.id),
                    now,
                )?
            }
            _ => None,
        },
        _ => None,
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
