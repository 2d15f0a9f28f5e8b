//! Ping URLs (DESIGN §12): healthchecks.io's protocol and Uptime Kuma's push, for the backup
//! tools people already run. No bearer token: the key in the URL finds the job, is rate
//! limited on its own (`auth::authenticate`) and never logged (the request span names the
//! route, not the path).

use std::pin::Pin;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http_body::Body as _;
use serde_json::json;

use super::error::ApiError;
use super::ApiState;
use crate::service::input::Choice;
use crate::service::pings::{self, Ping, PingKind, BODY_READ_MAX};

/// The routes whose path holds a key: the request span and the rate limit treat them apart.
pub const PING_PREFIXES: [&str; 2] = ["/ping/", "/api/push/"];

pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/ping/{key}", get(ping_success).post(ping_success))
        .route("/ping/{key}/{action}", get(ping_action).post(ping_action))
        .route("/api/push/{key}", get(push).post(push))
}

/// A healthchecks answer: one line of plain text.
fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// The query's pairs, decoded.
fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// At most `max` bytes of the body; the rest is not read.
async fn read_at_most(mut body: Body, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < max {
        match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    let take = (max - out.len()).min(data.len());
                    out.extend_from_slice(&data[..take]);
                }
            }
            _ => break,
        }
    }
    out
}

/// Records `ping` for `key`: `OK`, or `not found` for a key no job has.
async fn record(state: &ApiState, key: String, ping: Ping) -> Result<bool, ApiError> {
    if !pings::plausible_key(&key) {
        return Ok(false);
    }
    let now = state.clock.now();
    let reported = state
        .writer
        .write(move |conn| pings::record(conn, &key, &ping, now))
        .await?;
    match reported {
        Some(reported) => {
            reported.committed(&state.alerts_queued);
            Ok(true)
        }
        None => Ok(false),
    }
}

async fn answer(
    state: ApiState,
    key: String,
    kind: Result<PingKind, String>,
    raw: Option<String>,
    body: Body,
) -> Result<Response, ApiError> {
    let kind = match kind {
        Ok(kind) => kind,
        Err(reason) => return Ok(text(StatusCode::BAD_REQUEST, reason)),
    };
    let body = read_at_most(body, BODY_READ_MAX).await;
    let ping = match Ping::read(kind, &pairs(raw.as_deref()), &body) {
        Ok(ping) => ping,
        Err(reason) => return Ok(text(StatusCode::BAD_REQUEST, reason)),
    };
    Ok(if record(&state, key, ping).await? {
        text(StatusCode::OK, "OK")
    } else {
        text(StatusCode::NOT_FOUND, "not found")
    })
}

/// Ping: success
///
/// healthchecks.io's protocol: GET, POST or HEAD. The body (text, at most 100 kB read, its
/// last 4096 characters kept) is kept as the entry's log. `?rid=` names the run;
/// `?size=<bytes>&hash=<sha256:…>` feed the content checks. Answers `OK`, or `404 not found`
/// for an unknown key.
#[utoipa::path(
    method(get, post, head),
    path = "/ping/{key}",
    tag = "pings",
    params(
        ("key" = String, Path, description = "The job's ping key (from its ping_url)"),
        ("rid" = Option<String>, Query, max_length = 64, description = "The run id (at most 64 characters)"),
        ("size" = Option<i64>, Query, minimum = 0, description = "The backup's size in bytes"),
        ("hash" = Option<String>, Query, max_length = 256, description = "The backup's hash, e.g. sha256:…"),
    ),
    request_body(content = String, content_type = "text/plain", description = "A log (optional)"),
    responses(
        (status = 200, description = "Recorded", body = String, content_type = "text/plain"),
        (status = 400, description = "A bad size, hash or rid, in one line", body = String, content_type = "text/plain"),
        (status = 404, description = "No job has this key", body = String, content_type = "text/plain"),
    ),
    security(())
)]
pub(super) async fn ping_success(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    answer(state, key, Ok(PingKind::Success), raw, body).await
}

/// Ping: start, fail, log or an exit status
///
/// `/start` records that a run began, `/fail` a failure (the body is its error message),
/// `/{0..=255}` a success for 0 and otherwise a failure with `exit status N`, `/log` keeps
/// the body as a log of the job and says nothing about its state.
#[utoipa::path(
    method(get, post, head),
    path = "/ping/{key}/{action}",
    tag = "pings",
    params(
        ("key" = String, Path, description = "The job's ping key (from its ping_url)"),
        ("action" = String, Path, pattern = "^(start|fail|log|25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$", description = "start, fail, log, or an exit status 0-255"),
        ("rid" = Option<String>, Query, max_length = 64, description = "The run id (at most 64 characters)"),
        ("size" = Option<i64>, Query, minimum = 0, description = "The backup's size in bytes"),
        ("hash" = Option<String>, Query, max_length = 256, description = "The backup's hash, e.g. sha256:…"),
    ),
    request_body(content = String, content_type = "text/plain", description = "A log, or the error output of a failure (optional)"),
    responses(
        (status = 200, description = "Recorded", body = String, content_type = "text/plain"),
        (status = 400, description = "A bad action, exit status, size, hash or rid, in one line", body = String, content_type = "text/plain"),
        (status = 404, description = "No job has this key", body = String, content_type = "text/plain"),
    ),
    security(())
)]
pub(super) async fn ping_action(
    State(state): State<ApiState>,
    Path((key, action)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    answer(state, key, PingKind::parse(&action), raw, body).await
}

/// Uptime Kuma's push status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum PushStatus {
    Up,
    Down,
}

impl PushStatus {
    pub const ALL: [PushStatus; 2] = [PushStatus::Up, PushStatus::Down];

    pub fn as_str(self) -> &'static str {
        match self {
            PushStatus::Up => "up",
            PushStatus::Down => "down",
        }
    }
}

impl Choice for PushStatus {
    const ALL: &'static [Self] = &PushStatus::ALL;
    fn as_str(self) -> &'static str {
        PushStatus::as_str(self)
    }
}

/// Push (Uptime Kuma)
///
/// Uptime Kuma's push protocol, for tools that speak it: `?status=up` (default) records a
/// success, `?status=down` a failure; `msg` is the message. Answers `{"ok": true}`.
#[utoipa::path(
    method(get, post),
    path = "/api/push/{key}",
    tag = "pings",
    params(
        ("key" = String, Path, description = "The job's ping key (from its ping_url)"),
        ("status" = Option<PushStatus>, Query, description = "up (default) or down"),
        ("msg" = Option<String>, Query, description = "A message: the error of a failure, the log of a success"),
    ),
    responses(
        (status = 200, description = "Recorded: {\"ok\": true}"),
        (status = 400, description = "A bad status: {\"ok\": false, \"msg\": …}"),
        (status = 404, description = "No job has this key: {\"ok\": false, \"msg\": …}"),
    ),
    security(())
)]
pub(super) async fn push(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let query = pairs(raw.as_deref());
    let get = |name: &str| {
        query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let status = get("status").filter(|s| !s.is_empty()).unwrap_or("up");
    let kind = match PushStatus::ALL.into_iter().find(|p| p.as_str() == status) {
        Some(PushStatus::Up) => PingKind::Success,
        Some(PushStatus::Down) => PingKind::Fail,
        None => {
            let msg = format!("status {status:?} is neither up nor down");
            return Ok((
                StatusCode::BAD_REQUEST,
                Json(json!({"ok": false, "msg": msg})),
            )
                .into_response());
        }
    };
    let message = get("msg").unwrap_or_default().as_bytes().to_vec();
    let ping = match Ping::read(kind, &[], &message) {
        Ok(ping) => ping,
        Err(reason) => {
            return Ok((
                StatusCode::BAD_REQUEST,
                Json(json!({"ok": false, "msg": reason})),
            )
                .into_response())
        }
    };
    Ok(if record(&state, key, ping).await? {
        Json(json!({"ok": true})).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"ok": false, "msg": "Monitor not found or not active."})),
        )
            .into_response()
    })
}
