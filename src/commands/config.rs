//! `backup-monitor config check`: the effective settings, secrets redacted.

use super::load;
use crate::cli::GlobalArgs;

pub fn check(global: &GlobalArgs) -> anyhow::Result<()> {
    let settings = load(global, None)?;
    print!("{}", settings.to_redacted_toml());
    Ok(())
}
