//! Whether the service can do its job: its database answers, its writer runs, and, after
//! the disk refused a commit, the disk takes a write again. Never "ok" while every report
//! would be refused.

use super::ServiceError;
use crate::db::writer::Writer;
use crate::db::{Db, DbError};

pub async fn check(db: &Db, writer: &Writer) -> Result<(), ServiceError> {
    db.live(writer).await?;
    if writer.storage_fault().is_some() {
        // One small write through the writer, like a report's: it clears the fault when
        // it commits, so that the check turns green by itself once space is freed.
        writer
            .write(|conn| Db::probe_write(conn).map_err(DbError::from))
            .await?;
    }
    Ok(())
}
