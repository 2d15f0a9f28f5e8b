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
/// Newest first. `sent_at` is null until the SMTP server accepted the email; `attempts`
/// and `last_error` tell why it has not been yet.
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
