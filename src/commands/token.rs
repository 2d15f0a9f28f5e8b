//! `backup-monitor token create|list|revoke`, straight on the database.

use anyhow::Context;

use super::STDOUT;
use crate::cli::TokenCommand;
use crate::config::Settings;
use crate::db::tokens as store;
use crate::db::Db;
use crate::domain::time;
use crate::output;
use crate::service::tokens;

pub fn run(settings: &Settings, command: TokenCommand) -> anyhow::Result<()> {
    let db = Db::open(&settings.database_path())?;
    db.migrate()?;
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
            let (info, secret) = tokens::create(
                &conn,
                name.trim(),
                role.into(),
                agent_id.as_deref(),
                chrono::Utc::now(),
            )?;
            // A secret nobody received must not stay valid.
            if let Err(e) = output::println_strict(&secret) {
                store::revoke(&conn, info.id, chrono::Utc::now())?;
                anyhow::bail!(
                    "the secret could not be written on stdout ({e}): token {} was revoked",
                    info.id
                );
            }
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
            let list = store::list(&conn)?;
            let mut text = String::new();
            if json {
                text = serde_json::to_string_pretty(&list)?;
                text.push('\n');
            } else {
                text.push_str(&format!(
                    "{:<5} {:<7} {:<24} {:<24} {:<21} REVOKED\n",
                    "ID", "ROLE", "AGENT", "NAME", "CREATED"
                ));
                for t in list {
                    text.push_str(&format!(
                        "{:<5} {:<7} {:<24} {:<24} {:<21} {}\n",
                        t.id,
                        t.role.as_str(),
                        t.agent_id.as_deref().unwrap_or("-"),
                        if t.name.is_empty() { "-" } else { &t.name },
                        time::format(t.created_at),
                        t.revoked_at
                            .map(time::format)
                            .unwrap_or_else(|| "-".to_owned()),
                    ));
                }
            }
            output::print(&text).context(STDOUT)?;
        }
        TokenCommand::Revoke { id } => {
            let revoked = store::revoke(&conn, id, chrono::Utc::now())?.with_context(|| {
                format!("no live token with id {id} (see `backup-monitor token list`)")
            })?;
            output::println(&format!(
                "revoked {} token {}",
                revoked.role.as_str(),
                revoked.id
            ))
            .context(STDOUT)?;
        }
    }
    Ok(())
}
