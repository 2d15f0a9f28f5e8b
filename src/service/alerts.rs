//! The alert outbox as people read it.

use rusqlite::Connection;

use super::ServiceError;
use crate::db::alerts;
use crate::domain::alert::Alert;
use crate::domain::auth::Principal;

/// A page of alerts, newest first, and the total; an agent token sees its own jobs' only.
pub fn list(
    conn: &Connection,
    caller: &Principal,
    skip: i64,
    limit: i64,
) -> Result<(Vec<Alert>, i64), ServiceError> {
    Ok(alerts::list(conn, caller.agent(), skip, limit)?)
}
