//! Expected backup jobs: the contract of a new job and of an update (read from JSON, the
//! same for the API and `jobs import`), creating, reading, changing and deleting them, and
//! where a job's backup file must be.

use chrono::{DateTime, Timelike, Utc};
use rusqlite::{Connection, TransactionBehavior};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::access::job_for;
use super::input::{Fields, Need};
use super::{FieldError, ServiceError};
use crate::db::jobs::{self as store, JobFilter};
use crate::domain::auth::Principal;
use crate::domain::content::{self, ContentRules};
use crate::domain::job::{self, CronText, Job, NAME_MAX, NAME_MIN, NOTIFY_EMAILS_MAX};
use crate::domain::schedule::{self, CronSchedule, Frequency, Schedule};
use crate::domain::template::{self, PathTemplate, TemplateValues};
use crate::domain::time;
use crate::domain::zone::Zone;

/// A new job. Only the seed's fields are required; the others take their defaults. With a
/// `schedule`, the seed's `expected_hour_utc`, `expected_minute_utc` and `backup_frequency`
/// may be left out (DESIGN §11).
// The schema's bounds and patterns are not written here: `openapi::RequestBounds` sets
// them from the same constants `read_fields` checks, and `openapi::document_json` says
// which fields a job without a `schedule` requires.
#[derive(Debug, Clone, ToSchema)]
pub struct JobCreate {
    pub database_name: String,
    pub agent_id_responsible: String,
    pub company_name: String,
    pub city: String,
    /// Required without a `schedule`.
    #[schema(nullable = false)]
    pub expected_hour_utc: Option<u32>,
    /// Required without a `schedule`.
    #[schema(nullable = false)]
    pub expected_minute_utc: Option<u32>,
    /// Required without a `schedule`.
    #[schema(nullable = false)]
    pub backup_frequency: Option<Frequency>,
    /// Where the file should land: placeholders `{database_name}`, `{company_name}`,
    /// `{city}`, `{agent_id_responsible}`, `{job_id}` and `%Y %m %d %H %M` from the slot
    /// (`%%` for a literal %); no `..` segment. The pattern states this grammar. A job with
    /// a `schedule` renders the times from the slot's wall time in its `timezone`.
    pub final_storage_path_template: String,
    /// 0 = Monday … 6 = Sunday, for weekly jobs (default 0).
    pub expected_weekday: Option<u32>,
    /// 1..=31 for monthly jobs (default 1); a shorter month uses its last day.
    pub expected_day_of_month: Option<u32>,
    /// Default from the configuration (60; an hourly job gets at most 30; a cron job at
    /// most half the shortest interval between its slots when the default is not shorter
    /// than it). Must be shorter than the period (for a cron job, than the shortest
    /// interval between two consecutive slots in the coming 366 days).
    pub grace_minutes: Option<u32>,
    /// Default true; an inactive job is never late.
    pub is_active: Option<bool>,
    /// Extra recipients of this job's alerts.
    #[schema(value_type = Option<Vec<EmailAddress>>)]
    pub notify_emails: Option<Vec<String>>,
    /// A 5-field cron expression, `minute hour day-of-month month day-of-week`, with `*`,
    /// lists, ranges, steps and the names `JAN`–`DEC`, `SUN`–`SAT` (day-of-week 0 and 7 are
    /// Sunday; when both day fields are restricted, either may match). Its slots are the
    /// instants whose wall-clock time in `timezone` matches. Null or absent: the seed's
    /// fields schedule the job, in UTC.
    #[schema(value_type = Option<String>, example = "30 2 * * *")]
    pub schedule: Option<CronText>,
    /// An IANA time zone (default "UTC"); another zone needs a `schedule`.
    #[schema(value_type = Option<String>, nullable = false, example = "Europe/Paris")]
    pub timezone: Option<Zone>,
    /// Minutes a run may take: a run started (`status: "started"`) and not finished after
    /// this long raises one `hung` alert. Default null: never.
    #[schema(value_type = Option<u32>)]
    pub max_duration_minutes: Option<Option<u32>>,
    /// A success with a smaller `backup_size_bytes` is suspect. Default 1: a 0-byte dump
    /// is never "ok".
    pub min_size_bytes: Option<i64>,
    /// A success smaller than (100 − p) % of the median size of the job's previous 10
    /// successes that had a size is suspect. Default 50; null disables the check.
    #[schema(value_type = Option<u32>)]
    pub size_drop_percent: Option<Option<u32>>,
    /// A success whose `backup_hash` equals that of the job's previous success is suspect
    /// ("the same file again"). Default true.
    pub stale_hash_check: Option<bool>,
    /// Until then the job's alerts are recorded in the outbox as suppressed and not sent
    /// (maintenance). Default null.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub snoozed_until: Option<Option<DateTime<Utc>>>,
    /// Why it is snoozed (at most 255 characters).
    #[schema(value_type = Option<String>)]
    pub snooze_reason: Option<Option<String>>,
    /// While the job stays late, failed, suspect or hung, a `reminder` alert every this many
    /// minutes after the first alert. Default null: `alerts.repeat_every_minutes`.
    #[schema(value_type = Option<u32>)]
    pub repeat_every_minutes: Option<Option<u32>>,
}

/// An email address (as documentation: the lists hold plain strings).
#[derive(Debug, Clone, ToSchema)]
#[schema(value_type = String, format = Email)]
pub struct EmailAddress(pub String);

/// A partial update: any subset of the job's fields, validated as on create.
// Bounds as for `JobCreate`.
#[derive(Debug, Clone, Default, ToSchema)]
pub struct JobUpdate {
    #[schema(nullable = false)]
    pub database_name: Option<String>,
    #[schema(nullable = false)]
    pub agent_id_responsible: Option<String>,
    #[schema(nullable = false)]
    pub company_name: Option<String>,
    #[schema(nullable = false)]
    pub city: Option<String>,
    #[schema(nullable = false)]
    pub expected_hour_utc: Option<u32>,
    #[schema(nullable = false)]
    pub expected_minute_utc: Option<u32>,
    #[schema(nullable = false)]
    pub backup_frequency: Option<Frequency>,
    #[schema(nullable = false)]
    pub final_storage_path_template: Option<String>,
    #[schema(nullable = false)]
    pub expected_weekday: Option<u32>,
    #[schema(nullable = false)]
    pub expected_day_of_month: Option<u32>,
    #[schema(nullable = false)]
    pub grace_minutes: Option<u32>,
    #[schema(nullable = false)]
    pub is_active: Option<bool>,
    #[schema(nullable = false, value_type = Option<Vec<EmailAddress>>)]
    pub notify_emails: Option<Vec<String>>,
    /// A cron expression, as on create; `null` switches the job back to the seed's form,
    /// and then `backup_frequency`, `expected_hour_utc` and `expected_minute_utc` must come
    /// with it (and `timezone` returns to "UTC" unless given).
    #[schema(value_type = Option<String>, example = "30 2 * * *")]
    pub schedule: Option<Option<CronText>>,
    /// An IANA time zone; another zone than "UTC" needs a `schedule`.
    #[schema(value_type = Option<String>, nullable = false, example = "Europe/Paris")]
    pub timezone: Option<Zone>,
    /// As on create; null: never hung.
    #[schema(value_type = Option<u32>)]
    pub max_duration_minutes: Option<Option<u32>>,
    #[schema(nullable = false)]
    pub min_size_bytes: Option<i64>,
    /// As on create; null disables the check.
    #[schema(value_type = Option<u32>)]
    pub size_drop_percent: Option<Option<u32>>,
    #[schema(nullable = false)]
    pub stale_hash_check: Option<bool>,
    /// As on create; null ends the snooze.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub snoozed_until: Option<Option<DateTime<Utc>>>,
    #[schema(value_type = Option<String>)]
    pub snooze_reason: Option<Option<String>>,
    /// As on create; null: the configured `alerts.repeat_every_minutes`.
    #[schema(value_type = Option<u32>)]
    pub repeat_every_minutes: Option<Option<u32>>,
}

/// Reads every field of a create (`need` = Required) or an update (`need` = Optional).
fn read_fields(f: &mut Fields<'_>, need: Need) -> JobUpdate {
    use schedule::{
        DAY_OF_MONTH_MAX, DAY_OF_MONTH_MIN, GRACE_MAX, GRACE_MIN, HOUR_MAX, HOUR_MIN, MINUTE_MAX,
        MINUTE_MIN, WEEKDAY_MAX, WEEKDAY_MIN,
    };
    let opt = if need == Need::Required {
        Need::Nullable
    } else {
        need
    };
    // With a cron expression, the seed's schedule fields may be left out (DESIGN §11).
    let seed = if f.has("schedule") {
        Need::Optional
    } else {
        need
    };
    JobUpdate {
        database_name: f.name("database_name", NAME_MIN, NAME_MAX, need),
        agent_id_responsible: f.name("agent_id_responsible", NAME_MIN, NAME_MAX, need),
        company_name: f.name("company_name", NAME_MIN, NAME_MAX, need),
        city: f.name("city", NAME_MIN, NAME_MAX, need),
        expected_hour_utc: f.small("expected_hour_utc", HOUR_MIN, HOUR_MAX, seed),
        expected_minute_utc: f.small("expected_minute_utc", MINUTE_MIN, MINUTE_MAX, seed),
        backup_frequency: f.choice("backup_frequency", seed),
        final_storage_path_template: f
            .name(
                "final_storage_path_template",
                template::TEMPLATE_MIN,
                template::TEMPLATE_MAX,
                need,
            )
            .and_then(|t| match PathTemplate::parse(&t) {
                Ok(_) => Some(t),
                Err(e) => {
                    f.refuse_field(
                        "final_storage_path_template",
                        "value_error",
                        format!("Value error, {e}"),
                    );
                    None
                }
            }),
        expected_weekday: f.small("expected_weekday", WEEKDAY_MIN, WEEKDAY_MAX, opt),
        expected_day_of_month: f.small(
            "expected_day_of_month",
            DAY_OF_MONTH_MIN,
            DAY_OF_MONTH_MAX,
            opt,
        ),
        grace_minutes: f.small("grace_minutes", GRACE_MIN, GRACE_MAX, opt),
        is_active: f.boolean(
            "is_active",
            if need == Need::Required {
                Need::Nullable
            } else {
                Need::Optional
            },
        ),
        notify_emails: f.emails("notify_emails", NOTIFY_EMAILS_MAX, opt),
        schedule: f.cron("schedule"),
        timezone: f.zone(
            "timezone",
            if need == Need::Required {
                Need::Optional
            } else {
                need
            },
        ),
        max_duration_minutes: f.nullable_small(
            "max_duration_minutes",
            content::MAX_DURATION_MIN,
            content::MAX_DURATION_MAX,
        ),
        min_size_bytes: f.int("min_size_bytes", content::MIN_SIZE_MIN, i64::MAX, opt),
        size_drop_percent: f.nullable_small(
            "size_drop_percent",
            content::SIZE_DROP_MIN,
            content::SIZE_DROP_MAX,
        ),
        stale_hash_check: f.boolean("stale_hash_check", opt),
        snoozed_until: f.nullable_datetime("snoozed_until"),
        snooze_reason: f.nullable_text("snooze_reason", job::SNOOZE_REASON_MAX),
        repeat_every_minutes: f.nullable_small(
            "repeat_every_minutes",
            job::REPEAT_MIN,
            job::REPEAT_MAX,
        ),
    }
}

/// The 422 of a zone other than UTC given without a schedule (DESIGN §11).
fn zone_without_schedule(zone: Zone) -> FieldError {
    FieldError::new(
        vec!["body".into(), "timezone".into()],
        "value_error",
        format!(
            "Value error, timezone {zone} needs a schedule: without one, the job's slots are \
             the seed's fields in UTC; send a cron expression in schedule, or leave timezone \
             out"
        ),
    )
}

fn schedule_error(reason: String) -> ServiceError {
    ServiceError::Invalid(vec![FieldError::new(
        vec!["body".into(), "schedule".into()],
        "value_error",
        format!("Value error, {reason}"),
    )])
}

fn grace_error(reason: String) -> ServiceError {
    ServiceError::Invalid(vec![FieldError::new(
        vec!["body".into(), "grace_minutes".into()],
        "value_error",
        format!("Value error, {reason}"),
    )])
}

impl JobCreate {
    pub fn parse(body: &Value) -> Result<Self, ServiceError> {
        let mut f =
            Fields::of(body, vec!["body".into()]).map_err(|e| ServiceError::Invalid(vec![e]))?;
        let u = read_fields(&mut f, Need::Required);
        let schedule = u.schedule.clone().flatten();
        let mut errors = f.finish().err().unwrap_or_default();
        if let Some(zone) = u.timezone.filter(|z| *z != Zone::UTC && schedule.is_none()) {
            if body.get("schedule").is_none_or(Value::is_null) {
                errors.push(zone_without_schedule(zone));
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::Invalid(errors));
        }
        // Every required field is present once the fields were read without error.
        let missing = || ServiceError::invalid(vec!["body".into()], "missing", "Field required");
        Ok(Self {
            database_name: u.database_name.ok_or_else(missing)?,
            agent_id_responsible: u.agent_id_responsible.ok_or_else(missing)?,
            company_name: u.company_name.ok_or_else(missing)?,
            city: u.city.ok_or_else(missing)?,
            expected_hour_utc: u.expected_hour_utc,
            expected_minute_utc: u.expected_minute_utc,
            backup_frequency: u.backup_frequency,
            final_storage_path_template: u.final_storage_path_template.ok_or_else(missing)?,
            expected_weekday: u.expected_weekday,
            expected_day_of_month: u.expected_day_of_month,
            grace_minutes: u.grace_minutes,
            is_active: u.is_active,
            notify_emails: u.notify_emails,
            schedule,
            timezone: u.timezone,
            max_duration_minutes: u.max_duration_minutes,
            min_size_bytes: u.min_size_bytes,
            size_drop_percent: u.size_drop_percent,
            stale_hash_check: u.stale_hash_check,
            snoozed_until: u.snoozed_until,
            snooze_reason: u.snooze_reason,
            repeat_every_minutes: u.repeat_every_minutes,
        })
    }

    /// The job to store, with defaults filled in and the grace checked against the period
    /// (for a cron job, against the shortest interval between its slots from `now` on).
    pub fn into_job(self, default_grace: u32, now: DateTime<Utc>) -> Result<Job, ServiceError> {
        let missing = || ServiceError::invalid(vec!["body".into()], "missing", "Field required");
        let timezone = self.timezone.unwrap_or(Zone::UTC);
        let (frequency, hour, minute, grace) = match &self.schedule {
            None => {
                let frequency = self.backup_frequency.ok_or_else(missing)?;
                let grace = self
                    .grace_minutes
                    .unwrap_or_else(|| job::default_grace(frequency, default_grace));
                job::check_grace(frequency, grace).map_err(grace_error)?;
                (
                    frequency,
                    self.expected_hour_utc.ok_or_else(missing)?,
                    self.expected_minute_utc.ok_or_else(missing)?,
                    grace,
                )
            }
            Some(cron) => {
                let schedule = Schedule::Cron(CronSchedule {
                    expr: cron.expr(),
                    zone: timezone,
                    grace_minutes: 1,
                });
                let grace = match self.grace_minutes {
                    Some(grace) => {
                        job::check_schedule_grace(&schedule, grace, now).map_err(grace_error)?;
                        grace
                    }
                    None => {
                        let grace = job::default_cron_grace(&schedule, default_grace, now);
                        job::check_schedule_grace(&schedule, grace, now).map_err(|reason| {
                            schedule_error(format!(
                                "{cron:?} fires too often for any grace: {reason}"
                            ))
                        })?;
                        grace
                    }
                };
                // The seed's fields, unused while the schedule is set: as given, else the
                // first slot's, so the stored row reads like the answer at creation.
                let first = schedule.next_slot(now);
                (
                    self.backup_frequency.unwrap_or(Frequency::Daily),
                    self.expected_hour_utc.unwrap_or(first.hour()),
                    self.expected_minute_utc.unwrap_or(first.minute()),
                    grace,
                )
            }
        };
        let job = Job {
            id: 0,
            database_name: self.database_name,
            agent_id_responsible: self.agent_id_responsible,
            company_name: self.company_name,
            city: self.city,
            expected_hour_utc: hour,
            expected_minute_utc: minute,
            backup_frequency: frequency,
            final_storage_path_template: self.final_storage_path_template,
            expected_weekday: self.expected_weekday.unwrap_or(0),
            expected_day_of_month: self.expected_day_of_month.unwrap_or(1),
            grace_minutes: grace,
            is_active: self.is_active.unwrap_or(true),
            notify_emails: self.notify_emails.unwrap_or_default(),
            schedule: self.schedule,
            timezone,
            max_duration_minutes: self.max_duration_minutes.flatten(),
            min_size_bytes: self
                .min_size_bytes
                .unwrap_or(ContentRules::default().min_size_bytes),
            size_drop_percent: self
                .size_drop_percent
                .unwrap_or(ContentRules::default().size_drop_percent),
            stale_hash_check: self
                .stale_hash_check
                .unwrap_or(ContentRules::default().stale_hash_check),
            snoozed_until: self.snoozed_until.flatten(),
            snooze_reason: self.snooze_reason.flatten(),
            repeat_every_minutes: self.repeat_every_minutes.flatten(),
            // Given by the database when the job is stored.
            ping_key: String::new(),
            created_at: now,
            updated_at: now,
        };
        if let Some(climbs) = PathClimbs::of(&job) {
            return Err(climbs.invalid(&climbs.fields));
        }
        Ok(job)
    }
}

impl JobUpdate {
    pub fn parse(body: &Value) -> Result<Self, ServiceError> {
        let mut f =
            Fields::of(body, vec!["body".into()]).map_err(|e| ServiceError::Invalid(vec![e]))?;
        let u = read_fields(&mut f, Need::Optional);
        f.finish().map_err(ServiceError::Invalid)?;
        Ok(u)
    }

    /// `job` with this update applied at `now`, the grace checked against the (new) period
    /// (for a cron job, the shortest interval between its slots from `now` on).
    /// A body that breaks the rule by itself is invalid (422); one that breaks it only
    /// together with what the job already holds conflicts with the job (409).
    pub fn apply(self, job: &Job, now: DateTime<Utc>) -> Result<Job, ServiceError> {
        let switching_back = matches!(self.schedule, Some(None)) && job.schedule.is_some();
        if switching_back {
            let absent: Vec<&str> = [
                ("backup_frequency", self.backup_frequency.is_some()),
                ("expected_hour_utc", self.expected_hour_utc.is_some()),
                ("expected_minute_utc", self.expected_minute_utc.is_some()),
            ]
            .into_iter()
            .filter(|(_, given)| !given)
            .map(|(name, _)| name)
            .collect();
            if !absent.is_empty() {
                return Err(schedule_error(format!(
                    "schedule null switches the job back to the seed's form, which needs \
                     {} in the same update",
                    absent.join(", ")
                )));
            }
        }
        let schedule_given = matches!(self.schedule, Some(Some(_)));
        let cron_after = match &self.schedule {
            Some(s) => s.is_some(),
            None => job.schedule.is_some(),
        };
        if let Some(zone) = self.timezone.filter(|z| *z != Zone::UTC && !cron_after) {
            return Err(ServiceError::Invalid(vec![zone_without_schedule(zone)]));
        }
        let frequency_given = self.backup_frequency.is_some();
        let grace_given = self.grace_minutes.is_some();
        let given = self.path_fields_given();
        let mut j = job.clone();
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { j.$field = v; } )* };
        }
        set!(
            database_name,
            agent_id_responsible,
            company_name,
            city,
            expected_hour_utc,
            expected_minute_utc,
            backup_frequency,
            final_storage_path_template,
            expected_weekday,
            expected_day_of_month,
            grace_minutes,
            is_active,
            notify_emails,
            schedule,
            timezone,
            max_duration_minutes,
            min_size_bytes,
            size_drop_percent,
            stale_hash_check,
            snoozed_until,
            snooze_reason,
            repeat_every_minutes
        );
        if j.schedule.is_none() {
            // Back to the seed's form: its fields are in UTC.
            j.timezone = Zone::UTC;
        }
        let schedule = j.schedule();
        job::check_schedule_grace(&schedule, j.grace_minutes, now).map_err(|reason| {
            let form_given = if cron_after {
                schedule_given
            } else {
                frequency_given
            };
            if grace_given && form_given {
                return grace_error(reason);
            }
            let form = match &j.schedule {
                Some(cron) => format!("schedule {:?} in {}", cron.as_str(), j.timezone),
                None => format!("backup_frequency {}", j.backup_frequency.as_str()),
            };
            ServiceError::Conflict(format!(
                "Job {} would have grace_minutes {} and {form}: {reason}; send both fields together",
                job.id, j.grace_minutes,
            ))
        })?;
        // Refused when the update takes part in it; a stored job that already climbs (written
        // before this rule) may still be paused or rescheduled.
        if let Some(climbs) = PathClimbs::of(&j) {
            let named: Vec<&'static str> = climbs
                .fields
                .iter()
                .copied()
                .filter(|f| given.contains(f))
                .collect();
            if !named.is_empty() {
                return Err(climbs.invalid(&named));
            }
        }
        Ok(j)
    }

    /// The fields of this update that the storage path is rendered from.
    fn path_fields_given(&self) -> Vec<&'static str> {
        [
            (
                "final_storage_path_template",
                &self.final_storage_path_template,
            ),
            ("database_name", &self.database_name),
            ("company_name", &self.company_name),
            ("city", &self.city),
            ("agent_id_responsible", &self.agent_id_responsible),
        ]
        .into_iter()
        .filter(|(_, value)| value.is_some())
        .map(|(name, _)| name)
        .collect()
    }
}

/// A job whose storage path would render with a `..` segment, climbing out of its
/// directory (DESIGN §4: a path never does): the fields that formed it, the template first.
#[derive(Debug)]
struct PathClimbs {
    fields: Vec<&'static str>,
    why: String,
}

impl PathClimbs {
    /// Whether `job`'s path climbs. Dots come from the template's text and the names, never
    /// from the slot, so one slot tells for all.
    fn of(job: &Job) -> Option<Self> {
        let template = PathTemplate::parse(&job.final_storage_path_template).ok()?;
        let climbs = template
            .render(&values_of(job), DateTime::UNIX_EPOCH)
            .err()?;
        let with: Vec<String> = climbs
            .fields
            .iter()
            .map(|f| format!("{f} {:?}", value_of(job, f)))
            .collect();
        let with = if with.is_empty() {
            String::new()
        } else {
            format!(" with {}", with.join(" and "))
        };
        let mut fields = vec!["final_storage_path_template"];
        fields.extend(climbs.fields);
        Some(Self {
            why: format!(
                "final_storage_path_template {:?}{with} renders a '..' segment: the path would climb out of its directory",
                job.final_storage_path_template
            ),
            fields,
        })
    }

    /// A 422 with one item for each of `named`.
    fn invalid(&self, named: &[&'static str]) -> ServiceError {
        let change = self.fields.join(", ");
        ServiceError::Invalid(
            named
                .iter()
                .map(|field| {
                    FieldError::new(
                        vec!["body".into(), (*field).into()],
                        "value_error",
                        format!("Value error, {}; change one of {change}", self.why),
                    )
                })
                .collect(),
        )
    }
}

/// The values a job's template is rendered with.
fn values_of(job: &Job) -> TemplateValues<'_> {
    TemplateValues {
        database_name: &job.database_name,
        company_name: &job.company_name,
        city: &job.city,
        agent_id_responsible: &job.agent_id_responsible,
        job_id: job.id,
    }
}

/// The value of one of a job's text fields, by its name.
fn value_of<'a>(job: &'a Job, field: &str) -> &'a str {
    match field {
        "database_name" => &job.database_name,
        "company_name" => &job.company_name,
        "city" => &job.city,
        "agent_id_responsible" => &job.agent_id_responsible,
        _ => "",
    }
}

/// Stores a new, already validated job.
pub fn create(conn: &Connection, job: &Job, now: DateTime<Utc>) -> Result<Job, ServiceError> {
    let job = store::insert(conn, job, now)?;
    tracing::info!(job_id = job.id, "job created");
    Ok(job)
}

/// One job, if `caller` may see it.
pub fn get(conn: &Connection, caller: &Principal, id: i64) -> Result<Job, ServiceError> {
    job_for(conn, caller, id)
}

/// A page of jobs by id and the total after filters; an agent token sees its own only.
pub fn list(
    conn: &Connection,
    caller: &Principal,
    mut filter: JobFilter,
    skip: i64,
    limit: i64,
) -> Result<(Vec<Job>, i64), ServiceError> {
    if let Some(agent) = caller.agent() {
        if filter
            .agent_id_responsible
            .as_deref()
            .is_some_and(|asked| asked != agent)
        {
            return Ok((Vec::new(), 0));
        }
        filter.agent_id_responsible = Some(agent.to_owned());
    }
    Ok(store::list(conn, &filter, skip, limit)?)
}

/// Applies `change` to the stored job `id` in one immediate transaction. Changing the
/// schedule, or re-activating the job, counts lateness afresh from `now`.
pub fn update(
    conn: &mut Connection,
    id: i64,
    change: impl FnOnce(&Job) -> Result<Job, ServiceError>,
    now: DateTime<Utc>,
) -> Result<Job, ServiceError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let before = store::get(&tx, id)?.ok_or_else(ServiceError::job_not_found)?;
    let after = change(&before)?;
    let job = store::update(&tx, &after, after.schedule_restarts_from(&before), now)?;
    tx.commit()?;
    tracing::info!(job_id = id, "job updated");
    Ok(job)
}

/// A snooze for a whole company, site or agent (DESIGN §13): `POST /api/v1/jobs/snooze`.
#[derive(Debug, Clone, ToSchema)]
pub struct SnoozeRequest {
    /// Until when (RFC 3339, in the future); null ends the snooze of the jobs named.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<DateTime<Utc>>,
    /// The company whose jobs to snooze (exact name).
    pub company_name: Option<String>,
    /// The city (site) whose jobs to snooze; with `company_name`, that company's site only.
    pub city: Option<String>,
    /// The agent whose jobs to snooze (a host in maintenance).
    pub agent_id_responsible: Option<String>,
    /// Why, for the people who see it (at most 255 characters).
    pub reason: Option<String>,
}

/// What a snooze did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Snoozed {
    #[serde(serialize_with = "time::serialize_opt")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub until: Option<DateTime<Utc>>,
    pub reason: Option<String>,
    /// The jobs snoozed (or woken), by id.
    pub job_ids: Vec<i64>,
}

impl SnoozeRequest {
    pub fn parse(body: &Value, now: DateTime<Utc>) -> Result<Self, ServiceError> {
        let mut f =
            Fields::of(body, vec!["body".into()]).map_err(|e| ServiceError::Invalid(vec![e]))?;
        if !f.has("until") && body.get("until").is_none() {
            f.refuse_field("until", "missing", "Field required");
        }
        let until = f.nullable_datetime("until").flatten();
        let request = Self {
            until,
            company_name: f.name("company_name", NAME_MIN, NAME_MAX, Need::Nullable),
            city: f.name("city", NAME_MIN, NAME_MAX, Need::Nullable),
            agent_id_responsible: f.name(
                "agent_id_responsible",
                NAME_MIN,
                NAME_MAX,
                Need::Nullable,
            ),
            reason: f.nullable_text("reason", job::SNOOZE_REASON_MAX).flatten(),
        };
        if let Some(until) = until.filter(|u| *u <= now) {
            f.refuse_field(
                "until",
                "value_error",
                format!(
                    "Value error, until {} is not in the future: send null to end a snooze",
                    time::format(until)
                ),
            );
        }
        f.finish().map_err(ServiceError::Invalid)?;
        if request.company_name.is_none()
            && request.city.is_none()
            && request.agent_id_responsible.is_none()
        {
            return Err(ServiceError::invalid(
                vec!["body".into()],
                "value_error",
                "Value error, name the jobs to snooze: company_name, city or agent_id_responsible (or snooze one job with PATCH snoozed_until)",
            ));
        }
        Ok(request)
    }
}

/// Snoozes (or wakes) every job the request names; answers which.
pub fn snooze(
    conn: &Connection,
    request: &SnoozeRequest,
    now: DateTime<Utc>,
) -> Result<Snoozed, ServiceError> {
    let filter = JobFilter {
        company_name: request.company_name.clone(),
        city: request.city.clone(),
        agent_id_responsible: request.agent_id_responsible.clone(),
        is_active: None,
    };
    let job_ids = store::snooze(conn, &filter, request.until, request.reason.as_deref(), now)?;
    tracing::info!(jobs = job_ids.len(), until = ?request.until, "jobs snoozed");
    Ok(Snoozed {
        until: request.until,
        reason: request.reason.clone(),
        job_ids,
    })
}

/// Gives a job a new ping key: its old ping URL stops working at once.
pub fn rotate_ping_key(conn: &Connection, id: i64) -> Result<Job, ServiceError> {
    let job = store::rotate_ping_key(conn, id)?.ok_or_else(ServiceError::job_not_found)?;
    tracing::info!(job_id = id, "ping key replaced");
    Ok(job)
}

/// Deletes a job; its entries and alerts go with it.
pub fn delete(conn: &Connection, id: i64) -> Result<Job, ServiceError> {
    let job = store::delete(conn, id)?.ok_or_else(ServiceError::job_not_found)?;
    tracing::info!(job_id = id, "job deleted");
    Ok(job)
}

/// Where a job's backup file should be for one slot.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExpectedPath {
    pub job_id: i64,
    /// The slot whose window holds `at`.
    #[serde(serialize_with = "time::serialize")]
    pub slot_utc: DateTime<Utc>,
    pub path: String,
}

/// The job's storage path rendered for the slot whose window holds `at`. A path that would
/// climb out of its directory is never handed out: 409, naming the fields to change.
pub fn expected_path(job: &Job, at: DateTime<Utc>) -> Result<ExpectedPath, ServiceError> {
    let schedule = job.schedule();
    let slot = schedule.slot_for(at);
    let template = PathTemplate::parse(&job.final_storage_path_template).map_err(|e| {
        ServiceError::Internal(anyhow::anyhow!(
            "stored template of job {} is invalid: {e}",
            job.id
        ))
    })?;
    let path = template
        .render_wall(&values_of(job), schedule.wall_time(slot))
        .map_err(|_| {
            let why = PathClimbs::of(job).map_or_else(
                || "its storage path would climb out of its directory".to_owned(),
                |c| format!("{}; change one of {}", c.why, c.fields.join(", ")),
            );
            ServiceError::Conflict(format!("Job {}: {why}", job.id))
        })?;
    Ok(ExpectedPath {
        job_id: job.id,
        slot_utc: slot,
        path,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(template: &str, city: &str) -> JobCreate {
        let mut job = JobCreate::parse(&json!({
            "database_name": "erp",
            "agent_id_responsible": "agent-1",
            "company_name": "acme",
            "city": "Lyon",
            "expected_hour_utc": 2,
            "expected_minute_utc": 30,
            "backup_frequency": "daily",
            "final_storage_path_template": template,
        }))
        .unwrap();
        // Names the API refuses, as a database written by other means may hold.
        job.city = city.to_owned();
        job
    }

    fn refused_fields(error: ServiceError) -> Vec<String> {
        let ServiceError::Invalid(items) = error else {
            panic!("not a 422: {error:?}")
        };
        items
            .iter()
            .map(|item| {
                assert!(item.msg.contains("'..' segment"), "{}", item.msg);
                format!("{:?}", item.loc[1])
            })
            .collect()
    }

    #[test]
    fn a_job_whose_path_would_climb_is_refused_naming_the_fields() {
        let refused = job("/b/.{city}./x", "")
            .into_job(60, Utc::now())
            .unwrap_err();
        assert_eq!(
            refused_fields(refused),
            ["Name(\"final_storage_path_template\")", "Name(\"city\")"]
        );
        assert!(job("/b/.{city}./x", "a").into_job(60, Utc::now()).is_ok());
    }

    #[test]
    fn an_update_is_refused_only_for_the_fields_it_gives_that_make_the_path_climb() {
        let stored = job("/b/.{city}./x", "a").into_job(60, Utc::now()).unwrap();
        let to_empty_city = JobUpdate {
            city: Some(String::new()),
            ..JobUpdate::default()
        };
        assert_eq!(
            refused_fields(to_empty_city.apply(&stored, Utc::now()).unwrap_err()),
            ["Name(\"city\")"]
        );
        let unrelated = JobUpdate {
            database_name: Some("crm".into()),
            ..JobUpdate::default()
        };
        let mut climbing = stored.clone();
        climbing.city = String::new();
        assert!(
            unrelated.apply(&climbing, Utc::now()).is_ok(),
            "the stored climb is not its doing"
        );
        assert!(matches!(
            expected_path(&climbing, Utc::now()),
            Err(ServiceError::Conflict(_))
        ));
    }
}
