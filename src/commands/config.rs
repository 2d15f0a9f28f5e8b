//! `backup-monitor config check`: the effective settings, secrets redacted.

use anyhow::Context;

use super::{load, STDOUT};
use crate::cli::GlobalArgs;
use crate::output;

pub fn check(global: &GlobalArgs) -> anyhow::Result<()> {
    let settings = load(global, None)?;
    output::print(&settings.to_redacted_toml()).context(STDOUT)
}
