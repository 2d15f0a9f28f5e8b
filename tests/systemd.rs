//! systemd: the unit in `systemd/` verifies, and the binary tells a `NOTIFY_SOCKET` it is
//! ready (after migrations, during which it extends the start's timeout, and the bind),
//! feeds the watchdog, and says when it stops.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{command, spawn_app_with, terminate, ADMIN_TOKEN, BIN};

/// Datagrams received until one contains `wanted` (at most 10 s).
fn wait_for(socket: &UnixDatagram, wanted: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let message = String::from_utf8_lossy(&buf[..n]).into_owned();
            let found = message.lines().any(|l| l == wanted);
            seen.push(message);
            if found {
                return;
            }
        }
    }
    panic!("no {wanted} from the service; got {seen:?}");
}

#[test]
fn the_service_signals_readiness_feeds_the_watchdog_and_says_it_stops() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut child = command(dir.path())
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();

    wait_for(&socket, "READY=1", &mut seen);
    // Ready means migrated and listening: the database is there, with its schema.
    assert!(dir.path().join("backup-monitor.db").is_file());
    let ready = seen.last().unwrap().clone();
    // While the migrations ran, the start's timeout was extended, saying why.
    let migrating = seen
        .iter()
        .position(|m| m.lines().any(|l| l == "EXTEND_TIMEOUT_USEC=60000000"))
        .unwrap_or_else(|| panic!("no EXTEND_TIMEOUT_USEC before READY=1: {seen:?}"));
    assert!(
        seen[migrating].contains("STATUS=applying database migrations"),
        "{seen:?}"
    );
    assert!(migrating < seen.len() - 1, "{seen:?}");
    let status = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS=listening on "))
        .expect("a STATUS line");
    let addr: std::net::SocketAddr = status.parse().unwrap();
    assert!(
        std::net::TcpStream::connect(addr).is_ok(),
        "listening when ready"
    );

    wait_for(&socket, "WATCHDOG=1", &mut seen);
    wait_for(&socket, "WATCHDOG=1", &mut seen);

    terminate(&child);
    wait_for(&socket, "STOPPING=1", &mut seen);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn without_systemd_nothing_is_sent_and_nothing_breaks() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .env("WATCHDOG_USEC", "400000")
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(out.status.success());
}

#[test]
#[ignore = "needs systemd-analyze (Debian's systemd): run by .ci/run"]
fn the_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/backup-monitor.service"
    ))
    .unwrap();
    for directive in [
        "Type=notify",
        "User=backup-monitor",
        "ProtectSystem=strict",
        "StateDirectory=backup-monitor",
        "NoNewPrivileges=yes",
        "WatchdogSec=",
        "LimitNOFILE=",
    ] {
        assert!(unit.contains(directive), "the unit lacks {directive}");
    }
    // One file descriptor per connection, and more for SQLite, the listener and the logs.
    let nofile: usize = unit
        .lines()
        .find_map(|l| l.strip_prefix("LimitNOFILE="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let max_connections = backup_monitor::config::Settings::default()
        .server
        .max_connections;
    assert!(
        nofile >= max_connections + 256,
        "LimitNOFILE={nofile} leaves too little beside max_connections = {max_connections}"
    );
    // verify checks that ExecStart exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backup-monitor.service");
    std::fs::write(
        &path,
        unit.replace("ExecStart=backup-monitor", &format!("ExecStart={BIN}")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{said}"
    );
    assert!(
        !said.contains("backup-monitor.service:"),
        "warnings about the unit:\n{said}"
    );
}

/// Datagrams received for `within`, one string each.
fn drain(socket: &UnixDatagram, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_goes_hungry_once_the_writer_thread_has_died() {
    // Arrange: the service in this process, told by the environment that systemd watches
    // it (no other test of this binary runs a service in-process)
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    std::env::set_var("NOTIFY_SOCKET", &socket_path);
    std::env::set_var("WATCHDOG_USEC", "200000");
    let app = spawn_app_with(|_| {}).await;
    let fed = |seen: &[String]| seen.iter().any(|m| m.lines().any(|l| l == "WATCHDOG=1"));
    // Fed within a few periods (seconds on a loaded machine, where the task waits its turn).
    // The environment stays set until then: the service reads it when its task first runs,
    // which may be after `spawn_app_with` returned.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fed(&drain(&socket, Duration::from_millis(200))) {
        assert!(Instant::now() < deadline, "fed while healthy");
    }
    std::env::remove_var("NOTIFY_SOCKET");
    std::env::remove_var("WATCHDOG_USEC");

    // Act: the writer thread dies; a report finds out
    app.writer.crash_for_tests();
    let report = common::client_with(Some(ADMIN_TOKEN))
        .post(app.url("/api/v1/entries/"))
        .json(&serde_json::json!({"expected_job_id": 1, "status": "success"}))
        .send()
        .await
        .unwrap();
    drain(&socket, Duration::from_millis(300));
    let after = drain(&socket, Duration::from_secs(1));

    // Assert
    assert_ne!(report.status(), 500);
    assert!(
        !fed(&after),
        "the watchdog is still fed by a service that cannot store reports: {after:?}"
    );
}
