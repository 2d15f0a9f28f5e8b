//! `/api/v1/entries`: backup runs reported by the agents, one by one or in batches.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use utoipa::IntoParams;

use super::auth::{Reader, Reporter};
use super::error::{ApiError, HttpError, ValidationError};
use super::input::{Id, JsonBody, Page, Query};
use super::{paged, ApiState};
use crate::db::entries::EntryFilter;
use crate::domain::entry::{Entry, EntryStatus};
use crate::domain::time;
use crate::service::reports;

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/entries", get(list_entries).post(create_entry))
        .route("/api/v1/entries/batch", post(create_entries))
        .route("/api/v1/entries/by_job/{job_id}", get(list_job_entries))
        .route("/api/v1/entries/{entry_id}", get(get_entry))
}

pub use crate::domain::entry::ReportStatus;
pub use crate::service::reports::EntryCreate;

/// Report a backup run
///
/// 201 with the new entry; an identical repeat (same job, timestamp, status and hash)
/// answers 200 with the entry already stored. A 201 means the entry is committed to disk.
/// A report dated more than `ingest.max_clock_skew_seconds` (default 300) after the
/// server's clock is refused (422 on `backup_timestamp_utc`). A failure for a slot older
/// than the job's latest due slot is stored without an alert.
#[utoipa::path(
    post,
    path = "/api/v1/entries/",
    tag = "entries",
    request_body = EntryCreate,
    responses(
        (status = 201, description = "The entry, stored", body = Entry),
        (status = 200, description = "An identical report was already stored", body = Entry),
        (status = 404, description = "No such job", body = HttpError),
        (status = 413, description = "Body too large", body = HttpError),
        (status = 422, description = "Invalid report", body = ValidationError),
        (status = 503, description = "Not stored: the database is busy or its disk failed; retry after Retry-After", body = HttpError),
        (status = 507, description = "Not stored: the server's disk is full; retry after Retry-After", body = HttpError),
    )
)]
pub(super) async fn create_entry(
    Reporter(caller): Reporter,
    State(state): State<ApiState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let new = EntryCreate::parse_one(&body, now, state.settings.ingest.max_clock_skew())?;
    let jobs = state.writer.jobs();
    let reported = state
        .writer
        .write(move |conn| reports::report(conn, &jobs, &caller, &new, now))
        .await?;
    reported.committed(&state.alerts_queued);
    let (entry, created) = reported
        .single()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a report stored no entry")))?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(entry)).into_response())
}

/// Report many backup runs at once
///
/// Up to 1000 reports in one transaction: all are stored, or none. An invalid item is a 422
/// whose `loc` is `["body", index, field]`; an item naming a job that does not exist is a
/// 404 naming the item (`Job not found: item 3 (expected_job_id 99)`).
#[utoipa::path(
    post,
    path = "/api/v1/entries/batch",
    tag = "entries",
    request_body(content = [EntryCreate], description = "1 to 1000 reports"),
    responses(
        (status = 201, description = "The entries, in the order sent", body = [Entry]),
        (status = 404, description = "An item names no job; nothing was stored", body = HttpError),
        (status = 413, description = "Body too large", body = HttpError),
        (status = 422, description = "An invalid item; nothing was stored", body = ValidationError),
        (status = 503, description = "Nothing stored: the database is busy or its disk failed; retry after Retry-After", body = HttpError),
        (status = 507, description = "Nothing stored: the server's disk is full; retry after Retry-After", body = HttpError),
    )
)]
pub(super) async fn create_entries(
    Reporter(caller): Reporter,
    State(state): State<ApiState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let reports = EntryCreate::parse_batch(&body, now, state.settings.ingest.max_clock_skew())?;
    // All or nothing: the writer runs the whole batch in one savepoint.
    let reported = state
        .writer
        .write(move |conn| reports::report_batch(conn, &caller, &reports, now))
        .await?;
    reported.committed(&state.alerts_queued);
    Ok((StatusCode::CREATED, Json(reported.entries)).into_response())
}

/// Get an entry
#[utoipa::path(
    get,
    path = "/api/v1/entries/{entry_id}",
    tag = "entries",
    params(("entry_id" = i64, Path, description = "The entry's id")),
    responses(
        (status = 200, description = "The entry", body = Entry),
        (status = 404, description = "No such entry", body = HttpError),
        (status = 422, description = "Invalid id", body = ValidationError),
    )
)]
pub(super) async fn get_entry(
    Reader(caller): Reader,
    State(state): State<ApiState>,
    Id(id): Id,
) -> Result<Json<Entry>, ApiError> {
    let entry = state
        .db
        .run(move |conn| reports::get(conn, &caller, id))
        .await?;
    Ok(Json(entry))
}

/// Filters and pagination of the entries listings.
// The bounds of `skip` and `limit`, and the pattern of `cursor`, are set by
// `openapi::RequestBounds` from `input::Page` and `input::cursor_pattern`.
#[derive(Debug, Clone, Default, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntryListQuery {
    pub status: Option<EntryStatus>,
    /// Only entries with `backup_timestamp_utc` at or after this instant.
    pub since: Option<DateTime<Utc>>,
    /// Only entries with `backup_timestamp_utc` at or before this instant.
    pub until: Option<DateTime<Utc>>,
    /// Rows to skip (default 0).
    pub skip: Option<i64>,
    /// Rows to return, 1..=1000 (default 100).
    pub limit: Option<i64>,
    /// Keyset pagination, fast at any depth: the `X-Next-Cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of entries; when it is full, `X-Next-Cursor` names where the next one starts.
fn paged_entries(entries: Vec<Entry>, total: i64, page: Page) -> Response {
    let next = (i64::try_from(entries.len()).ok() == Some(page.limit))
        .then(|| entries.last())
        .flatten()
        .map(|e| format!("{}_{}", time::to_micros(e.backup_timestamp_utc), e.id));
    let mut response = paged(entries, total);
    if let Some(cursor) = next.and_then(|c| HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert(NEXT_CURSOR, cursor);
    }
    response
}

const NEXT_CURSOR: HeaderName = HeaderName::from_static("x-next-cursor");

pub(super) fn read_list_query(raw: Option<&str>) -> Result<(EntryFilter, Page), ApiError> {
    let mut q = Query::parse(raw);
    let filter = EntryFilter {
        job_id: None,
        agent: None,
        status: q.choice("status"),
        since: q.datetime("since"),
        until: q.datetime("until"),
        before: q.cursor("cursor"),
    };
    let page = q.page();
    q.finish()?;
    Ok((filter, page))
}

/// List entries
///
/// Newest first (by `backup_timestamp_utc`, then id). `X-Total-Count` carries the total
/// after filters.
#[utoipa::path(
    get,
    path = "/api/v1/entries/",
    tag = "entries",
    params(EntryListQuery),
    responses(
        (status = 200, description = "One page of entries", body = [Entry],
            headers(("X-Total-Count" = i64, description = "Entries matching the filters"),
                ("X-Next-Cursor" = String, description = "When the page is full: pass it as `cursor` for the next page"))),
        (status = 422, description = "Invalid query", body = ValidationError),
    )
)]
pub(super) async fn list_entries(
    Reader(caller): Reader,
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (filter, page) = read_list_query(raw.as_deref())?;
    let (entries, total) = state
        .db
        .run(move |conn| reports::list(conn, &caller, filter, page.skip, page.limit))
        .await?;
    Ok(paged_entries(entries, total, page))
}

/// List a job's entries
///
/// Newest first; the same filters and pagination as the entries listing.
#[utoipa::path(
    get,
    path = "/api/v1/entries/by_job/{job_id}",
    tag = "entries",
    params(("job_id" = i64, Path, description = "The job's id"), EntryListQuery),
    responses(
        (status = 200, description = "One page of the job's entries", body = [Entry],
            headers(("X-Total-Count" = i64, description = "Entries matching the filters"),
                ("X-Next-Cursor" = String, description = "When the page is full: pass it as `cursor` for the next page"))),
        (status = 404, description = "No such job", body = HttpError),
        (status = 422, description = "Invalid id or query", body = ValidationError),
    )
)]
pub(super) async fn list_job_entries(
    Reader(caller): Reader,
    State(state): State<ApiState>,
    Id(job_id): Id,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (mut filter, page) = read_list_query(raw.as_deref())?;
    filter.job_id = Some(job_id);
    let (entries, total) = state
        .db
        .run(move |conn| reports::list(conn, &caller, filter, page.skip, page.limit))
        .await?;
    Ok(paged_entries(entries, total, page))
}
