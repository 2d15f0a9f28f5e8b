//! `/api/v1/jobs`: the expected backup jobs.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::auth::{Admin, Reader};
use super::error::{ApiError, HttpError, ValidationError};
use super::input::{Id, JsonBody, Query};
use super::{badges, paged, ApiState};
use crate::db::jobs::JobFilter;
use crate::domain::job::{Job, SeedAnswer};
use crate::domain::time;
use crate::service::jobs as service;

pub fn router() -> Router<ApiState> {
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
        .route("/api/v1/jobs/{job_id}/ping_key", post(rotate_ping_key))
        .route("/api/v1/jobs/snooze", post(snooze_jobs))
}

pub use crate::service::jobs::{EmailAddress, JobCreate, JobUpdate};

/// A job as the API shows it: its fields, the seed's schedule fields as answered (for a
/// job with a `schedule`: `backup_frequency` "cron" and the UTC hour and minute of its next
/// slot) and the URL of its status badge.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobOut {
    #[serde(flatten)]
    pub job: Job,
    #[serde(flatten)]
    pub seed: SeedAnswer,
    /// The schedule in words: "every weekday at 22:00 Europe/Paris", "every day at 02:30
    /// UTC".
    pub schedule_description: String,
    /// The job's next three slots (UTC), to show in the job's zone and the reader's.
    #[schema(value_type = Vec<String>, format = DateTime)]
    #[serde(serialize_with = "time::serialize_all")]
    pub next_slots_utc: Vec<chrono::DateTime<chrono::Utc>>,
    /// A shields-style SVG of the job's state, shareable without a token.
    pub badge_url: String,
    /// The job's healthchecks-compatible ping URL (DESIGN §12): `{server.public_url}/ping/
    /// {key}`, or the path alone when `public_url` is not set. Its key is the credential:
    /// `POST /api/v1/jobs/{job_id}/ping_key` replaces it.
    pub ping_url: String,
}

impl JobOut {
    /// The answer for `job`, its next slot computed now.
    pub fn new(job: Job, state: &ApiState) -> Self {
        let badge_url = badges::job_badge_url(&state.badge_secret, job.id);
        let now = state.clock.now();
        let seed = job.seed_answer(now);
        let schedule = job.schedule();
        let next_slots_utc = std::iter::successors(Some(schedule.next_slot(now)), |s| {
            Some(schedule.next_slot(*s))
        })
        .take(3)
        .collect();
        Self {
            next_slots_utc,
            schedule_description: job.describe_schedule(),
            ping_url: format!(
                "{}/ping/{}",
                state.settings.server.url_prefix(),
                job.ping_key
            ),
            job,
            seed,
            badge_url,
        }
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
    State(state): State<ApiState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let job =
        JobCreate::parse(&body)?.into_job(state.settings.scheduler.default_grace_minutes, now)?;
    let job = state
        .db
        .run(move |conn| service::create(conn, &job, now))
        .await?;
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
    State(state): State<ApiState>,
    Id(id): Id,
) -> Result<Json<JobOut>, ApiError> {
    let job = state
        .db
        .run(move |conn| service::get(conn, &caller, id))
        .await?;
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
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut q = Query::parse(raw.as_deref());
    let filter = JobFilter {
        company_name: q.text("company_name"),
        city: q.text("city"),
        agent_id_responsible: q.text("agent_id_responsible"),
        is_active: q.boolean("is_active"),
    };
    let page = q.page();
    q.finish()?;
    let (jobs, total) = state
        .db
        .run(move |conn| service::list(conn, &caller, filter, page.skip, page.limit))
        .await?;
    let jobs: Vec<JobOut> = jobs.into_iter().map(|j| JobOut::new(j, &state)).collect();
    Ok(paged(jobs, total))
}

async fn update_job_put(
    admin: Admin,
    state: State<ApiState>,
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
    State(state): State<ApiState>,
    Id(id): Id,
    JsonBody(body): JsonBody,
) -> Result<Json<JobOut>, ApiError> {
    let update = JobUpdate::parse(&body)?;
    let now = state.clock.now();
    let job = state
        .db
        .run(move |conn| service::update(conn, id, |job| update.apply(job, now), now))
        .await?;
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
    State(state): State<ApiState>,
    Id(id): Id,
) -> Result<Json<JobOut>, ApiError> {
    let job = state.db.run(move |conn| service::delete(conn, id)).await?;
    Ok(Json(JobOut::new(job, &state)))
}

/// Replace a job's ping key
///
/// The job's ping URL changes at once: the old key answers `404 not found` from now on.
/// Give the new `ping_url` to the backup tool.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{job_id}/ping_key",
    tag = "jobs",
    params(("job_id" = i64, Path, description = "The job's id")),
    responses(
        (status = 200, description = "The job, with its new ping_url", body = JobOut),
        (status = 404, description = "No such job", body = HttpError),
        (status = 422, description = "Invalid id", body = ValidationError),
    )
)]
pub(super) async fn rotate_ping_key(
    _: Admin,
    State(state): State<ApiState>,
    Id(id): Id,
) -> Result<Json<JobOut>, ApiError> {
    let job = state
        .db
        .run(move |conn| service::rotate_ping_key(conn, id))
        .await?;
    Ok(Json(JobOut::new(job, &state)))
}

pub use crate::service::jobs::{SnoozeRequest, Snoozed};

/// Snooze a company, a site or an agent
///
/// During maintenance: until `until`, the alerts of every job named are recorded in the
/// outbox as `suppressed` and not sent; entries and states are kept as usual. `until: null`
/// ends their snooze. At least one of `company_name`, `city`, `agent_id_responsible`.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/snooze",
    tag = "jobs",
    request_body = SnoozeRequest,
    responses(
        (status = 200, description = "The jobs snoozed (or woken)", body = Snoozed),
        (status = 422, description = "No jobs named, or an until in the past", body = ValidationError),
    )
)]
pub(super) async fn snooze_jobs(
    _: Admin,
    State(state): State<ApiState>,
    JsonBody(body): JsonBody,
) -> Result<Json<Snoozed>, ApiError> {
    let now = state.clock.now();
    let request = SnoozeRequest::parse(&body, now)?;
    let snoozed = state
        .db
        .run(move |conn| service::snooze(conn, &request, now))
        .await?;
    Ok(Json(snoozed))
}

pub use crate::service::jobs::ExpectedPath;

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
        (status = 409, description = "The job's template and names would render a `..` segment: the path is not handed out; the detail names the fields to change", body = HttpError),
        (status = 422, description = "Invalid id or instant", body = ValidationError),
    )
)]
pub(super) async fn expected_path(
    Reader(caller): Reader,
    State(state): State<ApiState>,
    Id(id): Id,
    RawQuery(raw): RawQuery,
) -> Result<Json<ExpectedPath>, ApiError> {
    let mut q = Query::parse(raw.as_deref());
    let query = ExpectedPathQuery {
        at: q.datetime("at"),
    };
    q.finish()?;
    let at = query.at.unwrap_or_else(|| state.clock.now());
    let path = state
        .db
        .run(move |conn| service::expected_path(&service::get(conn, &caller, id)?, at))
        .await?;
    Ok(Json(path))
}
