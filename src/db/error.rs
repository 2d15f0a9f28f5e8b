//! What can go wrong below the service layer: the database was busy, a query failed, or the
//! connection or writer thread could not be reached. Knows nothing of HTTP.

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Another writer held the lock past the busy timeout, or no connection was free: the
    /// caller may try again shortly.
    #[error("the database is busy")]
    Busy,
    #[error("database query failed")]
    Query(#[source] rusqlite::Error),
    /// The blocking task or the writer thread is gone.
    #[error("{0}")]
    Unavailable(String),
}

impl DbError {
    /// Whether the error is SQLite's "busy" or "locked".
    pub fn is_busy(e: &rusqlite::Error) -> bool {
        matches!(
            e,
            rusqlite::Error::SqliteFailure(f, _)
                if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        if DbError::is_busy(&e) {
            DbError::Busy
        } else {
            DbError::Query(e)
        }
    }
}

impl From<r2d2::Error> for DbError {
    fn from(e: r2d2::Error) -> Self {
        tracing::warn!(error = %e, "no database connection available");
        DbError::Busy
    }
}
