//! `GET /api/v1/status`: every job with its state, last entry, last success and next due.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use utoipa::IntoParams;

use super::auth::Reader;
use super::error::{ApiError, ValidationError};
use super::input::Query;
use super::{paged_from, ApiState};
use crate::db::status::JobStatus;
use crate::domain::status::JobState;
use crate::service::status::{all, StatusFilter};

pub fn router() -> Router<ApiState> {
    Router::new().route("/api/v1/status", get(list_status))
}

/// Filters and pagination of the status listing.
// The bounds of `skip` and `limit` are set by `openapi::RequestBounds` from `input::Page`.
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatusQuery {
    pub state: Option<JobState>,
    /// Exact company name.
    pub company_name: Option<String>,
    pub skip: Option<i64>,
    pub limit: Option<i64>,
}

/// Status of every job
///
/// States: `paused` (inactive) > `failed` (the latest report failed) > `late` (the latest
/// due slot has no report) > `ok` > `pending` (nothing due and nothing reported yet).
/// Ordered by job id; `X-Total-Count` carries the total after filters.
#[utoipa::path(
    get,
    path = "/api/v1/status",
    tag = "status",
    params(StatusQuery),
    responses(
        (status = 200, description = "The jobs' states", body = [JobStatus],
            headers(("X-Total-Count" = i64, description = "Jobs matching the filters"))),
        (status = 422, description = "Invalid query", body = ValidationError),
    )
)]
pub(super) async fn list_status(
    Reader(caller): Reader,
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let mut q = Query::parse(raw.as_deref());
    let query = StatusQuery {
        state: q.choice("state"),
        company_name: q.text("company_name"),
        skip: None,
        limit: None,
    };
    let page = q.page();
    q.finish()?;
    let now = state.clock.now();
    let filter = StatusFilter {
        company_name: query.company_name,
        agent: caller.agent().map(str::to_owned),
        state: query.state,
    };
    let statuses = state
        .db
        .run(move |conn| Ok::<_, ApiError>(all(conn, &filter, now)?))
        .await?;
    Ok(paged_from(statuses, page))
}
