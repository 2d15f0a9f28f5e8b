//! The process's Prometheus recorder and its counters and histograms (entries received,
//! alerts, ticks, HTTP requests), through the `metrics` crate. Knows no HTTP framework:
//! `api::metrics` serves them at `/metrics` with the per-job gauges.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

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

/// Counts one HTTP request by method, matched route template and status.
pub fn http_request(method: String, route: String, status: u16, seconds: f64) {
    metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route).record(seconds);
}

/// The counters and histograms in Prometheus' text format (empty when no recorder).
pub fn render() -> String {
    match handle() {
        Some(handle) => {
            handle.run_upkeep();
            handle.render()
        }
        None => String::new(),
    }
}
