//! Queries on the `entries` table.

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::Filters;
use crate::domain::entry::{Entry, EntryStatus, NewEntry, RUN_ABANDONED_DAYS};
use crate::domain::time::{from_micros, to_micros};

pub(crate) const COLUMNS: &str =
    "id, job_id, status, backup_timestamp_us, backup_hash, backup_size_bytes, \
    error_message, created_at_us, run_id, duration_seconds, suspect_reason, log";

pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Entry> {
    let status: String = row.get(2)?;
    Ok(Entry {
        id: row.get(0)?,
        expected_job_id: row.get(1)?,
        status: EntryStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown status {status:?}").into(),
            )
        })?,
        backup_timestamp_utc: from_micros(row.get(3)?),
        backup_hash: row.get(4)?,
        backup_size_bytes: row.get(5)?,
        error_message: row.get(6)?,
        created_at: from_micros(row.get(7)?),
        run_id: row.get(8)?,
        duration_seconds: row.get(9)?,
        suspect_reason: row.get(10)?,
        log: row.get(11)?,
    })
}

/// Stores a report unless an identical one (same job, timestamp, status and hash) exists.
/// Returns the entry and whether it was created now. The job must exist.
///
/// A plain insert, not `… RETURNING`: RETURNING makes SQLite gather the rows in an
/// ephemeral table first. The new entry is what was bound (its times at the microsecond
/// the database keeps) with the id SQLite assigned; the stored row is read back only for
/// an identical repeat. `OR FAIL`, with the schema of migration 0019, spares SQLite the
/// statement journal it would otherwise keep for each insert (a copy of every page the
/// insert changes): each of the insert's checks comes before its first change.
pub fn insert(
    conn: &Connection,
    new: &NewEntry,
    now: DateTime<Utc>,
) -> rusqlite::Result<(Entry, bool)> {
    let at_us = to_micros(new.backup_timestamp_utc);
    let now_us = to_micros(now);
    let inserted = super::cached_execute(
        conn,
        "INSERT OR FAIL INTO entries (job_id, status, backup_timestamp_us, backup_hash, \
         backup_size_bytes, error_message, created_at_us, run_id, duration_seconds, \
         suspect_reason, log) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING",
        params![
            new.expected_job_id,
            new.status.as_str(),
            at_us,
            new.backup_hash,
            new.backup_size_bytes,
            new.error_message,
            now_us,
            new.run_id,
            new.duration_seconds,
            new.suspect_reason,
            new.log,
        ],
    )?;
    // `changes` counts the row of the statement itself, never the counter trigger's; a
    // skipped conflict leaves 0 (and an unrelated last rowid).
    if inserted == 1 {
        let entry = Entry {
            id: conn.last_insert_rowid(),
            expected_job_id: new.expected_job_id,
            status: new.status,
            backup_timestamp_utc: from_micros(at_us),
            backup_hash: new.backup_hash.clone(),
            backup_size_bytes: new.backup_size_bytes,
            error_message: new.error_message.clone(),
            created_at: from_micros(now_us),
            run_id: new.run_id.clone(),
            duration_seconds: new.duration_seconds,
            suspect_reason: new.suspect_reason.clone(),
            log: new.log.clone(),
        };
        return Ok((entry, true));
    }
    let existing = super::cached_row(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM {} WHERE job_id = ?1 AND backup_timestamp_us = ?2 \
             AND status = ?3 AND {} AND ifnull(backup_hash, '') = ifnull(?4, '')",
            of_status(new.status),
            partial_term(new.status)
        ),
        params![
            new.expected_job_id,
            at_us,
            new.status.as_str(),
            new.backup_hash,
        ],
        from_row,
    )?;
    Ok((existing, false))
}

/// The open run a `success` or `failed` dated `at` finishes: the job's latest `started`
/// entry no report has finished, dated no later than `at` and less than
/// [`RUN_ABANDONED_DAYS`] before it; with `run_id`, only a start of that run. Its id and
/// when it started.
pub fn open_run(
    conn: &Connection,
    job_id: i64,
    run_id: Option<&str>,
    at: DateTime<Utc>,
) -> rusqlite::Result<Option<(i64, DateTime<Utc>)>> {
    let abandoned = at - chrono::Duration::days(RUN_ABANDONED_DAYS);
    super::cached_row(
        conn,
        "SELECT id, backup_timestamp_us FROM entries WHERE job_id = ?1 AND status = 'started' \
         AND finished_at_us IS NULL AND backup_timestamp_us <= ?2 AND backup_timestamp_us > ?3 \
         AND (?4 IS NULL OR run_id = ?4) ORDER BY backup_timestamp_us DESC, id DESC LIMIT 1",
        params![job_id, to_micros(at), to_micros(abandoned), run_id],
        |r| Ok((r.get(0)?, from_micros(r.get(1)?))),
    )
    .optional()
}

/// The runs that went on too long at `now`: for each active job with a
/// `max_duration_minutes`, its latest open run (see [`open_run`]) if it started at least
/// that long ago and no `hung` alert names it yet. (job id, start entry id, start).
pub fn overdue_runs(
    conn: &Connection,
    now: DateTime<Utc>,
) -> rusqlite::Result<Vec<(i64, i64, DateTime<Utc>)>> {
    let abandoned = now - chrono::Duration::days(RUN_ABANDONED_DAYS);
    // Driven by the partial index of open runs (a handful), not by the jobs table.
    let mut stmt = conn.prepare_cached(
        "SELECT e.job_id, e.id, e.backup_timestamp_us FROM entries e CROSS JOIN jobs j \
         ON j.id = e.job_id \
         WHERE e.status = 'started' AND e.finished_at_us IS NULL \
         AND e.backup_timestamp_us > ?2 AND e.backup_timestamp_us <= ?1 \
         AND j.is_active = 1 AND j.max_duration_minutes IS NOT NULL \
         AND e.backup_timestamp_us + j.max_duration_minutes * 60000000 <= ?1 \
         AND e.id = (SELECT o.id FROM entries o WHERE o.job_id = e.job_id \
             AND o.status = 'started' AND o.finished_at_us IS NULL \
             AND o.backup_timestamp_us <= ?1 \
             ORDER BY o.backup_timestamp_us DESC, o.id DESC LIMIT 1) \
         AND NOT EXISTS (SELECT 1 FROM alerts a WHERE a.job_id = e.job_id \
             AND a.kind = 'hung' AND a.entry_id = e.id)",
    )?;
    let rows = stmt.query_map(params![to_micros(now), to_micros(abandoned)], |r| {
        Ok((r.get(0)?, r.get(1)?, from_micros(r.get(2)?)))
    })?;
    rows.collect()
}

/// Marks a `started` entry as finished by a report dated `at`.
pub fn finish_run(conn: &Connection, start_id: i64, at: DateTime<Utc>) -> rusqlite::Result<()> {
    super::cached_execute(
        conn,
        "UPDATE entries SET finished_at_us = ?2 WHERE id = ?1",
        params![start_id, to_micros(at)],
    )
    .map(|_| ())
}

/// What a new success of a job is compared with (DESIGN §10): from its successes dated
/// before `before`, newest first, the sizes of the latest `sizes` that carried one, and with
/// `latest`, the hash and time of the latest. One walk back through the job's entries in
/// [`PREVIOUS_SUCCESSES`]'s order, which stops as soon as both are known.
pub fn previous_successes(
    conn: &Connection,
    job_id: i64,
    before: DateTime<Utc>,
    sizes: usize,
    latest: bool,
) -> rusqlite::Result<PreviousSuccesses> {
    let mut found = PreviousSuccesses::default();
    if sizes == 0 && !latest {
        return Ok(found);
    }
    let mut stmt = conn.prepare_cached(PREVIOUS_SUCCESSES)?;
    let mut rows = stmt.query(params![job_id, to_micros(before)])?;
    while let Some(row) = rows.next()? {
        if found.take(&known_success(row)?, sizes, latest) {
            break;
        }
    }
    Ok(found)
}

impl PreviousSuccesses {
    /// Takes in the next of the job's successes, newest first, for a report that compares
    /// `sizes` sizes and, with `latest`, the latest success. True once it has all of that.
    fn take(&mut self, success: &KnownSuccess, sizes: usize, latest: bool) -> bool {
        if latest && self.latest.is_none() {
            let hash = success.hash.as_deref().map(str::to_owned);
            self.latest = Some((hash, from_micros(success.at_us)));
        }
        if self.sizes.len() < sizes {
            if let Some(size) = success.size {
                self.sizes.push(size);
            }
        }
        self.sizes.len() >= sizes && (self.latest.is_some() || !latest)
    }
}

/// A row of [`PREVIOUS_SUCCESSES`].
fn known_success(row: &Row<'_>) -> rusqlite::Result<KnownSuccess> {
    let hash: Option<String> = row.get(1)?;
    Ok(KnownSuccess {
        at_us: row.get(2)?,
        size: row.get(0)?,
        hash: hash.map(String::into_boxed_str),
    })
}

/// A job's successes before a new one (see [`previous_successes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PreviousSuccesses {
    /// The sizes of the latest successes that carried one, newest first.
    pub sizes: Vec<i64>,
    /// The latest success's hash and time, when asked for and there is one.
    pub latest: Option<(Option<String>, DateTime<Utc>)>,
}

/// [`previous_successes`]' walk: `?1` job, `?2` before. Newest first in the order of
/// `entries_identical` itself, so that SQLite reads the rows as they come and sorts nothing:
/// two successes of the job dated the same microsecond come by hash, then id (the status is
/// compared with `+` so that it stays an index column the order can name, not a constraint
/// that hides it; `status <> 'missing'` is the partial index's own term).
pub(crate) const PREVIOUS_SUCCESSES: &str =
    "SELECT backup_size_bytes, backup_hash, backup_timestamp_us \
     FROM entries INDEXED BY entries_identical \
     WHERE job_id = ?1 AND backup_timestamp_us < ?2 AND +status = 'success' \
     AND status <> 'missing' \
     ORDER BY backup_timestamp_us DESC, status DESC, ifnull(backup_hash, '') DESC, id DESC";

/// Successes a job's record keeps at most ([`KnownSuccesses`]): the size history and four
/// more, so that the reports of the current slot (`exec`, then `verify`, say), which a
/// report is not compared with, leave enough of the earlier ones.
pub const KNOWN_SUCCESSES: usize = crate::domain::content::SIZE_HISTORY + 4;

/// A job's latest successes as the group-commit writer remembers them between reports
/// (`jobs::JobCache::previous_successes` keeps one per job and says when it may be trusted):
/// the first [`KNOWN_SUCCESSES`] of its successes dated before `before_us`, in
/// [`PREVIOUS_SUCCESSES`]' order, so that [`previous_successes`] can be answered without
/// the walk, and the record kept up to date by the writer's own inserts ([`Self::add`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownSuccesses {
    /// The record holds the successes dated before this (`i64::MAX`: all of them).
    before_us: i64,
    /// Newest first, exactly the first of those successes in the walk's order.
    rows: Vec<KnownSuccess>,
    /// Whether `rows` are every one of those successes (else only the first).
    all: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct KnownSuccess {
    at_us: i64,
    size: Option<i64>,
    hash: Option<Box<str>>,
}

impl KnownSuccesses {
    /// Reads a job's record: its first successes of all (`before` None), or of those dated
    /// before `before`.
    pub fn read(
        conn: &Connection,
        job_id: i64,
        before: Option<DateTime<Utc>>,
    ) -> rusqlite::Result<Self> {
        let before_us = before.map_or(i64::MAX, to_micros);
        let mut stmt = conn.prepare_cached(PREVIOUS_SUCCESSES)?;
        let mut rows = stmt.query(params![job_id, before_us])?;
        let mut known = Vec::with_capacity(KNOWN_SUCCESSES);
        let mut all = true;
        while let Some(row) = rows.next()? {
            if known.len() == KNOWN_SUCCESSES {
                all = false;
                break;
            }
            known.push(known_success(row)?);
        }
        Ok(Self {
            before_us,
            rows: known,
            all,
        })
    }

    /// The record of a job that has no success yet.
    pub fn none() -> Self {
        Self {
            before_us: i64::MAX,
            rows: Vec::new(),
            all: true,
        }
    }

    /// [`previous_successes`] of the job, when the record can tell: not for a history that
    /// ends after the record's (the successes between are not in it), nor when the record
    /// runs out before what was asked is found and holds only the first successes.
    pub fn answer(
        &self,
        before: DateTime<Utc>,
        sizes: usize,
        latest: bool,
    ) -> Option<PreviousSuccesses> {
        let before_us = to_micros(before);
        if before_us > self.before_us {
            return None;
        }
        let mut found = PreviousSuccesses::default();
        if sizes == 0 && !latest {
            return Some(found);
        }
        for row in self.rows.iter().filter(|row| row.at_us < before_us) {
            if found.take(row, sizes, latest) {
                return Some(found);
            }
        }
        self.all.then_some(found)
    }

    /// Takes in a success just inserted for the job. False when the record can no longer
    /// tell where it goes (another success of the job dated the same microsecond, ordered
    /// by hash and id among them): the caller drops it, and the next report reads it again.
    pub fn add(&mut self, entry: &Entry) -> bool {
        let at_us = to_micros(entry.backup_timestamp_utc);
        if at_us >= self.before_us {
            return true;
        }
        if self.rows.iter().any(|row| row.at_us == at_us) {
            return false;
        }
        let at = self.rows.partition_point(|row| row.at_us > at_us);
        if at == self.rows.len() && !self.all {
            // Older than the first successes the record holds: not one of them.
            return true;
        }
        self.rows.insert(
            at,
            KnownSuccess {
                at_us,
                size: entry.backup_size_bytes,
                hash: entry.backup_hash.clone().map(String::into_boxed_str),
            },
        );
        if self.rows.len() > KNOWN_SUCCESSES {
            self.rows.truncate(KNOWN_SUCCESSES);
            self.all = false;
        }
        true
    }
}

pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Entry>> {
    super::row_by_id(conn, "entries", COLUMNS, id, from_row)
}

/// Filters of the entries listings: all optional, all combined.
#[derive(Debug, Clone, Default)]
pub struct EntryFilter {
    pub job_id: Option<i64>,
    pub status: Option<EntryStatus>,
    /// Inclusive lower bound on `backup_timestamp_utc`.
    pub since: Option<DateTime<Utc>>,
    /// Inclusive upper bound on `backup_timestamp_utc`.
    pub until: Option<DateTime<Utc>>,
    /// Only the jobs of this agent (an agent token's view).
    pub agent: Option<String>,
    /// Keyset pagination: only entries strictly after this (timestamp µs, id) in the
    /// newest-first order, i.e. older ones.
    pub before: Option<(i64, i64)>,
}

/// A job's entries of every status, as one table: its `missing` ones (`entries_missing`)
/// and the others (`entries_identical`), each read through its index by job. SQLite takes a
/// query's terms (the job, the time bounds, a keyset position) into both parts and merges
/// what they find in the query's order (migration 0018 has why there are two).
const JOB_ENTRIES: &str = "(SELECT * FROM entries INDEXED BY entries_identical \
     WHERE status <> 'missing' UNION ALL SELECT * FROM entries INDEXED BY entries_missing \
     WHERE status = 'missing') AS entries";

/// The entries of one status, through the index by job that holds it: the query must also
/// carry that index's term ([`partial_term`]).
fn of_status(status: EntryStatus) -> &'static str {
    if status == EntryStatus::Missing {
        "entries INDEXED BY entries_missing"
    } else {
        "entries INDEXED BY entries_identical"
    }
}

/// The literal term of the partial index by job that holds `status` ([`of_status`]).
fn partial_term(status: EntryStatus) -> &'static str {
    if status == EntryStatus::Missing {
        "status = 'missing'"
    } else {
        "status <> 'missing'"
    }
}

/// The literal terms of a status filter: the value itself (a bound parameter would not
/// tell SQLite which partial index holds it), and `status <> 'missing'` for every other
/// status, the term `entries_identical` is defined with.
fn status_terms(f: &mut Filters, status: EntryStatus) {
    f.add_fixed(format!("status = '{}'", status.as_str()));
    if status != EntryStatus::Missing {
        f.add_fixed(partial_term(status));
    }
}

/// The table a listing reads: one job's entries through the indexes by job (left to itself,
/// SQLite takes `entries_status_time` when a status is also given, and walks every job's
/// entries of that status), else as the planner chooses.
fn source(filter: &EntryFilter) -> &'static str {
    match (filter.job_id, filter.status) {
        (None, _) => "entries",
        (Some(_), Some(status)) => of_status(status),
        (Some(_), None) => JOB_ENTRIES,
    }
}

/// The count after filters: from the per-job counters when no time bound is given
/// (cheap at any size), else by counting the index range.
fn total(conn: &Connection, filter: &EntryFilter, f: &Filters) -> rusqlite::Result<i64> {
    if filter.since.is_some() || filter.until.is_some() {
        return conn.query_row(
            &format!("SELECT count(*) FROM {} {}", source(filter), f.where_sql()),
            params_from_iter(f.values.iter()),
            |r| r.get(0),
        );
    }
    let mut c = Filters::new();
    if let Some(v) = filter.job_id {
        c.add("job_id", "=", v);
    }
    if let Some(v) = filter.status {
        status_terms(&mut c, v);
    }
    if let Some(agent) = &filter.agent {
        c.add_sql(
            "job_id IN (SELECT id FROM jobs WHERE agent_id_responsible = {})",
            agent.clone(),
        );
    }
    conn.query_row(
        &format!(
            "SELECT ifnull(sum(n), 0) FROM entry_counts {}",
            c.where_sql()
        ),
        params_from_iter(c.values.iter()),
        |r| r.get(0),
    )
}

/// One page of entries, newest first (by backup time, then id), and the total after filters.
pub fn list(
    conn: &Connection,
    filter: &EntryFilter,
    skip: i64,
    limit: i64,
) -> rusqlite::Result<(Vec<Entry>, i64)> {
    let mut f = filters(filter);
    let total = total(conn, filter, &f)?;
    let select = page_sql(filter, &mut f, COLUMNS);
    let entries = if filter.job_id.is_some() && skip > 0 {
        job_page_after(conn, source(filter), f, skip, limit)?
    } else {
        super::page(conn, &select, f, skip, limit, from_row)?
    };
    Ok((entries, total))
}

/// [`job_page_after`]'s walk of a job's entries in `source` matching `within`, in the order
/// of its indexes by job (by time, an instant's entries by status and hash), before its
/// `LIMIT`.
fn job_walk_sql(source: &str, within: &str) -> String {
    format!(
        "SELECT backup_timestamp_us, id FROM {source} {within} ORDER BY backup_timestamp_us DESC"
    )
}

/// A job's page after `skip` entries, for the filters `f` (its job, and any status, time
/// bounds and keyset position), in the listing's order (time, then id, newest first).
///
/// The index by job orders an instant's entries by status and hash, not by id: ordered by
/// id, SQLite sorted every entry the offset skipped (17 ms for a page 90,810 entries deep
/// in a job of 100,000, 40 requests/s at 32 connections, where the index by job and time
/// that migration 0014 dropped took 2.9 ms). Both orders agree but within an instant, so
/// the window the index's order gives (a covering walk, no sort) holds the same entries as
/// the listing's, except at the instants it begins and ends in: of the one it ends (the
/// newest), the window holds as many as the walk found there, and in the listing's order
/// they are that instant's last, its smallest ids; of the one it begins, its first, the
/// largest. Those two instants' ids are read again in id order; a window within one instant
/// starts where the entries newer than it end (counted).
fn job_page_after(
    conn: &Connection,
    source: &str,
    f: Filters,
    skip: i64,
    limit: i64,
) -> rusqlite::Result<Vec<Entry>> {
    // The walk and the instants read again see one snapshot (ended, read only, on return).
    let _snapshot = if conn.is_autocommit() {
        Some(conn.unchecked_transaction()?)
    } else {
        None
    };
    let within = f.where_sql();
    let values = f.values.clone();
    let n = values.len();
    let window: Vec<(i64, i64)> =
        super::page(conn, &job_walk_sql(source, &within), f, skip, limit, |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let (Some(&(newest, _)), Some(&(oldest, _))) = (window.first(), window.last()) else {
        return Ok(Vec::new());
    };
    // The entries matching the filters at (`=`) or newer than (`>`) one instant: the query
    // and its values.
    let of_instant = |select: &str, op: &str, instant: i64| {
        let sql = format!(
            "{select} FROM {source} {within} AND backup_timestamp_us {op} ?{}",
            n + 1
        );
        let mut bound = values.clone();
        bound.push(instant.into());
        (sql, bound)
    };
    // The ids of one instant's entries, in the listing's order.
    let ids_at = |instant: i64| -> rusqlite::Result<Vec<i64>> {
        let (sql, bound) = of_instant("SELECT id", "=", instant);
        conn.prepare_cached(&format!("{sql} ORDER BY id DESC"))?
            .query_map(params_from_iter(bound.iter()), |r| r.get(0))?
            .collect()
    };
    let found_at = |instant: i64| window.iter().filter(|(t, _)| *t == instant).count();
    let ids: Vec<i64> = if newest == oldest {
        let (sql, bound) = of_instant("SELECT count(*)", ">", newest);
        let newer: i64 = conn
            .prepare_cached(&sql)?
            .query_row(params_from_iter(bound.iter()), |r| r.get(0))?;
        let from = usize::try_from(skip.saturating_sub(newer)).unwrap_or(0);
        let take = usize::try_from(limit).unwrap_or(0);
        ids_at(newest)?.into_iter().skip(from).take(take).collect()
    } else {
        let mut ids: Vec<i64> = window
            .iter()
            .filter(|(t, _)| *t != newest && *t != oldest)
            .map(|(_, id)| *id)
            .collect();
        let ending = ids_at(newest)?;
        ids.extend(&ending[ending.len().saturating_sub(found_at(newest))..]);
        ids.extend(ids_at(oldest)?.into_iter().take(found_at(oldest)));
        ids
    };
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM entries WHERE id IN (SELECT value FROM json_each(?1)) \
         ORDER BY backup_timestamp_us DESC, id DESC"
    ))?
    .query_map([super::json_ids(ids)], from_row)?
    .collect()
}

/// `filter`'s conditions but its keyset position.
fn filters(filter: &EntryFilter) -> Filters {
    let mut f = Filters::new();
    if let Some(v) = filter.job_id {
        f.add("job_id", "=", v);
    }
    if let Some(v) = filter.status {
        status_terms(&mut f, v);
    }
    if let Some(v) = filter.since {
        f.add("backup_timestamp_us", ">=", to_micros(v));
    }
    if let Some(v) = filter.until {
        f.add("backup_timestamp_us", "<=", to_micros(v));
    }
    if let Some(agent) = &filter.agent {
        f.add_sql(
            "job_id IN (SELECT id FROM jobs WHERE agent_id_responsible = {})",
            agent.clone(),
        );
    }
    f
}

/// The query of a page of entries' `columns` with the filters `f` (`filter`'s, to which it
/// adds the keyset position), newest first, before its `LIMIT`.
fn page_sql(filter: &EntryFilter, f: &mut Filters, columns: &str) -> String {
    if let Some((ts, id)) = filter.before {
        // The bound on the time alone lets an index by job seek to the position; the pair
        // then skips the rows of that instant already listed.
        f.add("backup_timestamp_us", "<=", ts);
        f.add_sql_pair("(backup_timestamp_us, id) < ({}, {})", ts, id);
    }
    format!(
        "SELECT {columns} FROM {} {} ORDER BY backup_timestamp_us DESC, id DESC",
        source(filter),
        f.where_sql()
    )
}

/// How many entries the database holds, from the per-job counters (no scan).
pub fn stored_count(conn: &Connection) -> rusqlite::Result<i64> {
    super::cached_row(
        conn,
        "SELECT ifnull(sum(n), 0) FROM entry_counts",
        [],
        |r| r.get(0),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::db::testing::{assert_seeks_one_job, migrated, plan_on_new_database};

    /// The `CHECK`s of an entry's status and an alert's kind compare the value in place
    /// (migration 0017): SQLite built an ephemeral table of the allowed values at every
    /// insert for `IN (…)` lists of more than two. They still take every status and kind
    /// there is, and nothing else.
    #[test]
    fn the_checks_of_a_status_and_a_kind_build_no_table_at_each_insert() {
        use crate::db::testing::{opcodes, INSERT_JOB};
        use crate::domain::alert::AlertKind;
        let (_dir, db) = migrated();
        let conn = db.conn().unwrap();
        conn.execute_batch(INSERT_JOB).unwrap();
        let entry = "INSERT INTO entries (job_id, status, backup_timestamp_us, created_at_us) \
                     VALUES (1, ?1, ?2, 0)";
        let alert = "INSERT INTO alerts (job_id, kind, slot_us, created_at_us, next_attempt_us) \
                     VALUES (1, ?1, 0, 0, 0)";

        for sql in [entry, alert] {
            let ops = opcodes(&conn, sql);
            assert!(ops.iter().any(|op| op == "Insert"), "{sql}: {ops:?}");
            assert!(
                !ops.iter().any(|op| op == "OpenEphemeral"),
                "{sql}: {ops:?}"
            );
        }
        let schema: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'schema_moved'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(schema, 0);

        for (at, status) in EntryStatus::ALL.into_iter().enumerate() {
            conn.execute(entry, params![status.as_str(), i64::try_from(at).unwrap()])
                .unwrap();
        }
        for kind in AlertKind::ALL {
            conn.execute(alert, [kind.as_str()]).unwrap();
        }
        for refused in ["", "Success", "success ", "unknown"] {
            assert!(
                conn.execute(entry, params![refused, 99]).is_err(),
                "{refused:?}"
            );
            assert!(conn.execute(alert, [refused]).is_err(), "{refused:?}");
        }
    }

    /// The entries' job is kept by triggers, not a foreign key (migration 0018): a job's
    /// deletion takes its entries of every status along, each found through its index by
    /// job, not by reading every entry of the table; an entry of no job is refused.
    #[test]
    fn a_deleted_jobs_entries_go_with_it_read_through_the_indexes_and_no_entry_is_of_no_job() {
        use crate::db::testing::INSERT_JOB;
        let (_dir, db) = migrated();
        let conn = db.conn().unwrap();
        conn.execute_batch(INSERT_JOB).unwrap();
        conn.execute_batch(INSERT_JOB).unwrap();
        for job in [1, 2] {
            for (at, status) in EntryStatus::ALL.into_iter().enumerate() {
                let new = NewEntry {
                    status,
                    ..NewEntry::missing(job, from_micros(i64::try_from(at).unwrap()))
                };
                insert(&conn, &new, from_micros(0)).unwrap();
            }
        }
        let count = |job: i64| -> i64 {
            conn.query_row(
                "SELECT count(*) FROM entries NOT INDEXED WHERE job_id = ?1",
                [job],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(count(1), 5);

        let mut delete = conn.prepare("DELETE FROM jobs WHERE id = 1").unwrap();
        assert_eq!(delete.execute([]).unwrap(), 1);

        assert_eq!(
            delete.get_status(rusqlite::StatementStatus::FullscanStep),
            0,
            "a table read whole"
        );
        assert_eq!(count(1), 0);
        assert_eq!(count(2), 5);
        let counted: i64 = conn
            .query_row(
                "SELECT count(*) FROM entry_counts WHERE job_id = 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(counted, 0);
        for status in EntryStatus::ALL {
            let orphan = NewEntry {
                status,
                ..NewEntry::missing(1, from_micros(99))
            };
            let refused = insert(&conn, &orphan, from_micros(0)).unwrap_err();
            assert!(
                refused
                    .to_string()
                    .contains("FOREIGN KEY constraint failed"),
                "{refused}"
            );
        }
        let moved = conn.execute("UPDATE entries SET job_id = 1 WHERE job_id = 2", []);
        assert!(moved.is_err(), "{moved:?}");
        assert_eq!(count(2), 5);
    }

    /// An entry's insert keeps no statement journal (migration 0019 and `INSERT OR FAIL`):
    /// SQLite copied every page each insert changed into one, so as to undo the insert
    /// alone, 9-16 % of an all-due tick's writer. What shows it: a database that fills up
    /// mid-insert can only be rolled back whole, transaction and all, where a statement
    /// journal would have undone the insert alone and left the transaction open.
    #[test]
    fn an_entrys_insert_keeps_no_statement_journal() {
        use crate::db::testing::INSERT_JOB;
        let (_dir, db) = migrated();
        let mut conn = db.conn().unwrap();
        conn.execute_batch(INSERT_JOB).unwrap();
        let tx = conn.transaction().unwrap();
        insert(&tx, &NewEntry::missing(1, from_micros(1)), from_micros(0)).unwrap();
        let pages: i64 = tx.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
        tx.pragma_update(None, "max_page_count", pages).unwrap();
        let big = NewEntry {
            log: Some("x".repeat(64 * 1024)),
            ..NewEntry::missing(1, from_micros(2))
        };

        let full = insert(&tx, &big, from_micros(0));

        assert!(
            matches!(&full, Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)),
            "{full:?}"
        );
        assert!(
            tx.is_autocommit(),
            "the insert was undone alone: SQLite kept a statement journal for it"
        );
    }

    #[test]
    fn the_entries_have_one_index_by_job_for_the_missing_ones_and_one_for_the_others() {
        let (_dir, db) = migrated();
        let conn = db.conn().unwrap();

        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'entries'")
            .unwrap();
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();

        assert!(names.iter().any(|n| n == "entries_identical"), "{names:?}");
        assert!(names.iter().any(|n| n == "entries_missing"), "{names:?}");
        assert!(!names.iter().any(|n| n == "entries_job_time"), "{names:?}");
        // Each unique on the same key: two entries of a job are the same entry when their
        // time, status and hash are, in either index.
        conn.execute_batch(crate::db::testing::INSERT_JOB).unwrap();
        for status in EntryStatus::ALL {
            for hash in [None, Some("h".to_owned())] {
                let new = NewEntry {
                    status,
                    backup_hash: hash,
                    ..NewEntry::missing(1, from_micros(5))
                };
                let (first, created) = insert(&conn, &new, from_micros(0)).unwrap();
                assert!(created, "{status:?}");
                let (again, created) = insert(&conn, &new, from_micros(1)).unwrap();
                assert!(!created, "{status:?}");
                assert_eq!(again, first);
            }
        }
    }

    #[test]
    fn a_new_successs_history_is_read_back_from_its_position_in_index_order_with_no_sort() {
        let steps = plan_on_new_database(PREVIOUS_SUCCESSES, params![1, 0]);

        assert_seeks_one_job(PREVIOUS_SUCCESSES, &steps, "backup_timestamp_us<?");
        assert!(
            !steps.iter().any(|s| s.contains("TEMP B-TREE")),
            "{steps:?}"
        );
    }

    #[test]
    fn a_new_successs_history_skips_other_statuses_and_unsized_successes_and_stops_when_known() {
        let (_dir, db) = migrated();
        let conn = db.conn().unwrap();
        conn.execute_batch(crate::db::testing::INSERT_JOB).unwrap();
        let day = |d: u32| chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 11, d, 2, 30, 0).unwrap();
        let report = |d: u32, status: EntryStatus, size: Option<i64>, hash: Option<&str>| {
            let new = NewEntry {
                status,
                backup_size_bytes: size,
                backup_hash: hash.map(str::to_owned),
                ..NewEntry::missing(1, day(d))
            };
            insert(&conn, &new, day(28)).unwrap();
        };
        report(1, EntryStatus::Success, Some(100), Some("h1"));
        report(2, EntryStatus::Success, Some(200), Some("h2"));
        report(3, EntryStatus::Success, None, Some("h3"));
        report(4, EntryStatus::Failed, Some(999), None);
        report(5, EntryStatus::Success, Some(500), None);
        report(6, EntryStatus::Missing, None, None);
        report(9, EntryStatus::Success, Some(900), Some("after"));

        let found = previous_successes(&conn, 1, day(7), 2, true).unwrap();
        let sizes_only = previous_successes(&conn, 1, day(7), 10, false).unwrap();
        let latest_only = previous_successes(&conn, 1, day(5), 0, true).unwrap();
        let nothing_asked = previous_successes(&conn, 1, day(7), 0, false).unwrap();

        assert_eq!(found.sizes, [500, 200]);
        assert_eq!(found.latest, Some((None, day(5))));
        assert_eq!(sizes_only.sizes, [500, 200, 100]);
        assert_eq!(sizes_only.latest, None);
        assert_eq!(latest_only.latest, Some((Some("h3".to_owned()), day(3))));
        assert!(latest_only.sizes.is_empty());
        assert_eq!(nothing_asked, PreviousSuccesses::default());
    }

    #[test]
    fn a_jobs_listing_seeks_its_entries_with_a_status_and_from_a_keyset_position() {
        let filter = EntryFilter {
            job_id: Some(1),
            status: Some(EntryStatus::Success),
            ..EntryFilter::default()
        };
        let from_position = EntryFilter {
            before: Some((1_000, 7)),
            ..filter.clone()
        };

        let missing = EntryFilter {
            status: Some(EntryStatus::Missing),
            ..filter.clone()
        };
        let any_status = EntryFilter {
            status: None,
            ..filter.clone()
        };
        let any_status_from_position = EntryFilter {
            status: None,
            ..from_position.clone()
        };

        for (filter, seek, indexes) in [
            (filter, "(job_id=?)", &["entries_identical"][..]),
            (
                from_position,
                "backup_timestamp_us<?",
                &["entries_identical"],
            ),
            (missing, "(job_id=?)", &["entries_missing"]),
            (
                any_status,
                "(job_id=?)",
                &["entries_identical", "entries_missing"],
            ),
            (
                any_status_from_position,
                "backup_timestamp_us<?",
                &["entries_identical", "entries_missing"],
            ),
        ] {
            let mut f = filters(&filter);
            let sql = page_sql(&filter, &mut f, COLUMNS);
            let steps = plan_on_new_database(&sql, params_from_iter(f.values.iter()));

            assert_seeks_one_job(&sql, &steps, seek);
            for index in indexes {
                assert!(steps.iter().any(|s| s.contains(index)), "{sql}: {steps:?}");
            }
            // Both indexes merged as they come, each sorting only an instant's entries by id
            // (an unmerged union would sort the job's whole history for a page).
            assert!(
                !steps.iter().any(|s| s.contains("TEMP B-TREE FOR ORDER BY")),
                "{sql}: {steps:?}"
            );

            // A page after an offset walks the index alone, in its order: no row read, no
            // sort of what it skips.
            let mut f = filters(&filter);
            page_sql(&filter, &mut f, "id");
            let n = f.values.len();
            let walk = format!(
                "{} LIMIT ?{} OFFSET ?{}",
                job_walk_sql(source(&filter), &f.where_sql()),
                n + 1,
                n + 2
            );
            let mut values = f.values;
            values.extend([100.into(), 90_000.into()]);
            let steps = plan_on_new_database(&walk, params_from_iter(values.iter()));
            assert_seeks_one_job(&walk, &steps, seek);
            let reads: Vec<&String> = steps.iter().filter(|s| s.contains(" entries ")).collect();
            assert!(
                steps.iter().all(|s| !s.contains("TEMP B-TREE"))
                    && reads.len() == indexes.len()
                    && reads.iter().all(|s| s.contains("COVERING INDEX")),
                "the skipped entries are read or sorted: {walk}: {steps:?}"
            );
        }
    }

    #[test]
    fn a_jobs_pages_after_any_offset_are_those_of_the_listings_order_across_tied_instants() {
        let (_dir, db) = migrated();
        let conn = db.conn().unwrap();
        conn.execute_batch(crate::db::testing::INSERT_JOB).unwrap();
        conn.execute_batch(crate::db::testing::INSERT_JOB).unwrap();
        let instant = |i: i64| 1_000_000 * (10 + i);
        // 12 instants holding 1 to 5 entries each, written in an order that is neither the
        // index's (status, hash) nor the reverse: ids and statuses cross at every instant.
        let statuses = [
            EntryStatus::Success,
            EntryStatus::Failed,
            EntryStatus::Log,
            EntryStatus::Missing,
            EntryStatus::Started,
        ];
        let mut written = 0;
        for round in 0..5_i64 {
            for i in 0..12_i64 {
                if (i * 7 + round * 3) % 5 > (i % 4) + 1 {
                    continue;
                }
                let status = statuses[usize::try_from((i + round * 2) % 5).unwrap()];
                let new = NewEntry {
                    status,
                    backup_hash: Some(format!("h{}", (round * 5 + i) % 3)),
                    ..NewEntry::missing(1, from_micros(instant(11 - i)))
                };
                written += usize::from(insert(&conn, &new, from_micros(0)).unwrap().1);
                // Another job's entries at the same instants.
                insert(
                    &conn,
                    &NewEntry::missing(2, from_micros(instant(i))),
                    from_micros(0),
                )
                .unwrap();
            }
        }
        assert!(written > 30, "{written}");
        let ids = |filter: &EntryFilter, skip: i64, limit: i64| -> Vec<i64> {
            let mut f = filters(filter);
            let select = page_sql(filter, &mut f, "id");
            super::super::page(&conn, &select, f, skip, limit, |r| r.get(0)).unwrap()
        };
        let job = EntryFilter {
            job_id: Some(1),
            ..EntryFilter::default()
        };
        let (newest, _) = list(&conn, &job, 0, 1).unwrap();
        let position = newest
            .first()
            .map(|e| (to_micros(e.backup_timestamp_utc), e.id));
        let variants = [
            job.clone(),
            EntryFilter {
                status: Some(EntryStatus::Success),
                ..job.clone()
            },
            EntryFilter {
                since: Some(from_micros(instant(3))),
                until: Some(from_micros(instant(9))),
                ..job.clone()
            },
            EntryFilter {
                before: position,
                ..job.clone()
            },
            EntryFilter {
                before: Some((instant(6), 30)),
                ..job.clone()
            },
        ];

        let mut pages = 0;
        for filter in &variants {
            let all = ids(filter, 0, 1_000);
            for skip in 1..=i64::try_from(all.len()).unwrap() + 1 {
                for limit in [1, 2, 3, 4, 5, 7, 100] {
                    let (page, _) = list(&conn, filter, skip, limit).unwrap();
                    let got: Vec<i64> = page.iter().map(|e| e.id).collect();
                    assert_eq!(
                        got,
                        ids(filter, skip, limit),
                        "{filter:?}, skip {skip}, limit {limit}"
                    );
                    pages += 1;
                }
            }
        }
        assert!(pages > 500, "{pages}");
    }
}
