//! Alerts: what happened to a job that a person must hear about, and the email that says it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::entry::Entry;
use super::job::Job;
use super::schedule::Schedule;
use super::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertKind {
    /// A slot passed its due time with no report.
    Late,
    /// An agent reported a failed backup.
    Failed,
    /// A success came after a late or failed alert.
    Recovered,
}

impl AlertKind {
    /// Every variant, so callers can list or validate names without repeating them.
    pub const ALL: [AlertKind; 3] = [AlertKind::Late, AlertKind::Failed, AlertKind::Recovered];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Late => "late",
            AlertKind::Failed => "failed",
            AlertKind::Recovered => "recovered",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

/// An alert in the outbox, as `GET /api/v1/alerts` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Alert {
    pub id: i64,
    pub job_id: i64,
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
        AlertKind::Recovered => format!("[backup-monitor] RECOVERED {what} for {when}"),
    }
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
        AlertKind::Recovered => format!(
            "A successful backup was reported for the slot of {}: the job is healthy again.",
            when(alert.slot_utc)
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
            created_at: epoch,
            updated_at: epoch,
        }
    }

    fn late(slot: &str) -> Alert {
        Alert {
            id: 1,
            job_id: 7,
            kind: AlertKind::Late,
            slot_utc: slot.parse().unwrap(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            attempts: 0,
            sent_at: None,
            last_error: None,
            entry_id: None,
        }
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
