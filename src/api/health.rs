//! `GET /healthz`: 200 when the database answers, for load balancers and systemd checks.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::HttpError;
use super::ApiState;
use crate::db::{Db, DbError};

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
        (status = 200, description = "The service and its database answer", body = Health),
        (status = 503, description = "The database does not answer", body = HttpError),
    )
)]
pub(super) async fn healthz(
    State(state): State<ApiState>,
) -> Result<Json<Health>, (StatusCode, Json<HttpError>)> {
    match state
        .db
        .run(|conn| Db::ping(conn).map_err(DbError::from))
        .await
    {
        Ok(()) => Ok(Json(Health {
            status: "ok".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        })),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            Err((
                StatusCode::SERVICE_UNAVAILABLE,
                Json(HttpError {
                    detail: "The database does not answer".to_owned(),
                }),
            ))
        }
    }
}
