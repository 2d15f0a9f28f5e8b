//! Logs through tracing-subscriber: human-readable by default, JSON lines for log shippers.
//! `RUST_LOG` overrides the default filter.
//!
//! Lines are formatted where they happen and written to stderr by a thread of their own
//! (tracing-appender's non-blocking writer), which writes whatever has queued up in one
//! `write(2)`: a busy server no longer pays a system call per line on its request threads.
//! Nothing is dropped: when [`QUEUED_LINES_MAX`] lines wait, a logging thread waits too,
//! as it did on a slow stderr before. Keep the [`LogGuard`] until the process ends: dropping
//! it writes out what is still queued.

use std::io::IsTerminal;

use clap::ValueEnum;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

const DEFAULT_FILTER: &str = "info,tower_http=info,tokio_cron_scheduler=warn";

/// Lines waiting for the log thread at most; past that, whoever logs waits (never drops).
pub const QUEUED_LINES_MAX: usize = 16_384;

/// Writes out the queued lines when dropped: hold it in `main` until the end.
#[must_use = "dropping the guard stops the log thread"]
pub struct LogGuard {
    _worker: Option<WorkerGuard>,
}

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogGuard")
    }
}

/// Installs the global subscriber; logs go to stderr so stdout stays for command output.
pub fn init(format: LogFormat) -> LogGuard {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Buffered: the log thread flushes after each run of lines it finds queued.
    let stderr = std::io::BufWriter::with_capacity(64 * 1024, std::io::stderr());
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES_MAX)
        .thread_name("log-writer")
        .finish(stderr);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
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
    LogGuard {
        _worker: result.is_ok().then_some(guard),
    }
}
