//! The use cases, one module each: plain functions over a connection and `now`, used alike
//! by the HTTP handlers, the scheduler, the alert delivery, `check` and the CLI commands.
//! They answer with [`ServiceError`], which knows nothing of HTTP; `api` maps it to status
//! codes at its edge.

pub mod access;
pub mod alerts;
pub mod companies;
mod error;
pub mod health;
pub mod input;
pub mod jobs;
pub mod pings;
pub mod reminders;
pub mod reports;
pub mod retention;
pub mod status;
pub mod tick;
pub mod tokens;

pub use error::{FieldError, LocItem, ServiceError};
