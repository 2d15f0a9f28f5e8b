//! `backup-monitor jobs export|import`, straight on the database.

use anyhow::Context;
use clap::CommandFactory;

use super::{load, STDOUT};
use crate::cli::{Cli, GlobalArgs, JobsCommand};
use crate::output;
use crate::transfer::{self, Format};

pub fn run(global: &GlobalArgs, command: JobsCommand) -> anyhow::Result<()> {
    match command {
        JobsCommand::Export { format, output } => transfer::export_to(
            &load(global, None)?.database_path(),
            format,
            output.as_deref(),
        ),
        JobsCommand::Import {
            file,
            format,
            upsert,
        } => {
            let format = format
                .or_else(|| Format::of_path(&file))
                .unwrap_or_else(|| unknown_import_format(&file));
            let settings = load(global, None)?;
            let summary = transfer::import_from(
                &settings.database_path(),
                &file,
                format,
                upsert,
                settings.scheduler.default_grace_minutes,
            )?;
            output::println(&summary.to_string()).context(STDOUT)?;
            Ok(())
        }
    }
}

/// Exits 2 with clap's usage of `jobs import`: the file's format cannot be told.
fn unknown_import_format(file: &std::path::Path) -> ! {
    let mut cli = Cli::command();
    cli.build();
    let mut import = cli
        .find_subcommand_mut("jobs")
        .and_then(|jobs| jobs.find_subcommand_mut("import"))
        .cloned()
        .unwrap_or_else(Cli::command);
    let name = if file.as_os_str() == "-" {
        "stdin".to_owned()
    } else {
        file.display().to_string()
    };
    import
        .error(
            clap::error::ErrorKind::MissingRequiredArgument,
            format!(
                "cannot tell the format of {name} from its extension: give --format json or --format csv"
            ),
        )
        .exit()
}
