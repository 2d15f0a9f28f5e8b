//! Delivering the alert outbox: route each alert to the channels that take it (one delivery
//! per channel), claim due deliveries, send each, record the outcome, and retry failures with
//! exponential backoff, each delivery on its own. An outage of a channel delays its alerts;
//! it never loses them, and it never makes another channel send twice.
//!
//! Delivery is at least once: a delivery is marked sent right after its channel accepts it,
//! so only a crash between those two steps can send it twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use tokio::sync::Notify;

use super::channel::{self, Channel, Letter};
use crate::config::Settings;
use crate::db::deliveries::{self, Attempt, Claimed};
use crate::db::{alerts, entries, jobs, status, Db};
use crate::domain::alert::{self, Alert, AlertContext, AlertKind};
use crate::domain::channel::{ntfy_priority, severity, Outcome, Route};
use crate::domain::job::Job;
use crate::domain::zone::Zone;
use crate::metrics;
use crate::service::digest;
use crate::service::jobs::expected_path;
use crate::service::ServiceError;

/// How long a sender holds the deliveries it claimed before another may take them.
pub const LEASE: Duration = Duration::minutes(5);
/// Alerts routed, and deliveries claimed, per round.
const BATCH: usize = 20;
const FIRST_RETRY: Duration = Duration::seconds(30);
const LONGEST_RETRY: Duration = Duration::hours(1);
/// How often the loop looks for due deliveries when nothing wakes it: alerts queued by
/// another process (`backup-monitor` commands, a second instance), and retries.
const POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// The wait before attempt `attempts + 1`: 30 s, 1 min, 2 min, … at most 1 h.
pub fn backoff(attempts: i64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    let wait = FIRST_RETRY * 2_i32.pow(doublings);
    wait.min(LONGEST_RETRY)
}

/// The wait before attempt `attempts + 1` when the receiver asked for `after_seconds`
/// (`Retry-After`): the longer of the two, at most 1 h.
fn retry_wait(attempts: i64, after_seconds: Option<u64>) -> Duration {
    let asked = after_seconds.map_or(Duration::zero(), |s| {
        i64::try_from(s)
            .ok()
            .and_then(Duration::try_seconds)
            .unwrap_or(LONGEST_RETRY)
            .min(LONGEST_RETRY)
    });
    backoff(attempts).max(asked)
}

/// What delivery rounds did: deliveries sent, and failed (`refused` of them for good).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dispatched {
    pub sent: usize,
    pub failed: usize,
    /// Of the failed ones, those refused for good (not retried).
    pub refused: usize,
    /// Alerts given their deliveries (routed to their channels).
    pub routed: usize,
}

/// When the morning digest goes (local hour and minute, zone) and through which channels.
type DigestPlan = ((u32, u32), Zone, Arc<Vec<String>>);

#[derive(Clone)]
pub struct Outbox {
    db: Db,
    channels: Arc<Vec<Channel>>,
    /// `server.public_url` without its trailing slash ("" when unset), for the links.
    url_prefix: Arc<str>,
    /// The morning digest: when (local time, zone) and through which channels.
    digest: Option<DigestPlan>,
    /// The last day whose digest this process saw settled (sent, or claimed by another):
    /// the database is not asked again that day.
    digest_settled: Arc<std::sync::Mutex<Option<String>>>,
    wake: Arc<Notify>,
    /// Set when the service stops: the round in progress finishes the delivery it is
    /// sending, records it, and hands the rest of its claim back at once.
    stopping: Arc<AtomicBool>,
}

impl Letter {
    /// The letter of `alert` at `now`, or None when what it is about is gone (a job deleted
    /// meanwhile takes its alerts with it).
    fn of(
        conn: &rusqlite::Connection,
        alert: Alert,
        now: DateTime<Utc>,
        url_prefix: &str,
    ) -> Result<Option<Self>, ServiceError> {
        let kind = alert.kind;
        let severity = severity(kind);
        let priority = ntfy_priority(kind);
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
            let link = alert::dashboard_link(url_prefix);
            let subject = alert::agent_subject(&alert, jobs.len());
            return Ok(Some(Self {
                body: alert::agent_body(&alert, &jobs, last_heard, link.as_deref()),
                brief: alert::agent_brief(&alert, &jobs, last_heard, link.as_deref()),
                severity,
                priority,
                tag: kind.as_str().to_owned(),
                document: document(&alert, None, None, &subject),
                subject,
                extra_recipients,
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
        let context = context_of(conn, &alert, &job, now, url_prefix)?;
        let subject = alert::subject(&alert, &job);
        Ok(Some(Self {
            body: alert::body(&alert, &job, &context),
            brief: alert::brief(&alert, &job, &context),
            severity,
            priority,
            tag: kind.as_str().to_owned(),
            document: document(&alert, Some(&job), context.entry.as_ref(), &subject),
            subject,
            extra_recipients: job.notify_emails,
        }))
    }
}

/// The webhook's document: the alert, its job and entry as the API shows them, and the
/// email's subject as `text`.
fn document(
    alert: &Alert,
    job: Option<&Job>,
    entry: Option<&crate::domain::entry::Entry>,
    subject: &str,
) -> Value {
    let mut alert_value = serde_json::to_value(alert).unwrap_or(Value::Null);
    if let Some(fields) = alert_value.as_object_mut() {
        // The deliveries are the outbox's business, and change with every attempt.
        fields.remove("deliveries");
    }
    let job_value = job.map(|job| {
        let mut value = serde_json::to_value(job).unwrap_or(Value::Null);
        // The seed's schedule fields, as `GET /api/v1/jobs/{id}` answers them.
        if let (Some(fields), Ok(Value::Object(seed))) = (
            value.as_object_mut(),
            serde_json::to_value(job.seed_answer(alert.created_at)),
        ) {
            fields.extend(seed);
        }
        value
    });
    json!({
        "alert": alert_value,
        "job": job_value,
        "entry": entry.map(|e| serde_json::to_value(e).unwrap_or(Value::Null)),
        "text": subject,
    })
}

impl Outbox {
    /// The outbox of the configured channels (`Settings::channels`): none at all when no
    /// channel is declared and `smtp.host` is unset (alerts are then recorded, not sent).
    pub fn from_settings(db: Db, settings: &Settings, wake: Arc<Notify>) -> anyhow::Result<Self> {
        let channels = channel::channels(settings)?;
        metrics::channels_init(&channels.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
        Ok(Self {
            db,
            channels: Arc::new(channels),
            url_prefix: settings.server.url_prefix().into(),
            digest: settings
                .digest
                .schedule()
                .map(|(at, zone)| (at, zone, Arc::new(settings.digest.channels.clone()))),
            digest_settled: Arc::new(std::sync::Mutex::new(None)),
            wake,
            stopping: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The channels, in the order of the configuration.
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// Sends every delivery due at `now` (in rounds of a few), and returns what happened.
    pub async fn dispatch_pending(&self, now: DateTime<Utc>) -> Result<Dispatched, ServiceError> {
        let mut total = Dispatched::default();
        loop {
            let round = self.dispatch_round(now).await?;
            total.sent += round.sent;
            total.failed += round.failed;
            total.refused += round.refused;
            total.routed += round.routed;
            let busy = round.routed == BATCH || round.sent + round.failed == BATCH;
            if !busy || self.stopping.load(Ordering::SeqCst) {
                return Ok(total);
            }
        }
    }

    async fn dispatch_round(&self, now: DateTime<Utc>) -> Result<Dispatched, ServiceError> {
        if self.channels.is_empty() {
            return Ok(Dispatched::default());
        }
        let routes: Vec<(String, Route)> = self
            .channels
            .iter()
            .map(|c| (c.name.clone(), c.route.clone()))
            .collect();
        let url_prefix = self.url_prefix.clone();
        let (routed, work) = self
            .db
            .run(move |conn| {
                let route = |kind: AlertKind, companies: &[String]| -> Vec<String> {
                    routes
                        .iter()
                        .filter(|(_, route)| route.takes(kind, companies))
                        .map(|(name, _)| name.clone())
                        .collect()
                };
                let (routed, claimed) = deliveries::claim(conn, now, LEASE, BATCH, BATCH, &route)?;
                // One letter per alert, however many of its deliveries were claimed.
                let mut letters: HashMap<i64, Option<Arc<(Alert, Letter)>>> = HashMap::new();
                let mut work = Vec::with_capacity(claimed.len());
                for delivery in claimed {
                    let letter = match letters.get(&delivery.alert_id) {
                        Some(letter) => letter.clone(),
                        None => {
                            let letter = match alerts::get(conn, delivery.alert_id)? {
                                Some(alert) => Letter::of(conn, alert.clone(), now, &url_prefix)?
                                    .map(|letter| Arc::new((alert, letter))),
                                None => None,
                            };
                            letters.insert(delivery.alert_id, letter.clone());
                            letter
                        }
                    };
                    work.push((delivery, letter));
                }
                Ok::<_, ServiceError>((routed, work))
            })
            .await?;
        if routed > 0 {
            tracing::debug!(routed, "alerts routed to their channels");
        }
        let mut outcome = Dispatched {
            routed,
            ..Dispatched::default()
        };
        let mut work = work.into_iter();
        while let Some((delivery, letter)) = work.next() {
            if self.stopping.load(Ordering::SeqCst) {
                // Stopping: hand back what this round claimed and has not sent, so that the
                // next start delivers it at once rather than after the lease.
                let unsent: Vec<(i64, String)> = std::iter::once(delivery)
                    .chain(work.map(|(d, _)| d))
                    .map(|d| (d.alert_id, d.channel))
                    .collect();
                let released = unsent.len();
                self.db
                    .run(move |conn| {
                        Ok::<_, ServiceError>(deliveries::release(conn, &unsent, now)?)
                    })
                    .await?;
                tracing::info!(
                    released,
                    "stopping: deliveries not sent yet are handed back"
                );
                break;
            }
            let result = self.deliver(&delivery, letter.as_deref()).await;
            match &result {
                Outcome::Delivered => outcome.sent += 1,
                Outcome::Retry { .. } => outcome.failed += 1,
                Outcome::Refused { .. } => {
                    outcome.failed += 1;
                    outcome.refused += 1;
                }
            }
            let attempts = delivery.attempts + 1;
            self.db
                .run(move |conn| {
                    let attempt = match &result {
                        Outcome::Delivered => Attempt::Delivered,
                        Outcome::Retry {
                            reason,
                            after_seconds,
                        } => Attempt::Failed {
                            error: reason,
                            retry_at: Some(now + retry_wait(attempts, *after_seconds)),
                        },
                        Outcome::Refused { reason } => Attempt::Failed {
                            error: reason,
                            retry_at: None,
                        },
                    };
                    deliveries::record(conn, delivery.alert_id, &delivery.channel, attempt, now)?;
                    Ok::<_, ServiceError>(())
                })
                .await?;
        }
        Ok(outcome)
    }

    /// Sends one delivery through its channel, counts and logs it.
    async fn deliver(&self, delivery: &Claimed, letter: Option<&(Alert, Letter)>) -> Outcome {
        let channel = self.channels.iter().find(|c| c.name == delivery.channel);
        let (result, kind) = match (letter, channel) {
            (None, _) => (
                Outcome::Refused {
                    reason: "what this alert is about is gone".to_owned(),
                },
                None,
            ),
            (Some((alert, _)), None) => (
                Outcome::Refused {
                    reason: format!("channel {:?} is not configured any more", delivery.channel),
                },
                Some(alert.kind),
            ),
            (Some((alert, letter)), Some(channel)) => {
                (channel.deliver(letter).await, Some(alert.kind))
            }
        };
        let delivered = result == Outcome::Delivered;
        if let Some(kind) = kind {
            metrics::alert_delivered(kind.as_str(), delivered);
        }
        if let Some(channel) = channel {
            let word = match &result {
                Outcome::Delivered => "sent",
                Outcome::Retry { .. } => "error",
                Outcome::Refused { .. } => "refused",
            };
            metrics::channel_delivery(&channel.name, word);
        }
        let alert_id = delivery.alert_id;
        let channel_name = delivery.channel.as_str();
        let attempts = delivery.attempts + 1;
        let (job_id, agent_id, subject) = match letter {
            Some((alert, letter)) => (
                alert.job_id,
                alert.agent_id.as_deref(),
                letter.subject.as_str(),
            ),
            None => (None, None, ""),
        };
        match &result {
            Outcome::Delivered => {
                tracing::info!(alert_id, job_id, agent_id, channel = channel_name, %subject, "alert sent");
            }
            Outcome::Retry { reason, .. } => {
                tracing::warn!(alert_id, job_id, agent_id, channel = channel_name, %subject, attempts, error = %reason, "alert not sent; will retry");
            }
            Outcome::Refused { reason } => {
                tracing::warn!(alert_id, job_id, agent_id, channel = channel_name, %subject, attempts, error = %reason, "alert refused by its channel; not retried");
            }
        }
        result
    }

    /// Sends the morning digest when its local time has come and today's was not sent yet
    /// (the day is claimed in the database first, so a restart or a second process never
    /// sends it twice; given back when no channel took it). Returns whether it was sent.
    pub async fn send_digest_if_due(&self, now: DateTime<Utc>) -> Result<bool, ServiceError> {
        let Some((at, zone, names)) = &self.digest else {
            return Ok(false);
        };
        let Some(day) = digest::due_day(now, *at, *zone) else {
            return Ok(false);
        };
        let settled = |day: &str| {
            if let Ok(mut last) = self.digest_settled.lock() {
                *last = Some(day.to_owned());
            }
        };
        if self
            .digest_settled
            .lock()
            .is_ok_and(|last| last.as_deref() == Some(day.as_str()))
        {
            return Ok(false);
        }
        let claimed_day = day.clone();
        let claimed = self
            .db
            .run(move |conn| {
                let Some(previous) = digest::claim(conn, &claimed_day)? else {
                    return Ok::<_, ServiceError>(None);
                };
                Ok(Some((previous, digest::today(conn, now)?)))
            })
            .await?;
        let Some((previous, today)) = claimed else {
            settled(&day);
            return Ok(false);
        };
        let letter = Letter::digest(&today, &self.url_prefix);
        let mut delivered = 0;
        for channel in self.channels.iter().filter(|c| names.contains(&c.name)) {
            match channel.deliver(&letter).await {
                Outcome::Delivered => delivered += 1,
                Outcome::Retry { reason, .. } | Outcome::Refused { reason } => {
                    tracing::warn!(channel = %channel.name, error = %reason, "digest not delivered");
                }
            }
        }
        if delivered == 0 {
            self.db
                .run(move |conn| {
                    Ok::<_, ServiceError>(digest::release(conn, &day, previous.as_deref())?)
                })
                .await?;
            return Ok(false);
        }
        settled(&day);
        tracing::info!(headline = %today.headline, channels = delivered, "digest sent");
        Ok(true)
    }

    /// Delivers until `stop` completes: at once when woken (an alert was queued in this
    /// process), otherwise every few seconds (alerts queued by another process, retries).
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        if self.channels.is_empty() {
            return;
        }
        let names: Vec<String> = self.channels.iter().map(Channel::describe).collect();
        tracing::info!(channels = %names.join(", "), "alert delivery started");
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
            // A stop during a round lets it finish the delivery in flight (it checks the
            // flag between deliveries), never cuts one between "sent" and "recorded as sent".
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
            if let Err(e) = self.send_digest_if_due(Utc::now()).await {
                tracing::error!(error = %e, "the digest could not be prepared");
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
    url_prefix: &str,
) -> Result<AlertContext, ServiceError> {
    let entry = match alert.entry_id {
        Some(id) => entries::get(conn, id)?,
        None => None,
    };
    Ok(AlertContext {
        entry,
        last_success: status::last_success(conn, job.id, now)?,
        expected_path: expected_path(job, alert.slot_utc).ok().map(|p| p.path),
        link: alert::job_link(url_prefix, job.id),
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

    #[test]
    fn a_retry_after_longer_than_the_backoff_is_honoured_up_to_an_hour() {
        assert_eq!(retry_wait(1, None).num_seconds(), 30);
        assert_eq!(retry_wait(1, Some(10)).num_seconds(), 30);
        assert_eq!(retry_wait(1, Some(120)).num_seconds(), 120);
        assert_eq!(retry_wait(1, Some(u64::MAX)).num_seconds(), 3600);
    }
}
