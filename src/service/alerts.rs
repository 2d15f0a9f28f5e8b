//! The alert outbox as people read it: each alert with its delivery through each channel.

use rusqlite::Connection;

use super::ServiceError;
use crate::db::{alerts, deliveries};
use crate::domain::alert::Alert;
use crate::domain::auth::Principal;

/// A page of alerts, newest first, each with its deliveries, and the total; an agent token
/// sees its own jobs' only.
pub fn list(
    conn: &Connection,
    caller: &Principal,
    skip: i64,
    limit: i64,
) -> Result<(Vec<Alert>, i64), ServiceError> {
    let (mut page, total) = alerts::list(conn, caller.agent(), skip, limit)?;
    let ids: Vec<i64> = page.iter().map(|a| a.id).collect();
    let mut by_alert = deliveries::of_alerts(conn, &ids)?;
    for alert in &mut page {
        alert.deliveries = by_alert.remove(&alert.id).unwrap_or_default();
    }
    Ok((page, total))
}
