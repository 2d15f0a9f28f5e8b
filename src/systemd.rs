//! systemd integration: readiness (`Type=notify`) once migrations ran and the listener is
//! bound (the start's timeout extended while they run), the watchdog fed while the database
//! answers, and "stopping" on shutdown. Every call is a no-op when not started by systemd
//! (no `NOTIFY_SOCKET`).

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

/// How long systemd is asked to wait for the start to go on at each step of [`starting`].
const START_EXTENDED: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `work`, a step of the start (the migrations), telling systemd what it is and, every
/// third of [`START_EXTENDED`], to wait that long again (`EXTEND_TIMEOUT_USEC`). A migration
/// that rebuilds the indexes of 10,000,000 entries takes half a minute or more on a small
/// VM; past `TimeoutStartSec` (90 s by default) systemd would kill the service mid-way (the
/// migration rolls back whole) and start it again, to the same end, for good.
pub async fn starting<F: std::future::Future>(what: &str, work: F) -> F::Output {
    tokio::pin!(work);
    let usec = u32::try_from(START_EXTENDED.as_micros()).unwrap_or(u32::MAX);
    let mut ticker = tokio::time::interval(START_EXTENDED / 3);
    loop {
        // The ticker first: its first tick is at once, so systemd hears of every start.
        tokio::select! {
            biased;
            _ = ticker.tick() => {
                send(&[NotifyState::ExtendTimeoutUsec(usec), NotifyState::Status(what)]);
            }
            done = &mut work => return done,
        }
    }
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
