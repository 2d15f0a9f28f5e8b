//! `backup-monitor check`: one evaluation of every job, with Nagios exit codes and a
//! one-line summary first.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::status::JobStatus;
use crate::db::Db;
use crate::domain::status::JobState;
use crate::domain::time;
use crate::service::status::{all, StatusFilter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Verdict {
    /// The Nagios plugin exit code.
    pub fn code(self) -> u8 {
        match self {
            Verdict::Ok => 0,
            Verdict::Warning => 1,
            Verdict::Critical => 2,
            Verdict::Unknown => 3,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Warning => "WARNING",
            Verdict::Critical => "CRITICAL",
            Verdict::Unknown => "UNKNOWN",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub ok: usize,
    pub late: usize,
    pub failed: usize,
    pub pending: usize,
    pub paused: usize,
    /// Jobs whose current slot has started and awaits its report, within its grace.
    pub within_grace: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: Verdict,
    pub code: u8,
    pub summary: String,
    #[serde(serialize_with = "time::serialize")]
    pub checked_at: DateTime<Utc>,
    pub counts: Counts,
    pub jobs: Vec<JobStatus>,
}

/// Evaluates every job of the database at `path` at `now`. The database must exist.
pub fn evaluate(path: &Path, now: DateTime<Utc>) -> anyhow::Result<Report> {
    anyhow::ensure!(path.is_file(), "database {} does not exist", path.display());
    let db = Db::open(path)?;
    db.ensure_current()?;
    let conn = db.conn().context("Failed to open a database connection")?;
    let jobs = all(&conn, &StatusFilter::default(), now).context("Failed to evaluate the jobs")?;
    let mut counts = Counts::default();
    for job in &jobs {
        match job.state {
            JobState::Ok => counts.ok += 1,
            JobState::Late => counts.late += 1,
            JobState::Failed => counts.failed += 1,
            JobState::Pending => counts.pending += 1,
            JobState::Paused => counts.paused += 1,
        }
        if job.awaiting_report && matches!(job.state, JobState::Ok | JobState::Pending) {
            counts.within_grace += 1;
        }
    }
    let status = if counts.late + counts.failed > 0 {
        Verdict::Critical
    } else if counts.within_grace > 0 {
        Verdict::Warning
    } else {
        Verdict::Ok
    };
    let summary = format!(
        "BACKUP {} - {} late, {} failed, {} within grace, {} ok, {} pending, {} paused | late={} failed={} within_grace={} ok={} pending={} paused={}",
        status.word(),
        counts.late, counts.failed, counts.within_grace, counts.ok, counts.pending, counts.paused,
        counts.late, counts.failed, counts.within_grace, counts.ok, counts.pending, counts.paused,
    );
    Ok(Report {
        status,
        code: status.code(),
        summary,
        checked_at: now,
        counts,
        jobs,
    })
}

/// The text report: the summary, then one line per job that needs a look.
pub fn render_text(report: &Report) -> String {
    let mut out = report.summary.clone();
    out.push('\n');
    for job in &report.jobs {
        let label = match job.state {
            JobState::Late => "LATE",
            JobState::Failed => "FAILED",
            _ if job.awaiting_report => "WITHIN GRACE",
            _ => continue,
        };
        let last = job
            .last_success_utc
            .map(time::format)
            .unwrap_or_else(|| "never".to_owned());
        out.push_str(&format!(
            "{label}: {}/{} db={} agent={} (job {}), last success {last}\n",
            job.company_name, job.city, job.database_name, job.agent_id_responsible, job.job_id
        ));
    }
    out
}

/// The UNKNOWN answer for an error, in the requested format.
pub fn unknown(error: &anyhow::Error, json: bool) -> String {
    let reason = error
        .chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ");
    if json {
        serde_json::json!({"status": "UNKNOWN", "code": 3, "summary": format!("BACKUP UNKNOWN - {reason}")})
            .to_string()
    } else {
        format!("BACKUP UNKNOWN - {reason}")
    }
}
