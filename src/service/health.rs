//! Whether the service can do its job: its database answers, its writer runs, and, after
//! the disk refused a commit, the disk has room and takes a write again. Never "ok" while
//! every report would be refused.

use super::ServiceError;
use crate::db::writer::Writer;
use crate::db::{Db, DbError, StorageFault};

/// After the disk refused a commit, the service is not called healthy again while less than
/// this is free on the database's file system. The probe below writes one small row, which
/// can still fit in the write-ahead log's pages while a report's group, which touches more
/// pages, does not: on a nearly full disk the probe alone turns green while reports are
/// refused.
pub const FREE_SPACE_FLOOR: u64 = 1024 * 1024;

pub async fn check(db: &Db, writer: &Writer) -> Result<(), ServiceError> {
    db.live(writer).await?;
    if writer.storage_fault().is_some() {
        if db
            .free_bytes()
            .await
            .is_some_and(|free| free < FREE_SPACE_FLOOR)
        {
            return Err(DbError::Storage(StorageFault::Full).into());
        }
        // One small write through the writer, like a report's: it clears the fault when
        // it commits, so that the check turns green by itself once space is freed.
        writer
            .write(|conn| Db::probe_write(conn).map_err(DbError::from))
            .await?;
    }
    Ok(())
}
