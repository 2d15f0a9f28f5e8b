//! `backup-monitor send-test --channel NAME`: one test message through one alert channel,
//! with what to fix when it fails.

use anyhow::Context;

use super::STDOUT;
use crate::config::Settings;
use crate::domain::channel::{ChannelKind, Outcome};
use crate::notify::channel::{self, Letter};
use crate::output;

pub fn run(settings: &Settings, name: &str) -> anyhow::Result<()> {
    let channels = settings.channels();
    if !channels.iter().any(|c| c.name == name) {
        if channels.is_empty() {
            anyhow::bail!(
                "no channel is configured: declare one in [[notify.channels]], or set smtp.host for the email channel"
            );
        }
        let names: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();
        anyhow::bail!(
            "no channel is named {name:?}: the channels are {}",
            names.join(", ")
        );
    }
    if channels
        .iter()
        .any(|c| c.name == name && c.kind == ChannelKind::Email)
        && settings.alerts.to.is_empty()
    {
        anyhow::bail!(
            "the email channel sends a test to alerts.to, which is empty: set it, or use send-test-email --to ADDR"
        );
    }
    let runtime = tokio::runtime::Runtime::new().context("Failed to start the runtime")?;
    // The mailer's connection pool and the HTTP client live and die inside the runtime.
    runtime.block_on(async {
        let channels = channel::channels(settings)?;
        let Some(channel) = channels.iter().find(|c| c.name == name) else {
            anyhow::bail!("no channel is named {name:?}");
        };
        let letter = Letter::test(name, channel.kind, settings.server.url_prefix());
        match channel.deliver(&letter).await {
            Outcome::Delivered => output::println(&format!(
                "sent a test message through channel {name:?} ({})",
                channel.describe()
            ))
            .context(STDOUT),
            Outcome::Retry { reason, .. } | Outcome::Refused { reason } => anyhow::bail!(
                "the test message was not delivered through channel {name:?} ({}): {reason}",
                channel.describe()
            ),
        }
    })
}
