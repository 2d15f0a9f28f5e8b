//! Expected backup jobs: what must happen, for whom, and when.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::schedule::{Frequency, FrequencySchedule, Schedule, INTERVAL_HORIZON_DAYS};

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

/// An expected backup job, as the API returns it. Optional fields always carry their value.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Job {
    pub id: i64,
    pub database_name: String,
    pub agent_id_responsible: String,
    pub company_name: String,
    pub city: String,
    pub expected_hour_utc: u32,
    pub expected_minute_utc: u32,
    pub backup_frequency: Frequency,
    pub final_storage_path_template: String,
    /// 0 = Monday … 6 = Sunday; used by `weekly` jobs.
    pub expected_weekday: u32,
    /// 1..=31; used by `monthly` jobs; a shorter month uses its last day.
    pub expected_day_of_month: u32,
    /// Minutes after the expected time before the backup counts as late.
    pub grace_minutes: u32,
    pub is_active: bool,
    pub notify_emails: Vec<String>,
    #[serde(serialize_with = "super::time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "super::time::serialize")]
    pub updated_at: DateTime<Utc>,
}

impl Job {
    pub fn schedule(&self) -> Schedule {
        Schedule::Frequency(FrequencySchedule {
            frequency: self.backup_frequency,
            hour: self.expected_hour_utc,
            minute: self.expected_minute_utc,
            weekday: self.expected_weekday,
            day_of_month: self.expected_day_of_month,
            grace_minutes: self.grace_minutes,
        })
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
