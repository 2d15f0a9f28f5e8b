//! What can go wrong below the service layer: the database was busy, its disk is full or
//! failing, a query failed, or the connection or writer thread could not be reached. Knows
//! nothing of HTTP.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Another writer held the lock past the busy timeout, or no connection was free: the
    /// caller may try again shortly.
    #[error("the database is busy")]
    Busy,
    /// Nothing could be written: the disk is full, or failing.
    #[error("{0}")]
    Storage(StorageFault),
    #[error("database query failed")]
    Query(#[source] rusqlite::Error),
    /// The writer thread has stopped, or is stuck: no write can be stored until the service
    /// is restarted (the health check says so, and the systemd watchdog restarts it).
    #[error("{0}")]
    WriterDown(String),
    /// A write's code panicked; its changes were rolled back.
    #[error("a write failed unexpectedly and was rolled back")]
    WritePanicked,
    /// The blocking task is gone.
    #[error("{0}")]
    Unavailable(String),
}

/// Why the disk refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFault {
    /// SQLITE_FULL: no space left on the database's disk (or its quota).
    Full,
    /// SQLITE_IOERR: the disk failed to read or write.
    Io,
}

impl fmt::Display for StorageFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageFault::Full => "the database's disk is full",
            StorageFault::Io => "the database's disk failed to read or write (I/O error)",
        })
    }
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

    /// The storage fault behind SQLite's error, if that is what it is.
    pub fn storage_fault(e: &rusqlite::Error) -> Option<StorageFault> {
        match e {
            rusqlite::Error::SqliteFailure(f, _) => match f.code {
                rusqlite::ErrorCode::DiskFull => Some(StorageFault::Full),
                rusqlite::ErrorCode::SystemIoFailure => Some(StorageFault::Io),
                _ => None,
            },
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        if DbError::is_busy(&e) {
            DbError::Busy
        } else if let Some(fault) = DbError::storage_fault(&e) {
            tracing::error!(error = %e, "{fault}: nothing can be written");
            DbError::Storage(fault)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn a_full_or_failing_disk_is_a_storage_fault_and_a_lock_is_busy() {
        let cases = [
            (rusqlite::ffi::SQLITE_FULL, "Storage(Full)"),
            (rusqlite::ffi::SQLITE_IOERR, "Storage(Io)"),
            (rusqlite::ffi::SQLITE_IOERR_WRITE, "Storage(Io)"),
            (rusqlite::ffi::SQLITE_IOERR_FSYNC, "Storage(Io)"),
            (rusqlite::ffi::SQLITE_BUSY, "Busy"),
            (rusqlite::ffi::SQLITE_LOCKED, "Busy"),
        ];
        for (code, expected) in cases {
            assert_eq!(
                format!("{:?}", DbError::from(sqlite(code))),
                expected,
                "{code}"
            );
        }
        assert!(matches!(
            DbError::from(sqlite(rusqlite::ffi::SQLITE_CONSTRAINT)),
            DbError::Query(_)
        ));
    }
}
