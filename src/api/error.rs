//! API errors, answered in FastAPI's shape so that clients written for the seed keep working:
//! `{"detail": "Job not found"}`, or `{"detail": [{"loc", "msg", "type"}]}` for bad input.
//! Lower layers' errors ([`ServiceError`], [`DbError`]) become status codes here, and only
//! here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{DbError, StorageFault};
use crate::service::ServiceError;
pub use crate::service::{FieldError, LocItem};

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
    /// The request was not answered within `server.request_timeout_seconds`.
    #[error("request timed out")]
    RequestTimeout,
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
    /// The disk refused the write: 507 when full, 503 on an I/O error.
    #[error("{0}")]
    Storage(StorageFault),
    /// Nothing can be written for now (503).
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn invalid(loc: Vec<LocItem>, kind: &str, msg: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(loc, kind, msg)])
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(detail) => ApiError::NotFound(detail),
            ServiceError::Invalid(errors) => ApiError::Validation(errors),
            ServiceError::Forbidden(detail) => ApiError::Forbidden(detail),
            ServiceError::Conflict(detail) => ApiError::Conflict(detail),
            ServiceError::Busy => ApiError::Busy,
            ServiceError::Storage(fault) => ApiError::Storage(fault),
            ServiceError::Unavailable(reason) => ApiError::Unavailable(reason),
            ServiceError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ServiceError::from(e).into()
    }
}

/// A JSON answer `{"detail": …}` with `status`.
fn detail(status: StatusCode, detail: impl Into<String>) -> Response {
    (
        status,
        Json(HttpError {
            detail: detail.into(),
        }),
    )
        .into_response()
}

fn with_header(mut response: Response, name: header::HeaderName, value: HeaderValue) -> Response {
    response.headers_mut().insert(name, value);
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::NotFound(message) => detail(StatusCode::NOT_FOUND, message),
            ApiError::Validation(errors) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(ValidationError { detail: errors }),
            )
                .into_response(),
            ApiError::Unauthorized(message) => with_header(
                detail(StatusCode::UNAUTHORIZED, message),
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            ),
            ApiError::Forbidden(message) => detail(StatusCode::FORBIDDEN, message),
            ApiError::Conflict(message) => detail(StatusCode::CONFLICT, message),
            ApiError::TooManyRequests(seconds) => with_header(
                detail(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many requests: slow down",
                ),
                header::RETRY_AFTER,
                HeaderValue::from(seconds.max(1)),
            ),
            ApiError::PayloadTooLarge => {
                detail(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large")
            }
            ApiError::RequestTimeout => detail(
                StatusCode::REQUEST_TIMEOUT,
                "Request timeout: not answered in time (the body came too slowly, or the server was busy). A report may still be stored: sending the same one again is safe",
            ),
            ApiError::Busy => with_header(
                detail(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The database is busy, try again shortly",
                ),
                header::RETRY_AFTER,
                HeaderValue::from_static("1"),
            ),
            ApiError::Storage(fault) => {
                let (status, message) = match fault {
                    StorageFault::Full => (
                        StatusCode::INSUFFICIENT_STORAGE,
                        "Not stored: the server's disk is full. Retry once space is freed on the database's disk",
                    ),
                    StorageFault::Io => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Not stored: the server's disk failed to write (I/O error). Retry later",
                    ),
                };
                with_header(
                    detail(status, message),
                    header::RETRY_AFTER,
                    HeaderValue::from_static("30"),
                )
            }
            ApiError::Unavailable(reason) => {
                tracing::error!(%reason, "request refused: the service cannot write");
                with_header(
                    detail(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Not stored: the service cannot write to its database right now. Retry shortly",
                    ),
                    header::RETRY_AFTER,
                    HeaderValue::from_static("5"),
                )
            }
            ApiError::Internal(e) => {
                // Logged once here with its whole chain; the client learns nothing internal.
                tracing::error!(error = ?e, "request failed");
                detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}
