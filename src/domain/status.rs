//! A job's state, from what was reported and what was due: the rule the status API, the
//! dashboard, the metrics and `check` share.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::entry::EntryStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// The latest due slot holds a success, or the latest report is a success.
    Ok,
    /// The latest due slot has no report.
    Late,
    /// The latest report is a failure.
    Failed,
    /// The latest report is a success that failed a content check (DESIGN §10).
    Suspect,
    /// Nothing due yet and nothing reported yet.
    Pending,
    /// Inactive: never late.
    Paused,
}

impl JobState {
    pub const ALL: [JobState; 6] = [
        JobState::Ok,
        JobState::Late,
        JobState::Failed,
        JobState::Suspect,
        JobState::Pending,
        JobState::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Ok => "ok",
            JobState::Late => "late",
            JobState::Failed => "failed",
            JobState::Suspect => "suspect",
            JobState::Pending => "pending",
            JobState::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        JobState::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

/// What is known of a job at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Observation {
    pub is_active: bool,
    /// The status of the latest `success` or `failed` entry.
    pub last_report: Option<EntryStatus>,
    /// Whether that entry is a success that failed a content check.
    pub last_report_suspect: bool,
    /// Whether the latest due slot counts: it fell due after the job was created (or
    /// re-activated, or rescheduled).
    pub latest_due_counts: bool,
    /// Whether that slot's window holds a `success` or `failed` entry.
    pub latest_due_reported: bool,
    /// Whether that slot's window holds a `success`.
    pub latest_due_succeeded: bool,
}

/// paused > failed > late > suspect > ok > pending.
pub fn state(o: &Observation) -> JobState {
    if !o.is_active {
        JobState::Paused
    } else if o.last_report == Some(EntryStatus::Failed) {
        JobState::Failed
    } else if o.latest_due_counts && !o.latest_due_reported {
        JobState::Late
    } else if o.last_report == Some(EntryStatus::Success) && o.last_report_suspect {
        JobState::Suspect
    } else if (o.latest_due_counts && o.latest_due_succeeded)
        || o.last_report == Some(EntryStatus::Success)
    {
        JobState::Ok
    } else {
        JobState::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn active() -> Observation {
        Observation {
            is_active: true,
            ..Observation::default()
        }
    }

    #[test]
    fn states_follow_the_documented_precedence() {
        let cases = [
            (
                "inactive wins over everything",
                Observation {
                    is_active: false,
                    last_report: Some(EntryStatus::Failed),
                    latest_due_counts: true,
                    ..active()
                },
                JobState::Paused,
            ),
            (
                "a failed latest report wins over a missing slot",
                Observation {
                    last_report: Some(EntryStatus::Failed),
                    latest_due_counts: true,
                    ..active()
                },
                JobState::Failed,
            ),
            (
                "a missing due slot is late even after older successes",
                Observation {
                    last_report: Some(EntryStatus::Success),
                    latest_due_counts: true,
                    ..active()
                },
                JobState::Late,
            ),
            (
                "a missing due slot wins over a suspect success before it",
                Observation {
                    last_report: Some(EntryStatus::Success),
                    last_report_suspect: true,
                    latest_due_counts: true,
                    ..active()
                },
                JobState::Late,
            ),
            (
                "a suspect success in the due slot is suspect, not ok",
                Observation {
                    last_report: Some(EntryStatus::Success),
                    last_report_suspect: true,
                    latest_due_counts: true,
                    latest_due_reported: true,
                    latest_due_succeeded: true,
                    ..active()
                },
                JobState::Suspect,
            ),
            (
                "a suspect success before anything is due is suspect",
                Observation {
                    last_report: Some(EntryStatus::Success),
                    last_report_suspect: true,
                    ..active()
                },
                JobState::Suspect,
            ),
            (
                "a paused job is paused even when its last success is suspect",
                Observation {
                    is_active: false,
                    last_report: Some(EntryStatus::Success),
                    last_report_suspect: true,
                    ..active()
                },
                JobState::Paused,
            ),
            (
                "a success in the due slot is ok",
                Observation {
                    last_report: Some(EntryStatus::Success),
                    latest_due_counts: true,
                    latest_due_reported: true,
                    latest_due_succeeded: true,
                    ..active()
                },
                JobState::Ok,
            ),
            (
                "a success before anything is due is ok",
                Observation {
                    last_report: Some(EntryStatus::Success),
                    ..active()
                },
                JobState::Ok,
            ),
            (
                "nothing due and nothing reported is pending",
                active(),
                JobState::Pending,
            ),
        ];
        for (name, observation, expected) in cases {
            assert_eq!(state(&observation), expected, "{name}");
        }
    }

    #[test]
    fn state_names_round_trip() {
        for s in JobState::ALL {
            assert_eq!(JobState::parse(s.as_str()), Some(s));
        }
        assert_eq!(JobState::parse("broken"), None);
    }
}
