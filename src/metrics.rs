//! The process's Prometheus recorder and its counters and histograms (entries received,
//! alerts, ticks, HTTP requests), through the `metrics` crate. Knows no HTTP framework:
//! `api::metrics` serves them at `/metrics` with the per-job gauges.
//!
//! Label values are bounded: statuses and alert kinds are enum names, routes are matched
//! templates, and methods outside the standard ones count as `other`.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const ENTRIES_RECEIVED: &str = "backup_monitor_entries_received_total";
pub const ALERTS: &str = "backup_monitor_alerts_total";
pub const DELIVERIES: &str = "backup_monitor_deliveries_total";
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
    metrics::describe_counter!(
        DELIVERIES,
        "Delivery attempts, by configured channel and result (sent, error: retried, refused: not retried)."
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

/// Installs the recorder (once per process) so that counting starts with the service, and
/// shows every `(label values)` series of the counters at 0: Prometheus' `increase()` needs
/// the zero before the first event.
pub fn init(entry_statuses: &[&'static str], alert_kinds: &[&'static str]) {
    if handle().is_none() {
        return;
    }
    for &status in entry_statuses {
        metrics::counter!(ENTRIES_RECEIVED, "status" => status).increment(0);
    }
    for &kind in alert_kinds {
        for result in ["sent", "error"] {
            metrics::counter!(ALERTS, "kind" => kind, "result" => result).increment(0);
        }
    }
}

/// How often the recorder's histograms are drained into their buckets between scrapes.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Drains the histograms' recorded samples into their buckets every [`UPKEEP_EVERY`], so
/// that memory does not grow with the requests between two scrapes (the recorder installed
/// without its HTTP exporter runs no upkeep of its own).
pub async fn upkeep() {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Some(handle) = handle() {
            handle.run_upkeep();
        }
    }
}

pub fn entry_received(status: &'static str) {
    metrics::counter!(ENTRIES_RECEIVED, "status" => status).increment(1);
}

pub fn alert_delivered(kind: &'static str, sent: bool) {
    let result = if sent { "sent" } else { "error" };
    metrics::counter!(ALERTS, "kind" => kind, "result" => result).increment(1);
}

/// The results of a delivery through a channel.
pub const DELIVERY_RESULTS: [&str; 3] = ["sent", "error", "refused"];

/// Shows every `(channel, result)` series at 0. The channels are the configured ones: the
/// label is bounded by the configuration.
pub fn channels_init(channels: &[String]) {
    if handle().is_none() {
        return;
    }
    for channel in channels {
        for result in DELIVERY_RESULTS {
            metrics::counter!(DELIVERIES, "channel" => channel.clone(), "result" => result)
                .increment(0);
        }
    }
}

/// Counts one delivery attempt through a configured channel; `result` is one of
/// [`DELIVERY_RESULTS`].
pub fn channel_delivery(channel: &str, result: &'static str) {
    metrics::counter!(DELIVERIES, "channel" => channel.to_owned(), "result" => result).increment(1);
}

pub fn tick_took(seconds: f64) {
    metrics::histogram!(TICK_DURATION).record(seconds);
}

/// The methods counted under their own name; any other is counted as `other`, so that a
/// client inventing methods cannot create series without end.
const KNOWN_METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// The `method` label of a request method.
pub fn method_label(method: &str) -> &'static str {
    KNOWN_METHODS
        .into_iter()
        .find(|known| *known == method)
        .unwrap_or("other")
}

/// Counts one HTTP request by method, matched route template and status. `route` must be
/// a route template (or a fixed word), never a raw path.
pub fn http_request(method: &str, route: String, status: u16, seconds: f64) {
    let method = method_label(method);
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status.to_string())
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

#[cfg(test)]
mod tests {
    use super::method_label;

    #[test]
    fn only_the_standard_methods_are_labels_of_their_own() {
        for known in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] {
            assert_eq!(method_label(known), known);
        }
        for invented in ["Z17", "get", "TRACE", "CONNECT", "PROPFIND", ""] {
            assert_eq!(method_label(invented), "other", "{invented:?}");
        }
    }
}
