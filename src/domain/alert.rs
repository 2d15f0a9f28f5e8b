//! Alerts: what happened to a job that a person must hear about, and the email that says it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::entry::Entry;
use super::job::Job;
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
/// `[backup-monitor] LATE acme/Lyon db=erp expected 02:30 UTC`.
pub fn subject(alert: &Alert, job: &Job) -> String {
    let what = format!("{}/{} db={}", job.company_name, job.city, job.database_name);
    let slot = alert.slot_utc;
    match alert.kind {
        AlertKind::Late => format!(
            "[backup-monitor] LATE {what} expected {} UTC",
            slot.format(short_format(job))
        ),
        AlertKind::Failed => format!(
            "[backup-monitor] FAILED {what} for {} UTC",
            slot.format(short_format(job))
        ),
        AlertKind::Recovered => format!(
            "[backup-monitor] RECOVERED {what} for {} UTC",
            slot.format(short_format(job))
        ),
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
        format!(
            "Schedule:      {} at {:02}:{:02} UTC, grace {} min",
            job.backup_frequency.as_str(),
            job.expected_hour_utc,
            job.expected_minute_utc,
            job.grace_minutes
        ),
        format!("Expected slot: {}", when(alert.slot_utc)),
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
