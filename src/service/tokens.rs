//! Bearer tokens without HTTP: making secrets, storing only their hash, recognising a
//! presented secret, the first admin token written to a file beside the database, and the
//! use cases of `/api/v1/tokens` (create from a request, list, revoke).

use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use serde_json::Value;

use super::input::{Fields, Need};
use super::ServiceError;
use crate::config::Secret;
use crate::db::tokens::{self, TokenInfo};
use crate::db::Db;
use crate::domain::auth::{Principal, Role};
use crate::domain::job::{NAME_MAX, NAME_MIN};

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
pub fn create(
    conn: &Connection,
    name: &str,
    role: Role,
    agent_id: Option<&str>,
    now: DateTime<Utc>,
) -> anyhow::Result<(TokenInfo, String)> {
    anyhow::ensure!(
        (role == Role::Agent) == agent_id.is_some(),
        "an agent token needs --agent-id, and only an agent token takes one"
    );
    let secret = generate_secret()?;
    let info = tokens::insert(conn, name, role, agent_id, &hash_secret(&secret), now)
        .context("Failed to store the token")?;
    Ok((info, secret))
}

/// A token to create, as a request gives it: a role, the agent an agent token is confined to
/// (required for an agent token, refused for the others) and a name saying what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub role: Role,
    pub agent_id: Option<String>,
    pub name: String,
}

impl TokenRequest {
    /// Reads `{role, agent_id?, name}`; every problem comes back at once, naming its field.
    pub fn parse(body: &Value) -> Result<Self, ServiceError> {
        let mut f =
            Fields::of(body, vec!["body".into()]).map_err(|e| ServiceError::Invalid(vec![e]))?;
        let role = f.choice::<Role>("role", Need::Required);
        let agent_id = f.name("agent_id", NAME_MIN, NAME_MAX, Need::Nullable);
        let name = f.name("name", NAME_MIN, NAME_MAX, Need::Required);
        match (role, &agent_id) {
            (Some(Role::Agent), None) if !f.has("agent_id") => f.refuse_field(
                "agent_id",
                "missing",
                "An agent token needs the agent_id of the jobs it reports for",
            ),
            (Some(role @ (Role::Admin | Role::Viewer)), Some(_)) => f.refuse_field(
                "agent_id",
                "value_error",
                format!(
                    "Value error, only an agent token takes an agent_id; a {} token sees every job",
                    role.as_str()
                ),
            ),
            _ => {}
        }
        f.finish().map_err(ServiceError::Invalid)?;
        let missing = || ServiceError::invalid(vec!["body".into()], "missing", "Field required");
        Ok(Self {
            role: role.ok_or_else(missing)?,
            agent_id,
            name: name.ok_or_else(missing)?,
        })
    }
}

/// Creates the token `request` asks for; returns it with its secret, which is never stored.
pub fn create_requested(
    conn: &Connection,
    request: &TokenRequest,
    now: DateTime<Utc>,
) -> Result<(TokenInfo, String), ServiceError> {
    Ok(create(
        conn,
        &request.name,
        request.role,
        request.agent_id.as_deref(),
        now,
    )?)
}

/// Every token, revoked ones included, by id: never a secret.
pub fn list(conn: &Connection) -> Result<Vec<TokenInfo>, ServiceError> {
    Ok(tokens::list(conn)?)
}

/// Revokes the live token `id` at once; not found if there is none (or it is revoked).
pub fn revoke(conn: &Connection, id: i64, now: DateTime<Utc>) -> Result<TokenInfo, ServiceError> {
    tokens::revoke(conn, id, now)?
        .ok_or_else(|| ServiceError::NotFound("Token not found (or already revoked)".to_owned()))
}

/// Who holds a presented secret, and a stable key naming the token (for rate limiting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub principal: Principal,
    pub key: String,
}

/// Whether `secret` is the administrator's token from the environment (compared in
/// constant time).
pub fn is_environment_admin(secret: &str, admin_token: Option<&Secret>) -> Option<Holder> {
    let admin = admin_token?;
    let expected = hash_secret(admin.expose());
    bool::from(expected.as_bytes().ct_eq(hash_secret(secret).as_bytes())).then(|| Holder {
        principal: Principal::Admin,
        key: "token:environment".to_owned(),
    })
}

/// The holder of a live stored token whose secret is `secret`; None for an unknown or
/// revoked one.
pub fn holder(conn: &Connection, secret: &str) -> rusqlite::Result<Option<Holder>> {
    let Some(token) = tokens::find_active(conn, &hash_secret(secret))? else {
        return Ok(None);
    };
    let principal = match (token.role, token.agent_id) {
        (Role::Admin, _) => Principal::Admin,
        (Role::Viewer, _) => Principal::Viewer,
        (Role::Agent, Some(agent)) => Principal::Agent(agent),
        (Role::Agent, None) => return Ok(None),
    };
    Ok(Some(Holder {
        principal,
        key: format!("token:{}", token.id),
    }))
}

/// The file beside the database that holds the first admin token:
/// `backup-monitor.db` → `backup-monitor.admin-token`.
pub fn admin_token_path(database: &Path) -> PathBuf {
    database.with_extension("admin-token")
}

/// When no live admin token exists and `BACKUP_MONITOR_ADMIN_TOKEN` is not set (a first
/// start, or every admin token revoked), creates an admin token and writes it, alone, to a
/// mode-0600 file beside the database. Logs the file's path, never the token.
///
/// The token is committed only once its file is on disk: a start that cannot write the file
/// fails and leaves no admin token that nobody knows. The file is written under a fresh name
/// and renamed into place, so a symbolic link planted at its path is replaced, never
/// followed: whatever it pointed to stays untouched.
pub fn bootstrap(db: &Db, admin_token: Option<&Secret>) -> anyhow::Result<Option<PathBuf>> {
    if admin_token.is_some() {
        tracing::info!(
            "admin token from BACKUP_MONITOR_ADMIN_TOKEN accepted; no token file written"
        );
        return Ok(None);
    }
    let mut conn = db.conn().context("Failed to open a database connection")?;
    // Immediate: two processes starting at once cannot both see no admin and both create one.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    if tokens::count_active_admins(&tx)? > 0 {
        return Ok(None);
    }
    let path = admin_token_path(db.path());
    let (info, secret) = create(&tx, "initial admin", Role::Admin, None, Utc::now())?;
    let replaced_link = std::fs::symlink_metadata(&path)
        .is_ok_and(|m| m.file_type().is_symlink())
        .then(|| std::fs::read_link(&path).ok())
        .flatten();
    // On failure the transaction is dropped, and the token with it.
    write_secret_file(&path, &secret).with_context(|| {
        format!(
            "Failed to write the admin token to {}; no admin token was created",
            path.display()
        )
    })?;
    if let Err(e) = tx.commit() {
        // A file whose token is not stored would only mislead.
        let _ = std::fs::remove_file(&path);
        return Err(e).context("Failed to store the first admin token");
    }
    if let Some(target) = replaced_link {
        tracing::warn!(file = %path.display(), link_target = %target.display(), "a symbolic link stood at the admin token's path: replaced by the token file; its target was not touched");
    }
    tracing::warn!(file = %path.display(), token_id = info.id, "created the first admin token; read it from the file (mode 0600), then keep it somewhere safe");
    Ok(Some(path))
}

/// Writes `secret` to `path` atomically: into a new mode-0600 file beside it (created
/// exclusively, so never through a link), synced, then renamed over `path` (which replaces a
/// link there rather than following it), and the directory synced.
fn write_secret_file(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind, Write};
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, "the path names no file"))?
        .to_string_lossy();
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| Error::other(e.to_string()))?;
    let temporary = dir.join(format!(".{name}.{}.tmp", hex::encode(suffix)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    let mut file = options.open(&temporary)?;
    let written = file
        .write_all(format!("{secret}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temporary, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(e);
    }
    // The rename itself must survive a crash.
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
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
    fn the_token_file_sits_beside_the_database() {
        assert_eq!(
            admin_token_path(Path::new("/var/lib/bm/backup-monitor.db")),
            PathBuf::from("/var/lib/bm/backup-monitor.admin-token")
        );
    }

    #[test]
    fn the_environment_admin_token_is_recognised_and_nothing_else() {
        let admin = Secret::new("s3cret-admin");
        assert!(is_environment_admin("s3cret-admin", Some(&admin)).is_some());
        assert!(is_environment_admin("s3cret-admim", Some(&admin)).is_none());
        assert!(is_environment_admin("s3cret-admin", None).is_none());
    }
}
