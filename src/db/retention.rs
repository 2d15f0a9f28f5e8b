//! The queries of retention (DESIGN §14): what each job must keep, the old entries and
//! alerts a chunk at a time in a stable order, and deleting them. What may go is decided by
//! `service::retention`; this module only reads and deletes.
//!
//! The entries' counters (`entry_counts`) follow every delete through the table's trigger,
//! and an alert that pointed at a deleted entry keeps its row with `entry_id` set to NULL
//! (the foreign key's `ON DELETE SET NULL`, looked up through `alerts_entry`).

use std::collections::HashMap;

use rusqlite::{params, Connection};

/// An entry older than the cutoff, as retention weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldEntry {
    pub id: i64,
    pub job_id: i64,
    pub status: String,
    pub backup_timestamp_us: i64,
}

/// An alert created before the cutoff, and whether the same job has a newer alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldAlert {
    pub id: i64,
    pub superseded: bool,
}

/// [`latest_by_job`]'s query: `?1` status (not `missing`: `entries_identical` holds every
/// other), `?2` now.
const LATEST_BY_JOB: &str = "SELECT id, (SELECT backup_timestamp_us FROM entries \
     INDEXED BY entries_identical WHERE job_id = jobs.id AND backup_timestamp_us <= ?2 \
     AND status = ?1 AND status <> 'missing' ORDER BY backup_timestamp_us DESC LIMIT 1) \
     FROM jobs";

/// For each job that has one, when its latest entry of `status` dated no later than `now_us`
/// ran, found by walking each job's entries back from `now_us` (`entries_identical`): cheap
/// for a status most entries have (`success`), since the walk stops at the first one.
pub fn latest_by_job(
    conn: &Connection,
    status: &str,
    now_us: i64,
) -> rusqlite::Result<HashMap<i64, i64>> {
    let mut stmt = conn.prepare(LATEST_BY_JOB)?;
    let rows = stmt.query_map(params![status, now_us], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, Option<i64>>(1)?))
    })?;
    let mut latest = HashMap::new();
    for row in rows {
        if let (job, Some(at)) = row? {
            latest.insert(job, at);
        }
    }
    Ok(latest)
}

/// For each job that has one, when its latest entry of `status` dated no later than `now_us`
/// ran, found by reading that status's entries only (`entries_status_time`): cheap for a
/// rare status (`failed`), where walking each job back could cross its whole history.
pub fn latest_by_status(
    conn: &Connection,
    status: &str,
    now_us: i64,
) -> rusqlite::Result<HashMap<i64, i64>> {
    let mut stmt = conn.prepare(
        "SELECT job_id, backup_timestamp_us FROM entries \
         WHERE status = ?1 AND backup_timestamp_us <= ?2",
    )?;
    let rows = stmt.query_map(params![status, now_us], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
    })?;
    let mut latest: HashMap<i64, i64> = HashMap::new();
    for row in rows {
        let (job, at) = row?;
        latest
            .entry(job)
            .and_modify(|t| *t = (*t).max(at))
            .or_insert(at);
    }
    Ok(latest)
}

/// Up to `limit` entries dated before `cutoff_us`, after `after` (a `(backup_timestamp_us,
/// id)` position) in that order, oldest first.
pub fn old_entries(
    conn: &Connection,
    cutoff_us: i64,
    after: (i64, i64),
    limit: usize,
) -> rusqlite::Result<Vec<OldEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, job_id, status, backup_timestamp_us FROM entries \
         WHERE backup_timestamp_us < ?1 AND (backup_timestamp_us, id) > (?2, ?3) \
         ORDER BY backup_timestamp_us, id LIMIT ?4",
    )?;
    let rows = stmt.query_map(
        params![
            cutoff_us,
            after.0,
            after.1,
            i64::try_from(limit).unwrap_or(i64::MAX)
        ],
        |r| {
            Ok(OldEntry {
                id: r.get(0)?,
                job_id: r.get(1)?,
                status: r.get(2)?,
                backup_timestamp_us: r.get(3)?,
            })
        },
    )?;
    rows.collect()
}

pub fn delete_entry(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    super::cached_execute(conn, "DELETE FROM entries WHERE id = ?1", [id])
}

/// Up to `limit` alerts created before `cutoff_us` with an id above `after`, by id.
pub fn old_alerts(
    conn: &Connection,
    cutoff_us: i64,
    after: i64,
    limit: usize,
) -> rusqlite::Result<Vec<OldAlert>> {
    let mut stmt = conn.prepare_cached(
        "SELECT a.id, EXISTS (SELECT 1 FROM alerts b WHERE b.job_id IS a.job_id \
         AND b.agent_id IS a.agent_id AND b.id > a.id) \
         FROM alerts a WHERE a.id > ?2 AND a.created_at_us < ?1 ORDER BY a.id LIMIT ?3",
    )?;
    let rows = stmt.query_map(
        params![cutoff_us, after, i64::try_from(limit).unwrap_or(i64::MAX)],
        |r| {
            Ok(OldAlert {
                id: r.get(0)?,
                superseded: r.get(1)?,
            })
        },
    )?;
    rows.collect()
}

pub fn delete_alert(conn: &Connection, id: i64) -> rusqlite::Result<usize> {
    super::cached_execute(conn, "DELETE FROM alerts WHERE id = ?1", [id])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::db::testing::{assert_seeks_one_job, plan_on_new_database};

    #[test]
    fn the_latest_by_job_seeks_each_jobs_entries_by_time() {
        let steps = plan_on_new_database(LATEST_BY_JOB, params!["success", 0]);

        assert_seeks_one_job(LATEST_BY_JOB, &steps, "backup_timestamp_us<?");
    }
}
