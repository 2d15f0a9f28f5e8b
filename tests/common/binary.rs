//! The `backup-monitor` binary, run as a sysadmin or an agent would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_backup-monitor");

/// The binary, run in `dir`, with nothing inherited from this process's environment but
/// PATH (so no configuration leaks in). For tokio: `tokio::process::Command::from(...)`.
pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

/// How a run of the binary ended.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().expect("exited"),
            stdout: stdout(&output),
            stderr: stderr(&output),
        }
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Drains the server's stderr on a thread (a closed pipe would break its logging) and
/// returns the address it listens on, with the lines logged until then.
pub fn wait_for_listening(child: &mut Child) -> (String, Vec<String>) {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                // Nobody listens any more; keep draining.
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        lines.push(line.clone());
        if let Some(i) = line.find("listening on http://") {
            let rest = &line[i + "listening on http://".len()..];
            let addr = rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('"')
                .to_owned();
            return (addr, lines);
        }
    }
    panic!("server did not start: {lines:?}");
}

/// Starts `serve` in `dir` on a free port with JSON logs written to the file `log` (for a
/// test that reads the whole log afterwards) and `admin_token` as the first admin token;
/// returns once the log names the address, with that address.
// The caller owns the child it gets back, and waits for it (the lint sees only this body).
#[allow(clippy::zombie_processes)]
pub fn serve_logging_to(dir: &Path, log: &Path, admin_token: &str) -> (Child, String) {
    let file = std::fs::File::create(log).unwrap();
    let mut child = command(dir)
        .args(["--log-format", "json", "serve", "--bind", "127.0.0.1:0"])
        .env("BACKUP_MONITOR_ADMIN_TOKEN", admin_token)
        .stderr(Stdio::from(file))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(i) = text.find("listening on http://") {
            let rest = &text[i + "listening on http://".len()..];
            return (child, rest.split([' ', '"']).next().unwrap().to_owned());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not start: {text}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends SIGTERM to `child`, as systemd or Ctrl-C would.
pub fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}
