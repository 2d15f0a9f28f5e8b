//! Expected backup jobs: what must happen, for whom, and when.

use chrono::{DateTime, Timelike, Utc};
use serde::{Serialize, Serializer};
use utoipa::ToSchema;

use super::content::ContentRules;
use super::cron::{CronError, CronExpr};
use super::schedule::{
    AnsweredFrequency, Frequency, FrequencySchedule, Schedule, INTERVAL_HORIZON_DAYS,
};
use super::zone::Zone;

// The bounds of a job's own fields. The API's validator checks them and its OpenAPI schema
// states them, both from these constants; the schedule's bounds are in `schedule`, the
// template's length and grammar in `template`.

/// Shortest accepted name (database, company, city, agent), in characters after trimming.
pub const NAME_MIN: usize = 1;
/// Longest accepted name, in characters after trimming.
pub const NAME_MAX: usize = 255;
/// What a name must match: a non-blank character (the validator trims, then counts).
pub const NAME_PATTERN: &str = r"\S";
/// Most extra alert recipients a job may list.
pub const NOTIFY_EMAILS_MAX: usize = 50;
/// Longest `snooze_reason`, in characters.
pub const SNOOZE_REASON_MAX: usize = 255;
/// Shortest `repeat_every_minutes`.
pub const REPEAT_MIN: u32 = 1;
/// Longest `repeat_every_minutes`: a week.
pub const REPEAT_MAX: u32 = 10_080;

/// A cron expression as its author wrote it (what is stored and answered, trimmed) and as
/// parsed (what the schedule runs on), so that a job is parsed once, when it is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronText {
    text: String,
    expr: CronExpr,
}

impl CronText {
    pub fn parse(text: &str) -> Result<Self, CronError> {
        let text = text.trim();
        Ok(Self {
            expr: CronExpr::parse(text)?,
            text: text.to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn expr(&self) -> CronExpr {
        self.expr
    }
}

impl std::fmt::Display for CronText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for CronText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

fn serialize_zone<S: Serializer>(zone: &Zone, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(zone.name())
}

/// An expected backup job, as stored. The API answers it with [`SeedAnswer`] beside it:
/// the seed's three schedule fields are answered from the schedule (`"cron"` and the next
/// slot's UTC time for a cron job), so they are not serialized from here.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Job {
    pub id: i64,
    pub database_name: String,
    pub agent_id_responsible: String,
    pub company_name: String,
    pub city: String,
    /// The seed's form (DESIGN §3). A cron job keeps them too (as created, or the UTC time
    /// of its first slot), but they do not schedule it.
    #[serde(skip)]
    pub expected_hour_utc: u32,
    #[serde(skip)]
    pub expected_minute_utc: u32,
    #[serde(skip)]
    pub backup_frequency: Frequency,
    /// A 5-field cron expression (`minute hour day-of-month month day-of-week`) read on the
    /// wall clock of `timezone` (DESIGN §11); null for the seed's form.
    #[schema(value_type = Option<String>, required = true, example = "30 2 * * *")]
    pub schedule: Option<CronText>,
    /// An IANA time zone; "UTC" for every job without a `schedule`.
    #[serde(serialize_with = "serialize_zone")]
    #[schema(value_type = String, example = "Europe/Paris")]
    pub timezone: Zone,
    pub final_storage_path_template: String,
    /// 0 = Monday … 6 = Sunday; used by `weekly` jobs.
    pub expected_weekday: u32,
    /// 1..=31; used by `monthly` jobs; a shorter month uses its last day.
    pub expected_day_of_month: u32,
    /// Minutes after the expected time before the backup counts as late.
    pub grace_minutes: u32,
    pub is_active: bool,
    pub notify_emails: Vec<String>,
    /// A run started and not finished after this many minutes raises a `hung` alert; null:
    /// never (DESIGN §10).
    pub max_duration_minutes: Option<u32>,
    /// A success with a smaller `backup_size_bytes` is suspect (default 1: a 0-byte dump
    /// is never "ok").
    pub min_size_bytes: i64,
    /// A success smaller than (100 − p) % of the median size of the job's previous 10
    /// sized successes is suspect (default 50); null disables the check.
    pub size_drop_percent: Option<u32>,
    /// A success whose `backup_hash` equals that of the job's previous success is suspect
    /// (default true).
    pub stale_hash_check: bool,
    /// Until then the job's alerts are recorded in the outbox as suppressed and not sent
    /// (maintenance); its entries and states are kept as usual (DESIGN §13).
    #[serde(serialize_with = "super::time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub snoozed_until: Option<DateTime<Utc>>,
    /// Why the job is snoozed, for the people who see it.
    pub snooze_reason: Option<String>,
    /// While the job stays late, failed, suspect or its run hung, a `reminder` alert every
    /// this many minutes after the first alert; null: `alerts.repeat_every_minutes`.
    pub repeat_every_minutes: Option<u32>,
    /// The secret of the job's ping URL (DESIGN §12): answered only inside `ping_url`.
    #[serde(skip)]
    pub ping_key: String,
    #[serde(serialize_with = "super::time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::time::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// The seed's three schedule fields as a job is answered (DESIGN §11): for a cron job,
/// `"cron"` and the UTC hour and minute of its next slot, so a seed client still reads
/// numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct SeedAnswer {
    /// For a cron job, the UTC hour of its next slot.
    pub expected_hour_utc: u32,
    /// For a cron job, the UTC minute of its next slot.
    pub expected_minute_utc: u32,
    pub backup_frequency: AnsweredFrequency,
}

impl Job {
    /// The content checks this job's successes go through (DESIGN §10).
    pub fn content_rules(&self) -> ContentRules {
        ContentRules {
            min_size_bytes: self.min_size_bytes,
            size_drop_percent: self.size_drop_percent,
            stale_hash_check: self.stale_hash_check,
        }
    }

    /// The seed's fields as answered at `now`.
    pub fn seed_answer(&self, now: DateTime<Utc>) -> SeedAnswer {
        match self.schedule() {
            Schedule::Frequency(_) => SeedAnswer {
                expected_hour_utc: self.expected_hour_utc,
                expected_minute_utc: self.expected_minute_utc,
                backup_frequency: self.backup_frequency.into(),
            },
            schedule @ Schedule::Cron(_) => {
                let next = schedule.next_slot(now);
                SeedAnswer {
                    expected_hour_utc: next.hour(),
                    expected_minute_utc: next.minute(),
                    backup_frequency: AnsweredFrequency::Cron,
                }
            }
        }
    }

    /// The job's schedule: its cron expression in its zone when it has one, else the
    /// seed's fields in UTC.
    pub fn schedule(&self) -> Schedule {
        Schedule::of_job(
            self.schedule.as_ref().map(CronText::expr),
            self.timezone,
            FrequencySchedule {
                frequency: self.backup_frequency,
                hour: self.expected_hour_utc,
                minute: self.expected_minute_utc,
                weekday: self.expected_weekday,
                day_of_month: self.expected_day_of_month,
                grace_minutes: self.grace_minutes,
            },
        )
    }

    /// The schedule in words, as people read it: "every weekday at 22:00 Europe/Paris",
    /// "every day at 02:30 UTC", "on the 1st of the month at 02:30 UTC".
    pub fn describe_schedule(&self) -> String {
        let at = || {
            format!(
                "{:02}:{:02}",
                self.expected_hour_utc, self.expected_minute_utc
            )
        };
        match &self.schedule {
            Some(cron) => format!(
                "{} {}",
                super::cron_words::describe(&cron.expr(), cron.as_str()),
                self.timezone
            ),
            None => match self.backup_frequency {
                Frequency::Hourly => {
                    format!("every hour at :{:02} UTC", self.expected_minute_utc)
                }
                Frequency::Daily => format!("every day at {} UTC", at()),
                Frequency::Weekly => format!(
                    "every {} at {} UTC",
                    // The seed counts from Monday (0), cron's names from Sunday.
                    super::cron_words::DAYS[(self.expected_weekday as usize + 1) % 7],
                    at()
                ),
                Frequency::Monthly => format!(
                    "on day {} of the month (its last day in shorter months) at {} UTC",
                    self.expected_day_of_month,
                    at()
                ),
            },
        }
    }

    /// Whether an update from `before` to `self` moves the schedule (or re-activates the
    /// job), so that lateness is counted afresh from the moment of the change.
    pub fn schedule_restarts_from(&self, before: &Job) -> bool {
        self.schedule() != before.schedule() || (self.is_active && !before.is_active)
    }
}

/// The grace a job gets when it does not say: the configured default, or half the
/// period for a job whose period is not longer than that default (an hourly job with the
/// default 60 minutes would never be late before its next slot).
pub fn default_grace(frequency: Frequency, configured: u32) -> u32 {
    let period = frequency.min_period_minutes();
    if configured < period {
        configured
    } else {
        period / 2
    }
}

/// The grace a cron job gets when it does not say: the configured default, or half the
/// shortest interval between its slots in the coming 366 days when that default is not
/// shorter than the interval (the seed's rule, with the interval for the period). At
/// least 1: an expression firing every minute then fails [`check_schedule_grace`].
pub fn default_cron_grace(schedule: &Schedule, configured: u32, now: DateTime<Utc>) -> u32 {
    let Some(shortest) = schedule.shortest_interval(now) else {
        return configured;
    };
    let minutes = u32::try_from(shortest.length().num_minutes()).unwrap_or(u32::MAX);
    if configured < minutes {
        configured
    } else {
        (minutes / 2).max(1)
    }
}

/// The windows must tile time, so the grace must be shorter than the period.
pub fn check_grace(frequency: Frequency, grace: u32) -> Result<(), String> {
    let period = frequency.min_period_minutes();
    if grace >= period {
        Err(format!(
            "grace_minutes must be shorter than the period of a {} job ({period} minutes)",
            frequency.as_str()
        ))
    } else {
        Ok(())
    }
}

/// The rule for either form of schedule (DESIGN §11): a cron schedule's grace must be
/// shorter than the shortest interval between two consecutive slots in the coming 366 days
/// (daylight saving time makes them uneven, so the message names the interval); the
/// seed's form keeps [`check_grace`].
pub fn check_schedule_grace(
    schedule: &Schedule,
    grace: u32,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let cron = match schedule {
        Schedule::Frequency(s) => return check_grace(s.frequency, grace),
        Schedule::Cron(cron) => cron,
    };
    let Some(shortest) = schedule.shortest_interval(now) else {
        return Ok(());
    };
    let minutes = shortest.length().num_minutes();
    if i64::from(grace) < minutes {
        return Ok(());
    }
    let wall = |t: DateTime<Utc>| cron.wall_time(t).format("%Y-%m-%d %H:%M");
    Err(format!(
        "grace_minutes must be shorter than the shortest interval between two consecutive \
         slots in the coming {INTERVAL_HORIZON_DAYS} days: {minutes} minutes, from {} to {} \
         {} ({} to {})",
        wall(shortest.from),
        wall(shortest.to),
        cron.zone,
        super::time::format(shortest.from),
        super::time::format(shortest.to),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grace_is_halved_for_jobs_shorter_than_it() {
        assert_eq!(default_grace(Frequency::Hourly, 60), 30);
        assert_eq!(default_grace(Frequency::Hourly, 45), 45);
        assert_eq!(default_grace(Frequency::Daily, 60), 60);
        assert_eq!(default_grace(Frequency::Daily, 1440), 720);
        assert_eq!(default_grace(Frequency::Weekly, 1440), 1440);
    }

    #[test]
    fn a_cron_grace_must_be_shorter_than_the_shortest_coming_interval() {
        use crate::domain::schedule::CronSchedule;
        let cron = |expr: &str, zone: &str| {
            Schedule::Cron(CronSchedule {
                expr: expr.parse().unwrap_or_else(|e| panic!("{expr}: {e}")),
                zone: zone.parse().unwrap_or_else(|e| panic!("{zone}: {e}")),
                grace_minutes: 1,
            })
        };
        let now = "2027-01-01T00:00:00Z".parse().unwrap_or_default();
        let cases = [
            // A daily 02:30 in Paris: 23 hours from the spring change to the next day.
            ("30 2 * * *", "Europe/Paris", 1379, None),
            (
                "30 2 * * *",
                "Europe/Paris",
                1380,
                Some(
                    "grace_minutes must be shorter than the shortest interval between two \
                     consecutive slots in the coming 366 days: 1380 minutes, from 2027-03-28 \
                     03:30 to 2027-03-29 02:30 Europe/Paris (2027-03-28T01:30:00Z to \
                     2027-03-29T00:30:00Z)",
                ),
            ),
            ("30 2 * * *", "UTC", 1439, None),
            // Hourly in Lord Howe: 30 minutes across the spring change.
            ("0 * * * *", "Australia/Lord_Howe", 29, None),
            (
                "0 * * * *",
                "Australia/Lord_Howe",
                30,
                Some(
                    "grace_minutes must be shorter than the shortest interval between two \
                     consecutive slots in the coming 366 days: 30 minutes, from 2027-10-03 \
                     02:30 to 2027-10-03 03:00 Australia/Lord_Howe (2027-10-02T15:30:00Z to \
                     2027-10-02T16:00:00Z)",
                ),
            ),
            // Vixie's rule: the 1st and every Monday, so two days in a row at times.
            ("0 2 1 * MON", "UTC", 1439, None),
            ("0 2 1 * MON", "UTC", 1440, Some("1440 minutes")),
        ];
        for (expr, zone, grace, error) in cases {
            let got = check_schedule_grace(&cron(expr, zone), grace, now);
            match error {
                None => assert_eq!(got, Ok(()), "{expr} in {zone}, grace {grace}"),
                Some(message) => {
                    let err = got.expect_err(expr);
                    assert!(
                        err.contains(message),
                        "{expr} in {zone}, grace {grace}: {err:?} should contain {message:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_seed_form_keeps_its_period_rule() {
        let daily = Schedule::Frequency(FrequencySchedule {
            frequency: Frequency::Daily,
            hour: 2,
            minute: 30,
            weekday: 0,
            day_of_month: 1,
            grace_minutes: 60,
        });
        let now = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(check_schedule_grace(&daily, 1439, now), Ok(()));
        assert_eq!(
            check_schedule_grace(&daily, 1440, now),
            check_grace(Frequency::Daily, 1440)
        );
    }

    #[test]
    fn grace_must_be_shorter_than_the_period() {
        assert!(check_grace(Frequency::Hourly, 59).is_ok());
        assert!(check_grace(Frequency::Hourly, 60).is_err());
        assert!(check_grace(Frequency::Daily, 1439).is_ok());
        assert!(check_grace(Frequency::Daily, 1440).is_err());
        assert!(check_grace(Frequency::Monthly, 1440).is_ok());
    }
}
