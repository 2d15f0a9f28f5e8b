//! `backup-monitor send-test-email --to ADDR`: one email through the configured SMTP server,
//! with a hint a sysadmin can act on when it fails.

use anyhow::Context;

use super::STDOUT;
use crate::config::Settings;
use crate::notify::email::Mailer;
use crate::output;

pub fn run(settings: &Settings, to: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("Failed to start the runtime")?;
    // The mailer's connection pool lives and dies inside the runtime.
    runtime.block_on(async {
        let mailer = Mailer::from_settings(&settings.smtp)?.context(
            "no SMTP server is configured: set smtp.host (SMTP_HOST)",
        )?;
        let body = format!(
            "This is a test email from backup-monitor, sent through {}.\nAlerts will arrive like this one.\n",
            mailer.describe()
        );
        mailer
            .send(&[to.to_owned()], "[backup-monitor] test email", &body)
            .await
            .map_err(|hint| anyhow::anyhow!("the test email was not sent: {hint}"))?;
        output::println(&format!(
            "sent a test email to {to} through {}",
            mailer.describe()
        ))
        .context(STDOUT)?;
        Ok(())
    })
}
