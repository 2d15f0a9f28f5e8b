//! Posting to the HTTP channels (Slack, Teams, ntfy, webhooks) with reqwest over rustls: a
//! time limit on every call, no redirect followed to another host, and every failure said in
//! words a sysadmin can act on. The URL is never shown whole: for Slack, Teams and ntfy it is
//! the credential itself, so messages name only its scheme and host.

use std::time::Duration;

use anyhow::Context;
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use reqwest::{Client, Url};

use super::payload::Payload;
use super::{error_chain, one_line};
use crate::config::Secret;
use crate::domain::channel::{verdict, ChannelKind, Outcome, Verdict};

/// The longest wait for a connection (DNS, TCP and TLS), within the whole call's limit.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Redirects followed at most, all to the same host.
const MAX_REDIRECTS: usize = 3;
/// How much of a refusal's body is kept to show (services explain themselves there).
const SNIPPET_CHARS: usize = 200;

/// The client every HTTP channel shares: `timeout` for a whole call, at most 5 s of it to
/// connect, redirects followed only within the same host.
pub fn client(timeout: Duration) -> anyhow::Result<Client> {
    crate::install_crypto_provider();
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        // Within the same host and port, or from http:// up to https:// on the same host;
        // never down from https:// to http://.
        let to = attempt.url();
        let same_host = attempt.previous().last().is_some_and(|from| {
            from.host_str() == to.host_str()
                && ((from.scheme() == to.scheme()
                    && from.port_or_known_default() == to.port_or_known_default())
                    || (from.scheme() == "http" && to.scheme() == "https"))
        });
        if same_host && attempt.previous().len() <= MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    Client::builder()
        .connect_timeout(timeout.min(CONNECT_TIMEOUT))
        .timeout(timeout)
        .redirect(policy)
        .user_agent(concat!("backup-monitor/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("Failed to set up the HTTP client for the notification channels")
}

/// One channel's URL, and how to post to it.
#[derive(Clone)]
pub struct Endpoint {
    kind: ChannelKind,
    url: Url,
    client: Client,
    timeout: Duration,
    /// Texts that must never appear in a message: the URL, its path and query, its password.
    hidden: Vec<String>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Endpoint({} {})", self.kind.as_str(), self.describe())
    }
}

impl Endpoint {
    pub fn new(
        kind: ChannelKind,
        url: &Secret,
        client: Client,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        // Validated with the configuration; the error never repeats the URL.
        let parsed = Url::parse(url.expose().trim())
            .map_err(|e| anyhow::anyhow!("the channel's URL is not a URL: {e}"))?;
        let mut hidden = vec![url.expose().trim().to_owned()];
        if parsed.path().len() > 1 {
            hidden.push(parsed.path().to_owned());
        }
        hidden.extend(parsed.query().map(str::to_owned));
        hidden.extend(parsed.password().map(str::to_owned));
        if !parsed.username().is_empty() {
            hidden.push(parsed.username().to_owned());
        }
        Ok(Self {
            kind,
            url: parsed,
            client,
            timeout,
            hidden,
        })
    }

    /// `https://hooks.slack.com/…`: the scheme, host and port, never the path or query.
    pub fn describe(&self) -> String {
        let host = self.url.host_str().unwrap_or("?");
        match self.url.port() {
            Some(port) => format!("{}://{host}:{port}/…", self.url.scheme()),
            None => format!("{}://{host}/…", self.url.scheme()),
        }
    }

    fn host_port(&self) -> String {
        let host = self.url.host_str().unwrap_or("?");
        match self.url.port_or_known_default() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }

    /// Posts `payload`: a 2xx is delivered; 408, 429, 5xx and network failures are retried;
    /// any other answer is refused for good.
    pub async fn post(&self, payload: Payload) -> Outcome {
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, payload.content_type)
            .body(payload.body);
        for (name, value) in payload.headers {
            match (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                (Ok(name), Ok(value)) => request = request.header(name, value),
                _ => {
                    return Outcome::Refused {
                        reason: format!("cannot send the header {name}: its value is not valid"),
                    }
                }
            }
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                return Outcome::Retry {
                    reason: self.hide(&self.network_hint(e)),
                    after_seconds: None,
                }
            }
        };
        let status = response.status().as_u16();
        let after_seconds = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| self.url.join(l).ok())
            .and_then(|u| {
                let host = u.host_str()?;
                Some(match u.port() {
                    Some(port) => format!("{}://{host}:{port}", u.scheme()),
                    None => format!("{}://{host}", u.scheme()),
                })
            });
        let verdict = verdict(status);
        if verdict == Verdict::Delivered {
            return Outcome::Delivered;
        }
        let snippet = snippet(response).await;
        let reason = self.hide(&self.status_hint(status, &snippet, location.as_deref()));
        match verdict {
            Verdict::Delivered => Outcome::Delivered,
            Verdict::Retry => Outcome::Retry {
                reason,
                after_seconds,
            },
            Verdict::Refused => Outcome::Refused { reason },
        }
    }

    /// What an answer other than 2xx means, for this kind of service.
    fn status_hint(&self, status: u16, snippet: &str, location: Option<&str>) -> String {
        let at = self.describe();
        let said = if snippet.is_empty() {
            String::new()
        } else {
            format!(" \"{snippet}\"")
        };
        let meaning = match (self.kind, status) {
            (_, 300..=399) => format!(
                "a redirect to {}, not followed (only those within the same host and port are): put the final URL in the configuration",
                location.unwrap_or("another address")
            ),
            (_, 408) => "the service timed out; it will be retried".to_owned(),
            (_, 429) => "the service is rate limiting; it will be retried".to_owned(),
            (_, 500..=599) => "the service failed; it will be retried".to_owned(),
            (ChannelKind::Slack, 400) => "the service refused the message; for Slack, \"invalid_payload\" or \"no_text\" means the message itself, anything else the webhook's setup".to_owned(),
            (ChannelKind::Slack, 403) => "the webhook may no longer post: it was revoked or the app lost access to the channel; create a new incoming webhook".to_owned(),
            (ChannelKind::Slack, 404) => "no such webhook (Slack says \"no_service\" or \"channel_not_found\"): the URL is mistyped, or the webhook or its channel was removed; create a new incoming webhook".to_owned(),
            (ChannelKind::Slack, 410) => "the channel is archived: unarchive it or create a webhook for another channel".to_owned(),
            (ChannelKind::Teams, 400) => "the workflow refused the message: its trigger must be \"When a Teams webhook request is received\" and it must post the card it receives".to_owned(),
            (ChannelKind::Teams, 401 | 403) => "the workflow refuses the call: check that the flow is on, that \"Who can trigger the flow\" is \"Anyone\", and that its owner is still in the organisation".to_owned(),
            (ChannelKind::Teams, 404) => "no such workflow: the URL is mistyped or the flow was deleted; copy the URL of the flow's trigger again".to_owned(),
            (ChannelKind::Ntfy, 401 | 403) => "the topic is protected: give credentials in the URL (https://user:password@host/topic) or an access token (https://host/topic?auth=…)".to_owned(),
            (ChannelKind::Ntfy, 404) => "no such topic endpoint: the URL must be the topic's, e.g. https://ntfy.sh/your-topic".to_owned(),
            (ChannelKind::Ntfy, 413) => "the message is larger than the server takes".to_owned(),
            (ChannelKind::Webhook, 401 | 403) => "the receiver refuses the call: check its own authentication, and the secret if it checks X-Backup-Monitor-Signature".to_owned(),
            (_, 404) => "nothing at this URL: check its path".to_owned(),
            (_, 410) => "the endpoint is gone: ask the service for a new URL".to_owned(),
            (_, 401 | 403) => "the service refuses the call: check the credentials in the URL".to_owned(),
            _ => "the service refused the message; it is not retried".to_owned(),
        };
        format!("{at} answered {status}{said}: {meaning}")
    }

    /// What a failure before any answer means: DNS, nothing listening, TLS, a time-out.
    fn network_hint(&self, e: reqwest::Error) -> String {
        let timed_out = e.is_timeout();
        let detail = one_line(&error_chain(&e.without_url()));
        let lower = detail.to_ascii_lowercase();
        let host = self.url.host_str().unwrap_or("?");
        let at = self.host_port();
        let hint = if timed_out {
            format!(
                "{at} did not answer within {} s: check the host, the firewall and the service; it will be retried",
                self.timeout.as_secs_f64()
            )
        } else if lower.contains("dns")
            || lower.contains("failed to lookup")
            || lower.contains("name or service not known")
            || lower.contains("no address")
        {
            format!("cannot resolve {host}: check the host in the URL and this machine's DNS")
        } else if lower.contains("connection refused") {
            format!("nothing listens on {at}: check the URL's host and port")
        } else if lower.contains("invalidcontenttype") || lower.contains("corrupt message") {
            format!(
                "{at} does not speak TLS: use http:// for it, or the port where it serves https://"
            )
        } else if lower.contains("certificate") {
            format!("{at}'s certificate is not trusted (expired, for another name, or self-signed): fix it on the server, or use a URL whose certificate a public authority signed")
        } else if lower.contains("tls") || lower.contains("handshake") || lower.contains("ssl") {
            format!(
                "the TLS handshake with {at} failed: check http:// against https:// and the port"
            )
        } else if lower.contains("reset") || lower.contains("closed") || lower.contains("eof") {
            format!("{at} closed the connection: check http:// against https:// and the port")
        } else {
            format!("cannot reach {at}")
        };
        format!("{hint} [{detail}]")
    }

    /// `text` with every part of the URL that is a secret replaced by `…`.
    fn hide(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.hidden {
            if !secret.is_empty() {
                out = out.replace(secret.as_str(), "…");
            }
        }
        out
    }
}

/// The start of a refusal's body, on one line: services say there what was wrong.
async fn snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < SNIPPET_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text = one_line(&String::from_utf8_lossy(&bytes));
    let mut cut: String = text.chars().take(SNIPPET_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut.replace('"', "'")
}
