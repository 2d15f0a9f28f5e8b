//! A configured channel, ready to send: its name, kind, routing and sender (the SMTP mailer,
//! or an HTTP endpoint), and the message about one alert in every form a channel takes.

use std::sync::Arc;

use serde_json::{json, Value};

use super::email::Mailer;
use super::http::{self, Endpoint};
use super::payload;
use crate::config::{ChannelSettings, Settings};
use crate::domain::alert::{self, Brief};
use crate::domain::channel::{ChannelKind, Outcome, Route, Severity};
use crate::domain::digest::Digest;

/// What is said about one alert (or a test), in every form a channel takes.
#[derive(Debug, Clone)]
pub struct Letter {
    /// The email's subject; the webhook's `text`.
    pub subject: String,
    /// The email's body.
    pub body: String,
    /// The chat message's and the push notification's content.
    pub brief: Brief,
    pub severity: Severity,
    /// ntfy's `Priority`.
    pub priority: u8,
    /// The alert's kind (`failed`…), or `test`: an ntfy tag.
    pub tag: String,
    /// The webhook's JSON document: `{"alert", "job", "entry", "text"}`.
    pub document: Value,
    /// The recipients of the jobs it is about (`notify_emails`), besides `alerts.to`.
    pub extra_recipients: Vec<String>,
}

impl Letter {
    /// The test message `send-test --channel` sends through `channel`.
    pub fn test(channel: &str, kind: ChannelKind, url_prefix: &str) -> Self {
        let subject = format!("[backup-monitor] test message through channel {channel}");
        let headline = format!(
            "This is a test message from backup-monitor through the {} channel {channel:?}. Alerts will arrive like this one.",
            kind.as_str()
        );
        Self {
            body: format!("{headline}\n\n-- backup-monitor\n"),
            brief: Brief {
                title: "backup-monitor test message".to_owned(),
                headline,
                facts: Vec::new(),
                lines: Vec::new(),
                reason: None,
                link: alert::dashboard_link(url_prefix),
            },
            severity: Severity::Good,
            priority: 3,
            tag: "test".to_owned(),
            document: json!({"alert": null, "job": null, "entry": null, "text": subject}),
            subject,
            extra_recipients: Vec::new(),
        }
    }
}

impl Letter {
    /// The morning digest (DESIGN §13): its first line is the title a phone shows.
    pub fn digest(digest: &Digest, url_prefix: &str) -> Self {
        let Digest {
            headline,
            text,
            all_well,
        } = digest;
        let subject = format!("[backup-monitor] {headline}");
        Self {
            body: format!("{text}\n-- backup-monitor\n"),
            brief: Brief {
                title: headline.to_owned(),
                headline: "The morning digest of backup-monitor.".to_owned(),
                facts: Vec::new(),
                lines: text.lines().skip(2).map(str::to_owned).collect(),
                reason: None,
                link: alert::dashboard_link(url_prefix),
            },
            severity: if *all_well {
                Severity::Good
            } else {
                Severity::Warning
            },
            priority: 3,
            tag: "digest".to_owned(),
            document: json!({"alert": null, "job": null, "entry": null, "text": subject, "digest": text}),
            subject,
            extra_recipients: Vec::new(),
        }
    }
}

enum Sender {
    Email {
        mailer: Arc<Mailer>,
        recipients: Vec<String>,
    },
    Http {
        endpoint: Endpoint,
        secret: Option<String>,
    },
}

/// One channel, as the outbox and `send-test` use it.
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    pub route: Route,
    sender: Sender,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Channel({} {})", self.name, self.describe())
    }
}

impl Channel {
    /// `slack https://hooks.slack.com/…` or `email smtp.example.com:587 (starttls)`: for
    /// logs and messages, never a secret.
    pub fn describe(&self) -> String {
        match &self.sender {
            Sender::Email { mailer, .. } => format!("email {}", mailer.describe()),
            Sender::Http { endpoint, .. } => {
                format!("{} {}", self.kind.as_str(), endpoint.describe())
            }
        }
    }

    /// Sends `letter`, once.
    pub async fn deliver(&self, letter: &Letter) -> Outcome {
        match &self.sender {
            Sender::Email { mailer, recipients } => {
                let mut to = recipients.clone();
                for extra in &letter.extra_recipients {
                    if !to.contains(extra) {
                        to.push(extra.clone());
                    }
                }
                if to.is_empty() {
                    return Outcome::Retry {
                        reason: "no recipients: set alerts.to or the job's notify_emails"
                            .to_owned(),
                        after_seconds: None,
                    };
                }
                match mailer.send(&to, &letter.subject, &letter.body).await {
                    Ok(()) => Outcome::Delivered,
                    // As before channels: an SMTP failure is retried, whatever it is.
                    Err(reason) => Outcome::Retry {
                        reason,
                        after_seconds: None,
                    },
                }
            }
            Sender::Http { endpoint, secret } => {
                let payload = match self.kind {
                    ChannelKind::Slack => payload::slack(&letter.brief, letter.severity),
                    ChannelKind::Teams => payload::teams(&letter.brief, letter.severity),
                    ChannelKind::Ntfy => payload::ntfy(
                        &letter.brief,
                        letter.priority,
                        &[letter.severity.ntfy_tag(), &letter.tag],
                    ),
                    ChannelKind::Webhook | ChannelKind::Email => {
                        payload::webhook(&letter.document, secret.as_deref())
                    }
                };
                endpoint.post(payload).await
            }
        }
    }
}

/// Every channel alerts go to (`Settings::channels`), ready to send: the email channel
/// through `smtp` to `alerts.to`, the others through one HTTP client.
pub fn channels(settings: &Settings) -> anyhow::Result<Vec<Channel>> {
    let declared = settings.channels();
    let mailer = if declared.iter().any(|c| c.kind == ChannelKind::Email) {
        Mailer::from_settings(&settings.smtp)?.map(Arc::new)
    } else {
        None
    };
    let client = if declared.iter().any(|c| c.kind.is_http()) {
        Some(http::client(settings.notify.timeout())?)
    } else {
        None
    };
    let mut out = Vec::with_capacity(declared.len());
    for channel in declared {
        let sender = match (channel.kind, &mailer, &client, &channel.url) {
            (ChannelKind::Email, Some(mailer), _, _) => Sender::Email {
                mailer: mailer.clone(),
                recipients: settings.alerts.to.clone(),
            },
            (ChannelKind::Email, None, _, _) => anyhow::bail!(
                "channel {:?} sends email, but no SMTP server is configured: set smtp.host (SMTP_HOST)",
                channel.name
            ),
            (kind, _, Some(client), Some(url)) => Sender::Http {
                endpoint: Endpoint::new(kind, url, client.clone(), settings.notify.timeout())?,
                secret: channel.secret.as_ref().map(|s| s.expose().to_owned()),
            },
            (_, _, _, _) => anyhow::bail!("channel {:?} has no url", channel.name),
        };
        out.push(from(&channel, sender));
    }
    Ok(out)
}

fn from(settings: &ChannelSettings, sender: Sender) -> Channel {
    Channel {
        name: settings.name.clone(),
        kind: settings.kind,
        route: settings.route(),
        sender,
    }
}
