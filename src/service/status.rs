//! Each job's state at a moment: the status listing, `check`, the badges and the metrics
//! all read it from here.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::ServiceError;
use crate::db::jobs::{self, JobFilter};
use crate::db::status::{evaluate, JobStatus};
use crate::domain::status::JobState;

/// Which jobs to evaluate.
#[derive(Debug, Clone, Default)]
pub struct StatusFilter {
    pub company_name: Option<String>,
    /// Only this agent's jobs (an agent token's view).
    pub agent: Option<String>,
    pub state: Option<JobState>,
}

/// Every job's state at `now`, by job id, filtered.
pub fn all(
    conn: &Connection,
    filter: &StatusFilter,
    now: DateTime<Utc>,
) -> rusqlite::Result<Vec<JobStatus>> {
    let jobs_filter = JobFilter {
        company_name: filter.company_name.clone(),
        agent_id_responsible: filter.agent.clone(),
        ..JobFilter::default()
    };
    let mut out = Vec::new();
    let mut skip = 0;
    loop {
        let (page, _) = jobs::list(conn, &jobs_filter, skip, 1000)?;
        let done = page.len() < 1000;
        skip += 1000;
        for job in page {
            let status = evaluate(conn, &job, now)?;
            if filter.state.is_none_or(|s| s == status.state) {
                out.push(status);
            }
        }
        if done {
            return Ok(out);
        }
    }
}

/// One job's state at `now`.
pub fn of_job(
    conn: &Connection,
    job_id: i64,
    now: DateTime<Utc>,
) -> Result<JobStatus, ServiceError> {
    let job = jobs::get(conn, job_id)?.ok_or_else(ServiceError::job_not_found)?;
    Ok(evaluate(conn, &job, now)?)
}

/// The worst state among a company's jobs (paused only when all are), or None when it
/// has no job.
pub fn worst_of_company(
    conn: &Connection,
    company: &str,
    now: DateTime<Utc>,
) -> rusqlite::Result<Option<JobState>> {
    let filter = StatusFilter {
        company_name: Some(company.to_owned()),
        ..StatusFilter::default()
    };
    Ok(worst(all(conn, &filter, now)?.into_iter().map(|j| j.state)))
}

/// The worst of some jobs' states, as a company's badge shows it: failed > late > pending >
/// ok, and paused only when every job is; None for no job at all.
pub fn worst(states: impl IntoIterator<Item = JobState>) -> Option<JobState> {
    // Exhaustive, so that a new state must be given its place.
    let severity = |state: &JobState| match state {
        JobState::Failed => 5,
        JobState::Late => 4,
        JobState::Suspect => 3,
        JobState::Pending => 2,
        JobState::Ok => 1,
        JobState::Paused => 0,
    };
    states.into_iter().max_by_key(severity)
}

#[cfg(test)]
mod tests {
    use super::worst;
    use crate::domain::status::JobState::{self, *};

    #[test]
    fn the_worst_state_is_failed_then_late_then_pending_then_ok_and_paused_only_alone() {
        let cases: [(&[JobState], Option<JobState>); 6] = [
            (&[], None),
            (&[Paused], Some(Paused)),
            (&[Paused, Ok], Some(Ok)),
            (&[Ok, Pending, Paused], Some(Pending)),
            (&[Ok, Late, Pending], Some(Late)),
            (&[Late, Failed, Ok], Some(Failed)),
        ];
        for (states, expected) in cases {
            assert_eq!(worst(states.iter().copied()), expected, "{states:?}");
        }
    }
}
