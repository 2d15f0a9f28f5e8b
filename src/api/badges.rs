//! Status badges (shields-style SVG) for wikis: `/badge/{key}/job/{job_id}.svg` and
//! `/badge/{key}/company/{company_name}.svg`. No token: the key is an HMAC of the target
//! under this installation's secret, so a badge URL can be shared but not guessed for
//! another job or company.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use super::ApiState;
use crate::domain::status::JobState;
use crate::service::{status, ServiceError};

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/badge/{key}/job/{file}", get(job_badge))
        .route("/badge/{key}/company/{file}", get(company_badge))
}

/// The key of a badge target (`job:7`, `company:acme`): 128 bits of HMAC-SHA256, in hex.
pub fn key(secret: &str, target: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(target.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The badge URL of a job, as its JSON carries it.
pub fn job_badge_url(secret: &str, job_id: i64) -> String {
    format!(
        "/badge/{}/job/{job_id}.svg",
        key(secret, &format!("job:{job_id}"))
    )
}

pub fn company_badge_url(secret: &str, company: &str) -> String {
    let encoded: String = form_urlencoded::byte_serialize(company.as_bytes()).collect();
    format!(
        "/badge/{}/company/{}.svg",
        key(secret, &format!("company:{company}")),
        encoded.replace('+', "%20")
    )
}

fn not_found() -> ApiError {
    ApiError::NotFound("Not Found".to_owned())
}

/// The target named by `file` (`7.svg`) if `presented` is its key.
fn verify(secret: &str, presented: &str, kind: &str, file: &str) -> Result<String, ApiError> {
    let name = file.strip_suffix(".svg").ok_or_else(not_found)?;
    let expected = key(secret, &format!("{kind}:{name}"));
    if bool::from(expected.as_bytes().ct_eq(presented.as_bytes())) {
        Ok(name.to_owned())
    } else {
        Err(not_found())
    }
}

async fn job_badge(
    State(state): State<ApiState>,
    Path((presented, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = verify(&state.badge_secret, &presented, "job", &file)?;
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let now = state.clock.now();
    let status = state
        .db
        .run(move |conn| match status::of_job(conn, id, now) {
            Err(ServiceError::NotFound(_)) => Err(not_found()),
            other => Ok(other?),
        })
        .await?;
    Ok(svg(&status.database_name, Some(status.state)))
}

async fn company_badge(
    State(state): State<ApiState>,
    Path((presented, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let company = verify(&state.badge_secret, &presented, "company", &file)?;
    let now = state.clock.now();
    let label = company.clone();
    let worst = state
        .db
        .run(move |conn| Ok::<_, ApiError>(status::worst_of_company(conn, &company, now)?))
        .await?;
    Ok(svg(&label, worst))
}

fn colour(state: Option<JobState>) -> &'static str {
    match state {
        Some(JobState::Ok) => "#2e7d32",
        Some(JobState::Late) => "#e65100",
        Some(JobState::Failed) => "#c62828",
        Some(JobState::Suspect) => "#f9a825",
        Some(JobState::Pending) => "#607d8b",
        Some(JobState::Paused) | None => "#9e9e9e",
    }
}

/// A flat shields-style badge: `backup <name>` | `<state>`.
fn svg(name: &str, state: Option<JobState>) -> Response {
    let left = format!("backup {name}");
    let right = state.map(JobState::as_str).unwrap_or("no jobs");
    // Verdana 11px averages about 7 px a character.
    let width = |s: &str| 10 + 7 * s.chars().count();
    let (lw, rw) = (width(&left), width(right));
    let total = lw + rw;
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let body = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{al}: {ar}"><title>{al}: {ar}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{lw}" height="20" fill="#555"/><rect x="{lw}" width="{rw}" height="20" fill="{c}"/><rect width="{total}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11"><text x="{lx}" y="14">{al}</text><text x="{rx}" y="14">{ar}</text></g></svg>"##,
        al = esc(&left),
        ar = esc(right),
        c = colour(state),
        lx = lw / 2,
        rx = lw + rw / 2,
    );
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("image/svg+xml"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=60"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_target_and_by_secret() {
        let a = key("secret-one", "job:1");
        assert_eq!(a.len(), 32);
        assert_eq!(a, key("secret-one", "job:1"));
        assert_ne!(a, key("secret-one", "job:2"));
        assert_ne!(a, key("secret-two", "job:1"));
        assert_ne!(key("s", "company:1"), key("s", "job:1"));
    }

    #[test]
    fn only_the_right_key_opens_a_badge() {
        let url = job_badge_url("s", 7);
        let presented = url.split('/').nth(2).unwrap_or_default().to_owned();
        assert_eq!(
            verify("s", &presented, "job", "7.svg").ok().as_deref(),
            Some("7")
        );
        assert!(verify("s", &presented, "job", "8.svg").is_err());
        assert!(verify("s", &presented, "job", "7.png").is_err());
        assert!(verify("other", &presented, "job", "7.svg").is_err());
    }
}
