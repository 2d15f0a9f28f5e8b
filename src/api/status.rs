//! `GET /api/v1/status`: every job with its state, last entry, last success and next due.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use utoipa::IntoParams;

use super::input::Query;
use super::{paged, AppState};
use crate::auth::Reader;
use crate::db::jobs::{self, JobFilter};
use crate::db::status::{evaluate, JobStatus};
use crate::domain::status::JobState;
use crate::error::{ApiError, ValidationError};

pub fn router() -> Router<AppState> {
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

/// Every job's state at `now`, by job id, optionally only one company's or one state's.
pub fn all(
    conn: &Connection,
    company_name: Option<String>,
    agent: Option<String>,
    state: Option<JobState>,
    now: DateTime<Utc>,
) -> rusqlite::Result<Vec<JobStatus>> {
    let filter = JobFilter {
        company_name,
        agent_id_responsible: agent,
        ..JobFilter::default()
    };
    let mut out = Vec::new();
    let mut skip = 0;
    loop {
        let (page, _) = jobs::list(conn, &filter, skip, 1000)?;
        let done = page.len() < 1000;
        skip += 1000;
        for job in page {
            let status = evaluate(conn, &job, now)?;
            if state.is_none_or(|s| s == status.state) {
                out.push(status);
            }
        }
        if done {
            return Ok(out);
        }
    }
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
    State(state): State<AppState>,
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
    let now = Utc::now();
    let statuses = state
        .db
        .run(move |conn| {
            let agent = caller.agent().map(str::to_owned);
            Ok(all(conn, query.company_name, agent, query.state, now)?)
        })
        .await?;
    let total = i64::try_from(statuses.len()).unwrap_or(i64::MAX);
    let page: Vec<JobStatus> = statuses
        .into_iter()
        .skip(usize::try_from(page.skip).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(0))
        .collect();
    Ok(paged(page, total))
}
