//! Queries on the `tokens` table.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::auth::Role;
use crate::domain::time::{self, from_micros, to_micros};

/// A token as `token list` and `GET /api/v1/tokens` show it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    /// The agent an agent token is confined to; null for the other roles.
    #[schema(required = true)]
    pub agent_id: Option<String>,
    #[serde(serialize_with = "time::serialize")]
    pub created_at: DateTime<Utc>,
    /// When it stopped working; null while it works.
    #[serde(serialize_with = "time::serialize_opt")]
    #[schema(required = true)]
    pub revoked_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, name, role, agent_id, created_at_us, revoked_at_us";

fn from_row(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    let role: String = row.get(2)?;
    Ok(TokenInfo {
        id: row.get(0)?,
        name: row.get(1)?,
        role: Role::parse(&role).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                2,
                rusqlite::types::Type::Text,
                format!("unknown role {role:?}").into(),
            )
        })?,
        agent_id: row.get(3)?,
        created_at: from_micros(row.get(4)?),
        revoked_at: row.get::<_, Option<i64>>(5)?.map(from_micros),
    })
}

pub fn insert(
    conn: &Connection,
    name: &str,
    role: Role,
    agent_id: Option<&str>,
    secret_sha256: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<TokenInfo> {
    conn.query_row(
        &format!(
            "INSERT INTO tokens (name, role, agent_id, secret_sha256, created_at_us) \
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING {COLUMNS}"
        ),
        params![name, role.as_str(), agent_id, secret_sha256, to_micros(now)],
        from_row,
    )
}

/// The live (not revoked) token whose secret hashes to `secret_sha256`.
pub fn find_active(conn: &Connection, secret_sha256: &str) -> rusqlite::Result<Option<TokenInfo>> {
    super::cached_row(
        conn,
        &format!("SELECT {COLUMNS} FROM tokens WHERE secret_sha256 = ?1 AND revoked_at_us IS NULL"),
        [secret_sha256],
        from_row,
    )
    .optional()
}

pub fn list(conn: &Connection) -> rusqlite::Result<Vec<TokenInfo>> {
    let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM tokens ORDER BY id"))?;
    let rows = stmt.query_map([], from_row)?;
    rows.collect()
}

pub fn count_active_admins(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row(
        "SELECT count(*) FROM tokens WHERE revoked_at_us IS NULL AND role = 'admin'",
        [],
        |r| r.get(0),
    )
}

/// Revokes a live token; None if there is no such live token.
pub fn revoke(
    conn: &Connection,
    id: i64,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<TokenInfo>> {
    conn.query_row(
        &format!(
            "UPDATE tokens SET revoked_at_us = ?2 WHERE id = ?1 AND revoked_at_us IS NULL \
             RETURNING {COLUMNS}"
        ),
        params![id, to_micros(now)],
        from_row,
    )
    .optional()
}
