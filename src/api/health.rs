//! `GET /healthz`: 200 when reports can be stored (the database answers, the writer runs,
//! the disk takes writes), for load balancers and monitoring; 503 saying why otherwise.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::HttpError;
use super::ApiState;
use crate::service::{health, ServiceError};

/// The health check's path (never rate limited).
pub const PATH: &str = "/healthz";

pub fn router() -> Router<ApiState> {
    Router::new().route(PATH, get(healthz))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` in a 200.
    pub status: String,
    pub version: String,
}

/// Health check
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses(
        (status = 200, description = "The service can store reports", body = Health),
        (status = 503, description = "The database does not answer, or reports cannot be stored (writer stopped, disk full)", body = HttpError),
    )
)]
pub(super) async fn healthz(
    State(state): State<ApiState>,
) -> Result<Json<Health>, (StatusCode, Json<HttpError>)> {
    match health::check(&state.db, &state.writer).await {
        Ok(()) => Ok(Json(Health {
            status: "ok".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        })),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            let detail = match e {
                ServiceError::Storage(fault) => format!("Reports cannot be stored: {fault}"),
                ServiceError::Unavailable(reason) => format!("Reports cannot be stored: {reason}"),
                _ => "The database does not answer".to_owned(),
            };
            Err((StatusCode::SERVICE_UNAVAILABLE, Json(HttpError { detail })))
        }
    }
}
