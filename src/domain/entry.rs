//! Backup entries: what an agent reported, or what the scheduler found missing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// The bounds of a report. The API's validator checks them and its OpenAPI schema states
// them, both from these constants.

/// Longest accepted `backup_hash`, in characters.
pub const HASH_MAX: usize = 256;
/// Longest accepted `error_message`, in characters.
pub const ERROR_MESSAGE_MAX: usize = 4096;
/// Smallest accepted `backup_size_bytes`.
pub const SIZE_MIN: i64 = 0;
/// Longest `log` kept from a ping's body, in characters (its end is kept).
pub const LOG_MAX: usize = 4096;
/// Most reports accepted in one batch.
pub const BATCH_MAX: usize = 1000;
/// Longest accepted `run_id`, in characters.
pub const RUN_ID_MAX: usize = 64;
/// A `started` entry older than this is abandoned: no report finishes it any more, and it
/// is no longer running (DESIGN §10).
pub const RUN_ABANDONED_DAYS: i64 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryStatus {
    Success,
    Failed,
    /// Written only by the scheduler, for a slot that passed its due time unreported.
    Missing,
    /// A run began (DESIGN §10); it does not count as a report for its slot.
    Started,
    /// A ping's body kept as a log of the job (DESIGN §12); it says nothing of state.
    Log,
}

impl EntryStatus {
    /// Every variant, so callers can list or validate names without repeating them.
    pub const ALL: [EntryStatus; 5] = [
        EntryStatus::Success,
        EntryStatus::Failed,
        EntryStatus::Missing,
        EntryStatus::Started,
        EntryStatus::Log,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Success => "success",
            EntryStatus::Failed => "failed",
            EntryStatus::Missing => "missing",
            EntryStatus::Started => "started",
            EntryStatus::Log => "log",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// A recorded backup run.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Entry {
    pub id: i64,
    pub expected_job_id: i64,
    pub status: EntryStatus,
    #[serde(serialize_with = "super::time::serialize")]
    pub backup_timestamp_utc: DateTime<Utc>,
    pub backup_hash: Option<String>,
    pub backup_size_bytes: Option<i64>,
    pub error_message: Option<String>,
    #[serde(serialize_with = "super::time::serialize")]
    pub created_at: DateTime<Utc>,
    /// The run this report belongs to, as the agent named it.
    pub run_id: Option<String>,
    /// On a `success` or `failed` that finished a run: seconds since its `started` entry.
    pub duration_seconds: Option<i64>,
    /// On a `success` that failed a content check: why, as a sentence (DESIGN §10).
    pub suspect_reason: Option<String>,
    /// What a ping's body said, when it was not an error message (DESIGN §12).
    pub log: Option<String>,
}

/// A report, validated, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    pub expected_job_id: i64,
    pub status: EntryStatus,
    pub backup_timestamp_utc: DateTime<Utc>,
    pub backup_hash: Option<String>,
    pub backup_size_bytes: Option<i64>,
    pub error_message: Option<String>,
    pub run_id: Option<String>,
    /// Found when the report is stored (the run it finishes), not reported.
    pub duration_seconds: Option<i64>,
    /// Found when the report is stored (the content checks), not reported.
    pub suspect_reason: Option<String>,
    /// A ping's body, when it is not the error message.
    pub log: Option<String>,
}

impl NewEntry {
    /// An entry the scheduler writes for `slot`, which went unreported.
    pub fn missing(job_id: i64, slot: DateTime<Utc>) -> Self {
        Self {
            expected_job_id: job_id,
            status: EntryStatus::Missing,
            backup_timestamp_utc: slot,
            backup_hash: None,
            backup_size_bytes: None,
            error_message: None,
            run_id: None,
            duration_seconds: None,
            suspect_reason: None,
            log: None,
        }
    }
}
/// What an agent may report; `missing` is written by the scheduler alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    Success,
    Failed,
    /// A run began; the next `success` or `failed` finishes it.
    Started,
}

impl ReportStatus {
    /// Every variant, so callers can list or validate names without repeating them.
    pub const ALL: [ReportStatus; 3] = [
        ReportStatus::Success,
        ReportStatus::Failed,
        ReportStatus::Started,
    ];

    /// The wire name: that of the [`EntryStatus`] it becomes.
    pub fn as_str(self) -> &'static str {
        EntryStatus::from(self).as_str()
    }
}

impl From<ReportStatus> for EntryStatus {
    fn from(s: ReportStatus) -> Self {
        match s {
            ReportStatus::Success => EntryStatus::Success,
            ReportStatus::Failed => EntryStatus::Failed,
            ReportStatus::Started => EntryStatus::Started,
        }
    }
}
