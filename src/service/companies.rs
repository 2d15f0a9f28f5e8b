//! Companies as the people who answer for them see them: each one's jobs counted by state,
//! and the worst of those states, which is what its badge shows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::Connection;
use serde::Serialize;
use utoipa::ToSchema;

use super::status::{all, worst, StatusFilter};
use crate::domain::auth::Principal;
use crate::domain::status::JobState;

/// How many of a company's jobs are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct StateCounts {
    pub ok: usize,
    pub late: usize,
    pub failed: usize,
    pub suspect: usize,
    pub pending: usize,
    pub paused: usize,
}

impl StateCounts {
    fn count(&mut self, state: JobState) {
        let n = match state {
            JobState::Ok => &mut self.ok,
            JobState::Late => &mut self.late,
            JobState::Failed => &mut self.failed,
            JobState::Suspect => &mut self.suspect,
            JobState::Pending => &mut self.pending,
            JobState::Paused => &mut self.paused,
        };
        *n += 1;
    }
}

/// One company: its jobs, counted by state, and the worst state among them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Company {
    pub company_name: String,
    /// How many jobs it has (that the caller may read).
    pub jobs: usize,
    pub states: StateCounts,
    /// failed > late > suspect > pending > ok; paused only when every job is.
    pub worst_state: JobState,
}

/// Every company with a job `caller` may read, ordered by name (byte order, as the filters
/// match). An agent token sees the companies of its own jobs, counted over those alone.
pub fn list(
    conn: &Connection,
    caller: &Principal,
    now: DateTime<Utc>,
) -> rusqlite::Result<Vec<Company>> {
    let filter = StatusFilter {
        agent: caller.agent().map(str::to_owned),
        ..StatusFilter::default()
    };
    let mut states: BTreeMap<String, Vec<JobState>> = BTreeMap::new();
    for job in all(conn, &filter, now)? {
        states.entry(job.company_name).or_default().push(job.state);
    }
    Ok(states
        .into_iter()
        .filter_map(|(company_name, states)| {
            let mut counts = StateCounts::default();
            for state in &states {
                counts.count(*state);
            }
            Some(Company {
                company_name,
                jobs: states.len(),
                states: counts,
                worst_state: worst(states)?,
            })
        })
        .collect())
}
