//! Delivering the alert outbox: claim due alerts, email them, record the outcome, retry
//! failures with exponential backoff. An SMTP outage delays alerts; it never loses them.
//!
//! Delivery is at least once: an alert is marked sent right after the SMTP server accepts
//! it, so only a crash between those two steps can send it twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::Notify;

use super::email::Mailer;
use crate::db::{alerts, entries, jobs, status, Db};
use crate::domain::alert::{self, Alert, AlertContext};
use crate::domain::job::Job;
use crate::metrics;
use crate::service::jobs::expected_path;
use crate::service::ServiceError;

/// How long a sender holds the alerts it claimed before another may take them.
pub const LEASE: Duration = Duration::minutes(5);
/// Alerts claimed per round.
const BATCH: usize = 20;
const FIRST_RETRY: Duration = Duration::seconds(30);
const LONGEST_RETRY: Duration = Duration::hours(1);
/// How often the loop looks for due alerts when nothing wakes it.
const POLL: std::time::Duration = std::time::Duration::from_secs(10);

/// The wait before attempt `attempts + 1`: 30 s, 1 min, 2 min, … at most 1 h.
pub fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    let wait = FIRST_RETRY * 2_i32.pow(doublings);
    wait.min(LONGEST_RETRY)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    pub sent: usize,
    pub failed: usize,
}

#[derive(Clone)]
pub struct Outbox {
    db: Db,
    mailer: Option<Arc<Mailer>>,
    recipients: Vec<String>,
    wake: Arc<Notify>,
    /// Set when the service stops: the round in progress finishes the email it is sending,
    /// records it, and hands the rest of its claim back at once.
    stopping: Arc<AtomicBool>,
}

/// Everything an email about one alert needs, read in one go.
struct Letter {
    alert: Alert,
    subject: String,
    body: String,
    /// The recipients of the jobs it is about (`notify_emails`), besides `alerts.to`.
    extra_recipients: Vec<String>,
}

impl Letter {
    /// The letter of `alert` at `now`, or None when what it is about is gone (a job deleted
    /// meanwhile takes its alerts with it).
    fn of(
        conn: &rusqlite::Connection,
        alert: Alert,
        now: DateTime<Utc>,
    ) -> Result<Option<Self>, ServiceError> {
        if let Some(agent) = alert.agent_id.clone() {
            let jobs: Vec<(Job, DateTime<Utc>)> = alerts::jobs_of(conn, alert.id)?
                .into_iter()
                .filter_map(|(job_id, slot)| match jobs::get(conn, job_id) {
                    Ok(job) => job.map(|j| Ok((j, slot))),
                    Err(e) => Some(Err(e)),
                })
                .collect::<rusqlite::Result<_>>()?;
            let mut extra_recipients: Vec<String> = Vec::new();
            for (job, _) in &jobs {
                for address in &job.notify_emails {
                    if !extra_recipients.contains(address) {
                        extra_recipients.push(address.clone());
                    }
                }
            }
            let last_heard = status::agent_last_heard(conn, &agent, now)?;
            return Ok(Some(Self {
                subject: alert::agent_subject(&alert, jobs.len()),
                body: alert::agent_body(&alert, &jobs, last_heard),
                extra_recipients,
                alert,
            }));
        }
        let Some(job) = alert
            .job_id
            .map(|id| jobs::get(conn, id))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        let context = context_of(conn, &alert, &job, now)?;
        Ok(Some(Self {
            subject: alert::subject(&alert, &job),
            body: alert::body(&alert, &job, &context),
            extra_recipients: job.notify_emails,
            alert,
        }))
    }
}

impl Outbox {
    pub fn new(
        db: Db,
        mailer: Option<Arc<Mailer>>,
        recipients: Vec<String>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            db,
            mailer,
            recipients,
            wake,
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Sends every alert due at `now` (in rounds of a few), and returns what happened.
    pub async fn dispatch_pending(&self, now: DateTime<Utc>) -> Result<Dispatched, ServiceError> {
        let mut total = Dispatched::default();
        loop {
            let round = self.dispatch_round(now).await?;
            total.sent += round.sent;
            total.failed += round.failed;
            if round.sent + round.failed < BATCH || self.stopping.load(Ordering::SeqCst) {
                return Ok(total);
            }
        }
    }

    async fn dispatch_round(&self, now: DateTime<Utc>) -> Result<Dispatched, ServiceError> {
        let Some(mailer) = self.mailer.clone() else {
            return Ok(Dispatched::default());
        };
        let letters = self
            .db
            .run(move |conn| {
                let claimed = alerts::claim_due(conn, now, LEASE, BATCH)?;
                let mut letters = Vec::with_capacity(claimed.len());
                for alert in claimed {
                    letters.extend(Letter::of(conn, alert, now)?);
                }
                Ok::<_, ServiceError>(letters)
            })
            .await?;
        let mut outcome = Dispatched::default();
        let mut letters = letters.into_iter();
        while let Some(letter) = letters.next() {
            if self.stopping.load(Ordering::SeqCst) {
                // Stopping: hand back what this round claimed and has not sent, so that the
                // next start delivers it at once rather than after the lease.
                let unsent: Vec<i64> = std::iter::once(letter.alert.id)
                    .chain(letters.map(|l| l.alert.id))
                    .collect();
                let released = unsent.len();
                self.db
                    .run(move |conn| Ok::<_, ServiceError>(alerts::release(conn, &unsent, now)?))
                    .await?;
                tracing::info!(released, "stopping: alerts not sent yet are handed back");
                break;
            }
            let mut to = self.recipients.clone();
            for extra in &letter.extra_recipients {
                if !to.contains(extra) {
                    to.push(extra.clone());
                }
            }
            let subject = &letter.subject;
            let result = if to.is_empty() {
                Err("no recipients: set alerts.to or the job's notify_emails".to_owned())
            } else {
                mailer.send(&to, subject, &letter.body).await
            };
            let job_id = letter.alert.job_id;
            let agent_id = letter.alert.agent_id.as_deref();
            let id = letter.alert.id;
            let attempts = letter.alert.attempts + 1;
            metrics::alert_delivered(letter.alert.kind.as_str(), result.is_ok());
            match &result {
                Ok(()) => {
                    tracing::info!(alert_id = id, job_id, agent_id, %subject, recipients = to.len(), "alert sent");
                    outcome.sent += 1;
                }
                Err(reason) => {
                    tracing::warn!(alert_id = id, job_id, agent_id, %subject, attempts, error = %reason, "alert not sent; will retry");
                    outcome.failed += 1;
                }
            }
            let retry_at = now + backoff(attempts);
            self.db
                .run(move |conn| {
                    match result {
                        Ok(()) => alerts::mark_sent(conn, id, now)?,
                        Err(reason) => alerts::mark_failed(conn, id, &reason, retry_at)?,
                    }
                    Ok::<_, ServiceError>(())
                })
                .await?;
        }
        Ok(outcome)
    }

    /// Delivers until `stop` completes: at once when woken (an alert was queued in this
    /// process), otherwise every few seconds (alerts queued by another process, retries).
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let Some(mailer) = &self.mailer else {
            return;
        };
        tracing::info!(smtp = %mailer.describe(), "alert delivery started");
        let stopping = self.stopping.clone();
        let stop = async move {
            stop.await;
            stopping.store(true, Ordering::SeqCst);
        };
        tokio::pin!(stop);
        let mut stopped = false;
        while !stopped {
            let round = self.dispatch_pending(Utc::now());
            tokio::pin!(round);
            // A stop during a round lets it finish the email in flight (it checks the flag
            // between emails), never cuts one between "sent" and "recorded as sent".
            let result = loop {
                tokio::select! {
                    result = &mut round => break result,
                    () = &mut stop, if !stopped => stopped = true,
                }
            };
            if let Err(e) = result {
                tracing::error!(error = %e, "alert delivery round failed");
            }
            if stopped {
                break;
            }
            tokio::select! {
                () = &mut stop => stopped = true,
                () = self.wake.notified() => {},
                () = tokio::time::sleep(POLL) => {},
            }
        }
        tracing::info!("alert delivery stopped");
    }
}

fn context_of(
    conn: &rusqlite::Connection,
    alert: &Alert,
    job: &Job,
    now: DateTime<Utc>,
) -> Result<AlertContext, ServiceError> {
    let entry = match alert.entry_id {
        Some(id) => entries::get(conn, id)?,
        None => None,
    };
    Ok(AlertContext {
        entry,
        last_success: status::last_success(conn, job.id, now)?,
        expected_path: expected_path(job, alert.slot_utc).ok().map(|p| p.path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        let waits: Vec<i64> = (1..=10).map(|a| backoff(a).num_seconds()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
        assert_eq!(backoff(i64::MAX).num_seconds(), 3600);
    }
}
