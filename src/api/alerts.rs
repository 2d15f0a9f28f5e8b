//! `GET /api/v1/alerts`: the alert outbox, delivered or not, newest first.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;

use super::auth::Reader;
use super::error::{ApiError, ValidationError};
use super::input::{page_only, PageQuery};
use super::{paged, ApiState};
use crate::domain::alert::Alert;
use crate::service::alerts;

pub fn router() -> Router<ApiState> {
    Router::new().route("/api/v1/alerts", get(list_alerts))
}

/// The alert outbox
///
/// Newest first. Each alert is delivered once through each channel that takes it
/// (`deliveries`: the channel's name, its attempts, when it accepted the alert, its last
/// error and when it is tried next, null once delivered or refused for good); `deliveries`
/// is empty until the delivery loop has routed the alert. The alert's own `attempts`
/// counts every channel's, `sent_at` is when a channel first accepted it, and `last_error`
/// is the error of a delivery that has not succeeded (prefixed with its channel when there
/// are several).
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    tag = "alerts",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of alerts", body = [Alert],
            headers(("X-Total-Count" = i64, description = "All alerts"))),
        (status = 422, description = "Invalid query", body = ValidationError),
    )
)]
pub(super) async fn list_alerts(
    Reader(caller): Reader,
    State(state): State<ApiState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let page = page_only(raw.as_deref())?;
    let (items, total) = state
        .db
        .run(move |conn| alerts::list(conn, &caller, page.skip, page.limit))
        .await?;
    Ok(paged(items, total))
}
