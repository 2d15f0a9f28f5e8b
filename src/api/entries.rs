//! `/api/v1/entries`: backup runs reported by the agents, one by one or in batches.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::input::{Fields, Id, JsonBody, Need, Page, Query};
use super::{paged, AppState};
use crate::auth::{ensure_access, job_for, Reader, Reporter};
use crate::db::entries::{self as store, EntryFilter};
use crate::db::jobs;
use crate::domain::entry::{
    Entry, EntryStatus, NewEntry, BATCH_MAX, ERROR_MESSAGE_MAX, HASH_MAX, SIZE_MIN,
};
use crate::domain::time;
use crate::error::{ApiError, FieldError, HttpError, LocItem, ValidationError};
use crate::scheduler;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/entries", get(list_entries).post(create_entry))
        .route("/api/v1/entries/batch", post(create_entries))
        .route("/api/v1/entries/by_job/{job_id}", get(list_job_entries))
        .route("/api/v1/entries/{entry_id}", get(get_entry))
}

/// What an agent may report; `missing` is written by the scheduler alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    Success,
    Failed,
}

impl ReportStatus {
    /// Every variant, so callers can list or validate names without repeating them.
    pub const ALL: [ReportStatus; 2] = [ReportStatus::Success, ReportStatus::Failed];

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
        }
    }
}

/// A report of one backup run.
// The schema's bounds are not written here: `openapi::RequestBounds` sets them from the
// same constants `EntryCreate::parse` checks.
#[derive(Debug, Clone, ToSchema)]
pub struct EntryCreate {
    /// Any whole number: one that names no job is answered 404.
    pub expected_job_id: i64,
    pub status: ReportStatus,
    /// When the backup ran (RFC 3339); default: now.
    pub backup_timestamp_utc: Option<DateTime<Utc>>,
    /// `sha256:<64 hex>` recommended.
    pub backup_hash: Option<String>,
    pub backup_size_bytes: Option<i64>,
    pub error_message: Option<String>,
}

fn body_field_is_empty_string(value: &Value, key: &str) -> bool {
    value
        .get(key)
        .and_then(Value::as_str)
        .is_some_and(|s| s.trim().is_empty())
}

impl EntryCreate {
    /// Reads one report found at `loc` (`["body"]`, or `["body", i]` in a batch).
    pub(super) fn parse(value: &Value, loc: Vec<LocItem>) -> Result<Self, Vec<FieldError>> {
        let mut f = Fields::of(value, loc.clone()).map_err(|e| vec![e])?;
        let job_id = f.int("expected_job_id", i64::MIN, i64::MAX, Need::Required);
        let status = f.choice("status", Need::Required);
        let report = Self {
            expected_job_id: job_id.unwrap_or_default(),
            status: status.unwrap_or(ReportStatus::Success),
            // Absent, null or empty: the backup ran now.
            backup_timestamp_utc: if body_field_is_empty_string(value, "backup_timestamp_utc") {
                None
            } else {
                f.datetime("backup_timestamp_utc", Need::Nullable)
            },
            // An empty hash is no hash: the two are the same report when repeated.
            backup_hash: f
                .text("backup_hash", HASH_MAX, Need::Nullable)
                .filter(|h| !h.is_empty()),
            backup_size_bytes: f.int("backup_size_bytes", SIZE_MIN, i64::MAX, Need::Nullable),
            error_message: f.text("error_message", ERROR_MESSAGE_MAX, Need::Nullable),
        };
        f.finish()?;
        Ok(report)
    }

    fn into_new(self, now: DateTime<Utc>) -> NewEntry {
        NewEntry {
            expected_job_id: self.expected_job_id,
            status: self.status.into(),
            backup_timestamp_utc: self.backup_timestamp_utc.unwrap_or(now),
            backup_hash: self.backup_hash,
            backup_size_bytes: self.backup_size_bytes,
            error_message: self.error_message,
        }
    }
}

/// Report a backup run
///
/// 201 with the new entry; an identical repeat (same job, timestamp, status and hash)
/// answers 200 with the entry already stored. A 201 means the entry is committed to disk.
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
    )
)]
pub(super) async fn create_entry(
    Reporter(caller): Reporter,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let now = Utc::now();
    let new = EntryCreate::parse(&body, vec!["body".into()])
        .map_err(ApiError::Validation)?
        .into_new(now);
    let (entry, created, alerted) = state
        .writer
        .write(move |conn| {
            let job = job_for(conn, &caller, new.expected_job_id)?;
            let (entry, created) = store::insert(conn, &new, now)?;
            let alerted = created && scheduler::on_report(conn, &job, &entry, now)?.is_some();
            Ok((entry, created, alerted))
        })
        .await?;
    if alerted {
        state.alerts_queued.notify_one();
    }
    if created {
        crate::metrics::entry_received(entry.status.as_str());
    }
    let status = if created {
        tracing::info!(
            entry_id = entry.id,
            job_id = entry.expected_job_id,
            status = entry.status.as_str(),
            "backup reported"
        );
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(entry)).into_response())
}

/// Report many backup runs at once
///
/// Up to 1000 reports in one transaction: all are stored, or none. An invalid item, or one
/// naming a job that does not exist, is a 422 whose `loc` is `["body", index, field]`.
#[utoipa::path(
    post,
    path = "/api/v1/entries/batch",
    tag = "entries",
    request_body(content = [EntryCreate], description = "1 to 1000 reports"),
    responses(
        (status = 201, description = "The entries, in the order sent", body = [Entry]),
        (status = 413, description = "Body too large", body = HttpError),
        (status = 422, description = "An invalid item; nothing was stored", body = ValidationError),
    )
)]
pub(super) async fn create_entries(
    Reporter(caller): Reporter,
    State(state): State<AppState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let Value::Array(items) = &body else {
        return Err(ApiError::invalid(
            vec!["body".into()],
            "list_type",
            "Input should be a valid list",
        ));
    };
    if items.is_empty() || items.len() > BATCH_MAX {
        let (kind, msg) = if items.is_empty() {
            (
                "too_short",
                "List should have at least 1 item after validation, not 0".to_owned(),
            )
        } else {
            (
                "too_long",
                format!(
                    "List should have at most {BATCH_MAX} items after validation, not {}",
                    items.len()
                ),
            )
        };
        return Err(ApiError::invalid(vec!["body".into()], kind, msg));
    }
    let now = Utc::now();
    let mut reports = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match EntryCreate::parse(item, vec!["body".into(), LocItem::Index(i)]) {
            Ok(r) => reports.push(r.into_new(now)),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // All or nothing: the writer runs the whole batch in one savepoint.
    let (entries, alerted, received) = state
        .writer
        .write(move |conn| {
            let ids: BTreeSet<i64> = reports.iter().map(|r| r.expected_job_id).collect();
            let mut known = BTreeMap::new();
            let mut unknown = BTreeSet::new();
            for id in ids {
                match jobs::get(conn, id)? {
                    Some(job) => {
                        known.insert(id, job);
                    }
                    None => {
                        unknown.insert(id);
                    }
                }
            }
            // One report for another agent's job refuses the whole batch.
            for (i, report) in reports.iter().enumerate() {
                if let Some(job) = known.get(&report.expected_job_id) {
                    ensure_access(&caller, job.id, &job.agent_id_responsible).map_err(
                        |e| match e {
                            ApiError::Forbidden(detail) => {
                                ApiError::Forbidden(format!("Item {i}: {detail}"))
                            }
                            other => other,
                        },
                    )?;
                }
            }
            if !unknown.is_empty() {
                let errors = reports
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| unknown.contains(&r.expected_job_id))
                    .map(|(i, _)| {
                        FieldError::new(
                            vec!["body".into(), LocItem::Index(i), "expected_job_id".into()],
                            "value_error",
                            "Job not found",
                        )
                    })
                    .collect();
                return Err(ApiError::Validation(errors));
            }
            let mut entries = Vec::with_capacity(reports.len());
            let mut alerted = false;
            let mut received = Vec::new();
            for report in &reports {
                let (entry, created) = store::insert(conn, report, now)?;
                if created {
                    received.push(entry.status.as_str());
                }
                if let (true, Some(job)) = (created, known.get(&entry.expected_job_id)) {
                    alerted |= scheduler::on_report(conn, job, &entry, now)?.is_some();
                }
                entries.push(entry);
            }
            Ok((entries, alerted, received))
        })
        .await?;
    for status in received {
        crate::metrics::entry_received(status);
    }
    if alerted {
        state.alerts_queued.notify_one();
    }
    tracing::info!(count = entries.len(), "backup batch reported");
    Ok((StatusCode::CREATED, Json(entries)).into_response())
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
    State(state): State<AppState>,
    Id(id): Id,
) -> Result<Json<Entry>, ApiError> {
    state
        .db
        .run(move |conn| {
            let entry = store::get(conn, id)?
                .ok_or_else(|| ApiError::NotFound("Entry not found".to_owned()))?;
            if let Some(job) = jobs::get(conn, entry.expected_job_id)? {
                ensure_access(&caller, job.id, &job.agent_id_responsible)?;
            }
            Ok(entry)
        })
        .await
        .map(Json)
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
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (mut filter, page) = read_list_query(raw.as_deref())?;
    filter.agent = caller.agent().map(str::to_owned);
    let (entries, total) = state
        .db
        .run(move |conn| Ok(store::list(conn, &filter, page.skip, page.limit)?))
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
    State(state): State<AppState>,
    Id(job_id): Id,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (mut filter, page) = read_list_query(raw.as_deref())?;
    filter.job_id = Some(job_id);
    let (entries, total) = state
        .db
        .run(move |conn| {
            job_for(conn, &caller, job_id)?;
            Ok(store::list(conn, &filter, page.skip, page.limit)?)
        })
        .await?;
    Ok(paged_entries(entries, total, page))
}
