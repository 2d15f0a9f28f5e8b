//! systemd integration: readiness (`Type=notify`) once migrations ran and the listener is
//! bound, the watchdog fed while the database answers, and "stopping" on shutdown. Every
//! call is a no-op when not started by systemd (no `NOTIFY_SOCKET`).

use std::net::SocketAddr;

use sd_notify::NotifyState;

use crate::db::writer::Writer;
use crate::db::Db;

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

pub fn ready(addr: SocketAddr) {
    let status = format!("listening on {addr}");
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// When systemd asks for a watchdog (`WatchdogSec=`), pings it at half the interval, but
/// only while the database answers and the group-commit writer runs, so that a wedged
/// service, or one whose writer died, gets restarted. (A full disk is not a reason: a
/// restart would not free space; `/healthz` says it.)
pub fn watchdog(db: Db, writer: Writer) -> Option<tokio::task::JoinHandle<()>> {
    let interval = sd_notify::watchdog_enabled()?;
    let every = (interval / 2).max(std::time::Duration::from_millis(50));
    tracing::info!(
        interval_ms = interval.as_millis(),
        "systemd watchdog enabled"
    );
    Some(tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            match db.live(&writer).await {
                Ok(()) => send(&[NotifyState::Watchdog]),
                Err(e) => {
                    tracing::error!(error = %e, "cannot store reports; not feeding the watchdog")
                }
            }
        }
    }))
}
