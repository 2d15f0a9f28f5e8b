//! `backup-monitor serve` and `backup-monitor migrate`.

use anyhow::Context;

use crate::app::{shutdown_signal, Application};
use crate::config::Settings;
use crate::db::Db;

/// Serves until SIGTERM or Ctrl-C.
pub fn run(settings: Settings) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("Failed to start the runtime")?;
    runtime.block_on(async {
        let shutdown = shutdown_signal();
        let app = Application::build(settings).await?;
        app.run_until_stopped(shutdown).await
    })
}

/// Creates the database if needed and applies the pending migrations.
pub fn migrate(settings: &Settings) -> anyhow::Result<()> {
    let path = settings.database_path();
    let applied = Db::open(&path)?.migrate()?;
    tracing::info!(database = %path.display(), applied, "database is up to date");
    Ok(())
}
