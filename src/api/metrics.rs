//! `GET /metrics` in Prometheus' text format: the process's counters and histograms, and
//! gauges read at scrape time (per job: state, last success, last size, last run's
//! duration; the outbox depth, the database's bytes on disk and the entries it holds); and
//! the middleware that counts every request.

use std::fmt::Write as _;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::auth::EveryJobReader;
use super::error::ApiError;
use super::ApiState;
use crate::db::status::JobStatus;
use crate::db::{alerts, entries};
use crate::domain::status::JobState;
use crate::metrics;
use crate::service::status::{all, StatusFilter};

/// Counts every request by its matched route template (never the raw path, so label values
/// stay bounded), method (a standard one, else `other`) and status.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    metrics::http_request(
        method.as_str(),
        route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// `/metrics`, open or (with `metrics.require_token`) for viewer and admin tokens: the
/// gauges name every company's jobs, which an agent token may not see.
pub fn router(require_token: bool) -> Router<ApiState> {
    if require_token {
        Router::new().route(
            "/metrics",
            get(|_: EveryJobReader, state: State<ApiState>| scrape(state)),
        )
    } else {
        Router::new().route("/metrics", get(scrape))
    }
}

async fn scrape(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let now = state.clock.now();
    let db = state.db.clone();
    let (jobs, pending, stored, bytes) = state
        .db
        .run(move |conn| {
            Ok::<_, ApiError>((
                all(conn, &StatusFilter::default(), now)?,
                alerts::pending_count(conn)?,
                entries::stored_count(conn)?,
                db.bytes_on_disk(),
            ))
        })
        .await?;
    let mut out = metrics::render();
    let family = |out: &mut String, name: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    };
    family(
        &mut out,
        "backup_monitor_job_state",
        "The job's current state: 1 for it, 0 for the others.",
    );
    for job in &jobs {
        for s in JobState::ALL {
            let _ = writeln!(
                out,
                "backup_monitor_job_state{{{},state=\"{}\"}} {}",
                job_labels(job),
                s.as_str(),
                u8::from(job.state == s)
            );
        }
    }
    family(
        &mut out,
        "backup_monitor_job_last_success_timestamp_seconds",
        "When the job's last successful backup ran (Unix time).",
    );
    for job in &jobs {
        if let Some(t) = job.last_success_utc {
            let _ = writeln!(
                out,
                "backup_monitor_job_last_success_timestamp_seconds{{{}}} {}",
                job_labels(job),
                t.timestamp()
            );
        }
    }
    family(
        &mut out,
        "backup_monitor_job_last_size_bytes",
        "Size of the job's latest reported backup that carried one.",
    );
    for job in &jobs {
        if let Some(size) = job.last_size_bytes {
            let _ = writeln!(
                out,
                "backup_monitor_job_last_size_bytes{{{}}} {size}",
                job_labels(job)
            );
        }
    }
    family(
        &mut out,
        "backup_monitor_job_last_duration_seconds",
        "Seconds the run of the job's latest success or failure took, from its started report; absent when unknown.",
    );
    for job in &jobs {
        if let Some(seconds) = job.last_duration_seconds {
            let _ = writeln!(
                out,
                "backup_monitor_job_last_duration_seconds{{{}}} {seconds}",
                job_labels(job)
            );
        }
    }
    family(
        &mut out,
        "backup_monitor_outbox_pending",
        "Alerts not delivered yet.",
    );
    let _ = writeln!(out, "backup_monitor_outbox_pending {pending}");
    family(
        &mut out,
        "backup_monitor_database_bytes",
        "Bytes of the SQLite database on disk: its file plus its write-ahead log.",
    );
    let _ = writeln!(out, "backup_monitor_database_bytes {bytes}");
    family(
        &mut out,
        "backup_monitor_entries_stored",
        "Entries the database holds, every job and status (retention deletes the old ones).",
    );
    let _ = writeln!(out, "backup_monitor_entries_stored {stored}");
    let mut response = (StatusCode::OK, out).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

fn job_labels(job: &JobStatus) -> String {
    format!(
        "job_id=\"{}\",company=\"{}\",city=\"{}\",database=\"{}\"",
        job.job_id,
        escape(&job.company_name),
        escape(&job.city),
        escape(&job.database_name)
    )
}

/// Label values escape backslash, double quote and line feed.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
