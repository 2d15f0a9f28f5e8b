//! Queries on the `alerts` table: the outbox that makes alerts survive outages and restarts.
//! Their delivery through each channel is in `deliveries`.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::domain::alert::{Alert, AlertKind};
use crate::domain::time::{from_micros, to_micros};

const COLUMNS: &str =
    "id, job_id, kind, slot_us, created_at_us, attempts, sent_at_us, last_error, entry_id, agent_id, \
    suppressed";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Alert> {
    let kind: String = row.get(2)?;
    Ok(Alert {
        id: row.get(0)?,
        job_id: row.get(1)?,
        kind: AlertKind::parse(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown alert kind {kind:?}").into(),
            )
        })?,
        slot_utc: from_micros(row.get(3)?),
        created_at: from_micros(row.get(4)?),
        attempts: row.get(5)?,
        sent_at: row.get::<_, Option<i64>>(6)?.map(from_micros),
        last_error: row.get(7)?,
        entry_id: row.get(8)?,
        agent_id: row.get(9)?,
        suppressed: row.get(10)?,
        deliveries: Vec::new(),
    })
}

/// Queues an alert unless one of the same kind exists for the job and slot. Returns it if
/// it is new.
pub fn queue(
    conn: &Connection,
    job_id: i64,
    kind: AlertKind,
    slot: DateTime<Utc>,
    entry_id: Option<i64>,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<Alert>> {
    super::cached_row(
        conn,
        &format!(
            "INSERT INTO alerts (job_id, kind, slot_us, entry_id, created_at_us, next_attempt_us, \
             suppressed) VALUES (?1, ?2, ?3, ?4, ?5, ?5, \
             (SELECT ifnull(snoozed_until_us, 0) > ?5 FROM jobs WHERE id = ?1)) \
             ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
        ),
        params![
            job_id,
            kind.as_str(),
            to_micros(slot),
            entry_id,
            to_micros(now)
        ],
        from_row,
    )
    .optional()
}

/// Whether every active job of agent `?1` is snoozed past `?4`: through `jobs_agent`
/// (`+is_active`: on the bare equality SQLite chose the `is_active` index and read every
/// active job, 75 ms at 100,000 jobs, for each agent an all-due tick found silent).
const AGENT_ALL_SNOOZED: &str = "SELECT count(*) > 0 AND min(ifnull(snoozed_until_us, 0)) > ?4 \
     FROM jobs WHERE agent_id_responsible = ?1 AND +is_active = 1";

/// Queues an alert about an agent (`agent_silent`, `agent_back`) unless one of the same
/// kind exists for the agent and slot. Returns it if it is new. It is suppressed when
/// `suppress` says so or every active job of the agent is snoozed.
pub fn queue_for_agent(
    conn: &Connection,
    agent_id: &str,
    kind: AlertKind,
    slot: DateTime<Utc>,
    suppress: bool,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<Alert>> {
    super::cached_row(
        conn,
        &format!(
            "INSERT INTO alerts (agent_id, kind, slot_us, created_at_us, next_attempt_us, \
             suppressed) VALUES (?1, ?2, ?3, ?4, ?4, ?5 OR \
             ({AGENT_ALL_SNOOZED})) \
             ON CONFLICT DO NOTHING RETURNING {COLUMNS}"
        ),
        params![
            agent_id,
            kind.as_str(),
            to_micros(slot),
            to_micros(now),
            suppress
        ],
        from_row,
    )
    .optional()
}

/// Records that an agent alert speaks for `job_id`'s late `slot` (its `missing` entry).
pub fn add_job(
    conn: &Connection,
    alert_id: i64,
    job_id: i64,
    slot: DateTime<Utc>,
    entry_id: Option<i64>,
) -> rusqlite::Result<()> {
    super::cached_execute(
        conn,
        "INSERT INTO alert_jobs (alert_id, job_id, slot_us, entry_id) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT DO NOTHING",
        params![alert_id, job_id, to_micros(slot), entry_id],
    )
    .map(|_| ())
}

/// The jobs and late slots an agent alert speaks for, by job then slot.
pub fn jobs_of(conn: &Connection, alert_id: i64) -> rusqlite::Result<Vec<(i64, DateTime<Utc>)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT job_id, slot_us FROM alert_jobs WHERE alert_id = ?1 ORDER BY job_id, slot_us",
    )?;
    let rows = stmt.query_map([alert_id], |r| Ok((r.get(0)?, from_micros(r.get(1)?))))?;
    rows.collect()
}

/// The agent's `agent_silent` alert that no `agent_back` has answered yet, if any.
pub fn open_agent_silent(conn: &Connection, agent_id: &str) -> rusqlite::Result<Option<Alert>> {
    super::cached_row(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM alerts WHERE agent_id = ?1 AND kind = 'agent_silent' \
             AND id > ifnull((SELECT max(id) FROM alerts WHERE agent_id = ?1 AND kind = 'agent_back'), 0) \
             ORDER BY id DESC LIMIT 1"
        ),
        [agent_id],
        from_row,
    )
    .optional()
}

/// Each job's latest `late`, `failed`, `suspect` or `hung` alert that no `recovered` has
/// answered, not suppressed; of every job (`all`) or only of those with a
/// `repeat_every_minutes` of their own.
pub fn open_problems(conn: &Connection, all: bool) -> rusqlite::Result<Vec<Alert>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM alerts a WHERE a.job_id IS NOT NULL \
         AND a.kind IN ('late', 'failed', 'suspect', 'hung') AND a.suppressed = 0 \
         AND (?1 OR a.job_id IN (SELECT id FROM jobs WHERE repeat_every_minutes IS NOT NULL)) \
         AND a.id = (SELECT max(b.id) FROM alerts b WHERE b.job_id = a.job_id \
             AND b.kind IN ('late', 'failed', 'suspect', 'hung', 'recovered'))"
    ))?;
    let rows = stmt.query_map([all], from_row)?;
    rows.collect()
}

/// The slot of the job's latest `reminder` queued after alert `after`, if any.
pub fn last_reminder_after(
    conn: &Connection,
    job_id: i64,
    after: i64,
) -> rusqlite::Result<Option<DateTime<Utc>>> {
    super::cached_row(
        conn,
        "SELECT max(slot_us) FROM alerts WHERE job_id = ?1 AND kind = 'reminder' AND id > ?2",
        params![job_id, after],
        |r| r.get::<_, Option<i64>>(0),
    )
    .map(|us| us.map(from_micros))
}

/// The slot of the job's latest `late`, `failed`, `suspect` or `hung` alert that no
/// `recovered` alert has answered yet, if any.
pub fn open_problem(conn: &Connection, job_id: i64) -> rusqlite::Result<Option<DateTime<Utc>>> {
    super::cached_row(
        conn,
        "SELECT slot_us FROM alerts WHERE job_id = ?1 AND kind IN ('late', 'failed', 'suspect', 'hung') \
         AND suppressed = 0 \
         AND id > ifnull((SELECT max(id) FROM alerts WHERE job_id = ?1 AND kind = 'recovered'), 0) \
         ORDER BY id DESC LIMIT 1",
        [job_id],
        |r| r.get::<_, i64>(0),
    )
    .optional()
    .map(|slot| slot.map(from_micros))
}

/// One alert, if it exists.
pub fn get(conn: &Connection, id: i64) -> rusqlite::Result<Option<Alert>> {
    super::cached_row(
        conn,
        &format!("SELECT {COLUMNS} FROM alerts WHERE id = ?1"),
        [id],
        from_row,
    )
    .optional()
}

/// One page of the outbox, newest first, and the total; only `agent`'s (its jobs' and its
/// own) if given.
pub fn list(
    conn: &Connection,
    agent: Option<&str>,
    skip: i64,
    limit: i64,
) -> rusqlite::Result<(Vec<Alert>, i64)> {
    let filter = "WHERE ?1 IS NULL OR agent_id = ?1 \
        OR job_id IN (SELECT id FROM jobs WHERE agent_id_responsible = ?1)";
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM alerts {filter}"),
        [agent],
        |r| r.get(0),
    )?;
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM alerts {filter} ORDER BY id DESC LIMIT ?2 OFFSET ?3"
    ))?;
    let alerts = stmt
        .query_map(params![agent, limit, skip], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok((alerts, total))
}

/// Alerts not delivered yet: not routed to their channels yet, or with a delivery still to
/// try.
pub fn pending_count(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT (SELECT count(*) FROM alerts WHERE routed_at_us IS NULL AND suppressed = 0) \
         + (SELECT count(DISTINCT alert_id) FROM deliveries WHERE next_attempt_us IS NOT NULL)",
        [],
        |r| r.get(0),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn whether_an_agents_jobs_are_all_snoozed_is_read_through_its_jobs_only() {
        let (_dir, db) = crate::db::testing::migrated();
        let conn = db.conn().unwrap();

        let steps =
            crate::db::testing::query_plan(&conn, AGENT_ALL_SNOOZED, params!["agent", 0, 0, 0]);

        assert!(steps.iter().any(|s| s.contains("jobs_agent")), "{steps:?}");
    }
}
