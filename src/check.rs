//! `backup-monitor check`: one evaluation of every job, with Nagios exit codes and a
//! one-line summary first.

use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db;
use crate::db::status::JobStatus;
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
    /// Jobs whose latest success failed a content check (DESIGN §10).
    pub suspect: usize,
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

/// How many jobs the first line names; the others are counted ("and 4 more").
pub const NAMED_IN_SUMMARY: usize = 3;

/// Evaluates every job of the database at `path` at `now`. The database must exist.
pub fn evaluate(path: &Path, now: DateTime<Utc>) -> anyhow::Result<Report> {
    let conn = db::open_current(path)?;
    let jobs = all(&conn, &StatusFilter::default(), now).context("Failed to evaluate the jobs")?;
    let mut counts = Counts::default();
    for job in &jobs {
        match job.state {
            JobState::Ok => counts.ok += 1,
            JobState::Late => counts.late += 1,
            JobState::Failed => counts.failed += 1,
            JobState::Suspect => counts.suspect += 1,
            JobState::Pending => counts.pending += 1,
            JobState::Paused => counts.paused += 1,
        }
        if within_grace(job) {
            counts.within_grace += 1;
        }
    }
    let status = if counts.late + counts.failed > 0 {
        Verdict::Critical
    } else if counts.suspect + counts.within_grace > 0 {
        Verdict::Warning
    } else {
        Verdict::Ok
    };
    let summary = summary(status, &counts, &jobs);
    Ok(Report {
        status,
        code: status.code(),
        summary,
        checked_at: now,
        counts,
        jobs,
    })
}

/// A job whose current slot has started and awaits its report, within its grace.
fn within_grace(job: &JobStatus) -> bool {
    job.awaiting_report && matches!(job.state, JobState::Ok | JobState::Pending)
}

/// The first line, the one Nagios puts in its notification: the verdict, the jobs that
/// caused it (a few by name, the rest counted), then the performance data.
fn summary(status: Verdict, c: &Counts, jobs: &[JobStatus]) -> String {
    let text = match status {
        Verdict::Critical => {
            let late = jobs.iter().filter(|j| j.state == JobState::Late);
            let failed = jobs.iter().filter(|j| j.state == JobState::Failed);
            format!(
                "{} late, {} failed: {}",
                c.late,
                c.failed,
                named(late.chain(failed), true)
            )
        }
        Verdict::Warning if c.suspect > 0 => {
            let suspect = jobs.iter().filter(|j| j.state == JobState::Suspect);
            let mut text = format!("{} suspect: {}", c.suspect, named(suspect, false));
            // The first suspect job's reason: what to look at, in the notification itself.
            if let Some(reason) = jobs
                .iter()
                .find(|j| j.state == JobState::Suspect)
                .and_then(|j| j.suspect_reason.as_deref())
            {
                text.push_str(&format!(" ({})", plugin_safe(reason)));
            }
            if c.within_grace > 0 {
                text.push_str(&format!("; {} within grace", c.within_grace));
            }
            text
        }
        Verdict::Warning => format!(
            "{} within grace: {}",
            c.within_grace,
            named(jobs.iter().filter(|j| within_grace(j)), false)
        ),
        Verdict::Ok | Verdict::Unknown => format!(
            "{} late, {} failed, {} suspect, {} within grace, {} ok, {} pending, {} paused",
            c.late, c.failed, c.suspect, c.within_grace, c.ok, c.pending, c.paused
        ),
    };
    format!(
        "BACKUP {} - {text} | late={} failed={} suspect={} within_grace={} ok={} pending={} paused={}",
        status.word(),
        c.late,
        c.failed,
        c.suspect,
        c.within_grace,
        c.ok,
        c.pending,
        c.paused,
    )
}

/// `acme/Lyon db=erp (late), …` for the first [`NAMED_IN_SUMMARY`] jobs, then `and N more`.
fn named<'a>(jobs: impl Iterator<Item = &'a JobStatus>, with_state: bool) -> String {
    let jobs: Vec<&JobStatus> = jobs.collect();
    let mut out = jobs
        .iter()
        .take(NAMED_IN_SUMMARY)
        .map(|job| {
            let state = if with_state {
                format!(" ({})", job.state.as_str())
            } else {
                String::new()
            };
            format!(
                "{}/{} db={}{state}",
                plugin_safe(&job.company_name),
                plugin_safe(&job.city),
                plugin_safe(&job.database_name)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    if jobs.len() > NAMED_IN_SUMMARY {
        out.push_str(&format!(" and {} more", jobs.len() - NAMED_IN_SUMMARY));
    }
    out
}

/// `text` as it may appear in a plugin's output: a `|` would start the performance data and
/// a line break would start a line of its own (a fake `BACKUP OK`), so `|` becomes `¦` and
/// every control character or line separator a space.
pub fn plugin_safe(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '|' => '¦',
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') => ' ',
            c => c,
        })
        .collect()
}

/// The text report: the summary, then one line per job that needs a look.
pub fn render_text(report: &Report) -> String {
    let mut out = report.summary.clone();
    out.push('\n');
    for job in &report.jobs {
        let label = match job.state {
            JobState::Late => "LATE",
            JobState::Failed => "FAILED",
            JobState::Suspect => "SUSPECT",
            _ if job.awaiting_report => "WITHIN GRACE",
            _ => continue,
        };
        let last = job
            .last_success_utc
            .map(time::format)
            .unwrap_or_else(|| "never".to_owned());
        let reason = match (&job.state, &job.suspect_reason) {
            (JobState::Suspect, Some(reason)) => format!(": {}", plugin_safe(reason)),
            _ => String::new(),
        };
        out.push_str(&format!(
            "{label}: {}/{} db={} agent={} (job {}), last success {last}{reason}\n",
            plugin_safe(&job.company_name),
            plugin_safe(&job.city),
            plugin_safe(&job.database_name),
            plugin_safe(&job.agent_id_responsible),
            job.job_id
        ));
    }
    out
}

/// The UNKNOWN answer for an error, in the requested format: one line.
pub fn unknown(error: &anyhow::Error, json: bool) -> String {
    // SQLite's errors come twice: rusqlite's words, then the same as "Error code 26: …".
    let mut causes: Vec<String> = Vec::new();
    for cause in error.chain().map(|c| c.to_string()) {
        if !causes
            .last()
            .is_some_and(|last| cause.ends_with(last.as_str()))
        {
            causes.push(cause);
        }
    }
    let reason = causes.join(": ");
    let summary = plugin_safe(&format!("BACKUP UNKNOWN - {reason}"));
    if json {
        serde_json::json!({"status": "UNKNOWN", "code": 3, "summary": summary}).to_string()
    } else {
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::plugin_safe;

    #[test]
    fn nothing_in_a_name_can_start_performance_data_or_a_line() {
        assert_eq!(plugin_safe("Smith | Sons"), "Smith ¦ Sons");
        assert_eq!(
            plugin_safe("Lyon\nBACKUP OK - 0 late\r\tx\u{85}y\u{2028}z"),
            "Lyon BACKUP OK - 0 late  x y z"
        );
        assert_eq!(plugin_safe("Zürich-2/a"), "Zürich-2/a");
    }
}
