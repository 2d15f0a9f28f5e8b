//! Queries on the `entries` table.

use chrono::{DateTime, Utc};
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use super::Filters;
use crate::domain::entry::{Entry, EntryStatus, NewEntry};
use crate::domain::time::{from_micros, to_micros};

pub(crate) const COLUMNS: &str =
    "id, job_id, status, backup_timestamp_us, backup_hash, backup_size_bytes, \
    error_message, created_at_us";

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
    })
}

/// Stores a report unless an identical one (same job, timestamp, status and hash) exists.
/// Returns the entry and whether it was created now. The job must exist.
pub fn insert(
    conn: &Connection,
    new: &NewEntry,
    now: DateTime<Utc>,
) -> rusqlite::Result<(Entry, bool)> {
    let inserted = super::cached_row(
        conn,
        &format!(
            "INSERT INTO entries (job_id, status, backup_timestamp_us, backup_hash, \
                 backup_size_bytes, error_message, created_at_us) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
        ),
        params![
            new.expected_job_id,
            new.status.as_str(),
            to_micros(new.backup_timestamp_utc),
            new.backup_hash,
            new.backup_size_bytes,
            new.error_message,
            to_micros(now),
        ],
        from_row,
    )
    .optional()?;
    if let Some(entry) = inserted {
        return Ok((entry, true));
    }
    let existing = super::cached_row(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM entries WHERE job_id = ?1 AND backup_timestamp_us = ?2 \
             AND status = ?3 AND ifnull(backup_hash, '') = ifnull(?4, '')"
        ),
        params![
            new.expected_job_id,
            to_micros(new.backup_timestamp_utc),
            new.status.as_str(),
            new.backup_hash,
        ],
        from_row,
    )?;
    Ok((existing, false))
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

/// The count after filters: from the per-job counters when no time bound is given
/// (cheap at any size), else by counting the index range.
fn total(conn: &Connection, filter: &EntryFilter, f: &Filters) -> rusqlite::Result<i64> {
    if filter.since.is_some() || filter.until.is_some() {
        return conn.query_row(
            &format!("SELECT count(*) FROM entries {}", f.where_sql()),
            params_from_iter(f.values.iter()),
            |r| r.get(0),
        );
    }
    let mut c = Filters::new();
    if let Some(v) = filter.job_id {
        c.add("job_id", "=", v);
    }
    if let Some(v) = filter.status {
        c.add("status", "=", v.as_str().to_owned());
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
    let mut f = Filters::new();
    if let Some(v) = filter.job_id {
        f.add("job_id", "=", v);
    }
    if let Some(v) = filter.status {
        f.add("status", "=", v.as_str().to_owned());
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
    let total = total(conn, filter, &f)?;
    if let Some((ts, id)) = filter.before {
        f.add_sql_pair("(backup_timestamp_us, id) < ({}, {})", ts, id);
    }
    let where_sql = f.where_sql();
    let entries = super::page(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM entries {where_sql} \
             ORDER BY backup_timestamp_us DESC, id DESC"
        ),
        f,
        skip,
        limit,
        from_row,
    )?;
    Ok((entries, total))
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
