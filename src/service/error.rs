//! The error of every use case, and the field-level reasons a value was refused (in
//! pydantic's shape, so the API can answer them as FastAPI did and the CLI can name them).

use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{DbError, StorageFault};

/// One step of an error's location: a name (`"body"`, `"limit"`) or an index in an array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LocItem {
    Name(String),
    Index(usize),
}

impl From<&str> for LocItem {
    fn from(s: &str) -> Self {
        LocItem::Name(s.to_owned())
    }
}

impl From<usize> for LocItem {
    fn from(i: usize) -> Self {
        LocItem::Index(i)
    }
}

/// One reason a value was refused, as pydantic reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub loc: Vec<LocItem>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    pub fn new(loc: Vec<LocItem>, kind: &str, msg: impl Into<String>) -> Self {
        Self {
            loc,
            msg: msg.into(),
            kind: kind.to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    NotFound(String),
    /// The input breaks a rule; each item names the field.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    Forbidden(String),
    /// Valid by itself, but not together with what is stored.
    #[error("{0}")]
    Conflict(String),
    /// The database is busy: try again shortly.
    #[error("the database is busy")]
    Busy,
    /// Nothing could be written: the disk is full or failing.
    #[error("{0}")]
    Storage(StorageFault),
    /// Nothing can be written until the service is restarted (its writer is down).
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ServiceError {
    pub fn job_not_found() -> Self {
        ServiceError::NotFound("Job not found".to_owned())
    }

    pub fn invalid(loc: Vec<LocItem>, kind: &str, msg: impl Into<String>) -> Self {
        ServiceError::Invalid(vec![FieldError::new(loc, kind, msg)])
    }
}

impl From<DbError> for ServiceError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Busy => ServiceError::Busy,
            DbError::Storage(fault) => ServiceError::Storage(fault),
            DbError::WriterDown(reason) => ServiceError::Unavailable(reason),
            other => ServiceError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<rusqlite::Error> for ServiceError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::from(e).into()
    }
}
