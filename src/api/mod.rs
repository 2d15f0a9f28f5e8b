//! The HTTP edge: the API under `/api/v1`, the health check, the badges, `/metrics`, the
//! OpenAPI document, the bearer-token middleware and the mapping of errors to status codes.
//! Handlers extract, call one service function and answer.

pub mod alerts;
pub mod auth;
pub mod badges;
pub mod companies;
pub mod entries;
pub mod error;
pub mod health;
pub mod input;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod ping;
pub mod status;
pub mod tokens;

use std::sync::Arc;

use tokio::sync::Notify;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::json;

use crate::clock::Clock;
use crate::config::Settings;
use crate::db::writer::Writer;
use crate::db::Db;

/// What the handlers can reach (the application builds it; see `app::state`).
#[derive(Clone, Debug)]
pub struct ApiState {
    pub db: Db,
    pub settings: Arc<Settings>,
    /// Woken when an alert is queued, so that delivery starts at once.
    pub alerts_queued: Arc<Notify>,
    /// Reports go through it: concurrent ones share one commit.
    pub writer: Writer,
    /// Signs badge URLs; made once per installation and kept in the database.
    pub badge_secret: Arc<str>,
    /// Where `now` comes from.
    pub clock: Clock,
}

/// The routes of the API, the health check, the badges, `/metrics` and the OpenAPI
/// document.
pub fn router(metrics_require_token: bool) -> Router<ApiState> {
    Router::new()
        .merge(jobs::router())
        .merge(entries::router())
        .merge(status::router())
        .merge(companies::router())
        .merge(alerts::router())
        .merge(tokens::router())
        .merge(badges::router())
        .merge(health::router())
        .merge(metrics::router(metrics_require_token))
        .merge(openapi::router())
        .merge(ping::router())
}

pub const TOTAL_COUNT: HeaderName = HeaderName::from_static("x-total-count");

/// A page of a listing: the items as a JSON array, the total in `X-Total-Count`.
pub fn paged<T: Serialize>(items: Vec<T>, total: i64) -> Response {
    let mut response = Json(items).into_response();
    response
        .headers_mut()
        .insert(TOTAL_COUNT, HeaderValue::from(total));
    response
}

/// One page of a listing computed whole (every job's state, say), with the total.
pub fn paged_from<T: Serialize>(all: Vec<T>, page: input::Page) -> Response {
    let total = i64::try_from(all.len()).unwrap_or(i64::MAX);
    let items: Vec<T> = all
        .into_iter()
        .skip(usize::try_from(page.skip).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(0))
        .collect();
    paged(items, total)
}

/// Answers 408 (a JSON `detail`, like every error) when the request takes longer than
/// `limit`, reading its body included.
pub async fn time_limit(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error::ApiError::RequestTimeout.into_response(),
    }
}

/// The answer for a path no route matches.
pub async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"}))).into_response()
}

/// The answer for a known path with a method it does not take.
pub async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(json!({"detail": "Method Not Allowed"})),
    )
        .into_response()
}
