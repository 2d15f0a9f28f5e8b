//! Alerts: what happened to a job that a person must hear about, and the email that says it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::entry::Entry;
use super::job::Job;
use super::schedule::Schedule;
use super::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A slot passed its due time with no report.
    Late,
    /// An agent reported a failed backup.
    Failed,
    /// A success failed a content check (DESIGN §10).
    Suspect,
    /// A run started and did not finish within the job's `max_duration_minutes`.
    Hung,
    /// A success came after a late, failed, suspect or hung alert (and passed the checks).
    Recovered,
    /// Two or more of an agent's jobs fell late and the agent has sent nothing since: one
    /// alert about the agent instead of one per job.
    AgentSilent,
    /// The first report from an agent after its `agent_silent` alert.
    AgentBack,
    /// The job is still late, failed, suspect or hung, N minutes after the last alert.
    Reminder,
}

impl AlertKind {
    /// Every variant, so callers can list or validate names without repeating them.
    pub const ALL: [AlertKind; 8] = [
        AlertKind::Late,
        AlertKind::Failed,
        AlertKind::Suspect,
        AlertKind::Hung,
        AlertKind::Recovered,
        AlertKind::AgentSilent,
        AlertKind::AgentBack,
        AlertKind::Reminder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Late => "late",
            AlertKind::Failed => "failed",
            AlertKind::Suspect => "suspect",
            AlertKind::Hung => "hung",
            AlertKind::Recovered => "recovered",
            AlertKind::AgentSilent => "agent_silent",
            AlertKind::AgentBack => "agent_back",
            AlertKind::Reminder => "reminder",
        }
    }

    /// Whether alerts of this kind are about an agent (they carry `agent_id`, no `job_id`).
    pub fn is_about_agent(self) -> bool {
        matches!(self, AlertKind::AgentSilent | AlertKind::AgentBack)
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

/// How many of an agent's jobs must fall late in one evaluation, with the agent silent, for
/// one `agent_silent` alert to replace their `late` alerts.
pub const SILENT_AGENT_MIN_JOBS: usize = 2;

/// What becomes of the late slots one evaluation found for one agent's jobs (DESIGN §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateAlerts {
    /// Each job gets its own `late` alert.
    EachJob,
    /// One new `agent_silent` alert names them all.
    AgentSilent,
    /// They are folded into the agent's open `agent_silent` alert: no new alert.
    Fold,
}

/// The rule: while the agent's `agent_silent` alert is open, fold; else two or more newly
/// late jobs of an agent that has sent nothing since the earliest of their windows opened
/// make one `agent_silent` alert; anything else is one `late` alert per job.
pub fn late_alerts(
    silent_alert_open: bool,
    newly_late_jobs: usize,
    heard_since: bool,
) -> LateAlerts {
    if silent_alert_open {
        LateAlerts::Fold
    } else if newly_late_jobs >= SILENT_AGENT_MIN_JOBS && !heard_since {
        LateAlerts::AgentSilent
    } else {
        LateAlerts::EachJob
    }
}

/// An alert in the outbox, as `GET /api/v1/alerts` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Alert {
    pub id: i64,
    /// The job; null for an alert about an agent (`agent_silent`, `agent_back`).
    pub job_id: Option<i64>,
    /// The agent of an `agent_silent` or `agent_back` alert; null otherwise.
    pub agent_id: Option<String>,
    pub kind: AlertKind,
    #[serde(serialize_with = "time::serialize")]
    pub slot_utc: DateTime<Utc>,
    #[serde(serialize_with = "time::serialize")]
    pub created_at: DateTime<Utc>,
    /// Delivery attempts so far.
    pub attempts: i64,
    #[serde(serialize_with = "time::serialize_opt")]
    pub sent_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// Queued while its job (or every job of its agent) was snoozed: kept, never sent.
    pub suppressed: bool,
    #[serde(skip)]
    pub entry_id: Option<i64>,
}

/// What an email about an alert says, besides the alert and its job.
#[derive(Debug, Clone, Default)]
pub struct AlertContext {
    /// The entry that caused the alert (the missing, failed or successful one).
    pub entry: Option<Entry>,
    pub last_success: Option<DateTime<Utc>>,
    /// Where the backup file was expected for the alert's slot.
    pub expected_path: Option<String>,
}

/// A subject a person can triage from a phone, e.g.
/// `[backup-monitor] LATE acme/Lyon db=erp expected 02:30 UTC`; for a cron job, the local
/// time with its zone, `expected 02:30 Europe/Paris (CET)` (DESIGN §11).
pub fn subject(alert: &Alert, job: &Job) -> String {
    let what = format!("{}/{} db={}", job.company_name, job.city, job.database_name);
    let when = short_time(alert.slot_utc, job);
    match alert.kind {
        AlertKind::Late => format!("[backup-monitor] LATE {what} expected {when}"),
        AlertKind::Failed => format!("[backup-monitor] FAILED {what} for {when}"),
        AlertKind::Suspect => format!("[backup-monitor] SUSPECT {what} for {when}"),
        AlertKind::Hung => format!("[backup-monitor] HUNG {what} run for {when} not finished"),
        AlertKind::Recovered => format!("[backup-monitor] RECOVERED {what} for {when}"),
        AlertKind::Reminder => format!("[backup-monitor] REMINDER {what} still needs attention"),
        // Written by `agent_subject`; named here so that a job's alert always has a subject.
        AlertKind::AgentSilent | AlertKind::AgentBack => format!(
            "[backup-monitor] {} agent={} {what}",
            alert.kind.as_str().to_uppercase(),
            job.agent_id_responsible
        ),
    }
}

/// The subject of an alert about an agent: `[backup-monitor] AGENT SILENT backup-host-1: 12
/// jobs late since 02:30 UTC` or `[backup-monitor] AGENT BACK backup-host-1 (silent 5 h)`.
/// `jobs` is how many jobs the alert speaks for; its slot is the earliest late slot, and an
/// `agent_back` was created when the agent reported again.
pub fn agent_subject(alert: &Alert, jobs: usize) -> String {
    let agent = alert.agent_id.as_deref().unwrap_or("?");
    match alert.kind {
        AlertKind::AgentBack => format!(
            "[backup-monitor] AGENT BACK {agent}: reporting again after {}",
            time::span(alert.created_at - alert.slot_utc)
        ),
        _ => format!(
            "[backup-monitor] AGENT SILENT {agent}: {jobs} job{} late since {} UTC",
            if jobs == 1 { "" } else { "s" },
            alert.slot_utc.format("%Y-%m-%d %H:%M")
        ),
    }
}

/// The body of an alert about an agent: what happened, since when, and each job it speaks
/// for with the slot that went unreported. `last_heard` is the agent's latest report of any
/// kind (None: never).
pub fn agent_body(
    alert: &Alert,
    jobs: &[(Job, DateTime<Utc>)],
    last_heard: Option<DateTime<Utc>>,
) -> String {
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let agent = alert.agent_id.as_deref().unwrap_or("?");
    let mut lines = vec![match alert.kind {
        AlertKind::AgentBack => format!(
            "Agent {agent} is reporting again: it had sent nothing since {}.",
            when(alert.slot_utc)
        ),
        _ => format!(
            "Agent {agent} has sent nothing since {}, and {} of its jobs are late. \
             Its host, its network or its scheduler is likely down: one alert for all of them.",
            when(alert.slot_utc),
            jobs.len()
        ),
    }];
    lines.push(String::new());
    lines.push(format!(
        "Last heard:    {}",
        last_heard.map(when).unwrap_or_else(|| "never".to_owned())
    ));
    if !jobs.is_empty() {
        lines.push(String::new());
        lines.push(if alert.kind == AlertKind::AgentBack {
            "Jobs that were late:".to_owned()
        } else {
            "Late jobs:".to_owned()
        });
        for (job, slot) in jobs {
            lines.push(format!(
                "- {}/{} db={} (job {}): expected {}",
                job.company_name,
                job.city,
                job.database_name,
                job.id,
                short_time(*slot, job)
            ));
        }
    }
    lines.push(String::new());
    lines.push(format!("Alert id {}", alert.id));
    lines.push("-- backup-monitor".to_owned());
    lines.join("\n") + "\n"
}

/// A slot as the subject names it: in UTC for the seed's form, on the wall clock of the
/// job's zone for a cron job.
fn short_time(slot: DateTime<Utc>, job: &Job) -> String {
    let schedule = job.schedule();
    match schedule {
        Schedule::Frequency(_) => format!("{} UTC", slot.format(short_format(job))),
        Schedule::Cron(cron) => {
            // Slots at most a day apart read best as a time; sparser ones need the date.
            let format = if schedule.next_slot(slot) - slot <= chrono::Duration::days(1) {
                "%H:%M"
            } else {
                "%Y-%m-%d %H:%M"
            };
            format!(
                "{} {} ({})",
                cron.wall_time(slot).format(format),
                cron.zone,
                cron.zone.abbreviation(slot)
            )
        }
    }
}

/// Daily and hourly slots read best as a time; weekly and monthly ones need the date.
fn short_format(job: &Job) -> &'static str {
    use super::schedule::Frequency;
    match job.backup_frequency {
        Frequency::Hourly | Frequency::Daily => "%H:%M",
        Frequency::Weekly | Frequency::Monthly => "%Y-%m-%d %H:%M",
    }
}

/// The plain-text body: everything needed to act without opening the dashboard.
pub fn body(alert: &Alert, job: &Job, context: &AlertContext) -> String {
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let schedule = job.schedule();
    let headline = match alert.kind {
        AlertKind::Late => format!(
            "No backup was reported for the slot of {} (due by {}).",
            when(alert.slot_utc),
            when(schedule.due(alert.slot_utc))
        ),
        AlertKind::Failed => format!(
            "The agent reported a FAILED backup for the slot of {}.",
            when(alert.slot_utc)
        ),
        AlertKind::Suspect => format!(
            "A backup was reported as successful for the slot of {}, but it failed a content check: {}.",
            when(alert.slot_utc),
            context
                .entry
                .as_ref()
                .and_then(|e| e.suspect_reason.as_deref())
                .unwrap_or("see the entry")
        ),
        AlertKind::Hung => {
            let started = context
                .entry
                .as_ref()
                .map_or(alert.slot_utc, |e| e.backup_timestamp_utc);
            format!(
                "A run started at {} and has not finished after {} (max_duration_minutes {}): \
                 the backup may hang, or its agent died before reporting.",
                when(started),
                time::span(alert.created_at - started),
                job.max_duration_minutes.unwrap_or_default()
            )
        }
        AlertKind::Recovered => format!(
            "A successful backup was reported for the slot of {}: the job is healthy again.",
            when(alert.slot_utc)
        ),
        AlertKind::Reminder => "A reminder: this job still needs attention; reminders come \
             until it is ok again. The entry below is what caused the first alert."
            .to_owned(),
        AlertKind::AgentSilent | AlertKind::AgentBack => format!(
            "Agent {} {}.",
            job.agent_id_responsible,
            if alert.kind == AlertKind::AgentBack {
                "is reporting again"
            } else {
                "has sent nothing"
            }
        ),
    };
    let mut lines = vec![
        headline,
        String::new(),
        format!("Company:       {}", job.company_name),
        format!("City:          {}", job.city),
        format!("Database:      {}", job.database_name),
        format!("Agent:         {}", job.agent_id_responsible),
        match &job.schedule {
            None => format!(
                "Schedule:      {} at {:02}:{:02} UTC, grace {} min",
                job.backup_frequency.as_str(),
                job.expected_hour_utc,
                job.expected_minute_utc,
                job.grace_minutes
            ),
            Some(cron) => format!(
                "Schedule:      {} (cron {cron} {}), grace {} min",
                job.describe_schedule(),
                job.timezone,
                job.grace_minutes
            ),
        },
        match &schedule {
            Schedule::Frequency(_) => format!("Expected slot: {}", when(alert.slot_utc)),
            Schedule::Cron(cron) => format!(
                "Expected slot: {} {} ({}), {}",
                cron.wall_time(alert.slot_utc).format("%Y-%m-%d %H:%M"),
                cron.zone,
                cron.zone.abbreviation(alert.slot_utc),
                when(alert.slot_utc)
            ),
        },
        format!(
            "Last success:  {}",
            context
                .last_success
                .map(when)
                .unwrap_or_else(|| "never".to_owned())
        ),
    ];
    if let Some(path) = &context.expected_path {
        lines.push(format!("Expected file: {path}"));
    }
    if let Some(entry) = &context.entry {
        if entry.status != super::entry::EntryStatus::Missing {
            lines.push(format!(
                "Reported at:   {}",
                when(entry.backup_timestamp_utc)
            ));
        }
        if let Some(size) = entry.backup_size_bytes {
            lines.push(format!("Size:          {size} bytes"));
        }
        if let Some(hash) = &entry.backup_hash {
            lines.push(format!("Hash:          {hash}"));
        }
        if let Some(seconds) = entry.duration_seconds {
            lines.push(format!(
                "Duration:      {}",
                time::span(chrono::Duration::seconds(seconds))
            ));
        }
        if let Some(reason) = &entry.suspect_reason {
            lines.push(format!("Suspect:       {reason}"));
        }
        if let Some(error) = &entry.error_message {
            lines.push(String::new());
            lines.push("Error message:".to_owned());
            lines.push(error.clone());
        }
    }
    lines.push(String::new());
    lines.push(format!("Job id {} · alert id {}", job.id, alert.id));
    lines.push("-- backup-monitor".to_owned());
    lines.join("\n") + "\n"
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::job::CronText;
    use crate::domain::schedule::Frequency;
    use crate::domain::zone::Zone;

    fn job(schedule: Option<&str>, zone: &str, frequency: Frequency) -> Job {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        Job {
            id: 7,
            database_name: "erp".into(),
            agent_id_responsible: "agent-1".into(),
            company_name: "acme".into(),
            city: "Lyon".into(),
            expected_hour_utc: 2,
            expected_minute_utc: 30,
            backup_frequency: frequency,
            final_storage_path_template: "/b/%Y%m%d.dump".into(),
            expected_weekday: 0,
            expected_day_of_month: 1,
            grace_minutes: 60,
            is_active: true,
            notify_emails: Vec::new(),
            schedule: schedule.map(|s| CronText::parse(s).unwrap()),
            timezone: Zone::parse(zone).unwrap(),
            max_duration_minutes: None,
            min_size_bytes: 1,
            size_drop_percent: Some(50),
            stale_hash_check: true,
            ping_key: String::new(),
            snoozed_until: None,
            snooze_reason: None,
            repeat_every_minutes: None,
            created_at: epoch,
            updated_at: epoch,
        }
    }

    fn late(slot: &str) -> Alert {
        Alert {
            id: 1,
            job_id: Some(7),
            agent_id: None,
            kind: AlertKind::Late,
            slot_utc: slot.parse().unwrap(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            attempts: 0,
            sent_at: None,
            last_error: None,
            entry_id: None,
            suppressed: false,
        }
    }

    #[test]
    fn late_slots_of_a_silent_agent_fold_into_one_alert() {
        use LateAlerts::{AgentSilent, EachJob, Fold};
        let cases = [
            // (open agent_silent alert, newly late jobs, heard since, expected)
            (false, 1, false, EachJob, "one late job is just late"),
            (
                false,
                2,
                false,
                AgentSilent,
                "two late jobs and silence: the agent",
            ),
            (false, 12, false, AgentSilent, "twelve late jobs: one alert"),
            (
                false,
                12,
                true,
                EachJob,
                "the agent reported meanwhile: jobs",
            ),
            (true, 1, false, Fold, "open alert: folded"),
            (true, 3, true, Fold, "open alert: folded, whatever else"),
        ];
        for (open, late, heard, expected, why) in cases {
            assert_eq!(late_alerts(open, late, heard), expected, "{why}");
        }
    }

    #[test]
    fn agent_alerts_name_the_agent_its_jobs_and_since_when() {
        let silent = Alert {
            job_id: None,
            agent_id: Some("nas-host-1".into()),
            kind: AlertKind::AgentSilent,
            ..late("2027-01-05T02:30:00Z")
        };
        assert_eq!(
            agent_subject(&silent, 2),
            "[backup-monitor] AGENT SILENT nas-host-1: 2 jobs late since 2027-01-05 02:30 UTC"
        );
        let slot: DateTime<Utc> = "2027-01-05T02:30:00Z".parse().unwrap();
        let body = agent_body(
            &silent,
            &[
                (job(None, "UTC", Frequency::Daily), slot),
                (
                    job(Some("30 3 * * *"), "Europe/Paris", Frequency::Daily),
                    slot,
                ),
            ],
            None,
        );
        assert!(body.contains("Agent nas-host-1 has sent nothing since 2027-01-05 02:30:00 UTC, and 2 of its jobs are late."), "{body}");
        assert!(body.contains("Last heard:    never"), "{body}");
        assert!(
            body.contains("- acme/Lyon db=erp (job 7): expected 02:30 UTC"),
            "{body}"
        );
        let back = Alert {
            kind: AlertKind::AgentBack,
            created_at: "2027-01-05T07:31:00Z".parse().unwrap(),
            ..silent
        };
        assert_eq!(
            agent_subject(&back, 2),
            "[backup-monitor] AGENT BACK nas-host-1: reporting again after 5 h"
        );
    }

    #[test]
    fn a_subject_names_the_local_time_and_zone_of_a_cron_job() {
        let cases = [
            (
                job(None, "UTC", Frequency::Daily),
                "2027-01-05T02:30:00Z",
                "[backup-monitor] LATE acme/Lyon db=erp expected 02:30 UTC",
            ),
            (
                job(Some("30 2 * * *"), "Europe/Paris", Frequency::Daily),
                "2027-01-05T01:30:00Z",
                "[backup-monitor] LATE acme/Lyon db=erp expected 02:30 Europe/Paris (CET)",
            ),
            // Moved by the spring gap: the time the clock read.
            (
                job(Some("30 2 * * *"), "Europe/Paris", Frequency::Daily),
                "2027-03-28T01:30:00Z",
                "[backup-monitor] LATE acme/Lyon db=erp expected 03:30 Europe/Paris (CEST)",
            ),
            (
                job(Some("0 22 1,15 * *"), "America/New_York", Frequency::Daily),
                "2027-07-02T02:00:00Z",
                "[backup-monitor] LATE acme/Lyon db=erp expected 2027-07-01 22:00 America/New_York (EDT)",
            ),
        ];
        for (job, slot, want) in cases {
            assert_eq!(subject(&late(slot), &job), want);
        }
    }

    #[test]
    fn a_cron_jobs_body_shows_its_expression_zone_and_local_slot() {
        let job = job(Some("30 2 * * *"), "Europe/Paris", Frequency::Daily);
        let body = body(
            &late("2027-03-28T01:30:00Z"),
            &job,
            &AlertContext::default(),
        );
        assert!(
            body.contains(
                "Schedule:      every day at 02:30 Europe/Paris (cron 30 2 * * * Europe/Paris), grace 60 min"
            ),
            "{body}"
        );
        assert!(
            body.contains(
                "Expected slot: 2027-03-28 03:30 Europe/Paris (CEST), 2027-03-28 01:30:00 UTC"
            ),
            "{body}"
        );
    }
}
