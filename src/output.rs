//! What the commands write on stdout. A reader that went away (`backup-monitor openapi |
//! head`) ends the process quietly, as it ends `cat`, instead of the panic `println!` gives.

use std::io::{self, Write};
use std::process;

/// The exit status of a process whose reader went away: a shell reports 128 + SIGPIPE for a
/// program the signal ended, and pipelines under `set -o pipefail` treat both alike.
pub const BROKEN_PIPE_STATUS: i32 = 141;

/// Ends the process at once, quietly, if `error` says the reader of stdout went away;
/// otherwise hands the error back.
fn quiet_on_broken_pipe(error: io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::BrokenPipe {
        process::exit(BROKEN_PIPE_STATUS);
    }
    error
}

/// Stdout, locked, for writing much (an export); a closed pipe ends the process quietly.
pub fn stdout() -> Stdout {
    Stdout(io::stdout().lock())
}

pub struct Stdout(io::StdoutLock<'static>);

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(quiet_on_broken_pipe)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(quiet_on_broken_pipe)
    }
}

/// Writes `text` on stdout and flushes it; a closed pipe ends the process quietly, any other
/// failure (a full disk behind `>`) is the caller's to report.
pub fn print(text: &str) -> io::Result<()> {
    let mut out = stdout();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// [`print`] with a line break after `text`.
pub fn println(text: &str) -> io::Result<()> {
    let mut out = stdout();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// [`println`] for output that must not be lost unnoticed (a secret shown once): every
/// failure, a closed pipe included, is handed back.
pub fn println_strict(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}
