//! `backup-monitor config check`: the effective settings, secrets redacted, then every
//! problem; exits 1 if there is any.

use anyhow::Context;

use super::STDOUT;
use crate::cli::GlobalArgs;
use crate::config::{self, Overrides};
use crate::output;

pub fn check(global: &GlobalArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        database_url: global.database.clone(),
        bind: None,
    };
    let checked = config::check(global.config.as_deref(), &overrides);
    let mut shown = String::new();
    if !checked.problems.is_empty() {
        shown.push_str(
            "# The configuration has problems (listed on stderr): a value that cannot be read\n# is shown with its default.\n",
        );
    }
    shown.push_str(&checked.settings.to_redacted_toml());
    output::print(&shown).context(STDOUT)?;
    for problem in &checked.problems {
        eprintln!("error: {problem}");
    }
    match checked.problems.len() {
        0 => Ok(()),
        1 => anyhow::bail!("the configuration has 1 problem"),
        n => anyhow::bail!("the configuration has {n} problems"),
    }
}
