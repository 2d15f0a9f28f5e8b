//! Queries on the `jobs` table.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::entries::{self, KnownSuccesses, PreviousSuccesses};
use super::Filters;
use crate::domain::entry::Entry;
use crate::domain::job::{CronText, Job};
use crate::domain::schedule::{Frequency, FrequencySchedule, Schedule};
use crate::domain::time::{from_micros, to_micros};
use crate::domain::zone::Zone;

pub(crate) const COLUMNS: &str = "id, database_name, agent_id_responsible, company_name, city, \
    expected_hour_utc, expected_minute_utc, backup_frequency, final_storage_path_template, \
    expected_weekday, expected_day_of_month, grace_minutes, is_active, notify_emails, \
    created_at_us, updated_at_us, schedule, timezone, max_duration_minutes, min_size_bytes, \
    size_drop_percent, stale_hash_check, ping_key, snoozed_until_us, snooze_reason, \
    repeat_every_minutes";

fn conversion_error(column: usize, message: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        column,
        rusqlite::types::Type::Text,
        Box::<dyn std::error::Error + Send + Sync>::from(message),
    )
}

/// The frequency stored in column `i`, read in place.
fn frequency_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Frequency> {
    let text = row.get_ref(i)?.as_str()?;
    Frequency::parse(text).ok_or_else(|| conversion_error(i, format!("unknown frequency {text:?}")))
}

/// The cron expression stored in column `i`, if any, read in place.
fn cron_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<CronText>> {
    row.get_ref(i)?
        .as_str_or_null()?
        .map(|text| {
            CronText::parse(text)
                .map_err(|e| conversion_error(i, format!("bad schedule {text:?}: {e}")))
        })
        .transpose()
}

/// The time zone stored in column `i`, read in place.
fn zone_at(row: &Row<'_>, i: usize) -> rusqlite::Result<Zone> {
    Zone::parse(row.get_ref(i)?.as_str()?).map_err(|e| conversion_error(i, e.to_string()))
}

pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Job> {
    let emails: String = row.get(13)?;
    Ok(Job {
        id: row.get(0)?,
        database_name: row.get(1)?,
        agent_id_responsible: row.get(2)?,
        company_name: row.get(3)?,
        city: row.get(4)?,
        expected_hour_utc: row.get(5)?,
        expected_minute_utc: row.get(6)?,
        backup_frequency: frequency_at(row, 7)?,
        final_storage_path_template: row.get(8)?,
        expected_weekday: row.get(9)?,
        expected_day_of_month: row.get(10)?,
        grace_minutes: row.get(11)?,
        is_active: row.get(12)?,
        notify_emails: serde_json::from_str(&emails)
            .map_err(|e| conversion_error(13, format!("bad notify_emails: {e}")))?,
        created_at: from_micros(row.get(14)?),
        updated_at: from_micros(row.get(15)?),
        schedule: cron_at(row, 16)?,
        timezone: zone_at(row, 17)?,
        max_duration_minutes: row.get(18)?,
        min_size_bytes: row.get(19)?,
        size_drop_percent: row.get(20)?,
        stale_hash_check: row.get(21)?,
        ping_key: row.get::<_, Option<String>>(22)?.unwrap_or_default(),
        snoozed_until: row.get::<_, Option<i64>>(23)?.map(from_micros),
        snooze_reason: row.get(24)?,
        repeat_every_minutes: row.get(25)?,
    })
}

/// The stored fields of `job` in column order (`database_name` … `notify_emails`, then
/// `schedule`, `timezone` and the run and content settings), as `insert` and `update` bind
/// them from `?first` on.
fn field_values(job: &Job) -> [rusqlite::types::Value; 22] {
    let emails = serde_json::to_string(&job.notify_emails).unwrap_or_else(|_| "[]".to_owned());
    [
        job.database_name.clone().into(),
        job.agent_id_responsible.clone().into(),
        job.company_name.clone().into(),
        job.city.clone().into(),
        job.expected_hour_utc.into(),
        job.expected_minute_utc.into(),
        job.backup_frequency.as_str().to_owned().into(),
        job.final_storage_path_template.clone().into(),
        job.expected_weekday.into(),
        job.expected_day_of_month.into(),
        job.grace_minutes.into(),
        job.is_active.into(),
        emails.into(),
        job.schedule.as_ref().map(|s| s.as_str().to_owned()).into(),
        job.timezone.name().to_owned().into(),
        job.max_duration_minutes.into(),
        job.min_size_bytes.into(),
        job.size_drop_percent.into(),
        job.stale_hash_check.into(),
        job.snoozed_until.map(to_micros).into(),
        job.snooze_reason.clone().into(),
        job.repeat_every_minutes.into(),
    ]
}

/// Stores a new job (its `id`, `created_at` and `updated_at` are assigned here).
pub fn insert(conn: &Connection, job: &Job, now: DateTime<Utc>) -> rusqlite::Result<Job> {
    let now_us = to_micros(now);
    conn.query_row(
        &format!(
            "INSERT INTO jobs (database_name, agent_id_responsible, company_name, city, \
             expected_hour_utc, expected_minute_utc, backup_frequency, final_storage_path_template, \
             expected_weekday, expected_day_of_month, grace_minutes, is_active, notify_emails, \
             schedule, timezone, max_duration_minutes, min_size_bytes, size_drop_percent, \
             stale_hash_check, snoozed_until_us, snooze_reason, repeat_every_minutes, \
             schedule_anchor_us, created_at_us, updated_at_us, ping_key) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
             ?18, ?19, ?20, ?21, ?22, ?23, ?23, ?23, {NEW_PING_KEY}) \
             RETURNING {COLUMNS}"
        ),
        params_from_iter(field_values(job).into_iter().chain([now_us.into()])),
        from_row,
    )
}

/// A fresh ping key: 128 bits from SQLite's generator (ChaCha20, seeded from the operating
/// system's randomness), as 32 hex digits, URL-safe.
const NEW_PING_KEY: &str = "lower(hex(randomblob(16)))";

/// Snoozes every job matching `filter` until `until` (None: ends their snooze), with
/// `reason`; returns their ids.
pub fn snooze(
    conn: &Connection,
    filter: &JobFilter,
    until: Option<DateTime<Utc>>,
    reason: Option<&str>,
    now: DateTime<Utc>,
) -> rusqlite::Result<Vec<i64>> {
    let f = filter.filters();
    let first = f.values.len() + 1;
    let sql = format!(
        "UPDATE jobs SET snoozed_until_us = ?{first}, snooze_reason = ?{}, updated_at_us = ?{} {} \
         RETURNING id",
        first + 1,
        first + 2,
        f.where_sql()
    );
    let values = f.values.into_iter().chain([
        until.map(to_micros).into(),
        reason.map(str::to_owned).into(),
        to_micros(now).into(),
    ]);
    let mut stmt = conn.prepare(&sql)?;
    let ids = stmt.query_map(params_from_iter(values), |r| r.get(0))?;
    ids.collect()
}

/// Whether any job asks for reminders of its own (an index lookup).
pub fn any_repeating(conn: &Connection) -> rusqlite::Result<bool> {
    super::cached_row(
        conn,
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE repeat_every_minutes IS NOT NULL)",
        [],
        |r| r.get(0),
    )
}

/// Gives the job a new ping key; the old one stops working at once.
pub fn rotate_ping_key(conn: &Connection, id: i64) -> rusqlite::Result<Option<Job>> {
    conn.query_row(
        &format!("UPDATE jobs SET ping_key = {NEW_PING_KEY} WHERE id = ?1 RETURNING {COLUMNS}"),
        [id],
        from_row,
    )
    .optional()
}

/// The job whose ping key is `key`.
pub fn by_ping_key(conn: &Connection, key: &str) -> rusqlite::Result<Option<Job>> {
    super::cached_row(
        conn,
        &format!("SELECT {COLUMNS} FROM jobs WHERE ping_key = ?1"),
        [key],
        from_row,
    )
    .optional()
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Job>> {
    super::row_by_id(conn, "jobs", COLUMNS, id, from_row)
}

/// What the group-commit writer remembers of each job between reports: its row (a report
/// reads its job, and reading and parsing the row cost as much as a tenth of the writer's
/// time per report), and its latest successes (a success's size and hash are compared with
/// them: a walk of ten rows per report, 14 % of the writer's time at 1,000,000 entries).
///
/// Never stale: every lookup first reads `job_changes`, a counter that triggers move on
/// each insert, delete and change of a job's fields, by any connection or process (in the
/// lookup's own transaction, so a change made earlier in the same group counts too); when
/// it has moved, everything is forgotten. A job's successes are trusted only while the
/// `version` of its success counter (`entry_counts`, moved by every insert and delete of
/// one of its successes, from anywhere) is the one they were read or last updated at. A
/// rolled-back write may have moved either back to a value seen before, with other rows
/// behind it: the writer calls [`JobCache::forget`] after any rollback. A job that does not
/// exist is not remembered.
#[derive(Debug, Default)]
pub struct JobCache {
    inner: std::sync::Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    /// The `job_changes` count the rows were read at; None: nothing is known.
    changes: Option<i64>,
    jobs: std::collections::HashMap<i64, std::sync::Arc<Job>>,
    /// Each job's latest successes, and the version of its success counter they match.
    successes: std::collections::HashMap<i64, (i64, KnownSuccesses)>,
}

impl CacheInner {
    /// Keeps `known`, the successes of job `job_id` at `version` of its counter (starting
    /// again from empty past [`CACHED_SUCCESSES_MAX`] jobs).
    fn remember(&mut self, job_id: i64, version: i64, known: KnownSuccesses) {
        if self.successes.len() >= CACHED_SUCCESSES_MAX {
            self.successes.clear();
        }
        self.successes.insert(job_id, (version, known));
    }

    /// Forgets everything unless it was read at `changes` of `job_changes`.
    fn at(&mut self, changes: i64) {
        if self.changes != Some(changes) {
            self.jobs.clear();
            self.successes.clear();
            self.changes = Some(changes);
        }
    }
}

/// Jobs remembered at most; past that, the cache starts again from empty.
const CACHED_JOBS_MAX: usize = 16_384;

/// Jobs whose successes are remembered at most (a dozen each, with their hashes: ~1.5 KiB a
/// job); past that, they start again from empty.
const CACHED_SUCCESSES_MAX: usize = 4_096;

/// What [`JobCache::previous_successes`] saw of a job's successes, for
/// [`JobCache::stored_success`] in the same write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuccessesSeen {
    job_id: i64,
    /// The version of the job's success counter; None: the job had no success.
    version: Option<i64>,
}

impl JobCache {
    /// The job `id` as `conn` sees it now, read from the table only when not known.
    pub fn get(&self, conn: &Connection, id: i64) -> rusqlite::Result<Option<std::sync::Arc<Job>>> {
        let changes: i64 = super::cached_row(conn, "SELECT n FROM job_changes", [], |r| r.get(0))?;
        let mut inner = self.lock();
        inner.at(changes);
        if let Some(job) = inner.jobs.get(&id) {
            return Ok(Some(job.clone()));
        }
        let Some(job) = get(conn, id)? else {
            return Ok(None);
        };
        if inner.jobs.len() >= CACHED_JOBS_MAX {
            inner.jobs.clear();
        }
        let job = std::sync::Arc::new(job);
        inner.jobs.insert(id, job.clone());
        Ok(Some(job))
    }

    /// [`entries::previous_successes`] of job `job_id` as `conn` sees it now, answered from
    /// the job's remembered successes when they are still its own and can tell, read again
    /// otherwise. Pass what it saw to [`JobCache::stored_success`] once the write has stored
    /// a success of the job.
    pub fn previous_successes(
        &self,
        conn: &Connection,
        job_id: i64,
        before: DateTime<Utc>,
        sizes: usize,
        latest: bool,
    ) -> rusqlite::Result<(PreviousSuccesses, SuccessesSeen)> {
        let (changes, version): (i64, Option<i64>) = super::cached_row(
            conn,
            "SELECT j.n, c.version FROM job_changes j \
             LEFT JOIN entry_counts c ON c.job_id = ?1 AND c.status = 'success'",
            [job_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let seen = SuccessesSeen { job_id, version };
        let mut inner = self.lock();
        inner.at(changes);
        let Some(version) = version else {
            inner.successes.remove(&job_id);
            return Ok((PreviousSuccesses::default(), seen));
        };
        if let Some((known_at, known)) = inner.successes.get(&job_id) {
            if *known_at == version {
                if let Some(found) = known.answer(before, sizes, latest) {
                    return Ok((found, seen));
                }
            }
        }
        // The job's latest successes serve this slot and the later ones, unless this slot
        // has so many that too few are left before it (a job reporting many times a slot):
        // then those before it, which serve this slot's other reports.
        let mut known = KnownSuccesses::read(conn, job_id, None)?;
        let mut found = known.answer(before, sizes, latest);
        if found.is_none() {
            known = KnownSuccesses::read(conn, job_id, Some(before))?;
            found = known.answer(before, sizes, latest);
        }
        inner.remember(job_id, version, known);
        match found {
            Some(found) => Ok((found, seen)),
            // More than the record holds (few of the latest successes carry a size).
            None => Ok((
                entries::previous_successes(conn, job_id, before, sizes, latest)?,
                seen,
            )),
        }
    }

    /// Takes in `entry`, a success just inserted for its job by the write that called
    /// [`JobCache::previous_successes`] (which saw `seen`) and nothing else since: the
    /// insert moved the job's counter by one, so the remembered successes, with it, stay the
    /// job's own.
    pub fn stored_success(&self, seen: SuccessesSeen, entry: &Entry) {
        let mut inner = self.lock();
        let job_id = seen.job_id;
        let known = match seen.version {
            None => Some((1, KnownSuccesses::none())),
            Some(version) => inner
                .successes
                .remove(&job_id)
                .filter(|(known_at, _)| *known_at == version)
                .map(|(_, known)| (version + 1, known)),
        };
        if let Some((version, mut known)) = known {
            if known.add(entry) {
                inner.remember(job_id, version, known);
            }
        }
    }

    /// Forgets every job (after a rollback: see the type's doc).
    pub fn forget(&self) {
        let mut inner = self.lock();
        inner.changes = None;
        inner.jobs.clear();
        inner.successes.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Exact-match filters of the jobs listing.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub company_name: Option<String>,
    pub city: Option<String>,
    pub agent_id_responsible: Option<String>,
    pub is_active: Option<bool>,
}

impl JobFilter {
    /// The `WHERE` clauses of the filters that are set (the listing's and the snooze's).
    fn filters(&self) -> Filters {
        let mut f = Filters::new();
        if let Some(v) = &self.company_name {
            f.add("company_name", "=", v.clone());
        }
        if let Some(v) = &self.city {
            f.add("city", "=", v.clone());
        }
        if let Some(v) = &self.agent_id_responsible {
            f.add("agent_id_responsible", "=", v.clone());
        }
        if let Some(v) = self.is_active {
            f.add("is_active", "=", i64::from(v));
        }
        f
    }
}

/// One page of jobs by id, and the total count after filters.
pub fn list(
    conn: &Connection,
    filter: &JobFilter,
    skip: i64,
    limit: i64,
) -> rusqlite::Result<(Vec<Job>, i64)> {
    let f = filter.filters();
    let where_sql = f.where_sql();
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM jobs {where_sql}"),
        params_from_iter(f.values.iter()),
        |r| r.get(0),
    )?;
    let jobs = super::page(
        conn,
        &format!("SELECT {COLUMNS} FROM jobs {where_sql} ORDER BY id"),
        f,
        skip,
        limit,
        from_row,
    )?;
    Ok((jobs, total))
}

/// Writes every field of `job`; moves the schedule anchor to `now` when `restart` is set.
pub fn update(
    conn: &Connection,
    job: &Job,
    restart: bool,
    now: DateTime<Utc>,
) -> rusqlite::Result<Job> {
    conn.query_row(
        &format!(
            "UPDATE jobs SET database_name = ?2, agent_id_responsible = ?3, company_name = ?4, \
             city = ?5, expected_hour_utc = ?6, expected_minute_utc = ?7, backup_frequency = ?8, \
             final_storage_path_template = ?9, expected_weekday = ?10, expected_day_of_month = ?11, \
             grace_minutes = ?12, is_active = ?13, notify_emails = ?14, schedule = ?15, \
             timezone = ?16, max_duration_minutes = ?17, min_size_bytes = ?18, \
             size_drop_percent = ?19, stale_hash_check = ?20, snoozed_until_us = ?21, \
             snooze_reason = ?22, repeat_every_minutes = ?23, updated_at_us = ?24, \
             schedule_anchor_us = CASE WHEN ?25 THEN ?24 ELSE schedule_anchor_us END, \
             next_due_us = CASE WHEN ?25 THEN 0 ELSE next_due_us END \
             WHERE id = ?1 RETURNING {COLUMNS}"
        ),
        params_from_iter(
            std::iter::once(job.id.into())
                .chain(field_values(job))
                .chain([to_micros(now).into(), restart.into()]),
        ),
        from_row,
    )
}

/// Deletes a job; its entries go with it (foreign key cascade).
pub fn delete(conn: &Connection, id: i64) -> rusqlite::Result<Option<Job>> {
    conn.query_row(
        &format!("DELETE FROM jobs WHERE id = ?1 RETURNING {COLUMNS}"),
        [id],
        from_row,
    )
    .optional()
}

/// An active job whose next due time has come, as a tick reads it: its schedule and agent
/// and where its evaluation stands, not the whole row. A tick reads every due job, some
/// twice (an agent's jobs are looked at when it is weighed); reading the 26 columns of a
/// [`Job`] was 8 % of the all-due tick's writer. A tick that queues a job's own alert
/// reads the whole job then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueJob {
    pub id: i64,
    pub agent_id_responsible: String,
    pub schedule: Schedule,
    /// Lateness counts from here: creation, re-activation or the last schedule change.
    pub anchor: DateTime<Utc>,
    /// Slots due up to here were evaluated already.
    pub evaluated_until: DateTime<Utc>,
}

/// What [`due_job`] reads.
const DUE_COLUMNS: &str = "id, agent_id_responsible, backup_frequency, expected_hour_utc, \
    expected_minute_utc, expected_weekday, expected_day_of_month, grace_minutes, schedule, \
    timezone, schedule_anchor_us, evaluated_until_us";

/// A [`DueJob`] from a row of `DUE_COLUMNS`, its schedule built as [`Job::schedule`] builds
/// it.
fn due_job(row: &Row<'_>) -> rusqlite::Result<DueJob> {
    let fields = FrequencySchedule {
        frequency: frequency_at(row, 2)?,
        hour: row.get(3)?,
        minute: row.get(4)?,
        weekday: row.get(5)?,
        day_of_month: row.get(6)?,
        grace_minutes: row.get(7)?,
    };
    Ok(DueJob {
        id: row.get(0)?,
        agent_id_responsible: row.get(1)?,
        schedule: Schedule::of_job(
            cron_at(row, 8)?.as_ref().map(CronText::expr),
            zone_at(row, 9)?,
            fields,
        ),
        anchor: from_micros(row.get(10)?),
        evaluated_until: from_micros(row.get(11)?),
    })
}

/// The ids of the active jobs whose next due time is at or before `now`, in id order (the
/// order of their rows, and of their entries in the indexes keyed by job): what a tick plans
/// its chunks from. A lookup in `jobs_next_due`, named: left to itself, SQLite prefers the
/// equality on `is_active` and reads every active job.
pub fn due_ids(conn: &Connection, now: DateTime<Utc>) -> rusqlite::Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM jobs INDEXED BY jobs_next_due WHERE is_active = 1 AND next_due_us <= ?1",
    )?;
    let rows = stmt.query_map([to_micros(now)], |row| row.get(0))?;
    let mut due = rows.collect::<rusqlite::Result<Vec<i64>>>()?;
    due.sort_unstable();
    Ok(due)
}

/// The active jobs of `agent` whose next due time is at or before `now`, in id order: the
/// agent's jobs that a tick has still to evaluate.
pub fn due_of_agent(
    conn: &Connection,
    agent: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<Vec<DueJob>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DUE_COLUMNS} FROM jobs INDEXED BY jobs_agent \
         WHERE agent_id_responsible = ?1 AND is_active = 1 AND next_due_us <= ?2 ORDER BY id"
    ))?;
    let rows = stmt.query_map(params![agent, to_micros(now)], due_job)?;
    rows.collect()
}

/// Those of the jobs `ids` that are active and due at `now`, read afresh, in id order (the
/// order of their rows and of their entries in the indexes). Found by id (`+is_active`
/// keeps SQLite from reading them through the `is_active` index instead).
pub fn due_among(
    conn: &Connection,
    now: DateTime<Utc>,
    ids: &[i64],
) -> rusqlite::Result<Vec<DueJob>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {DUE_COLUMNS} FROM jobs \
         WHERE id IN (SELECT value FROM json_each(?2)) AND +is_active = 1 \
         AND next_due_us <= ?1 ORDER BY id"
    ))?;
    let rows = stmt.query_map(
        params![to_micros(now), super::json_ids(ids.iter().copied())],
        due_job,
    )?;
    rows.collect()
}

/// Notes when the job's next slot falls due, so that ticks before then skip it.
pub fn set_next_due(conn: &Connection, id: i64, next_due: DateTime<Utc>) -> rusqlite::Result<()> {
    super::cached_execute(
        conn,
        "UPDATE jobs SET next_due_us = ?2 WHERE id = ?1",
        params![id, to_micros(next_due)],
    )
    .map(|_| ())
}

/// What a tick evaluated of a job: its slots due up to `evaluated_until`, and when its next
/// one falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluated {
    pub id: i64,
    pub evaluated_until: DateTime<Utc>,
    pub next_due: DateTime<Utc>,
}

/// Records what a tick evaluated of each of `jobs`: one statement for all the jobs that
/// share their two instants (most of a chunk's, whose jobs fell due together), instead of
/// one a job. `OR FAIL`: a statement over many rows that could stop half-way (the columns'
/// `NOT NULL`) makes SQLite copy every page it changes into a statement journal first, to
/// undo the half; the caller's transaction is undone whole on any error anyway.
pub fn set_evaluated(conn: &Connection, jobs: &[Evaluated]) -> rusqlite::Result<()> {
    let mut by_instants: BTreeMap<(i64, i64), Vec<i64>> = BTreeMap::new();
    for job in jobs {
        by_instants
            .entry((to_micros(job.evaluated_until), to_micros(job.next_due)))
            .or_default()
            .push(job.id);
    }
    for ((evaluated_until, next_due), ids) in by_instants {
        super::cached_execute(
            conn,
            "UPDATE OR FAIL jobs SET evaluated_until_us = ?2, next_due_us = ?3 \
             WHERE id IN (SELECT value FROM json_each(?1))",
            params![super::json_ids(ids), evaluated_until, next_due],
        )?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A tick reads a due job's schedule from its own columns: it must be the schedule the
    /// whole job answers, for each form (the frequencies' fields, a cron expression read in
    /// its zone with its grace), with the job's agent and where its evaluation stands.
    #[test]
    fn a_due_job_has_the_schedule_of_the_whole_job() {
        use crate::db::testing::{migrated, INSERT_JOB};
        let (_dir, db) = migrated();
        let conn = db.conn().unwrap();
        for _ in 0..4 {
            conn.execute_batch(INSERT_JOB).unwrap();
        }
        conn.execute_batch(
            "UPDATE jobs SET backup_frequency = 'weekly', expected_weekday = 3, \
                 expected_hour_utc = 23, agent_id_responsible = 'other' WHERE id = 2; \
             UPDATE jobs SET schedule = ' 30 2 * * 1-5 ', timezone = 'Europe/Paris', \
                 grace_minutes = 45 WHERE id = 3; \
             UPDATE jobs SET backup_frequency = 'monthly', expected_day_of_month = 31, \
                 grace_minutes = 90 WHERE id = 4; \
             UPDATE jobs SET next_due_us = 0, schedule_anchor_us = 1000000 * id, \
                 evaluated_until_us = 2000000 * id;",
        )
        .unwrap();
        let now = chrono::TimeZone::with_ymd_and_hms(&Utc, 2027, 3, 1, 0, 0, 0).unwrap();
        let due = due_among(&conn, now, &[1, 2, 3, 4]).unwrap();
        assert_eq!(due.len(), 4);
        for d in due {
            let job = get(&conn, d.id).unwrap().unwrap();
            assert_eq!(d.schedule, job.schedule(), "job {}", d.id);
            assert_eq!(d.agent_id_responsible, job.agent_id_responsible);
            assert_eq!(d.anchor, from_micros(1_000_000 * d.id));
            assert_eq!(d.evaluated_until, from_micros(2_000_000 * d.id));
        }
        let of_other = due_of_agent(&conn, "other", now).unwrap();
        assert_eq!(of_other.len(), 1);
        assert_eq!(
            of_other[0].schedule,
            get(&conn, 2).unwrap().unwrap().schedule()
        );
    }

    /// `JobCache` trusts `job_changes`: every column a `Job` is read from must move it.
    #[test]
    fn a_change_of_any_field_of_a_job_moves_job_changes() {
        let (_dir, db) = crate::db::testing::migrated();
        let conn = db.conn().unwrap();
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' \
                 AND name = 'jobs_changed_by_update'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let start = sql.find("UPDATE OF").unwrap() + "UPDATE OF".len();
        let end = sql.find("ON jobs").unwrap();
        let mut watched: Vec<&str> = sql[start..end].split(',').map(str::trim).collect();
        let mut read: Vec<&str> = COLUMNS.split(',').map(str::trim).collect();
        read.retain(|c| *c != "id");
        watched.sort_unstable();
        read.sort_unstable();
        assert_eq!(watched, read);
        let triggers: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' \
                 AND tbl_name = 'jobs' AND name LIKE 'jobs_changed_by_%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(triggers, 3, "insert, update and delete");
    }

    /// Deletes job `id` and makes it again under its id (an import, a restore).
    fn make_again(conn: &Connection, id: i64) {
        let insert = crate::db::testing::INSERT_JOB
            .replace("(database_name", "(id, database_name")
            .replace("VALUES (", &format!("VALUES ({id}, "));
        conn.execute_batch(&format!("DELETE FROM jobs WHERE id = {id}; {insert}"))
            .unwrap();
    }

    /// The successes `JobCache` remembers answer as the entries themselves do, whatever
    /// inserted or deleted them: the writer's own reports (taken in), inserts and deletes
    /// behind its back (retention, another process: an insert and a delete that leave the
    /// count as it was, too), several successes dated the same instant, identical repeats, a
    /// job deleted and made again under its id, a rolled-back report followed by `forget`;
    /// and most lookups are answered without the walk. Fails if the version is not compared
    /// or not followed, or if a success dated like another is placed among them.
    #[test]
    fn remembered_successes_answer_as_the_entries_do() {
        use crate::db::testing::{migrated, INSERT_JOB};
        use crate::domain::entry::{EntryStatus, NewEntry};
        let (_dir, db) = migrated();
        let conn = db.conn().unwrap();
        conn.execute_batch(INSERT_JOB).unwrap();
        conn.execute_batch(INSERT_JOB).unwrap();
        let cache = JobCache::default();
        let start = chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 1, 1, 2, 30, 0).unwrap();
        // Slots 8 hours apart.
        let at = |n: u64| start + chrono::Duration::hours(8 * i64::try_from(n).unwrap());
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let walks = || {
            conn.prepare_cached(entries::PREVIOUS_SUCCESSES)
                .unwrap()
                .get_status(rusqlite::StatementStatus::Run)
        };
        let (mut lookups, mut compared) = (0, 0);
        // Each job's report times go forward, as a job's slots do, with a few late ones.
        let mut now = [0, 0];
        for step in 0..10_000 {
            let job = 1 + i64::try_from(next(2)).unwrap();
            let clock = &mut now[usize::try_from(job - 1).unwrap()];
            *clock += next(2);
            let n = clock.saturating_sub(if next(10) == 0 { next(8) } else { 0 });
            let success = NewEntry {
                status: EntryStatus::Success,
                backup_size_bytes: (next(16) > 0).then(|| i64::try_from(next(1_000)).unwrap()),
                backup_hash: (next(3) > 0).then(|| format!("h{}", next(3))),
                // Now and then dated the same instant as another.
                ..NewEntry::missing(job, at(n) + chrono::Duration::minutes(next(20) as i64))
            };
            match next(40) {
                // A report through the cache, as `reports::store` makes it; now and then in
                // a savepoint rolled back, as the writer does a failed write (and forgets).
                0..=31 => {
                    let before = at(n.saturating_sub(next(2)));
                    let sizes = [0, crate::domain::content::SIZE_HISTORY, 3][next(3) as usize];
                    let latest = sizes == 0 || next(2) == 0;
                    let walked = walks();
                    let want =
                        entries::previous_successes(&conn, job, before, sizes, latest).unwrap();
                    compared += walks() - walked;
                    let (got, seen) = cache
                        .previous_successes(&conn, job, before, sizes, latest)
                        .unwrap();
                    lookups += 1;
                    assert_eq!(got, want, "step {step}: job {job} before {before}");
                    let rolled_back = next(30) == 0;
                    if rolled_back {
                        conn.execute_batch("SAVEPOINT item").unwrap();
                    }
                    let (entry, created) = entries::insert(&conn, &success, start).unwrap();
                    if created {
                        cache.stored_success(seen, &entry);
                    }
                    if rolled_back {
                        conn.execute_batch("ROLLBACK TO item; RELEASE item")
                            .unwrap();
                        cache.forget();
                    }
                }
                // Behind the cache's back: a success inserted, one deleted (the newest at
                // times), both (the count as it was), another status.
                32 => {
                    entries::insert(&conn, &success, start).unwrap();
                }
                33..=34 => {
                    let order = ["ASC", "DESC"][next(2) as usize];
                    conn.execute(
                        &format!(
                            "DELETE FROM entries WHERE id = (SELECT id FROM entries \
                             WHERE job_id = ?1 AND status = 'success' \
                             ORDER BY backup_timestamp_us {order} LIMIT 1)"
                        ),
                        [job],
                    )
                    .unwrap();
                }
                35 => {
                    conn.execute(
                        "DELETE FROM entries WHERE id = (SELECT min(id) FROM entries \
                         WHERE job_id = ?1 AND status = 'success')",
                        [job],
                    )
                    .unwrap();
                    entries::insert(&conn, &success, start).unwrap();
                }
                36..=37 => {
                    let failed = NewEntry {
                        status: EntryStatus::Failed,
                        ..success
                    };
                    entries::insert(&conn, &failed, start).unwrap();
                }
                // Job 2 deleted and made again under its id, its successes gone with it.
                38 if next(4) == 0 => {
                    make_again(&conn, 2);
                }
                _ => {}
            }
        }
        let read_again = walks() - compared;
        eprintln!("{lookups} lookups, {compared} compared, {read_again} read again");
        assert!(
            read_again * 2 < lookups,
            "{read_again} of {lookups} lookups read again"
        );
    }

    /// A job deleted and made again under its id starts its counters again: the new job's
    /// first success has the version the old one's first had. What was remembered of the old
    /// job goes with `job_changes`, not with the version.
    #[test]
    fn a_job_made_again_under_its_id_is_not_answered_with_the_old_ones_successes() {
        use crate::db::testing::{migrated, INSERT_JOB};
        use crate::domain::entry::{EntryStatus, NewEntry};
        let (_dir, db) = migrated();
        let conn = db.conn().unwrap();
        conn.execute_batch(INSERT_JOB).unwrap();
        let cache = JobCache::default();
        let day = |d: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, d, 2, 30, 0).unwrap();
        let success = |size: i64, d: u32| NewEntry {
            status: EntryStatus::Success,
            backup_size_bytes: Some(size),
            ..NewEntry::missing(1, day(d))
        };
        let (_, seen) = cache
            .previous_successes(&conn, 1, day(3), 10, true)
            .unwrap();
        let (entry, _) = entries::insert(&conn, &success(1_000, 2), day(2)).unwrap();
        cache.stored_success(seen, &entry);
        assert_eq!(
            cache
                .previous_successes(&conn, 1, day(3), 10, true)
                .unwrap()
                .0
                .sizes,
            [1_000]
        );

        make_again(&conn, 1);
        entries::insert(&conn, &success(5, 1), day(1)).unwrap();

        let (found, _) = cache
            .previous_successes(&conn, 1, day(3), 10, true)
            .unwrap();
        assert_eq!(found.sizes, [5]);
        assert_eq!(found.latest, Some((None, day(1))));
    }
}
