//! Logs through tracing-subscriber: human-readable by default, JSON lines for log shippers.
//! `RUST_LOG` overrides the default filter.
//!
//! Each line is one `write(2)` to stderr, from the thread that logs. A log thread of its own
//! (tracing-appender's non-blocking writer, batching its writes) was measured under a stream
//! of reports: the request threads spent no less, the log thread added 4–7 µs a line and
//! `/healthz` lost a fifth of its rate to the wake-ups (BENCHMARKS.md). What a busy server
//! saves is lines: one per request (see `Reported::committed`).

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

const DEFAULT_FILTER: &str = "info,tower_http=info,tokio_cron_scheduler=warn";

/// Installs the global subscriber; logs go to stderr so stdout stays for command output.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    // Already installed (e.g. twice in one test process): keep the first.
    let _ = result;
}
