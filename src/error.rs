//! API errors, answered in FastAPI's shape so that clients written for the seed keep working:
//! `{"detail": "Job not found"}`, or `{"detail": [{"loc", "msg", "type"}]}` for bad input.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

/// One step of an error's location: a name (`"body"`, `"limit"`) or an index in an array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LocItem {
    Name(String),
    Index(usize),
}

impl From<&str> for LocItem {
    fn from(s: &str) -> Self {
        LocItem::Name(s.to_owned())
    }
}

impl From<usize> for LocItem {
    fn from(i: usize) -> Self {
        LocItem::Index(i)
    }
}

/// One reason a request was refused, as pydantic reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    pub loc: Vec<LocItem>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    pub fn new(loc: Vec<LocItem>, kind: &str, msg: impl Into<String>) -> Self {
        Self {
            loc,
            msg: msg.into(),
            kind: kind.to_owned(),
        }
    }
}

/// The body of a 4xx with a message: `{"detail": "Job not found"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HttpError {
    pub detail: String,
}

/// The body of a 422: `{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidationError {
    pub detail: Vec<FieldError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("invalid request")]
    Validation(Vec<FieldError>),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// Too many requests; retry after this many seconds.
    #[error("too many requests")]
    TooManyRequests(u64),
    #[error("database busy")]
    Busy,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn job_not_found() -> Self {
        ApiError::NotFound("Job not found".to_owned())
    }

    pub fn invalid(loc: Vec<LocItem>, kind: &str, msg: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(loc, kind, msg)])
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) {
                return ApiError::Busy;
            }
        }
        ApiError::Internal(anyhow::Error::new(e).context("Database query failed"))
    }
}

impl From<r2d2::Error> for ApiError {
    fn from(e: r2d2::Error) -> Self {
        tracing::warn!(error = %e, "no database connection available");
        ApiError::Busy
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NotFound(detail) => {
                (StatusCode::NOT_FOUND, Json(json!({ "detail": detail }))).into_response()
            }
            ApiError::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "detail": errors })),
            )
                .into_response(),
            ApiError::Unauthorized(detail) => {
                let mut response =
                    (StatusCode::UNAUTHORIZED, Json(json!({ "detail": detail }))).into_response();
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            ApiError::Forbidden(detail) => {
                (StatusCode::FORBIDDEN, Json(json!({ "detail": detail }))).into_response()
            }
            ApiError::Conflict(detail) => {
                (StatusCode::CONFLICT, Json(json!({ "detail": detail }))).into_response()
            }
            ApiError::TooManyRequests(seconds) => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(json!({ "detail": "Too many requests: slow down" })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
                response
            }
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(json!({ "detail": "Request body too large" })),
            )
                .into_response(),
            ApiError::Busy => {
                let mut response = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "detail": "The database is busy, try again shortly" })),
                )
                    .into_response();
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
            ApiError::Internal(e) => {
                // Logged once here with its whole chain; the client learns nothing internal.
                tracing::error!(error = ?e, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({ "detail": "Internal Server Error" })),
                )
                    .into_response()
            }
        }
    }
}
