//! The morning digest (DESIGN §13): one message a day a person reads on a phone. Its first
//! line says whether anything needs attention; then, company by company, the jobs that do;
//! then the count of jobs in each state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::status::JobState;
use super::time;

/// One job as the digest tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestJob {
    pub job_id: i64,
    pub company_name: String,
    pub city: String,
    pub database_name: String,
    pub state: JobState,
    /// Why: the suspect reason, or the error of the latest failure.
    pub reason: Option<String>,
    pub last_success: Option<DateTime<Utc>>,
}

/// A day's digest, as sent and printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    /// The first line: what a phone shows.
    pub headline: String,
    /// The whole text, headline first.
    pub text: String,
    /// Whether no job needs attention.
    pub all_well: bool,
}

impl Digest {
    pub fn of(jobs: &[DigestJob], now: DateTime<Utc>) -> Self {
        Self {
            headline: headline(jobs),
            text: render(jobs, now),
            all_well: !jobs.iter().any(|j| needs_attention(j.state)),
        }
    }
}

/// Whether a job in `state` needs someone: late, failed or suspect.
pub fn needs_attention(state: JobState) -> bool {
    matches!(state, JobState::Late | JobState::Failed | JobState::Suspect)
}

/// The digest's first line: `All 214 backups OK` or `3 of 214 backups need attention`.
/// Paused jobs are not counted as backups expected.
pub fn headline(jobs: &[DigestJob]) -> String {
    let expected = jobs.iter().filter(|j| j.state != JobState::Paused).count();
    let bad = jobs.iter().filter(|j| needs_attention(j.state)).count();
    let plural = |n: usize| if n == 1 { "backup" } else { "backups" };
    match bad {
        0 if expected == 0 => "No backups expected yet".to_owned(),
        0 => format!("All {expected} {} OK", plural(expected)),
        1 => format!("1 of {expected} backups needs attention"),
        n => format!("{n} of {expected} backups need attention"),
    }
}

/// The whole text at `now`: the headline, the jobs that need attention by company, the
/// counts per state.
pub fn render(jobs: &[DigestJob], now: DateTime<Utc>) -> String {
    let mut lines = vec![headline(jobs), String::new()];
    let mut by_company: BTreeMap<&str, Vec<&DigestJob>> = BTreeMap::new();
    for job in jobs.iter().filter(|j| needs_attention(j.state)) {
        by_company.entry(&job.company_name).or_default().push(job);
    }
    for (company, bad) in &by_company {
        lines.push(format!("{company}:"));
        for job in bad {
            let since = job.last_success.map_or_else(
                || "never succeeded".to_owned(),
                |t| format!("last success {} ago", time::span(now - t)),
            );
            let reason = job
                .reason
                .as_deref()
                .map(|r| format!(": {}", one_line(r)))
                .unwrap_or_default();
            lines.push(format!(
                "- {} db={} (job {}) {}{reason}; {since}",
                job.city,
                job.database_name,
                job.job_id,
                job.state.as_str().to_uppercase(),
            ));
        }
        lines.push(String::new());
    }
    let counts: Vec<String> = JobState::ALL
        .iter()
        .map(|s| (s, jobs.iter().filter(|j| j.state == *s).count()))
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{n} {}", s.as_str()))
        .collect();
    lines.push(if counts.is_empty() {
        "No jobs yet.".to_owned()
    } else {
        format!("Jobs by state: {}.", counts.join(", "))
    });
    lines.push(format!("As of {}.", now.format("%Y-%m-%d %H:%M UTC")));
    lines.join("\n") + "\n"
}

/// The first line of `text`, at most 200 characters: a digest line is one line.
fn one_line(text: &str) -> String {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    first.chars().take(200).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn job(id: i64, company: &str, state: JobState, reason: Option<&str>) -> DigestJob {
        DigestJob {
            job_id: id,
            company_name: company.into(),
            city: "Lyon".into(),
            database_name: format!("db{id}"),
            state,
            reason: reason.map(str::to_owned),
            last_success: Some("2026-11-29T02:31:00Z".parse().unwrap()),
        }
    }

    #[test]
    fn all_well_is_one_line_a_person_reads_on_a_phone() {
        let jobs = [
            job(1, "acme", JobState::Ok, None),
            job(2, "acme", JobState::Paused, None),
        ];
        assert_eq!(headline(&jobs), "All 1 backup OK");
        let jobs: Vec<DigestJob> = (1..=214)
            .map(|i| job(i, "acme", JobState::Ok, None))
            .collect();
        assert_eq!(headline(&jobs), "All 214 backups OK");
    }

    #[test]
    fn a_mixed_set_names_each_job_that_needs_attention_by_company() {
        let now = "2026-11-30T07:00:00Z".parse().unwrap();
        let jobs = [
            job(
                1,
                "globex",
                JobState::Failed,
                Some("pg_dump: connection refused\nmore"),
            ),
            job(2, "acme", JobState::Ok, None),
            job(3, "acme", JobState::Late, None),
            job(
                4,
                "acme",
                JobState::Suspect,
                Some("size 0 B is below the minimum of 1 B"),
            ),
            job(5, "initech", JobState::Pending, None),
            job(6, "initech", JobState::Paused, None),
            DigestJob {
                last_success: None,
                ..job(7, "globex", JobState::Late, None)
            },
        ];
        assert_eq!(
            render(&jobs, now),
            "4 of 6 backups need attention\n\
             \n\
             acme:\n\
             - Lyon db=db3 (job 3) LATE; last success 28 h ago\n\
             - Lyon db=db4 (job 4) SUSPECT: size 0 B is below the minimum of 1 B; last success 28 h ago\n\
             \n\
             globex:\n\
             - Lyon db=db1 (job 1) FAILED: pg_dump: connection refused; last success 28 h ago\n\
             - Lyon db=db7 (job 7) LATE; never succeeded\n\
             \n\
             Jobs by state: 1 ok, 2 late, 1 failed, 1 suspect, 1 pending, 1 paused.\n\
             As of 2026-11-30 07:00 UTC.\n"
        );
        assert_eq!(headline(&jobs[..2]), "1 of 2 backups needs attention");
    }
}
