//! `backup-monitor check`: the evaluation of `crate::check` printed for Nagios, with its exit
//! code; 3 (UNKNOWN) for anything that went wrong.

use std::process::ExitCode;

use super::load;
use crate::check;
use crate::cli::GlobalArgs;
use crate::output;

pub fn run(global: &GlobalArgs, json: bool) -> ExitCode {
    let report = load(global, None)
        .and_then(|settings| check::evaluate(&settings.database_path(), chrono::Utc::now()));
    let (text, code) = match report {
        Ok(report) if json => (
            format!(
                "{}\n",
                serde_json::to_string_pretty(&report).unwrap_or_else(|e| e.to_string())
            ),
            report.code,
        ),
        Ok(report) => (check::render_text(&report), report.code),
        Err(e) => (format!("{}\n", check::unknown(&e, json)), 3),
    };
    match output::print(&text) {
        Ok(()) => ExitCode::from(code),
        // Nagios reads stdout: with nowhere to say it, the answer is UNKNOWN.
        Err(_) => ExitCode::from(3),
    }
}
