//! Bearer tokens: creating them, recognising them on each request, the per-route role
//! extractors, the first-start admin token, and rate limiting per token (or per address).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::{header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::api::AppState;
use crate::config::{AuthSettings, Secret};
use crate::db::{tokens, Db};
use crate::domain::auth::{Principal, Role};
use crate::error::ApiError;

/// Every secret starts with this, so a leaked one is easy to recognise (and to grep for).
pub const SECRET_PREFIX: &str = "bm_";

/// A new random secret: 256 bits from the operating system, hex-encoded.
pub fn generate_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    Ok(format!("{SECRET_PREFIX}{}", hex::encode(bytes)))
}

/// What is stored of a secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a token and returns its secret, which is never stored.
pub fn create_token(
    conn: &rusqlite::Connection,
    name: &str,
    role: Role,
    agent_id: Option<&str>,
) -> anyhow::Result<(tokens::TokenInfo, String)> {
    anyhow::ensure!(
        (role == Role::Agent) == agent_id.is_some(),
        "an agent token needs --agent-id, and only an agent token takes one"
    );
    let secret = generate_secret()?;
    let info = tokens::insert(
        conn,
        name,
        role,
        agent_id,
        &hash_secret(&secret),
        Utc::now(),
    )
    .context("Failed to store the token")?;
    Ok((info, secret))
}

/// What the request's `Authorization` header established.
#[derive(Debug, Clone)]
pub enum Authentication {
    /// No bearer token.
    Anonymous,
    /// A token that is not (or no longer) valid.
    Invalid,
    /// A valid token; `key` identifies it for rate limiting.
    Valid { principal: Principal, key: String },
}

/// Recognises the bearer token of every request; routes decide with the extractors below.
pub async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
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
    let key = match &authentication {
        Authentication::Valid { key, .. } => key.clone(),
        _ => request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| format!("ip:{}", c.0.ip()))
            .unwrap_or_else(|| "ip:unknown".to_owned()),
    };
    if let Err(retry_after) = state.limiter.check(&key) {
        return ApiError::TooManyRequests(retry_after).into_response();
    }
    request.extensions_mut().insert(authentication);
    next.run(request).await
}

async fn lookup(state: &AppState, secret: String) -> Result<Authentication, ApiError> {
    let hashed = hash_secret(&secret);
    if let Some(admin) = &state.settings.auth.admin_token {
        let expected = hash_secret(admin.expose());
        if bool::from(expected.as_bytes().ct_eq(hashed.as_bytes())) {
            return Ok(Authentication::Valid {
                principal: Principal::Admin,
                key: "token:environment".to_owned(),
            });
        }
    }
    let found = state
        .db
        .run(move |conn| Ok(tokens::find_active(conn, &hashed)?))
        .await?;
    Ok(match found {
        Some(token) => Authentication::Valid {
            principal: match (token.role, token.agent_id) {
                (Role::Admin, _) => Principal::Admin,
                (Role::Viewer, _) => Principal::Viewer,
                (Role::Agent, Some(agent)) => Principal::Agent(agent),
                (Role::Agent, None) => return Ok(Authentication::Invalid),
            },
            key: format!("token:{}", token.id),
        },
        None => Authentication::Invalid,
    })
}

fn principal(parts: &Parts) -> Result<Principal, ApiError> {
    match parts.extensions.get::<Authentication>() {
        Some(Authentication::Valid { principal, .. }) => Ok(principal.clone()),
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
/// An agent or admin token: reporting backups.
pub struct Reporter(pub Principal);
/// An admin token: changing jobs.
pub struct Admin(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Reader {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        principal(parts).map(Reader)
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
            "change jobs: use an admin token",
        )
        .map(Admin)
    }
}

/// The job `id` if it exists (404) and `principal` may reach it (403).
pub fn job_for(
    conn: &rusqlite::Connection,
    principal: &Principal,
    id: i64,
) -> Result<crate::domain::job::Job, ApiError> {
    let job = crate::db::jobs::get(conn, id)?.ok_or_else(ApiError::job_not_found)?;
    ensure_access(principal, job.id, &job.agent_id_responsible)?;
    Ok(job)
}

/// 403 unless `principal` may reach a job run by `job_agent`.
pub fn ensure_access(principal: &Principal, job_id: i64, job_agent: &str) -> Result<(), ApiError> {
    if principal.may_access(job_agent) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "Job {job_id} belongs to another agent: this token is confined to agent {:?}",
            principal.agent().unwrap_or_default()
        )))
    }
}

/// Requests per second and burst, per key (a token, or a client address without one).
pub struct Limiter {
    inner: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limiter")
    }
}

impl Limiter {
    pub fn new(settings: &AuthSettings) -> Self {
        let rate = NonZeroU32::new(settings.rate_limit_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.rate_limit_burst).unwrap_or(NonZeroU32::MIN);
        Self {
            inner: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// Ok, or the seconds to wait.
    pub fn check(&self, key: &str) -> Result<(), u64> {
        self.inner.check_key(&key.to_owned()).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
        })
    }

    /// Forgets keys that have not been seen for a while, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.inner.retain_recent();
        self.inner.shrink_to_fit();
    }
}

/// The file beside the database that holds the first admin token:
/// `backup-monitor.db` → `backup-monitor.admin-token`.
pub fn admin_token_path(database: &Path) -> PathBuf {
    database.with_extension("admin-token")
}

/// When no live admin token exists and `BACKUP_MONITOR_ADMIN_TOKEN` is not set (a first
/// start, or every admin token revoked), creates an admin token and writes it, alone, to a
/// mode-0600 file beside the database. Logs the file's path, never the token.
pub fn bootstrap(db: &Db, admin_token: Option<&Secret>) -> anyhow::Result<Option<PathBuf>> {
    if admin_token.is_some() {
        tracing::info!(
            "admin token from BACKUP_MONITOR_ADMIN_TOKEN accepted; no token file written"
        );
        return Ok(None);
    }
    let conn = db.conn().context("Failed to open a database connection")?;
    if tokens::count_active_admins(&conn)? > 0 {
        return Ok(None);
    }
    let path = admin_token_path(db.path());
    let (info, secret) = create_token(&conn, "initial admin", Role::Admin, None)?;
    write_secret_file(&path, &secret)
        .with_context(|| format!("Failed to write the admin token to {}", path.display()))?;
    tracing::warn!(file = %path.display(), token_id = info.id, "created the first admin token; read it from the file (mode 0600), then keep it somewhere safe");
    Ok(Some(path))
}

fn write_secret_file(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // An existing file keeps its mode on open: set it again.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(format!("{secret}\n").as_bytes())?;
        file.sync_all()
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(format!("{secret}\n").as_bytes())?;
        file.sync_all()
    }
}

/// Keeps the limiter's memory bounded while the service runs.
pub async fn forget_idle_keys(limiter: Arc<Limiter>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        every.tick().await;
        limiter.forget_idle();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed_for_storage() {
        let a = generate_secret().unwrap();
        let b = generate_secret().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + 64, "256 bits in hex");
        assert_eq!(hash_secret(&a).len(), 64);
        assert_ne!(hash_secret(&a), a);
        assert_eq!(hash_secret(&a), hash_secret(&a));
    }

    #[test]
    fn the_limiter_allows_the_burst_then_says_how_long_to_wait() {
        let limiter = Limiter::new(&AuthSettings {
            rate_limit_per_second: 1,
            rate_limit_burst: 3,
            admin_token: None,
        });
        for _ in 0..3 {
            assert!(limiter.check("k").is_ok());
        }
        assert_eq!(limiter.check("k"), Err(1));
        assert!(
            limiter.check("other").is_ok(),
            "keys are limited separately"
        );
    }

    #[test]
    fn the_token_file_sits_beside_the_database() {
        assert_eq!(
            admin_token_path(Path::new("/var/lib/bm/backup-monitor.db")),
            PathBuf::from("/var/lib/bm/backup-monitor.admin-token")
        );
    }
}
