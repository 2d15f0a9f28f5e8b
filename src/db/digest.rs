//! The digest's day: which local day's digest was sent (the `installation` table), so that
//! a restart never sends one twice.

use rusqlite::{params, Connection};

const KEY: &str = "digest_last_day";

/// Claims `day` (`YYYY-MM-DD`) for the digest: true when no digest of that day (or a later
/// one) was claimed before. One statement, so two processes never both win.
pub fn claim(conn: &Connection, day: &str) -> rusqlite::Result<bool> {
    let changed = conn.execute(
        "INSERT INTO installation (key, value) VALUES (?1, ?2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE value < excluded.value",
        params![KEY, day],
    )?;
    Ok(changed == 1)
}

/// Gives `day` back (its digest could not be sent), so that the next try claims it again.
pub fn release(conn: &Connection, day: &str, previous: Option<&str>) -> rusqlite::Result<()> {
    match previous {
        Some(before) => conn.execute(
            "UPDATE installation SET value = ?3 WHERE key = ?1 AND value = ?2",
            params![KEY, day, before],
        )?,
        None => conn.execute(
            "DELETE FROM installation WHERE key = ?1 AND value = ?2",
            params![KEY, day],
        )?,
    };
    Ok(())
}

/// The last day claimed, if any.
pub fn last_day(conn: &Connection) -> rusqlite::Result<Option<String>> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT value FROM installation WHERE key = ?1",
        [KEY],
        |r| r.get(0),
    )
    .optional()
}
