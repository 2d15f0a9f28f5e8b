//! Who may reach which job: an agent token only its own agent's jobs.

use rusqlite::Connection;

use super::ServiceError;
use crate::db::jobs;
use crate::domain::auth::Principal;
use crate::domain::job::Job;

/// The job `id` if it exists (else not found) and `principal` may reach it (else forbidden).
pub fn job_for(conn: &Connection, principal: &Principal, id: i64) -> Result<Job, ServiceError> {
    let job = jobs::get(conn, id)?.ok_or_else(ServiceError::job_not_found)?;
    ensure_access(principal, &job)?;
    Ok(job)
}

/// Forbidden unless `principal` may reach `job`.
pub fn ensure_access(principal: &Principal, job: &Job) -> Result<(), ServiceError> {
    if principal.may_access(&job.agent_id_responsible) {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(format!(
            "Job {} belongs to another agent: this token is confined to agent {:?}",
            job.id,
            principal.agent().unwrap_or_default()
        )))
    }
}
