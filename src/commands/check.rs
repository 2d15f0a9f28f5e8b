//! `backup-monitor check`: the evaluation of `crate::check` printed for Nagios, with its exit
//! code; 3 (UNKNOWN) for anything that went wrong.

use std::process::ExitCode;

use super::load;
use crate::check;
use crate::cli::GlobalArgs;

pub fn run(global: &GlobalArgs, json: bool) -> ExitCode {
    let report = load(global, None)
        .and_then(|settings| check::evaluate(&settings.database_path(), chrono::Utc::now()));
    match report {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_else(|e| e.to_string())
                );
            } else {
                print!("{}", check::render_text(&report));
            }
            ExitCode::from(report.code)
        }
        Err(e) => {
            println!("{}", check::unknown(&e, json));
            ExitCode::from(3)
        }
    }
}
