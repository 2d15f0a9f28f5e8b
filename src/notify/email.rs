//! Email through lettre over SMTP (plain, STARTTLS or implicit TLS, with rustls), and SMTP
//! failures turned into hints a sysadmin can act on.

use std::time::Duration;

use anyhow::Context;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{error_chain, one_line};
use crate::config::{SmtpSettings, SmtpTls};

/// How long one SMTP conversation may take before it counts as failed.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    host: String,
    port: u16,
    tls: SmtpTls,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mailer({})", self.describe())
    }
}

impl Mailer {
    /// The mailer the settings describe, or None when no SMTP host is configured.
    pub fn from_settings(smtp: &SmtpSettings) -> anyhow::Result<Option<Self>> {
        let Some(host) = smtp.host.clone() else {
            return Ok(None);
        };
        let from = smtp
            .from
            .as_deref()
            .context("smtp.from is required when smtp.host is set")?
            .parse::<Mailbox>()
            .context("smtp.from is not an email address")?;
        let builder = match smtp.tls {
            SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
            SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
                .with_context(|| format!("Failed to set up STARTTLS for {host}"))?,
            SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
                .with_context(|| format!("Failed to set up TLS for {host}"))?,
        };
        let mut builder = builder
            .port(smtp.port)
            .timeout(Some(SMTP_TIMEOUT))
            .pool_config(PoolConfig::new().max_size(2));
        if let Some(username) = &smtp.username {
            let password = smtp
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(username.clone(), password));
        }
        Ok(Some(Self {
            transport: builder.build(),
            from,
            host,
            port: smtp.port,
            tls: smtp.tls,
        }))
    }

    /// `smtp.example.com:587 (starttls)`, for logs.
    pub fn describe(&self) -> String {
        let tls = match self.tls {
            SmtpTls::None => "none",
            SmtpTls::Starttls => "starttls",
            SmtpTls::Tls => "tls",
        };
        format!("{}:{} ({tls})", self.host, self.port)
    }

    /// Sends one plain-text message to every recipient; the error is a hint for a person.
    pub async fn send(&self, to: &[String], subject: &str, body: &str) -> Result<(), String> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for address in to {
            let mailbox = address
                .parse::<Mailbox>()
                .map_err(|e| format!("recipient {address:?} is not an email address: {e}"))?;
            message = message.to(mailbox);
        }
        let message = message
            .body(body.to_owned())
            .map_err(|e| format!("cannot build the message: {e}"))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| self.hint(&e))
    }

    /// Turns an SMTP failure into what to check.
    fn hint(&self, e: &lettre::transport::smtp::Error) -> String {
        let at = format!("{}:{}", self.host, self.port);
        let detail = one_line(&error_chain(e));
        let lower = detail.to_ascii_lowercase();
        let hint = if let Some(code) = e.status() {
            let code_text = code.to_string();
            if ["530", "534", "535", "538"].contains(&code_text.as_str()) {
                format!("the server refused the login ({code_text}): check smtp.username and smtp.password")
            } else if code_text.starts_with("55") {
                format!("the server refused the sender or a recipient ({code_text}): check smtp.from, alerts.to and the job's notify_emails")
            } else if e.is_transient() {
                format!("the server is temporarily refusing mail ({code_text}); it will be retried")
            } else {
                format!("the server refused the message ({code_text})")
            }
        } else if lower.contains("authentication mechanism") {
            format!("{at} offers no login method for smtp.username here (servers hide AUTH on plain connections): use tls = \"starttls\" or \"tls\", or leave smtp.username out for a relay that needs no login")
        } else if lower.contains("connection refused") {
            format!("nothing listens on {at}: check smtp.host and smtp.port")
        } else if lower.contains("starttls") || lower.contains("not supported") {
            format!("{at} does not offer STARTTLS: use tls = \"tls\" for port 465, or tls = \"none\" for a plain local relay")
        } else if e.is_tls()
            || lower.contains("tls")
            || lower.contains("handshake")
            || lower.contains("certificate")
        {
            format!("the TLS handshake with {at} failed: check the port/TLS pair (465 takes tls = \"tls\", 587 takes \"starttls\", a local relay on 25 often \"none\") and the server's certificate")
        } else if e.is_timeout() {
            format!("{at} did not answer within {} s: check the host, the firewall and the port/TLS pair (tls = \"tls\" against a STARTTLS port waits forever)", SMTP_TIMEOUT.as_secs())
        } else if lower.contains("failed to lookup")
            || lower.contains("name or service")
            || lower.contains("dns")
        {
            format!("cannot resolve {}: check smtp.host", self.host)
        } else if lower.contains("unexpected eof")
            || lower.contains("connection reset")
            || lower.contains("invalid")
        {
            format!("{at} closed the connection: check the port/TLS pair (465 takes tls = \"tls\", 587 takes \"starttls\")")
        } else {
            format!("sending through {at} failed")
        };
        format!("{hint} [{detail}]")
    }
}
