//! The morning digest (DESIGN §13): what it says today, and which day is due to be sent.

use chrono::{DateTime, Timelike, Utc};
use rusqlite::Connection;

use super::status::{all, StatusFilter};
use crate::db::digest as store;
use crate::domain::digest::{Digest, DigestJob};
use crate::domain::entry::EntryStatus;
use crate::domain::status::JobState;
use crate::domain::zone::Zone;

/// Today's digest at `now`.
pub fn today(conn: &Connection, now: DateTime<Utc>) -> rusqlite::Result<Digest> {
    let jobs: Vec<DigestJob> = all(conn, &StatusFilter::default(), now)?
        .into_iter()
        .map(|s| DigestJob {
            reason: match s.state {
                JobState::Suspect => s.suspect_reason.clone(),
                JobState::Failed => s
                    .last_entry
                    .as_ref()
                    .filter(|e| e.status == EntryStatus::Failed)
                    .and_then(|e| e.error_message.clone()),
                _ => None,
            },
            job_id: s.job_id,
            company_name: s.company_name,
            city: s.city,
            database_name: s.database_name,
            state: s.state,
            last_success: s.last_success_utc,
        })
        .collect();
    Ok(Digest::of(&jobs, now))
}

/// The local day (`YYYY-MM-DD` in `zone`) whose digest is due at `now`: today's, once the
/// wall clock has reached `at`; None before.
pub fn due_day(now: DateTime<Utc>, (hour, minute): (u32, u32), zone: Zone) -> Option<String> {
    let wall = zone.wall_time(now)?;
    (wall.hour() * 60 + wall.minute() >= hour * 60 + minute)
        .then(|| wall.format("%Y-%m-%d").to_string())
}

/// Claims the digest of `day`: true when it has not been sent (or claimed) yet. Returns
/// the day claimed before, to give it back if the sending fails.
pub fn claim(conn: &Connection, day: &str) -> rusqlite::Result<Option<Option<String>>> {
    let previous = store::last_day(conn)?;
    Ok(store::claim(conn, day)?.then_some(previous))
}

/// Gives the day back after a failed sending, so that the next round tries again.
pub fn release(conn: &Connection, day: &str, previous: Option<&str>) -> rusqlite::Result<()> {
    store::release(conn, day, previous)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_is_due_from_its_local_time_on() {
        let paris = Zone::parse("Europe/Paris").unwrap();
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(due_day(at("2026-11-30T05:59:00Z"), (7, 0), paris), None);
        assert_eq!(
            due_day(at("2026-11-30T06:00:00Z"), (7, 0), paris),
            Some("2026-11-30".to_owned())
        );
        assert_eq!(
            due_day(at("2026-11-30T23:30:00Z"), (7, 0), paris),
            None,
            "00:30 on 1 December in Paris: that day's digest is not due yet"
        );
        assert_eq!(
            due_day(at("2026-12-01T06:00:00Z"), (7, 0), paris),
            Some("2026-12-01".to_owned())
        );
    }

    #[test]
    fn a_day_is_claimed_once() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE installation (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .unwrap();
        assert_eq!(claim(&conn, "2026-11-30").unwrap(), Some(None));
        assert_eq!(
            claim(&conn, "2026-11-30").unwrap(),
            None,
            "a restart does not send twice"
        );
        assert_eq!(
            claim(&conn, "2026-12-01").unwrap(),
            Some(Some("2026-11-30".to_owned()))
        );
        release(&conn, "2026-12-01", Some("2026-11-30")).unwrap();
        assert_eq!(
            claim(&conn, "2026-12-01").unwrap(),
            Some(Some("2026-11-30".to_owned())),
            "after a failure, tried again"
        );
    }
}
