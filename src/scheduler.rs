//! The in-process scheduler: runs `service::tick::tick` at start and then on its cron
//! schedule (tokio-cron-scheduler), never two at once, and wakes the alert delivery when a
//! tick queued alerts.

use std::sync::Arc;

use anyhow::Context;
use chrono::Utc;
use tokio::sync::{Mutex, Notify};

use crate::db::{Db, DbError};
use crate::metrics;
use crate::service::reminders::remind;
use crate::service::tick::tick;

/// What each tick needs of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct TickSettings {
    /// Slots evaluated per job and tick at most (`scheduler.max_catchup_slots`).
    pub max_catchup: usize,
    /// `alerts.repeat_every_minutes`: the reminders' default interval.
    pub repeat_every_minutes: Option<u32>,
}

/// The tick on its cron schedule, never two at once.
pub struct Scheduler {
    cron: tokio_cron_scheduler::JobScheduler,
    running: Arc<Mutex<()>>,
}

/// Runs one tick on the blocking pool; skipped if the previous one is still running.
async fn run_tick(db: &Db, running: &Mutex<()>, settings: TickSettings, wake: &Notify) {
    let Ok(_guard) = running.try_lock() else {
        tracing::warn!("previous tick still running; skipping this one");
        return;
    };
    let started = std::time::Instant::now();
    let result = db
        .run(move |conn| {
            let now = Utc::now();
            let mut outcome = tick(conn, now, settings.max_catchup)?;
            outcome.alerts_queued += remind(conn, now, settings.repeat_every_minutes)?;
            Ok::<_, DbError>(outcome)
        })
        .await;
    metrics::tick_took(started.elapsed().as_secs_f64());
    match result {
        Ok(outcome) => {
            if outcome.alerts_queued > 0 {
                wake.notify_one();
            }
            tracing::debug!(?outcome, elapsed_ms = started.elapsed().as_millis(), "tick");
            if outcome.missing_written > 0 {
                tracing::info!(
                    missing = outcome.missing_written,
                    alerts = outcome.alerts_queued,
                    "tick found missing backups"
                );
            }
        }
        Err(e) => tracing::error!(error = %e, "tick failed"),
    }
}

impl Scheduler {
    /// Ticks once now, then on `expression` (6 fields, seconds first, UTC).
    pub async fn start(
        db: Db,
        expression: &str,
        settings: TickSettings,
        wake: Arc<Notify>,
    ) -> anyhow::Result<Self> {
        let running = Arc::new(Mutex::new(()));
        run_tick(&db, &running, settings, &wake).await;
        let cron = tokio_cron_scheduler::JobScheduler::new()
            .await
            .context("Failed to create the scheduler")?;
        let job_running = running.clone();
        let job = tokio_cron_scheduler::Job::new_async_tz(expression, Utc, move |_, _| {
            let db = db.clone();
            let running = job_running.clone();
            let wake = wake.clone();
            Box::pin(async move { run_tick(&db, &running, settings, &wake).await })
        })
        .with_context(|| format!("Invalid scheduler.tick {expression:?}"))?;
        cron.add(job).await.context("Failed to schedule the tick")?;
        cron.start()
            .await
            .context("Failed to start the scheduler")?;
        tracing::info!(tick = expression, "scheduler started");
        Ok(Self { cron, running })
    }

    /// Stops ticking and waits for a tick in progress to finish.
    pub async fn stop(mut self) {
        if let Err(e) = self.cron.shutdown().await {
            tracing::warn!(error = %e, "scheduler did not shut down cleanly");
        }
        let _finished = self.running.lock().await;
        tracing::info!("scheduler stopped");
    }
}
