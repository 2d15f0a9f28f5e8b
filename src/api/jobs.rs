//! `/api/v1/jobs`: the expected backup jobs.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use rusqlite::TransactionBehavior;
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::input::{Fields, Id, JsonBody, Need, Query};
use super::{badges, paged, AppState};
use crate::auth::{job_for, Admin, Reader};
use crate::db::jobs::{self as store, JobFilter};
use crate::domain::job::{self, Job, NAME_MAX, NAME_MIN, NOTIFY_EMAILS_MAX};
use crate::domain::schedule::{self, Frequency};
use crate::domain::template::{self, PathTemplate, TemplateValues};
use crate::domain::time;
use crate::error::{ApiError, FieldError, HttpError, ValidationError};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/jobs", get(list_jobs).post(create_job))
        .route(
            "/api/v1/jobs/{job_id}",
            get(get_job)
                .put(update_job_put)
                .patch(update_job)
                .delete(delete_job),
        )
        .route("/api/v1/jobs/{job_id}/expected_path", get(expected_path))
}

/// A new job. Only the seed's fields are required; the others take their defaults.
// The schema's bounds and patterns are not written here: `openapi::RequestBounds` sets
// them from the same constants `read_fields` checks.
#[derive(Debug, Clone, ToSchema)]
pub struct JobCreate {
    pub database_name: String,
    pub agent_id_responsible: String,
    pub company_name: String,
    pub city: String,
    pub expected_hour_utc: u32,
    pub expected_minute_utc: u32,
    pub backup_frequency: Frequency,
    /// Where the file should land: placeholders `{database_name}`, `{company_name}`,
    /// `{city}`, `{agent_id_responsible}`, `{job_id}` and `%Y %m %d %H %M` from the slot
    /// (`%%` for a literal %); no `..` segment. The pattern states this grammar.
    pub final_storage_path_template: String,
    /// 0 = Monday … 6 = Sunday, for weekly jobs (default 0).
    pub expected_weekday: Option<u32>,
    /// 1..=31 for monthly jobs (default 1); a shorter month uses its last day.
    pub expected_day_of_month: Option<u32>,
    /// Default from the configuration (60; an hourly job gets at most 30). Must be shorter
    /// than the period.
    pub grace_minutes: Option<u32>,
    /// Default true; an inactive job is never late.
    pub is_active: Option<bool>,
    /// Extra recipients of this job's alerts.
    #[schema(value_type = Option<Vec<EmailAddress>>)]
    pub notify_emails: Option<Vec<String>>,
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
    JobUpdate {
        database_name: f.name("database_name", NAME_MIN, NAME_MAX, need),
        agent_id_responsible: f.name("agent_id_responsible", NAME_MIN, NAME_MAX, need),
        company_name: f.name("company_name", NAME_MIN, NAME_MAX, need),
        city: f.name("city", NAME_MIN, NAME_MAX, need),
        expected_hour_utc: f.small("expected_hour_utc", HOUR_MIN, HOUR_MAX, need),
        expected_minute_utc: f.small("expected_minute_utc", MINUTE_MIN, MINUTE_MAX, need),
        backup_frequency: f.choice("backup_frequency", need),
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
    }
}

fn grace_error(reason: String) -> ApiError {
    ApiError::Validation(vec![FieldError::new(
        vec!["body".into(), "grace_minutes".into()],
        "value_error",
        format!("Value error, {reason}"),
    )])
}

impl JobCreate {
    pub fn parse(body: &Value) -> Result<Self, ApiError> {
        let mut f =
            Fields::of(body, vec!["body".into()]).map_err(|e| ApiError::Validation(vec![e]))?;
        let u = read_fields(&mut f, Need::Required);
        f.finish().map_err(ApiError::Validation)?;
        // Every required field is present once finish() passed.
        let missing = || ApiError::invalid(vec!["body".into()], "missing", "Field required");
        Ok(Self {
            database_name: u.database_name.ok_or_else(missing)?,
            agent_id_responsible: u.agent_id_responsible.ok_or_else(missing)?,
            company_name: u.company_name.ok_or_else(missing)?,
            city: u.city.ok_or_else(missing)?,
            expected_hour_utc: u.expected_hour_utc.ok_or_else(missing)?,
            expected_minute_utc: u.expected_minute_utc.ok_or_else(missing)?,
            backup_frequency: u.backup_frequency.ok_or_else(missing)?,
            final_storage_path_template: u.final_storage_path_template.ok_or_else(missing)?,
            expected_weekday: u.expected_weekday,
            expected_day_of_month: u.expected_day_of_month,
            grace_minutes: u.grace_minutes,
            is_active: u.is_active,
            notify_emails: u.notify_emails,
        })
    }

    /// The job to store, with defaults filled in and the grace checked against the period.
    pub fn into_job(self, default_grace: u32, now: DateTime<Utc>) -> Result<Job, ApiError> {
        let grace = self
            .grace_minutes
            .unwrap_or_else(|| job::default_grace(self.backup_frequency, default_grace));
        job::check_grace(self.backup_frequency, grace).map_err(grace_error)?;
        Ok(Job {
            id: 0,
            database_name: self.database_name,
            agent_id_responsible: self.agent_id_responsible,
            company_name: self.company_name,
            city: self.city,
            expected_hour_utc: self.expected_hour_utc,
            expected_minute_utc: self.expected_minute_utc,
            backup_frequency: self.backup_frequency,
            final_storage_path_template: self.final_storage_path_template,
            expected_weekday: self.expected_weekday.unwrap_or(0),
            expected_day_of_month: self.expected_day_of_month.unwrap_or(1),
            grace_minutes: grace,
            is_active: self.is_active.unwrap_or(true),
            notify_emails: self.notify_emails.unwrap_or_default(),
            created_at: now,
            updated_at: now,
        })
    }
}

impl JobUpdate {
    pub fn parse(body: &Value) -> Result<Self, ApiError> {
        let mut f =
            Fields::of(body, vec!["body".into()]).map_err(|e| ApiError::Validation(vec![e]))?;
        let u = read_fields(&mut f, Need::Optional);
        f.finish().map_err(ApiError::Validation)?;
        Ok(u)
    }

    /// `job` with this update applied, the grace checked against the (new) period.
    /// A body that breaks the rule by itself is invalid (422); one that breaks it only
    /// together with what the job already holds conflicts with the job (409).
    pub fn apply(self, job: &Job) -> Result<Job, ApiError> {
        if let (Some(frequency), Some(grace)) = (self.backup_frequency, self.grace_minutes) {
            job::check_grace(frequency, grace).map_err(grace_error)?;
        }
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
            notify_emails
        );
        job::check_grace(j.backup_frequency, j.grace_minutes).map_err(|reason| {
            ApiError::Conflict(format!(
                "Job {} would have grace_minutes {} and backup_frequency {}: {reason}; send both fields together",
                job.id,
                j.grace_minutes,
                j.backup_frequency.as_str()
            ))
        })?;
        Ok(j)
    }
}

/// A job as the API shows it: its fields and the URL of its status badge.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobOut {
    #[serde(flatten)]
    pub job: Job,
    /// A shields-style SVG of the job's state, shareable without a token.
    pub badge_url: String,
}

impl JobOut {
    pub fn new(job: Job, state: &AppState) -> Self {
        let badge_url = badges::job_badge_url(&state.badge_secret, job.id);
        Self { job, badge_url }
    }
}

/// Filters and pagination of the jobs listing.
// The bounds of `skip` and `limit` are set by `openapi::RequestBounds` from `input::Page`.
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobListQuery {
    /// Exact company name.
    pub company_name: Option<String>,
    /// Exact city.
    pub city: Option<String>,
    /// Exact agent id.
    pub agent_id_responsible: Option<String>,
    pub is_active: Option<bool>,
    /// Rows to skip (default 0).
    pub skip: Option<i64>,
    /// Rows to return, 1..=1000 (default 100).
    pub limit: Option<i64>,
}

/// Create a job
#[utoipa::path(
    post,
    path = "/api/v1/jobs/",
    tag = "jobs",
    request_body = JobCreate,
    responses(
        (status = 201, description = "The job, created", body = JobOut),
        (status = 413, description = "Body too large", body = HttpError),
        (status = 422, description = "Invalid job", body = ValidationError),
    )
)]
pub(super) async fn create_job(
    _: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let job =
        JobCreate::parse(&body)?.into_job(state.settings.scheduler.default_grace_minutes, now)?;
    let job = state
        .db
        .run(move |conn| Ok(store::insert(conn, &job, now)?))
        .await?;
    tracing::info!(job_id = job.id, "job created");
    Ok((StatusCode::CREATED, Json(JobOut::new(job, &state))).into_response())
}

/// Get a job
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{job_id}",
    tag = "jobs",
    params(("job_id" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job", body = JobOut),
        (status = 404, description = "No such job", body = HttpError),
        (status = 422, description = "Invalid id", body = ValidationError),
    )
)]
pub(super) async fn get_job(
    Reader(caller): Reader,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<JobOut>, ApiError> {
    let job = state.db.run(move |conn| job_for(conn, &caller, id)).await?;
    Ok(Json(JobOut::new(job, &state)))
}

/// List jobs
///
/// Ordered by id. `X-Total-Count` carries the total after filters.
#[utoipa::path(
    get,
    path = "/api/v1/jobs/",
    tag = "jobs",
    params(JobListQuery),
    responses(
        (status = 200, description = "One page of jobs", body = [JobOut],
            headers(("X-Total-Count" = i64, description = "Jobs matching the filters"))),
        (status = 422, description = "Invalid query", body = ValidationError),
    )
)]
pub(super) async fn list_jobs(
    Reader(caller): Reader,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut q = Query::parse(raw.as_deref());
    let mut filter = JobFilter {
        company_name: q.text("company_name"),
        city: q.text("city"),
        agent_id_responsible: q.text("agent_id_responsible"),
        is_active: q.boolean("is_active"),
    };
    let page = q.page();
    q.finish()?;
    // An agent token lists its own jobs only.
    if let Some(agent) = caller.agent() {
        if filter
            .agent_id_responsible
            .as_deref()
            .is_some_and(|asked| asked != agent)
        {
            return Ok(paged(Vec::<JobOut>::new(), 0));
        }
        filter.agent_id_responsible = Some(agent.to_owned());
    }
    let (jobs, total) = state
        .db
        .run(move |conn| Ok(store::list(conn, &filter, page.skip, page.limit)?))
        .await?;
    let jobs: Vec<JobOut> = jobs.into_iter().map(|j| JobOut::new(j, &state)).collect();
    Ok(paged(jobs, total))
}

async fn update_job_put(
    admin: Admin,
    state: State<AppState>,
    id: Id,
    body: JsonBody,
) -> Result<Json<JobOut>, ApiError> {
    update_job(admin, state, id, body).await
}

/// Update a job (PUT or PATCH)
///
/// Any subset of the fields, each validated as on create. Changing the schedule, or
/// re-activating the job, counts lateness afresh from now.
#[utoipa::path(
    patch,
    path = "/api/v1/jobs/{job_id}",
    tag = "jobs",
    params(("job_id" = i64, Path, description = "The job's id")),
    request_body = JobUpdate,
    responses(
        (status = 200, description = "The job, updated", body = JobOut),
        (status = 404, description = "No such job", body = HttpError),
        (status = 409, description = "The update is valid but, with the job's other fields, breaks the rule that the grace is shorter than the period", body = HttpError),
        (status = 413, description = "Body too large", body = HttpError),
        (status = 422, description = "Invalid update", body = ValidationError),
    )
)]
pub(super) async fn update_job(
    _: Admin,
    State(state): State<AppState>,
    Id(id): Id,
    JsonBody(body): JsonBody,
) -> Result<Json<JobOut>, ApiError> {
    let update = JobUpdate::parse(&body)?;
    let now = Utc::now();
    let job = state
        .db
        .run(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let before = store::get(&tx, id)?.ok_or_else(ApiError::job_not_found)?;
            let after = update.apply(&before)?;
            let job = store::update(&tx, &after, after.schedule_restarts_from(&before), now)?;
            tx.commit()?;
            Ok(job)
        })
        .await?;
    tracing::info!(job_id = id, "job updated");
    Ok(Json(JobOut::new(job, &state)))
}

/// Delete a job
///
/// Its entries go with it.
#[utoipa::path(
    delete,
    path = "/api/v1/jobs/{job_id}",
    tag = "jobs",
    params(("job_id" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The deleted job", body = JobOut),
        (status = 404, description = "No such job", body = HttpError),
        (status = 422, description = "Invalid id", body = ValidationError),
    )
)]
pub(super) async fn delete_job(
    _: Admin,
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<JobOut>, ApiError> {
    let job = state
        .db
        .run(move |conn| store::delete(conn, id)?.ok_or_else(ApiError::job_not_found))
        .await?;
    tracing::info!(job_id = id, "job deleted");
    Ok(Json(JobOut::new(job, &state)))
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

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExpectedPathQuery {
    /// Any instant (RFC 3339); default: now. The path is rendered for the slot whose
    /// window holds it.
    pub at: Option<DateTime<Utc>>,
}

/// Render a job's storage path
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{job_id}/expected_path",
    tag = "jobs",
    params(("job_id" = i64, Path, description = "The job's id"), ExpectedPathQuery),
    responses(
        (status = 200, description = "The path for the slot whose window holds `at`", body = ExpectedPath),
        (status = 404, description = "No such job", body = HttpError),
        (status = 422, description = "Invalid id or instant", body = ValidationError),
    )
)]
pub(super) async fn expected_path(
    Reader(caller): Reader,
    State(state): State<AppState>,
    Id(id): Id,
    RawQuery(raw): RawQuery,
) -> Result<Json<ExpectedPath>, ApiError> {
    let mut q = Query::parse(raw.as_deref());
    let query = ExpectedPathQuery {
        at: q.datetime("at"),
    };
    q.finish()?;
    let at = query.at.unwrap_or_else(Utc::now);
    let job = state.db.run(move |conn| job_for(conn, &caller, id)).await?;
    Ok(Json(render_path(&job, at)?))
}

pub fn render_path(job: &Job, at: DateTime<Utc>) -> Result<ExpectedPath, ApiError> {
    let slot = job.schedule().slot_for(at);
    let template = PathTemplate::parse(&job.final_storage_path_template).map_err(|e| {
        ApiError::Internal(anyhow::anyhow!(
            "stored template of job {} is invalid: {e}",
            job.id
        ))
    })?;
    let values = TemplateValues {
        database_name: &job.database_name,
        company_name: &job.company_name,
        city: &job.city,
        agent_id_responsible: &job.agent_id_responsible,
        job_id: job.id,
    };
    Ok(ExpectedPath {
        job_id: job.id,
        slot_utc: slot,
        path: template.render(&values, slot),
    })
}
