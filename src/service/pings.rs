//! Ping URLs (DESIGN §12): healthchecks.io's protocol, so that borgmatic's `healthchecks:`
//! hook, runitor, resticprofile, autorestic and a plain `curl` in a crontab report without a
//! token; and Uptime Kuma's push. The key in the URL is the credential: it finds the job.

use chrono::{DateTime, Utc};
use rusqlite::Connection;

use super::reports::{self, Reported};
use super::ServiceError;
use crate::db::jobs;
use crate::domain::entry::{EntryStatus, NewEntry, HASH_MAX, LOG_MAX, RUN_ID_MAX};

/// Most bytes of a ping's body read; the rest is not read.
pub const BODY_READ_MAX: usize = 100 * 1024;

/// What a ping says, from the last segment of its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PingKind {
    /// `/ping/{key}`: a success.
    Success,
    /// `/ping/{key}/start`: a run began.
    Start,
    /// `/ping/{key}/fail`: a failure.
    Fail,
    /// `/ping/{key}/{0..=255}`: success for 0, else a failure with `exit status N`.
    ExitStatus(u8),
    /// `/ping/{key}/log`: the body is kept as a log of the job; nothing about state.
    Log,
}

impl PingKind {
    /// The kind a URL's last segment names; a refusal is one line for a 400.
    pub fn parse(segment: &str) -> Result<Self, String> {
        match segment {
            "start" => Ok(Self::Start),
            "fail" => Ok(Self::Fail),
            "log" => Ok(Self::Log),
            digits if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => digits
                .parse::<u8>()
                .map(Self::ExitStatus)
                .map_err(|_| format!("exit status {digits} is out of range 0-255")),
            other => Err(format!(
                "unknown ping {other:?}: use /start, /fail, /log or an exit status 0-255"
            )),
        }
    }

    fn status(self) -> EntryStatus {
        match self {
            Self::Success | Self::ExitStatus(0) => EntryStatus::Success,
            Self::Start => EntryStatus::Started,
            Self::Fail | Self::ExitStatus(_) => EntryStatus::Failed,
            Self::Log => EntryStatus::Log,
        }
    }
}

/// One ping, validated: what it records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    pub kind: PingKind,
    /// `?rid=`: the run it belongs to.
    pub run_id: Option<String>,
    /// `?size=`: the backup's size in bytes, for the content checks.
    pub size: Option<i64>,
    /// `?hash=`: the backup's hash (`sha256:…`), for the content checks.
    pub hash: Option<String>,
    /// The body as text, its last [`LOG_MAX`] characters.
    pub text: Option<String>,
}

impl Ping {
    /// Reads the query's `rid`, `size` and `hash` (others are ignored, as healthchecks
    /// does) and the body. A refusal is one line for a 400.
    pub fn read(kind: PingKind, query: &[(String, String)], body: &[u8]) -> Result<Self, String> {
        let get = |name: &str| {
            query
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim())
                .filter(|v| !v.is_empty())
        };
        let run_id = get("rid").map(str::to_owned);
        if let Some(rid) = &run_id {
            let n = rid.chars().count();
            if n > RUN_ID_MAX {
                return Err(format!("rid is {n} characters long, at most {RUN_ID_MAX}"));
            }
        }
        let size = get("size")
            .map(|s| {
                s.parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| format!("size {s:?} is not a whole number of bytes, 0 or more"))
            })
            .transpose()?;
        let hash = get("hash").map(str::to_owned);
        if let Some(hash) = &hash {
            let n = hash.chars().count();
            if n > HASH_MAX {
                return Err(format!("hash is {n} characters long, at most {HASH_MAX}"));
            }
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        Ok(Self {
            kind,
            run_id,
            size,
            hash,
            text: (!text.is_empty()).then(|| tail(text, LOG_MAX)),
        })
    }

    /// The entry it records for `job_id` at `now`: the body is the error message of a
    /// failure (after `exit status N` when the URL gave one), the log otherwise.
    pub fn entry(&self, job_id: i64, now: DateTime<Utc>) -> NewEntry {
        let status = self.kind.status();
        let (error_message, log) = match (status, self.kind) {
            (EntryStatus::Failed, PingKind::ExitStatus(code)) => {
                let message = match &self.text {
                    Some(text) => format!("exit status {code}\n{text}"),
                    None => format!("exit status {code}"),
                };
                (Some(tail(&message, LOG_MAX)), None)
            }
            (EntryStatus::Failed, _) => (self.text.clone(), None),
            _ => (None, self.text.clone()),
        };
        NewEntry {
            expected_job_id: job_id,
            status,
            backup_timestamp_utc: now,
            backup_hash: self.hash.clone(),
            backup_size_bytes: self.size,
            error_message,
            run_id: self.run_id.clone(),
            duration_seconds: None,
            suspect_reason: None,
            log,
        }
    }
}

/// The last `max` characters of `text`.
fn tail(text: &str, max: usize) -> String {
    let n = text.chars().count();
    text.chars().skip(n.saturating_sub(max)).collect()
}

/// Records `ping` for the job whose key is `key`, with the rules of a report (runs, content
/// checks, alerts). None: no job has this key. Call inside the transaction that commits it.
pub fn record(
    conn: &Connection,
    key: &str,
    ping: &Ping,
    now: DateTime<Utc>,
) -> Result<Option<Reported>, ServiceError> {
    let Some(job) = jobs::by_ping_key(conn, key)? else {
        return Ok(None);
    };
    let new = ping.entry(job.id, now);
    Ok(Some(reports::report_for(conn, &job, &new, now)?))
}

/// Whether `key` could be a ping key at all (32 lowercase hex digits), so that anything
/// else is answered without a database read.
pub fn plausible_key(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_last_segment_names_what_happened() {
        assert_eq!(PingKind::parse("start"), Ok(PingKind::Start));
        assert_eq!(PingKind::parse("fail"), Ok(PingKind::Fail));
        assert_eq!(PingKind::parse("log"), Ok(PingKind::Log));
        assert_eq!(PingKind::parse("0"), Ok(PingKind::ExitStatus(0)));
        assert_eq!(PingKind::parse("255"), Ok(PingKind::ExitStatus(255)));
        assert_eq!(
            PingKind::parse("256"),
            Err("exit status 256 is out of range 0-255".to_owned())
        );
        assert!(PingKind::parse("-1").unwrap_err().contains("unknown ping"));
        assert!(PingKind::parse("stop").is_err());
    }

    #[test]
    fn an_exit_status_is_a_success_only_at_zero_and_the_body_follows_it() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let ok = Ping::read(PingKind::ExitStatus(0), &[], b"done").unwrap();
        let entry = ok.entry(1, now);
        assert_eq!(entry.status, EntryStatus::Success);
        assert_eq!(entry.log.as_deref(), Some("done"));
        assert_eq!(entry.error_message, None);
        let failed = Ping::read(PingKind::ExitStatus(2), &[], b"pg_dump: error\n").unwrap();
        let entry = failed.entry(1, now);
        assert_eq!(entry.status, EntryStatus::Failed);
        assert_eq!(
            entry.error_message.as_deref(),
            Some("exit status 2\npg_dump: error")
        );
        let bare = Ping::read(PingKind::ExitStatus(1), &[], b"").unwrap();
        assert_eq!(
            bare.entry(1, now).error_message.as_deref(),
            Some("exit status 1")
        );
    }

    #[test]
    fn the_query_feeds_the_run_and_the_content_checks() {
        let ping = Ping::read(
            PingKind::Success,
            &q(&[
                ("rid", "r-1"),
                ("size", "1024"),
                ("hash", "sha256:ab"),
                ("x", "y"),
            ]),
            b"",
        )
        .unwrap();
        assert_eq!(ping.run_id.as_deref(), Some("r-1"));
        assert_eq!(ping.size, Some(1024));
        assert_eq!(ping.hash.as_deref(), Some("sha256:ab"));
        assert_eq!(ping.text, None);
        for (query, why) in [
            (q(&[("size", "-1")]), "not a whole number"),
            (q(&[("size", "12MB")]), "not a whole number"),
            (q(&[("rid", &"r".repeat(65))]), "at most 64"),
            (q(&[("hash", &"h".repeat(257))]), "at most 256"),
        ] {
            let refused = Ping::read(PingKind::Success, &query, b"").unwrap_err();
            assert!(refused.contains(why), "{refused}");
        }
    }

    #[test]
    fn only_the_end_of_a_long_body_is_kept() {
        let body = format!("{}THE END", "x".repeat(10_000));
        let ping = Ping::read(PingKind::Fail, &[], body.as_bytes()).unwrap();
        let message = ping
            .entry(1, DateTime::<Utc>::UNIX_EPOCH)
            .error_message
            .unwrap();
        assert_eq!(message.chars().count(), LOG_MAX);
        assert!(message.ends_with("THE END"));
    }

    #[test]
    fn a_key_is_32_hex_digits() {
        assert!(plausible_key("0123456789abcdef0123456789abcdef"));
        assert!(!plausible_key("0123456789ABCDEF0123456789ABCDEF"));
        assert!(!plausible_key("short"));
        assert!(!plausible_key("../../etc/passwd................"));
    }
}
