//! What the status API, `check` and the scheduler need to know of a job's entries.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use utoipa::ToSchema;

use super::entries::{from_row, COLUMNS};
use crate::domain::entry::{Entry, RUN_ABANDONED_DAYS};
use crate::domain::job::Job;
use crate::domain::status::{state, JobState, Observation};
use crate::domain::time::{self, from_micros, to_micros};

/// One job's state, as `GET /api/v1/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct JobStatus {
    pub job_id: i64,
    pub database_name: String,
    pub company_name: String,
    pub city: String,
    pub agent_id_responsible: String,
    pub state: JobState,
    /// The newest entry, whatever its status.
    pub last_entry: Option<Entry>,
    #[serde(serialize_with = "time::serialize_opt")]
    pub last_success_utc: Option<DateTime<Utc>>,
    /// The size of the last successful backup, when it was reported.
    pub last_size_bytes: Option<i64>,
    /// When the next slot falls due (its time plus the grace); null for a paused job.
    #[serde(serialize_with = "time::serialize_opt")]
    pub next_due_utc: Option<DateTime<Utc>>,
    /// Why the latest success is suspect, when the state is `suspect` (DESIGN §10).
    pub suspect_reason: Option<String>,
    /// When the run in progress started (an unfinished `started` entry of the last 7 days).
    #[serde(serialize_with = "time::serialize_opt")]
    pub running_since: Option<DateTime<Utc>>,
    /// How long the run of the latest report (success or failed) took, in seconds; null
    /// when that report finished no `started` run.
    pub last_duration_seconds: Option<i64>,
    /// A slot has started and its report is awaited, within its grace.
    #[serde(skip)]
    pub awaiting_report: bool,
}

/// The job's newest entry dated no later than `now` (a report dated in the future is
/// history that has not happened yet: it never decides a state).
fn latest(
    conn: &Connection,
    job_id: i64,
    status_sql: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<Entry>> {
    conn.prepare_cached(&latest_sql(status_sql))?
        .query_row(params![job_id, to_micros(now)], from_row)
        .optional()
}

/// [`latest`]'s query: `?1` job, `?2` now. `status_sql` names statuses other than
/// `missing` and says so (`status <> 'missing'`), which `entries_identical` needs.
fn latest_sql(status_sql: &str) -> String {
    format!(
        "SELECT {COLUMNS} FROM entries INDEXED BY entries_identical \
         WHERE job_id = ?1 AND backup_timestamp_us <= ?2 \
         {status_sql} ORDER BY backup_timestamp_us DESC, id DESC LIMIT 1"
    )
}

/// A job's newest entries dated no later than `now` (see [`latest`]): what a state needs.
#[derive(Debug, Clone, Default, PartialEq)]
struct Newest {
    /// Whatever its status, but a log.
    entry: Option<Entry>,
    /// A `success` or a `failed`.
    report: Option<Entry>,
    success: Option<Entry>,
}

/// [`newest`]'s walk: `?1` job, `?2` now. The job's entries newest first: its `missing`
/// ones (`entries_missing`) merged by time with the others (`entries_identical`), each
/// index covering its part in its own order: no sort and no row read.
const NEWEST_WALK: &str = "SELECT id, backup_timestamp_us, status \
     FROM entries INDEXED BY entries_identical \
     WHERE job_id = ?1 AND backup_timestamp_us <= ?2 AND status <> 'missing' \
     UNION ALL SELECT id, backup_timestamp_us, status \
     FROM entries INDEXED BY entries_missing \
     WHERE job_id = ?1 AND backup_timestamp_us <= ?2 AND status = 'missing' \
     ORDER BY 2 DESC";

/// [`latest`] for a log-less entry, a report and a success at once: one walk of the job's
/// entries back from `now`, which stops once each of the three has its instant (the last
/// written of the entries of that instant, as [`latest`]), then each row read once (usually
/// one: the newest entry is the newest success). Three [`latest`] calls walked the index
/// three times, each sorting its instant's entries, and read a row each: this is what
/// `GET /api/v1/status`, `/metrics` and `check` do for every job.
fn newest(conn: &Connection, job_id: i64, now: DateTime<Utc>) -> rusqlite::Result<Newest> {
    // (instant, id) of the newest entry that is not a log, of the newest report, of the
    // newest success.
    let mut found: [Option<(i64, i64)>; 3] = [None; 3];
    {
        let mut walk = conn.prepare_cached(NEWEST_WALK)?;
        let mut rows = walk.query(params![job_id, to_micros(now)])?;
        while let Some(row) = rows.next()? {
            let at: i64 = row.get(1)?;
            if found
                .iter()
                .all(|f| f.is_some_and(|(instant, _)| at < instant))
            {
                break;
            }
            let id: i64 = row.get(0)?;
            let status = row.get_ref(2)?.as_str()?;
            let report = status == "success" || status == "failed";
            let kinds = [status != "log", report, status == "success"];
            for (newest, is) in found.iter_mut().zip(kinds) {
                match newest {
                    None if is => *newest = Some((at, id)),
                    Some((instant, best)) if is && *instant == at && id > *best => *best = id,
                    _ => {}
                }
            }
        }
    }
    let mut read: Vec<Entry> = Vec::with_capacity(3);
    let mut entry = |found: Option<(i64, i64)>| -> rusqlite::Result<Option<Entry>> {
        let Some((_, id)) = found else {
            return Ok(None);
        };
        if let Some(e) = read.iter().find(|e| e.id == id) {
            return Ok(Some(e.clone()));
        }
        let e = super::entries::get(conn, id)?;
        read.extend(e.clone());
        Ok(e)
    };
    Ok(Newest {
        entry: entry(found[0])?,
        report: entry(found[1])?,
        success: entry(found[2])?,
    })
}

/// [`reported_in`]'s query, when the newest reports do not answer: `?1` job, `?2` window
/// start, `?3` window end, `?4` now.
const REPORTED_IN: &str = "SELECT count(*), ifnull(sum(status = 'success'), 0) FROM entries \
     INDEXED BY entries_identical WHERE job_id = ?1 AND backup_timestamp_us >= ?2 \
     AND backup_timestamp_us < min(?3, ?4 + 1) AND status IN ('success', 'failed') \
     AND status <> 'missing'";

/// The job's newest entry of each status (`entry_counts.last_us`, kept exact by the
/// entries' triggers): `?1` job. Every status, filtered by the caller: `status IN (…)` here
/// made SQLite build an ephemeral table for each call, 10 % of the all-due tick's writer.
const NEWEST_BY_STATUS: &str = "SELECT status, last_us FROM entry_counts WHERE job_id = ?1";

/// The status of the `success`/`failed` entries in `[start, end)` dated no later than
/// `now`: (any, any success). A report dated in the future fills no slot.
///
/// The job's newest report of each status answers first: one before the window means none
/// in it, one in it (and not in the future) is one. Only when a newest report is dated after
/// the window's end, or after `now`, are the job's entries in the window read (a seek into
/// its part of `entries_identical`, a leaf read from the OS when the tick visits every job).
pub fn reported_in(
    conn: &Connection,
    job_id: i64,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    now: DateTime<Utc>,
) -> rusqlite::Result<(bool, bool)> {
    let (start_us, end_us, now_us) = (to_micros(start), to_micros(end), to_micros(now));
    let limit = end_us.min(now_us.saturating_add(1));
    let mut found = (false, false);
    let mut answered = true;
    let mut counters = conn.prepare_cached(NEWEST_BY_STATUS)?;
    let mut rows = counters.query([job_id])?;
    while let Some(row) = rows.next()? {
        let success = match row.get_ref(0)?.as_str()? {
            "success" => true,
            "failed" => false,
            _ => continue,
        };
        match row.get::<_, Option<i64>>(1)? {
            Some(last) if last >= limit => answered = false,
            Some(last) if last >= start_us => {
                found.0 = true;
                found.1 |= success;
            }
            _ => {}
        }
    }
    if answered {
        return Ok(found);
    }
    let mut stmt = conn.prepare_cached(REPORTED_IN)?;
    stmt.query_row(params![job_id, start_us, end_us, now_us], |r| {
        Ok((r.get::<_, i64>(0)? > 0, r.get::<_, i64>(1)? > 0))
    })
}

/// The instant after which the job's slots count (creation, re-activation, reschedule).
pub fn anchor(conn: &Connection, job_id: i64) -> rusqlite::Result<DateTime<Utc>> {
    conn.query_row(
        "SELECT schedule_anchor_us FROM jobs WHERE id = ?1",
        [job_id],
        |r| r.get::<_, i64>(0),
    )
    .map(from_micros)
}

/// A job's state at `now`.
pub fn evaluate(conn: &Connection, job: &Job, now: DateTime<Utc>) -> rusqlite::Result<JobStatus> {
    let schedule = job.schedule();
    let anchor = anchor(conn, job.id)?;
    let Newest {
        entry: last_entry,
        report: last_report,
        success: last_success,
    } = newest(conn, job.id, now)?;
    let latest_due = schedule.latest_due_slot(now);
    let latest_due_counts = schedule.due(latest_due) > anchor;
    let (latest_due_reported, latest_due_succeeded) = if latest_due_counts {
        reported_in(conn, job.id, schedule.window(latest_due), now)?
    } else {
        (false, false)
    };
    let observation = Observation {
        is_active: job.is_active,
        last_report: last_report.as_ref().map(|e| e.status),
        last_report_suspect: last_report
            .as_ref()
            .is_some_and(|e| e.suspect_reason.is_some()),
        latest_due_counts,
        latest_due_reported,
        latest_due_succeeded,
    };
    let next_due = schedule.next_due_after(now);
    // The slot that has started but is not due yet, if its report has not come.
    let current_slot = schedule.next_slot(latest_due);
    let awaiting_report = job.is_active
        && current_slot <= now
        && schedule.due(current_slot) > anchor
        && !reported_in(conn, job.id, schedule.window(current_slot), now)?.0;
    let state = state(&observation);
    Ok(JobStatus {
        suspect_reason: last_report
            .clone()
            .filter(|_| state == JobState::Suspect)
            .and_then(|e| e.suspect_reason),
        running_since: running_since(conn, job.id, now)?,
        last_duration_seconds: last_report.as_ref().and_then(|e| e.duration_seconds),
        job_id: job.id,
        database_name: job.database_name.clone(),
        company_name: job.company_name.clone(),
        city: job.city.clone(),
        agent_id_responsible: job.agent_id_responsible.clone(),
        state,
        last_entry,
        last_size_bytes: last_success.as_ref().and_then(|e| e.backup_size_bytes),
        last_success_utc: last_success.map(|e| e.backup_timestamp_utc),
        next_due_utc: job.is_active.then_some(next_due),
        awaiting_report,
    })
}

/// When the job's latest success (dated no later than `now`) ran, if ever.
pub fn last_success(
    conn: &Connection,
    job_id: i64,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    Ok(latest(conn, job_id, SUCCESSES, now)?.map(|e| e.backup_timestamp_utc))
}

/// The job's latest `success` or `failed` entry dated no later than `now`.
pub fn last_report(
    conn: &Connection,
    job_id: i64,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<Entry>> {
    latest(conn, job_id, REPORTS, now)
}

/// When the job's latest open run started: a `started` entry no report has finished, dated
/// no later than `now` and not abandoned (younger than [`RUN_ABANDONED_DAYS`]).
pub fn running_since(
    conn: &Connection,
    job_id: i64,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let abandoned = now - chrono::Duration::days(RUN_ABANDONED_DAYS);
    conn.prepare_cached(
        "SELECT max(backup_timestamp_us) FROM entries WHERE job_id = ?1 AND status = 'started' \
         AND finished_at_us IS NULL AND backup_timestamp_us > ?2 AND backup_timestamp_us <= ?3",
    )?
    .query_row(params![job_id, to_micros(abandoned), to_micros(now)], |r| {
        r.get::<_, Option<i64>>(0)
    })
    .map(|us| us.map(from_micros))
}

/// [`agent_last_heard`]'s query: `?1` agent, `?2` now.
const AGENT_LAST_HEARD: &str =
    "SELECT max((SELECT backup_timestamp_us FROM entries INDEXED BY entries_identical \
     WHERE job_id = j.id AND status IN ('started', 'success', 'failed') \
     AND status <> 'missing' AND backup_timestamp_us <= ?2 ORDER BY backup_timestamp_us DESC LIMIT 1)) \
     FROM jobs j WHERE j.agent_id_responsible = ?1";

/// The latest instant, no later than `now`, at which `agent` sent anything (a `started`,
/// `success` or `failed` entry of any of its jobs); None if never.
pub fn agent_last_heard(
    conn: &Connection,
    agent: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    conn.prepare_cached(AGENT_LAST_HEARD)?
        .query_row(params![agent, to_micros(now)], |r| {
            r.get::<_, Option<i64>>(0)
        })
        .map(|us| us.map(from_micros))
}

/// [`agent_heard_since`]'s query: `?1` agent, `?2` since, `?3` now.
const AGENT_HEARD_SINCE: &str =
    "SELECT EXISTS (SELECT 1 FROM jobs j CROSS JOIN entry_counts c ON c.job_id = j.id \
     WHERE j.agent_id_responsible = ?1 AND c.status IN ('started', 'success', 'failed') \
     AND c.last_us >= ?2 AND (c.last_us <= ?3 OR EXISTS (SELECT 1 FROM entries e \
     INDEXED BY entries_identical WHERE e.job_id = j.id AND e.backup_timestamp_us >= ?2 \
     AND e.backup_timestamp_us <= ?3 AND e.status = c.status AND e.status <> 'missing')))";

/// Whether `agent` sent anything (a `started`, `success` or `failed` entry of any of its
/// jobs) dated in `[since, now]`. Job by job (`CROSS JOIN` keeps that order), from the
/// newest entry of each of those statuses (`entry_counts.last_us`): one dated before
/// `since` means none since, one in `[since, now]` is one; only when the newest is dated
/// after `now` are the job's entries in the range read. Left to itself, SQLite read every
/// report of every agent dated in the range through `entries_status_time`: 0.35 s a call at
/// 100,000 jobs when a day's reports were in range, 17 s of an all-due tick that asked it
/// for 50 silent agents; a seek into each job's entries instead still took 17 % of that
/// tick's writer (a leaf of `entries_identical` from the OS for each of 50,000 jobs).
pub fn agent_heard_since(
    conn: &Connection,
    agent: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> rusqlite::Result<bool> {
    conn.prepare_cached(AGENT_HEARD_SINCE)?
        .query_row(params![agent, to_micros(since), to_micros(now)], |r| {
            r.get(0)
        })
}

const REPORTS: &str = "AND status IN ('success', 'failed') AND status <> 'missing'";
const SUCCESSES: &str = "AND status = 'success' AND status <> 'missing'";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn agent_heard_since_reads_the_agents_jobs_newest_entries_not_every_report_in_the_range() {
        let (_dir, db) = crate::db::testing::migrated();
        let conn = db.conn().unwrap();

        let steps =
            crate::db::testing::query_plan(&conn, AGENT_HEARD_SINCE, params!["agent", 0, 1]);

        let at = |needle: &str| steps.iter().position(|s| s.contains(needle));
        let jobs = at("jobs_agent").unwrap_or_else(|| panic!("{steps:?}"));
        let newest =
            at("SEARCH c USING PRIMARY KEY (job_id=?").unwrap_or_else(|| panic!("{steps:?}"));
        assert!(jobs < newest, "the agent's jobs first: {steps:?}");
        // The entries only in the subquery for a newest entry dated after `now`.
        let entries = at("entries_identical").unwrap_or_else(|| panic!("{steps:?}"));
        assert!(newest < entries, "{steps:?}");
        assert!(
            steps
                .iter()
                .any(|s| s.contains("CORRELATED SCALAR SUBQUERY")),
            "{steps:?}"
        );
        assert!(at("entries_status_time").is_none(), "{steps:?}");
    }

    /// Day `d` of November 2026, 02:30 UTC.
    fn day(d: u32) -> DateTime<Utc> {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, d, 2, 30, 0).unwrap()
    }

    /// A `status` entry of `job` dated `day(d)`; its id.
    fn add(conn: &Connection, job: i64, d: u32, status: crate::domain::entry::EntryStatus) -> i64 {
        use crate::domain::entry::NewEntry;
        let new = NewEntry {
            status,
            ..NewEntry::missing(job, day(d))
        };
        crate::db::entries::insert(conn, &new, day(1)).unwrap().0.id
    }

    /// Each (job, status) whose `entry_counts.last_us` is not the newest of its entries.
    fn stale_newest(conn: &Connection) -> Vec<(i64, String, Option<i64>, Option<i64>)> {
        let mut stmt = conn
            .prepare(
                "SELECT c.job_id, c.status, c.last_us, (SELECT max(backup_timestamp_us) \
                 FROM entries e WHERE e.job_id = c.job_id AND e.status = c.status) FROM entry_counts c",
            )
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap();
        rows.map(Result::unwrap)
            .filter(|(_, _, kept, newest)| kept != newest)
            .collect()
    }

    #[test]
    fn each_jobs_newest_entry_of_a_status_follows_its_inserts_and_deletes() {
        use crate::domain::entry::EntryStatus::{Failed, Missing, Started, Success};
        let (_dir, db) = crate::db::testing::migrated();
        let conn = db.conn().unwrap();
        conn.execute_batch(crate::db::testing::INSERT_JOB).unwrap();
        conn.execute_batch(crate::db::testing::INSERT_JOB).unwrap();
        let newest = |job: i64, status: &str| -> Option<i64> {
            conn.query_row(
                "SELECT last_us FROM entry_counts WHERE job_id = ?1 AND status = ?2",
                params![job, status],
                |r| r.get(0),
            )
            .unwrap()
        };
        let delete = |id: i64| {
            conn.execute("DELETE FROM entries WHERE id = ?1", [id])
                .unwrap();
        };

        // Inserted out of order: the newest stays the newest.
        let success_5 = add(&conn, 1, 5, Success);
        let success_3 = add(&conn, 1, 3, Success);
        let success_9 = add(&conn, 1, 9, Success);
        add(&conn, 1, 7, Failed);
        add(&conn, 1, 8, Started);
        add(&conn, 2, 4, Missing);
        let other_success = add(&conn, 2, 6, Success);
        let missing_2 = add(&conn, 1, 2, Missing);
        let missing_10 = add(&conn, 1, 10, Missing);
        assert_eq!(newest(1, "success"), Some(to_micros(day(9))));
        assert_eq!(newest(1, "failed"), Some(to_micros(day(7))));
        assert_eq!(newest(2, "success"), Some(to_micros(day(6))));
        assert!(stale_newest(&conn).is_empty(), "{:?}", stale_newest(&conn));

        // An older one deleted: unchanged; the newest deleted: the one before it; the last
        // deleted: none.
        delete(success_3);
        assert_eq!(newest(1, "success"), Some(to_micros(day(9))));
        delete(success_9);
        assert_eq!(newest(1, "success"), Some(to_micros(day(5))));
        delete(success_5);
        assert_eq!(newest(1, "success"), None);
        assert_eq!(newest(2, "success"), Some(to_micros(day(6))));
        delete(other_success);
        assert!(stale_newest(&conn).is_empty(), "{:?}", stale_newest(&conn));
        // The same for the `missing` entries, kept in their own index.
        assert_eq!(newest(1, "missing"), Some(to_micros(day(10))));
        delete(missing_10);
        assert_eq!(newest(1, "missing"), Some(to_micros(day(2))));
        delete(missing_2);
        assert_eq!(newest(1, "missing"), None);
        assert!(stale_newest(&conn).is_empty(), "{:?}", stale_newest(&conn));

        // A job deleted takes its counters along.
        conn.execute("DELETE FROM jobs WHERE id = 2", []).unwrap();
        assert!(stale_newest(&conn).is_empty(), "{:?}", stale_newest(&conn));
    }

    #[test]
    fn reported_in_and_agent_heard_since_answer_as_the_entries_themselves_do() {
        use crate::domain::entry::EntryStatus::{Failed, Log, Missing, Started, Success};
        let (_dir, db) = crate::db::testing::migrated();
        let conn = db.conn().unwrap();
        for _ in 0..4 {
            conn.execute_batch(crate::db::testing::INSERT_JOB).unwrap();
        }
        // Job 1: reports on days 3 (success), 6 (failed), 12 (success, in the future of most
        // `now`s below); job 2: a failure on day 5 and a success on day 20; job 3 only
        // entries that are not reports; job 4 nothing. Job 1's newest success then deleted in
        // a second round.
        add(&conn, 1, 3, Success);
        add(&conn, 1, 6, Failed);
        let future_success = add(&conn, 1, 12, Success);
        add(&conn, 2, 5, Failed);
        add(&conn, 2, 20, Success);
        add(&conn, 3, 4, Missing);
        add(&conn, 3, 7, Log);
        add(&conn, 3, 8, Started);
        // What the entries in the range say, read directly.
        let reported = |job: i64, start: i64, end: i64, now: i64| -> (bool, bool) {
            conn.query_row(
                "SELECT count(*) > 0, ifnull(sum(status = 'success'), 0) > 0 FROM entries \
                 WHERE job_id = ?1 AND backup_timestamp_us >= ?2 AND backup_timestamp_us < ?3 \
                 AND backup_timestamp_us <= ?4 AND status IN ('success', 'failed')",
                params![job, start, end, now],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap()
        };
        let heard = |since: i64, now: i64| -> bool {
            conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM entries WHERE backup_timestamp_us >= ?1 \
                 AND backup_timestamp_us <= ?2 AND status IN ('started', 'success', 'failed'))",
                params![since, now],
                |r| r.get(0),
            )
            .unwrap()
        };
        let hours = |d: u32, h: i64| day(d) + chrono::Duration::hours(h);
        let instants: Vec<DateTime<Utc>> = (1..=22)
            .flat_map(|d| [hours(d, -1), day(d), hours(d, 1)])
            .collect();

        for round in 0..2 {
            if round == 1 {
                conn.execute("DELETE FROM entries WHERE id = ?1", [future_success])
                    .unwrap();
            }
            let mut checked = 0;
            for (i, &start) in instants.iter().enumerate() {
                for &end in &instants[i + 1..] {
                    for now in [day(2), day(6), hours(6, 1), day(10), day(15), day(25)] {
                        for job in 1..=4 {
                            assert_eq!(
                                reported_in(&conn, job, (start, end), now).unwrap(),
                                reported(job, to_micros(start), to_micros(end), to_micros(now)),
                                "round {round}, job {job}, [{start}, {end}) at {now}"
                            );
                        }
                        assert_eq!(
                            agent_heard_since(&conn, "agent", start, now).unwrap(),
                            heard(to_micros(start), to_micros(now)),
                            "round {round}, since {start} at {now}"
                        );
                        checked += 1;
                    }
                }
            }
            assert!(checked > 10_000, "{checked}");
        }
    }

    #[test]
    fn a_jobs_newest_entries_are_the_last_written_of_their_instant_and_skip_logs_and_the_future() {
        use crate::db::entries::insert;
        use crate::domain::entry::{EntryStatus, NewEntry};

        let (_dir, db) = crate::db::testing::migrated();
        let conn = db.conn().unwrap();
        conn.execute_batch(crate::db::testing::INSERT_JOB).unwrap();
        let day = |d: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, d, 2, 30, 0).unwrap();
        let entry = |d: u32, status: EntryStatus| {
            let new = NewEntry {
                status,
                backup_hash: Some(format!("h{d}{}", status.as_str())),
                ..NewEntry::missing(1, day(d))
            };
            insert(&conn, &new, day(28)).unwrap().0.id
        };
        let old_success = entry(1, EntryStatus::Success);
        // Day 3: a failure written after the missing entry of the same instant.
        entry(3, EntryStatus::Missing);
        let failure = entry(3, EntryStatus::Failed);
        // Day 5: a missing entry written after a failure of the same instant.
        let earlier_failure = entry(5, EntryStatus::Failed);
        let later_missing = entry(5, EntryStatus::Missing);
        entry(6, EntryStatus::Log);
        entry(9, EntryStatus::Success);
        let id = |e: Option<Entry>| e.map(|e| e.id);

        let on_day_4 = newest(&conn, 1, day(4)).unwrap();
        let on_day_7 = newest(&conn, 1, day(7)).unwrap();
        let before_any = newest(&conn, 1, day(1) - chrono::Duration::seconds(1)).unwrap();

        assert_eq!(id(on_day_4.entry), Some(failure));
        assert_eq!(id(on_day_4.report), Some(failure));
        assert_eq!(id(on_day_4.success), Some(old_success));
        assert_eq!(id(on_day_7.entry.clone()), Some(later_missing));
        assert_eq!(id(on_day_7.report.clone()), Some(earlier_failure));
        assert_eq!(id(on_day_7.success.clone()), Some(old_success));
        assert_eq!(before_any, Newest::default());
        // The same rows as one `latest` call each, and as the table read without an index.
        let newest_not_log = |at: DateTime<Utc>| {
            conn.query_row(
                &format!(
                    "SELECT {COLUMNS} FROM entries NOT INDEXED WHERE job_id = 1 \
                     AND backup_timestamp_us <= ?1 AND status != 'log' \
                     ORDER BY backup_timestamp_us DESC, id DESC LIMIT 1"
                ),
                [to_micros(at)],
                from_row,
            )
            .optional()
            .unwrap()
        };
        for at in [day(4), day(7), day(9)] {
            let walked = newest(&conn, 1, at).unwrap();
            assert_eq!(walked.entry, newest_not_log(at));
            assert_eq!(walked.report, latest(&conn, 1, REPORTS, at).unwrap());
            assert_eq!(walked.success, latest(&conn, 1, SUCCESSES, at).unwrap());
        }
    }

    #[test]
    fn a_jobs_state_seeks_its_entries_by_time() {
        use crate::db::testing::{assert_seeks_one_job, plan_on_new_database};

        for status_sql in [REPORTS, SUCCESSES] {
            let sql = latest_sql(status_sql);
            let steps = plan_on_new_database(&sql, params![1, 0]);

            assert_seeks_one_job(&sql, &steps, "backup_timestamp_us<?");
            assert!(
                steps.iter().any(|s| s.contains("entries_identical")),
                "{steps:?}"
            );
        }
        let steps = plan_on_new_database(NEWEST_WALK, params![1, 0]);
        assert_seeks_one_job(NEWEST_WALK, &steps, "backup_timestamp_us<?");
        // Both indexes by job, merged as they come.
        for index in ["entries_identical", "entries_missing"] {
            assert!(
                steps
                    .iter()
                    .any(|s| s.contains(&format!("COVERING INDEX {index} "))),
                "{index}: {steps:?}"
            );
        }
        assert!(
            steps
                .iter()
                .filter(|s| s.contains(" entries "))
                .all(|s| s.contains("COVERING INDEX")),
            "no row read: {steps:?}"
        );
        assert!(steps.iter().any(|s| s == "MERGE (UNION ALL)"), "{steps:?}");
        assert!(
            !steps.iter().any(|s| s.contains("TEMP B-TREE")),
            "no sort: {steps:?}"
        );
        let steps = plan_on_new_database(REPORTED_IN, params![1, 0, 1, 1]);
        assert_seeks_one_job(REPORTED_IN, &steps, "backup_timestamp_us>?");
        let steps = plan_on_new_database(AGENT_LAST_HEARD, params!["agent", 0]);
        assert_seeks_one_job(AGENT_LAST_HEARD, &steps, "backup_timestamp_us<?");
    }
}
