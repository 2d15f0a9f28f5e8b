//! Prometheus metrics at `GET /metrics`: counters and histograms through the `metrics`
//! crate (entries received, alerts, ticks, HTTP requests), and per-job gauges read from the
//! database at scrape time (state, last success, last size, outbox depth).

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::Utc;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::api::status::all;
use crate::api::AppState;
use crate::auth::Reader;
use crate::db::alerts;
use crate::domain::status::JobState;
use crate::error::ApiError;

pub const ENTRIES_RECEIVED: &str = "backup_monitor_entries_received_total";
pub const ALERTS: &str = "backup_monitor_alerts_total";
pub const TICK_DURATION: &str = "backup_monitor_tick_duration_seconds";
pub const HTTP_REQUESTS: &str = "backup_monitor_http_requests_total";
pub const HTTP_DURATION: &str = "backup_monitor_http_request_duration_seconds";

/// The process-wide recorder (the `metrics` crate has one global recorder), installed on
/// first use. None when another recorder was installed first.
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ];
            let built = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(TICK_DURATION.to_owned()), &seconds)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), &seconds)
                })
                .and_then(PrometheusBuilder::install_recorder);
            match built {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    metrics::describe_counter!(ENTRIES_RECEIVED, "Backup reports stored, by status.");
    metrics::describe_counter!(
        ALERTS,
        "Alert deliveries, by kind and result (sent or error)."
    );
    metrics::describe_histogram!(
        TICK_DURATION,
        metrics::Unit::Seconds,
        "Duration of scheduler ticks."
    );
    metrics::describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests, by method, matched route and status."
    );
    metrics::describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency, by method and matched route."
    );
}

/// Installs the recorder (once per process) so that counting starts with the service.
pub fn init() {
    let _ = handle();
}

pub fn entry_received(status: &'static str) {
    metrics::counter!(ENTRIES_RECEIVED, "status" => status).increment(1);
}

pub fn alert_delivered(kind: &'static str, sent: bool) {
    let result = if sent { "sent" } else { "error" };
    metrics::counter!(ALERTS, "kind" => kind, "result" => result).increment(1);
}

pub fn tick_took(seconds: f64) {
    metrics::histogram!(TICK_DURATION).record(seconds);
}

/// Counts every request by its matched route template (never the raw path, so label values
/// stay bounded), method and status.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

pub fn router(require_token: bool) -> Router<AppState> {
    if require_token {
        Router::new().route(
            "/metrics",
            get(|_: Reader, state: State<AppState>| scrape(state)),
        )
    } else {
        Router::new().route("/metrics", get(scrape))
    }
}

async fn scrape(State(state): State<AppState>) -> Result<Response, ApiError> {
    let now = Utc::now();
    let (jobs, pending) = state
        .db
        .run(move |conn| {
            Ok((
                all(conn, None, None, None, now)?,
                alerts::pending_count(conn)?,
            ))
        })
        .await?;
    let mut out = String::new();
    if let Some(handle) = handle() {
        handle.run_upkeep();
        out.push_str(&handle.render());
    }
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
        "backup_monitor_outbox_pending",
        "Alerts not delivered yet.",
    );
    let _ = writeln!(out, "backup_monitor_outbox_pending {pending}");
    let mut response = (StatusCode::OK, out).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}

fn job_labels(job: &crate::db::status::JobStatus) -> String {
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
