//! `/api/v1/tokens`: an administrator creates, lists and revokes tokens over HTTP (the
//! dashboard does), as `backup-monitor token` does on the server; and any token can ask what
//! it may do (`/api/v1/tokens/current`), so a page can show only what its holder may use.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{Admin, Reader};
use super::error::{ApiError, HttpError, ValidationError};
use super::input::{Id, JsonBody};
use super::ApiState;
use crate::db::tokens::TokenInfo;
use crate::domain::auth::Role;
use crate::service::tokens::{self as service, TokenRequest};

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/current", get(current_token))
        .route("/api/v1/tokens/{token_id}", delete(revoke_token))
}

/// The body of `POST /api/v1/tokens`.
#[derive(Debug, Clone, ToSchema)]
#[allow(dead_code)] // the schema of the body that `TokenRequest::parse` reads
pub struct TokenCreate {
    pub role: Role,
    /// Required for an agent token (it reports and reads only the jobs whose
    /// `agent_id_responsible` this is); refused for the other roles.
    pub agent_id: Option<String>,
    /// What the token is for, e.g. "Lyon NAS".
    pub name: String,
}

/// A token just created, with its secret: shown in this answer only, stored nowhere.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub token: TokenInfo,
    /// The bearer token (`bm_…`). Keep it now: it cannot be read again.
    pub secret: String,
}

/// What the presented token may do.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CurrentToken {
    pub role: Role,
    /// The agent an agent token is confined to; null for the other roles.
    #[schema(required = true)]
    pub agent_id: Option<String>,
}

/// Create a token
///
/// Admin only. The answer holds the secret, once: it is stored only as a hash.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "tokens",
    request_body = TokenCreate,
    responses(
        (status = 201, description = "The token, created, with its secret", body = CreatedToken),
        (status = 413, description = "Body too large", body = HttpError),
        (status = 422, description = "Invalid request", body = ValidationError),
    )
)]
pub(super) async fn create_token(
    _: Admin,
    State(state): State<ApiState>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let request = TokenRequest::parse(&body)?;
    let now = state.clock.now();
    let (token, secret) = state
        .db
        .run(move |conn| service::create_requested(conn, &request, now))
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, secret })).into_response())
}

/// List tokens
///
/// Admin only. Every token, revoked ones included, by id; never a secret.
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "tokens",
    responses((status = 200, description = "The tokens", body = [TokenInfo]))
)]
pub(super) async fn list_tokens(
    _: Admin,
    State(state): State<ApiState>,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    let tokens = state.db.run(|conn| service::list(conn)).await?;
    Ok(Json(tokens))
}

/// Revoke a token
///
/// Admin only. The token stops working at once.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{token_id}",
    tag = "tokens",
    params(("token_id" = i64, Path, description = "The token's id")),
    responses(
        (status = 200, description = "The token, revoked", body = TokenInfo),
        (status = 404, description = "No such live token", body = HttpError),
        (status = 422, description = "Invalid id", body = ValidationError),
    )
)]
pub(super) async fn revoke_token(
    _: Admin,
    State(state): State<ApiState>,
    Id(id): Id,
) -> Result<Json<TokenInfo>, ApiError> {
    let now = state.clock.now();
    let token = state
        .db
        .run(move |conn| service::revoke(conn, id, now))
        .await?;
    Ok(Json(token))
}

/// What this token may do
///
/// Any valid token: its role, and for an agent token its agent. The dashboard asks this to
/// show only the controls its holder may use.
#[utoipa::path(
    get,
    path = "/api/v1/tokens/current",
    tag = "tokens",
    responses((status = 200, description = "The presented token's role", body = CurrentToken))
)]
pub(super) async fn current_token(Reader(caller): Reader) -> Json<CurrentToken> {
    Json(CurrentToken {
        role: caller.role(),
        agent_id: caller.agent().map(str::to_owned),
    })
}
