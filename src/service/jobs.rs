//! Expected backup jobs: creating, reading, changing and deleting them, and where a job's
//! backup file must be.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};
use serde::Serialize;
use utoipa::ToSchema;

use super::access::job_for;
use super::ServiceError;
use crate::db::jobs::{self as store, JobFilter};
use crate::domain::auth::Principal;
use crate::domain::job::Job;
use crate::domain::template::{PathTemplate, TemplateValues};
use crate::domain::time;

/// Stores a new, already validated job.
pub fn create(conn: &Connection, job: &Job, now: DateTime<Utc>) -> Result<Job, ServiceError> {
    let job = store::insert(conn, job, now)?;
    tracing::info!(job_id = job.id, "job created");
    Ok(job)
}

/// One job, if `caller` may see it.
pub fn get(conn: &Connection, caller: &Principal, id: i64) -> Result<Job, ServiceError> {
    job_for(conn, caller, id)
}

/// A page of jobs by id and the total after filters; an agent token sees its own only.
pub fn list(
    conn: &Connection,
    caller: &Principal,
    mut filter: JobFilter,
    skip: i64,
    limit: i64,
) -> Result<(Vec<Job>, i64), ServiceError> {
    if let Some(agent) = caller.agent() {
        if filter
            .agent_id_responsible
            .as_deref()
            .is_some_and(|asked| asked != agent)
        {
            return Ok((Vec::new(), 0));
        }
        filter.agent_id_responsible = Some(agent.to_owned());
    }
    Ok(store::list(conn, &filter, skip, limit)?)
}

/// Applies `change` to the stored job `id` in one immediate transaction. Changing the
/// schedule, or re-activating the job, counts lateness afresh from `now`.
pub fn update(
    conn: &mut Connection,
    id: i64,
    change: impl FnOnce(&Job) -> Result<Job, ServiceError>,
    now: DateTime<Utc>,
) -> Result<Job, ServiceError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let before = store::get(&tx, id)?.ok_or_else(ServiceError::job_not_found)?;
    let after = change(&before)?;
    let job = store::update(&tx, &after, after.schedule_restarts_from(&before), now)?;
    tx.commit()?;
    tracing::info!(job_id = id, "job updated");
    Ok(job)
}

/// Deletes a job; its entries and alerts go with it.
pub fn delete(conn: &Connection, id: i64) -> Result<Job, ServiceError> {
    let job = store::delete(conn, id)?.ok_or_else(ServiceError::job_not_found)?;
    tracing::info!(job_id = id, "job deleted");
    Ok(job)
}

/// Where a job's backup file should be for one slot.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpectedPath {
    pub job_id: i64,
    /// The slot whose window holds `at`.
    #[serde(serialize_with = "time::serialize")]
    pub slot_utc: DateTime<Utc>,
    pub path: String,
}

/// The job's storage path rendered for the slot whose window holds `at`.
pub fn expected_path(job: &Job, at: DateTime<Utc>) -> Result<ExpectedPath, ServiceError> {
    let slot = job.schedule().slot_for(at);
    let template = PathTemplate::parse(&job.final_storage_path_template).map_err(|e| {
        ServiceError::Internal(anyhow::anyhow!(
            "stored template of job {} is invalid: {e}",
            job.id
        ))
    })?;
    let values = TemplateValues {
        database_name: &job.database_name,
        company_name: &job.company_name,
        city: &job.city,
        agent_id_responsible: &job.agent_id_responsible,
        job_id: job.id,
    };
    Ok(ExpectedPath {
        job_id: job.id,
        slot_utc: slot,
        path: template.render(&values, slot),
    })
}
