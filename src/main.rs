//! The `backup-monitor` binary: parse the command line, set up logs, dispatch.

use std::process::ExitCode;

use anyhow::Context;
use backup_monitor::app::{shutdown_signal, Application};
use backup_monitor::cli::{Cli, Command, ConfigCommand, GlobalArgs, JobsCommand, TokenCommand};
use backup_monitor::config::{self, Overrides};
use backup_monitor::db::tokens as db_tokens;
use backup_monitor::db::Db;
use backup_monitor::domain::time;
use backup_monitor::notify::email::Mailer;
use backup_monitor::transfer::{self, Format};
use backup_monitor::{agent, api, auth, check, telemetry};
use clap::{CommandFactory, Parser};

fn main() -> ExitCode {
    // A .env file in the working directory, as the seed read it; real variables win. Read
    // before the command line, whose BACKUP_MONITOR_URL/TOKEN may come from it.
    let dotenv = dotenvy::dotenv();
    let cli = Cli::parse();
    telemetry::init(cli.global.log_format);
    if let Err(e) = dotenv {
        if !e.not_found() {
            tracing::warn!(error = %e, "ignoring unreadable .env file");
        }
    }
    match &cli.command {
        Command::Check { json } => return check(&cli.global, *json),
        // The agent's side needs no configuration file and no database.
        Command::Report(args) => return agent::report(args),
        Command::Exec(args) => return agent::exec(args),
        _ => {}
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::FAILURE
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

/// `check` answers with Nagios exit codes, 3 (UNKNOWN) for anything that went wrong.
fn check(global: &GlobalArgs, json: bool) -> ExitCode {
    let overrides = Overrides {
        database_url: global.database.clone(),
        bind: None,
    };
    let report = config::load(global.config.as_deref(), &overrides)
        .map_err(anyhow::Error::from)
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

fn tokens(db: &Db, command: TokenCommand) -> anyhow::Result<()> {
    let conn = db.conn().context("Failed to open a database connection")?;
    match command {
        TokenCommand::Create {
            role,
            agent_id,
            name,
        } => {
            let agent_id = agent_id
                .map(|a| a.trim().to_owned())
                .filter(|a| !a.is_empty());
            let (info, secret) = auth::create_token(&conn, name.trim(), role, agent_id.as_deref())?;
            println!("{secret}");
            eprintln!(
                "created {} token {} ({}); the secret above is shown only once",
                info.role.as_str(),
                info.id,
                info.agent_id
                    .map(|a| format!("agent {a}"))
                    .unwrap_or_else(|| "all jobs".to_owned())
            );
        }
        TokenCommand::List { json } => {
            let list = db_tokens::list(&conn)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<5} {:<7} {:<24} {:<24} {:<21} REVOKED",
                    "ID", "ROLE", "AGENT", "NAME", "CREATED"
                );
                for t in list {
                    println!(
                        "{:<5} {:<7} {:<24} {:<24} {:<21} {}",
                        t.id,
                        t.role.as_str(),
                        t.agent_id.as_deref().unwrap_or("-"),
                        if t.name.is_empty() { "-" } else { &t.name },
                        time::format(t.created_at),
                        t.revoked_at
                            .map(time::format)
                            .unwrap_or_else(|| "-".to_owned()),
                    );
                }
            }
        }
        TokenCommand::Revoke { id } => {
            let revoked = db_tokens::revoke(&conn, id, chrono::Utc::now())?.with_context(|| {
                format!("no live token with id {id} (see `backup-monitor token list`)")
            })?;
            println!("revoked {} token {}", revoked.role.as_str(), revoked.id);
        }
    }
    Ok(())
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

fn run(cli: Cli) -> anyhow::Result<()> {
    let bind = match &cli.command {
        Command::Serve { bind } => bind.clone(),
        _ => None,
    };
    let overrides = Overrides {
        database_url: cli.global.database.clone(),
        bind,
    };
    let load = || config::load(cli.global.config.as_deref(), &overrides);
    match cli.command {
        Command::Openapi => {
            println!("{}", api::openapi::to_json());
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let settings = load()?;
            print!("{}", settings.to_redacted_toml());
            Ok(())
        }
        Command::SendTestEmail { to } => {
            let settings = load()?;
            let runtime = tokio::runtime::Runtime::new().context("Failed to start the runtime")?;
            // The mailer's connection pool lives and dies inside the runtime.
            runtime.block_on(async {
                let mailer = Mailer::from_settings(&settings.smtp)?.context(
                    "no SMTP server is configured: set smtp.host (SMTP_HOST) and smtp.from (SMTP_FROM)",
                )?;
                let body = format!(
                    "This is a test email from backup-monitor, sent through {}.\nAlerts will arrive like this one.\n",
                    mailer.describe()
                );
                mailer
                    .send(std::slice::from_ref(&to), "[backup-monitor] test email", &body)
                    .await
                    .map_err(|hint| anyhow::anyhow!("the test email was not sent: {hint}"))?;
                println!("sent a test email to {to} through {}", mailer.describe());
                Ok(())
            })
        }
        Command::Check { .. } | Command::Report(_) | Command::Exec(_) => {
            unreachable!("handled before")
        }
        Command::Jobs {
            command: JobsCommand::Export { format, output },
        } => transfer::export_to(&load()?.database_path(), format, output.as_deref()),
        Command::Jobs {
            command:
                JobsCommand::Import {
                    file,
                    format,
                    upsert,
                },
        } => {
            let format = format
                .or_else(|| Format::of_path(&file))
                .unwrap_or_else(|| unknown_import_format(&file));
            let settings = load()?;
            let summary = transfer::import_from(
                &settings.database_path(),
                &file,
                format,
                upsert,
                settings.scheduler.default_grace_minutes,
            )?;
            println!("{summary}");
            Ok(())
        }
        Command::Token { command } => {
            let settings = load()?;
            let db = Db::open(&settings.database_path())?;
            db.migrate()?;
            tokens(&db, command)
        }
        Command::Migrate => {
            let settings = load()?;
            let path = settings.database_path();
            let applied = Db::open(&path)?.migrate()?;
            tracing::info!(database = %path.display(), applied, "database is up to date");
            Ok(())
        }
        Command::Serve { .. } => {
            let settings = load()?;
            let runtime = tokio::runtime::Runtime::new().context("Failed to start the runtime")?;
            runtime.block_on(async {
                let app = Application::build(settings).await?;
                app.run_until_stopped(shutdown_signal()).await
            })
        }
    }
}
