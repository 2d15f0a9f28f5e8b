//! Bearer tokens on each request: the middleware that recognises the token and applies the
//! rate limit, and the per-route role extractors. Secrets and storage live in
//! `service::tokens`; the limiter in `rate_limit`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts, MatchedPath, Request, State};
use axum::http::{header, request::Parts, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use crate::config::Secret;
use crate::db::Db;
use crate::domain::auth::{Principal, Role};
use crate::domain::network::{client_address, AddressBlock};
use crate::rate_limit::Limiter;
use crate::service::tokens::{self, Holder};

/// What the middleware needs of the application's state.
#[derive(Clone, Debug)]
pub struct AuthState {
    pub db: Db,
    /// `BACKUP_MONITOR_ADMIN_TOKEN`, accepted as an admin token.
    pub admin_token: Option<Secret>,
    pub limiter: Arc<Limiter>,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`server.trusted_proxies`).
    pub trusted_proxies: Arc<[AddressBlock]>,
}

/// What the request's `Authorization` header established.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// No bearer token.
    Anonymous,
    /// A token that is not (or no longer) valid.
    Invalid,
    /// A valid token.
    Valid(Holder),
}

/// Recognises the bearer token of every request and applies the rate limit (per token, or
/// per client address without a valid one); routes decide with the extractors below. The
/// health check is never limited: a load balancer's probes must not get 429.
pub async fn authenticate<S>(State(state): State<S>, mut request: Request, next: Next) -> Response
where
    AuthState: FromRef<S>,
{
    let state = AuthState::from_ref(&state);
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    let authentication = match presented {
        None if request.headers().contains_key(header::AUTHORIZATION) => Authentication::Invalid,
        None => Authentication::Anonymous,
        Some(secret) => match lookup(&state, secret).await {
            Ok(auth) => auth,
            Err(e) => return e.into_response(),
        },
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let is_health_check = route.as_deref() == Some(super::health::PATH);
    // A ping is limited per key (DESIGN §12): many hosts behind one address each have theirs.
    let ping_key = route
        .as_deref()
        .filter(|r| super::ping::PING_PREFIXES.iter().any(|p| r.starts_with(p)))
        .and_then(|_| {
            let path = request.uri().path();
            let rest = super::ping::PING_PREFIXES
                .iter()
                .find_map(|p| path.strip_prefix(p))?;
            rest.split('/').next().map(str::to_owned)
        });
    if !is_health_check {
        let key = match (&authentication, ping_key) {
            (_, Some(ping_key)) => format!("ping:{ping_key}"),
            (Authentication::Valid(holder), None) => holder.key.clone(),
            _ => request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| {
                    let client = client_of(c.0, request.headers(), &state.trusted_proxies);
                    format!("ip:{client}")
                })
                .unwrap_or_else(|| "ip:unknown".to_owned()),
        };
        if let Err(retry_after) = state.limiter.check(&key) {
            return ApiError::TooManyRequests(retry_after).into_response();
        }
    }
    request.extensions_mut().insert(authentication);
    next.run(request).await
}

/// The client's address: the peer's, or from `X-Forwarded-For` when the peer is a trusted
/// proxy (see [`client_address`]).
fn client_of(peer: SocketAddr, headers: &HeaderMap, trusted: &[AddressBlock]) -> std::net::IpAddr {
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    client_address(peer.ip(), forwarded, trusted)
}

async fn lookup(state: &AuthState, secret: String) -> Result<Authentication, ApiError> {
    if let Some(holder) = tokens::is_environment_admin(&secret, state.admin_token.as_ref()) {
        return Ok(Authentication::Valid(holder));
    }
    let found = state
        .db
        .run(move |conn| Ok::<_, ApiError>(tokens::holder(conn, &secret)?))
        .await?;
    Ok(found.map_or(Authentication::Invalid, Authentication::Valid))
}

fn principal(parts: &Parts) -> Result<Principal, ApiError> {
    match parts.extensions.get::<Authentication>() {
        Some(Authentication::Valid(holder)) => Ok(holder.principal.clone()),
        Some(Authentication::Invalid) => Err(ApiError::Unauthorized(
            "Invalid or revoked token".to_owned(),
        )),
        _ => Err(ApiError::Unauthorized("Not authenticated".to_owned())),
    }
}

fn needs(principal: Principal, allowed: &[Role], what: &str) -> Result<Principal, ApiError> {
    if allowed.contains(&principal.role()) {
        Ok(principal)
    } else {
        let role = principal.role().as_str();
        let article = if role.starts_with('a') { "An" } else { "A" };
        Err(ApiError::Forbidden(format!(
            "{article} {role} token cannot {what}"
        )))
    }
}

/// Any valid token: reading (an agent token reads only its own jobs).
pub struct Reader(pub Principal);
/// A viewer or admin token: reading every job at once (`/metrics`), which an agent token,
/// confined to its own jobs, may not.
pub struct EveryJobReader(pub Principal);
/// An agent or admin token: reporting backups.
pub struct Reporter(pub Principal);
/// An admin token: changing jobs and tokens.
pub struct Admin(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Reader {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        principal(parts).map(Reader)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for EveryJobReader {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        needs(
            principal(parts)?,
            &[Role::Admin, Role::Viewer],
            "read /metrics, which shows every company's jobs: use a viewer or admin token",
        )
        .map(EveryJobReader)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Reporter {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        needs(
            principal(parts)?,
            &[Role::Admin, Role::Agent],
            "report backups: use an agent or admin token",
        )
        .map(Reporter)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        needs(
            principal(parts)?,
            &[Role::Admin],
            "change jobs or tokens: use an admin token",
        )
        .map(Admin)
    }
}
