//! Alerts: what happened to a job that a person must hear about, and the email that says it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::entry::Entry;
use super::job::Job;
use super::schedule::Schedule;
use super::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A slot passed its due time with no report.
    Late,
    /// An agent reported a failed backup.
    Failed,
    /// A success failed a content check (DESIGN §10).
    Suspect,
    /// A run started and did not finish within the job's `max_duration_minutes`.
    Hung,
    /// A success came after a late, failed, suspect or hung alert (and passed the checks).
    Recovered,
    /// Two or more of an agent's jobs fell late and the agent has sent nothing since: one
    /// alert about the agent instead of one per job.
    AgentSilent,
    /// The first report from an agent after its `agent_silent` alert.
    AgentBack,
    /// The job is still late, failed, suspect or hung, N minutes after the last alert.
    Reminder,
}

impl AlertKind {
    /// Every variant, so callers can list or validate names without repeating them.
    pub const ALL: [AlertKind; 8] = [
        AlertKind::Late,
        AlertKind::Failed,
        AlertKind::Suspect,
        AlertKind::Hung,
        AlertKind::Recovered,
        AlertKind::AgentSilent,
        AlertKind::AgentBack,
        AlertKind::Reminder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Late => "late",
            AlertKind::Failed => "failed",
            AlertKind::Suspect => "suspect",
            AlertKind::Hung => "hung",
            AlertKind::Recovered => "recovered",
            AlertKind::AgentSilent => "agent_silent",
            AlertKind::AgentBack => "agent_back",
            AlertKind::Reminder => "reminder",
        }
    }

    /// Whether alerts of this kind are about an agent (they carry `agent_id`, no `job_id`).
    pub fn is_about_agent(self) -> bool {
        matches!(self, AlertKind::AgentSilent | AlertKind::AgentBack)
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

/// How many of an agent's jobs must fall late in one evaluation, with the agent silent, for
/// one `agent_silent` alert to replace their `late` alerts.
pub const SILENT_AGENT_MIN_JOBS: usize = 2;

/// What becomes of the late slots one evaluation found for one agent's jobs (DESIGN §10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LateAlerts {
    /// Each job gets its own `late` alert.
    EachJob,
    /// One new `agent_silent` alert names them all.
    AgentSilent,
    /// They are folded into the agent's open `agent_silent` alert: no new alert.
    Fold,
}

/// The rule: while the agent's `agent_silent` alert is open, fold; else two or more newly
/// late jobs of an agent that has sent nothing since the earliest of their windows opened
/// make one `agent_silent` alert; anything else is one `late` alert per job.
pub fn late_alerts(
    silent_alert_open: bool,
    newly_late_jobs: usize,
    heard_since: bool,
) -> LateAlerts {
    if silent_alert_open {
        LateAlerts::Fold
    } else if newly_late_jobs >= SILENT_AGENT_MIN_JOBS && !heard_since {
        LateAlerts::AgentSilent
    } else {
        LateAlerts::EachJob
    }
}

/// An alert in the outbox, as `GET /api/v1/alerts` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Alert {
    pub id: i64,
    /// The job; null for an alert about an agent (`agent_silent`, `agent_back`).
    pub job_id: Option<i64>,
    /// The agent of an `agent_silent` or `agent_back` alert; null otherwise.
    pub agent_id: Option<String>,
    pub kind: AlertKind,
    #[serde(serialize_with = "time::serialize")]
    pub slot_utc: DateTime<Utc>,
    #[serde(serialize_with = "time::serialize")]
    pub created_at: DateTime<Utc>,
    /// Delivery attempts so far, every channel's.
    pub attempts: i64,
    /// When a channel first accepted it; null until then.
    #[serde(serialize_with = "time::serialize_opt")]
    pub sent_at: Option<DateTime<Utc>>,
    /// Why a delivery that has not succeeded failed (`channel: error` when the alert has
    /// several deliveries); null when none has failed or all succeeded.
    pub last_error: Option<String>,
    /// Queued while its job (or every job of its agent) was snoozed: kept, never sent.
    pub suppressed: bool,
    #[serde(skip)]
    pub entry_id: Option<i64>,
    /// Its delivery through each channel that takes it (DESIGN §13); empty until the
    /// delivery loop has routed it.
    pub deliveries: Vec<Delivery>,
}

/// One alert's delivery through one channel, retried on its own.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Delivery {
    /// The channel's name (`email`, or a name from `notify.channels`).
    pub channel: String,
    /// Attempts so far through this channel.
    pub attempts: i64,
    /// When the channel accepted it; null until then.
    #[serde(serialize_with = "time::serialize_opt")]
    pub sent_at: Option<DateTime<Utc>>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// When it will be tried again; null once delivered or refused for good.
    #[serde(serialize_with = "time::serialize_opt")]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// What an email about an alert says, besides the alert and its job.
#[derive(Debug, Clone, Default)]
pub struct AlertContext {
    /// The entry that caused the alert (the missing, failed or successful one).
    pub entry: Option<Entry>,
    pub last_success: Option<DateTime<Utc>>,
    /// Where the backup file was expected for the alert's slot.
    pub expected_path: Option<String>,
    /// The job's page on the dashboard, when `server.public_url` is set.
    pub link: Option<String>,
}

/// The dashboard's page of job `job_id` under `url_prefix` (the public URL without its
/// trailing slash), or None when there is no public URL.
pub fn job_link(url_prefix: &str, job_id: i64) -> Option<String> {
    (!url_prefix.is_empty()).then(|| format!("{url_prefix}/#job={job_id}"))
}

/// The dashboard under `url_prefix`, or None when there is no public URL.
pub fn dashboard_link(url_prefix: &str) -> Option<String> {
    (!url_prefix.is_empty()).then(|| format!("{url_prefix}/"))
}

/// A subject a person can triage from a phone, e.g.
/// `[backup-monitor] LATE acme/Lyon db=erp expected 02:30 UTC`; for a cron job, the local
/// time with its zone, `expected 02:30 Europe/Paris (CET)` (DESIGN §11).
pub fn subject(alert: &Alert, job: &Job) -> String {
    let what = format!("{}/{} db={}", job.company_name, job.city, job.database_name);
    let when = short_time(alert.slot_utc, job);
    match alert.kind {
        AlertKind::Late => format!("[backup-monitor] LATE {what} expected {when}"),
        AlertKind::Failed => format!("[backup-monitor] FAILED {what} for {when}"),
        AlertKind::Suspect => format!("[backup-monitor] SUSPECT {what} for {when}"),
        AlertKind::Hung => format!("[backup-monitor] HUNG {what} run for {when} not finished"),
        AlertKind::Recovered => format!("[backup-monitor] RECOVERED {what} for {when}"),
        AlertKind::Reminder => format!("[backup-monitor] REMINDER {what} still needs attention"),
        // Written by `agent_subject`; named here so that a job's alert always has a subject.
        AlertKind::AgentSilent | AlertKind::AgentBack => format!(
            "[backup-monitor] {} agent={} {what}",
            alert.kind.as_str().to_uppercase(),
            job.agent_id_responsible
        ),
    }
}

/// The subject of an alert about an agent: `[backup-monitor] AGENT SILENT backup-host-1: 12
/// jobs late since 02:30 UTC` or `[backup-monitor] AGENT BACK backup-host-1 (silent 5 h)`.
/// `jobs` is how many jobs the alert speaks for; its slot is the earliest late slot, and an
/// `agent_back` was created when the agent reported again.
pub fn agent_subject(alert: &Alert, jobs: usize) -> String {
    let agent = alert.agent_id.as_deref().unwrap_or("?");
    match alert.kind {
        AlertKind::AgentBack => format!(
            "[backup-monitor] AGENT BACK {agent}: reporting again after {}",
            time::span(alert.created_at - alert.slot_utc)
        ),
        _ => format!(
            "[backup-monitor] AGENT SILENT {agent}: {jobs} job{} late since {} UTC",
            if jobs == 1 { "" } else { "s" },
            alert.slot_utc.format("%Y-%m-%d %H:%M")
        ),
    }
}

/// The body of an alert about an agent: what happened, since when, and each job it speaks
/// for with the slot that went unreported. `last_heard` is the agent's latest report of any
/// kind (None: never).
pub fn agent_body(
    alert: &Alert,
    jobs: &[(Job, DateTime<Utc>)],
    last_heard: Option<DateTime<Utc>>,
    link: Option<&str>,
) -> String {
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let agent = alert.agent_id.as_deref().unwrap_or("?");
    let mut lines = vec![match alert.kind {
        AlertKind::AgentBack => format!(
            "Agent {agent} is reporting again: it had sent nothing since {}.",
            when(alert.slot_utc)
        ),
        _ => format!(
            "Agent {agent} has sent nothing since {}, and {} of its jobs are late. \
             Its host, its network or its scheduler is likely down: one alert for all of them.",
            when(alert.slot_utc),
            jobs.len()
        ),
    }];
    lines.push(String::new());
    lines.push(format!(
        "Last heard:    {}",
        last_heard.map(when).unwrap_or_else(|| "never".to_owned())
    ));
    if !jobs.is_empty() {
        lines.push(String::new());
        lines.push(if alert.kind == AlertKind::AgentBack {
            "Jobs that were late:".to_owned()
        } else {
            "Late jobs:".to_owned()
        });
        for (job, slot) in jobs {
            lines.push(format!(
                "- {}/{} db={} (job {}): expected {}",
                job.company_name,
                job.city,
                job.database_name,
                job.id,
                short_time(*slot, job)
            ));
        }
    }
    lines.push(String::new());
    if let Some(link) = link {
        lines.push(format!("Dashboard: {link}"));
    }
    lines.push(format!("Alert id {}", alert.id));
    lines.push("-- backup-monitor".to_owned());
    lines.join("\n") + "\n"
}

/// A slot as the subject names it: in UTC for the seed's form, on the wall clock of the
/// job's zone for a cron job.
fn short_time(slot: DateTime<Utc>, job: &Job) -> String {
    let schedule = job.schedule();
    match schedule {
        Schedule::Frequency(_) => format!("{} UTC", slot.format(short_format(job))),
        Schedule::Cron(cron) => {
            // Slots at most a day apart read best as a time; sparser ones need the date.
            let format = if schedule.next_slot(slot) - slot <= chrono::Duration::days(1) {
                "%H:%M"
            } else {
                "%Y-%m-%d %H:%M"
            };
            format!(
                "{} {} ({})",
                cron.wall_time(slot).format(format),
                cron.zone,
                cron.zone.abbreviation(slot)
            )
        }
    }
}

/// Daily and hourly slots read best as a time; weekly and monthly ones need the date.
fn short_format(job: &Job) -> &'static str {
    use super::schedule::Frequency;
    match job.backup_frequency {
        Frequency::Hourly | Frequency::Daily => "%H:%M",
        Frequency::Weekly | Frequency::Monthly => "%Y-%m-%d %H:%M",
    }
}

/// What happened, in one sentence: the first line of an email's body and of a chat message.
fn headline(alert: &Alert, job: &Job, context: &AlertContext) -> String {
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let schedule = job.schedule();
    match alert.kind {
        AlertKind::Late => format!(
            "No backup was reported for the slot of {} (due by {}).",
            when(alert.slot_utc),
            when(schedule.due(alert.slot_utc))
        ),
        AlertKind::Failed => format!(
            "The agent reported a FAILED backup for the slot of {}.",
            when(alert.slot_utc)
        ),
        AlertKind::Suspect => format!(
            "A backup was reported as successful for the slot of {}, but it failed a content check: {}.",
            when(alert.slot_utc),
            context
                .entry
                .as_ref()
                .and_then(|e| e.suspect_reason.as_deref())
                .unwrap_or("see the entry")
        ),
        AlertKind::Hung => {
            let started = context
                .entry
                .as_ref()
                .map_or(alert.slot_utc, |e| e.backup_timestamp_utc);
            format!(
                "A run started at {} and has not finished after {} (max_duration_minutes {}): \
                 the backup may hang, or its agent died before reporting.",
                when(started),
                time::span(alert.created_at - started),
                job.max_duration_minutes.unwrap_or_default()
            )
        }
        AlertKind::Recovered => format!(
            "A successful backup was reported for the slot of {}: the job is healthy again.",
            when(alert.slot_utc)
        ),
        AlertKind::Reminder => "A reminder: this job still needs attention; reminders come \
             until it is ok again. The entry below is what caused the first alert."
            .to_owned(),
        AlertKind::AgentSilent | AlertKind::AgentBack => format!(
            "Agent {} {}.",
            job.agent_id_responsible,
            if alert.kind == AlertKind::AgentBack {
                "is reporting again"
            } else {
                "has sent nothing"
            }
        ),
    }
}

/// The plain-text body: everything needed to act without opening the dashboard.
pub fn body(alert: &Alert, job: &Job, context: &AlertContext) -> String {
    let when = |t: DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let schedule = job.schedule();
    let mut lines = vec![
        headline(alert, job, context),
        String::new(),
        format!("Company:       {}", job.company_name),
        format!("City:          {}", job.city),
        format!("Database:      {}", job.database_name),
        format!("Agent:         {}", job.agent_id_responsible),
        match &job.schedule {
            None => format!(
                "Schedule:      {} at {:02}:{:02} UTC, grace {} min",
                job.backup_frequency.as_str(),
                job.expected_hour_utc,
                job.expected_minute_utc,
                job.grace_minutes
            ),
            Some(cron) => format!(
                "Schedule:      {} (cron {cron} {}), grace {} min",
                job.describe_schedule(),
                job.timezone,
                job.grace_minutes
            ),
        },
        match &schedule {
            Schedule::Frequency(_) => format!("Expected slot: {}", when(alert.slot_utc)),
            Schedule::Cron(cron) => format!(
                "Expected slot: {} {} ({}), {}",
                cron.wall_time(alert.slot_utc).format("%Y-%m-%d %H:%M"),
                cron.zone,
                cron.zone.abbreviation(alert.slot_utc),
                when(alert.slot_utc)
            ),
        },
        format!(
            "Last success:  {}",
            context
                .last_success
                .map(when)
                .unwrap_or_else(|| "never".to_owned())
        ),
    ];
    if let Some(path) = &context.expected_path {
        lines.push(format!("Expected file: {path}"));
    }
    if let Some(entry) = &context.entry {
        if entry.status != super::entry::EntryStatus::Missing {
            lines.push(format!(
                "Reported at:   {}",
                when(entry.backup_timestamp_utc)
            ));
        }
        if let Some(size) = entry.backup_size_bytes {
            lines.push(format!("Size:          {size} bytes"));
        }
        if let Some(hash) = &entry.backup_hash {
            lines.push(format!("Hash:          {hash}"));
        }
        if let Some(seconds) = entry.duration_seconds {
            lines.push(format!(
                "Duration:      {}",
                time::span(chrono::Duration::seconds(seconds))
            ));
        }
        if let Some(reason) = &entry.suspect_reason {
            lines.push(format!("Suspect:       {reason}"));
        }
        if let Some(error) = &entry.error_message {
            lines.push(String::new());
            lines.push("Error message:".to_owned());
            lines.push(error.clone());
        }
    }
    lines.push(String::new());
    if let Some(link) = &context.link {
        lines.push(format!("Dashboard: {link}"));
    }
    lines.push(format!("Job id {} · alert id {}", job.id, alert.id));
    lines.push("-- backup-monitor".to_owned());
    lines.join("\n") + "\n"
}

/// The longest reason (an error message, a content check) a chat message or a push
/// notification carries; the email has all of it.
pub const REASON_MAX_CHARS: usize = 600;
/// The most jobs of a silent agent a chat message lists; the email lists them all.
pub const BRIEF_MAX_JOBS: usize = 10;

/// What a chat message or a push notification says about an alert: a title that fits a
/// phone's lock screen, then what happened, where, since when, why, and the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brief {
    /// `FAILED acme/Lyon db=erp for 02:30 UTC`: the email's subject without its tag.
    pub title: String,
    /// What happened, in one sentence.
    pub headline: String,
    /// Where and since when, as (label, value).
    pub facts: Vec<(String, String)>,
    /// More lines: the jobs a silent agent left late.
    pub lines: Vec<String>,
    /// Why: the error message or the failed content check, shortened.
    pub reason: Option<String>,
    /// The job's page (or the dashboard, for an agent), when `server.public_url` is set.
    pub link: Option<String>,
}

impl Brief {
    /// The brief as plain text, title first.
    pub fn text(&self) -> String {
        let mut out = vec![self.title.clone()];
        out.extend(self.text_after_title().lines().map(str::to_owned));
        out.join("\n")
    }

    /// Everything but the title (a push notification carries the title apart).
    pub fn text_after_title(&self) -> String {
        let mut out = vec![self.headline.clone()];
        for (label, value) in &self.facts {
            out.push(format!("{label}: {value}"));
        }
        out.extend(self.lines.iter().cloned());
        if let Some(reason) = &self.reason {
            out.push(format!("Reason: {reason}"));
        }
        if let Some(link) = &self.link {
            out.push(link.clone());
        }
        out.join("\n")
    }
}

/// The subject without its `[backup-monitor] ` tag.
fn untagged(subject: String) -> String {
    match subject.strip_prefix("[backup-monitor] ") {
        Some(rest) => rest.to_owned(),
        None => subject,
    }
}

/// `text`, on one line and at most `max` characters (an ellipsis marks a cut).
pub fn shorten(text: &str, max: usize) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// A past instant and how long before `now` it was: `2026-11-23 02:31 UTC (1 days ago)`.
fn when_ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!(
        "{} ({} ago)",
        t.format("%Y-%m-%d %H:%M UTC"),
        time::span(now - t)
    )
}

/// The brief of an alert about a job.
pub fn brief(alert: &Alert, job: &Job, context: &AlertContext) -> Brief {
    let mut facts = vec![
        ("Company".to_owned(), job.company_name.clone()),
        ("City".to_owned(), job.city.clone()),
        ("Database".to_owned(), job.database_name.clone()),
        ("Agent".to_owned(), job.agent_id_responsible.clone()),
    ];
    let schedule = job.schedule();
    match alert.kind {
        AlertKind::Late => facts.push((
            "Due since".to_owned(),
            schedule
                .due(alert.slot_utc)
                .format("%Y-%m-%d %H:%M UTC")
                .to_string(),
        )),
        AlertKind::Failed | AlertKind::Suspect | AlertKind::Recovered => {
            if let Some(entry) = &context.entry {
                facts.push((
                    "Reported at".to_owned(),
                    entry
                        .backup_timestamp_utc
                        .format("%Y-%m-%d %H:%M UTC")
                        .to_string(),
                ));
            }
        }
        AlertKind::Hung | AlertKind::AgentSilent | AlertKind::AgentBack | AlertKind::Reminder => {}
    }
    if alert.kind != AlertKind::Recovered {
        facts.push((
            "Last success".to_owned(),
            context
                .last_success
                .map(|t| when_ago(t, alert.created_at))
                .unwrap_or_else(|| "never".to_owned()),
        ));
    }
    if let (Some(path), AlertKind::Late | AlertKind::Failed) = (&context.expected_path, alert.kind)
    {
        facts.push(("Expected file".to_owned(), path.clone()));
    }
    let entry = context.entry.as_ref();
    let reason = match alert.kind {
        AlertKind::Failed => entry.and_then(|e| e.error_message.as_deref()),
        // The headline of a suspect alert already says why.
        _ => None,
    };
    Brief {
        title: untagged(subject(alert, job)),
        headline: headline(alert, job, context),
        facts,
        lines: Vec::new(),
        reason: reason
            .filter(|r| !r.trim().is_empty())
            .map(|r| shorten(r, REASON_MAX_CHARS)),
        link: context.link.clone(),
    }
}

/// The brief of an alert about an agent (`agent_silent`, `agent_back`): the agent, since
/// when, and the jobs it left late (the first [`BRIEF_MAX_JOBS`]).
pub fn agent_brief(
    alert: &Alert,
    jobs: &[(Job, DateTime<Utc>)],
    last_heard: Option<DateTime<Utc>>,
    link: Option<&str>,
) -> Brief {
    let agent = alert.agent_id.as_deref().unwrap_or("?");
    let headline = match alert.kind {
        AlertKind::AgentBack => format!(
            "Agent {agent} is reporting again: it had sent nothing since {}.",
            alert.slot_utc.format("%Y-%m-%d %H:%M UTC")
        ),
        _ => format!(
            "Agent {agent} has sent nothing since {}, and {} of its jobs are late: its host, its network or its scheduler is likely down.",
            alert.slot_utc.format("%Y-%m-%d %H:%M UTC"),
            jobs.len()
        ),
    };
    let mut lines = Vec::new();
    for (job, slot) in jobs.iter().take(BRIEF_MAX_JOBS) {
        lines.push(format!(
            "- {}/{} db={}: expected {}",
            job.company_name,
            job.city,
            job.database_name,
            short_time(*slot, job)
        ));
    }
    if jobs.len() > BRIEF_MAX_JOBS {
        lines.push(format!("- and {} more", jobs.len() - BRIEF_MAX_JOBS));
    }
    Brief {
        title: untagged(agent_subject(alert, jobs.len())),
        headline,
        facts: vec![
            ("Agent".to_owned(), agent.to_owned()),
            (
                "Last heard".to_owned(),
                last_heard
                    .map(|t| when_ago(t, alert.created_at))
                    .unwrap_or_else(|| "never".to_owned()),
            ),
        ],
        lines,
        reason: None,
        link: link.map(str::to_owned),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::domain::job::CronText;
    use crate::domain::schedule::Frequency;
    use crate::domain::zone::Zone;

    fn job(schedule: Option<&str>, zone: &str, frequency: Frequency) -> Job {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        Job {
            id: 7,
            database_name: "erp".into(),
            agent_id_responsible: "agent-1".into(),
            company_name: "acme".into(),
            city: "Lyon".into(),
            expected_hour_utc: 2,
            expected_minute_utc: 30,
            backup_frequency: frequency,
            final_storage_path_template: "/b/%Y%m%d.dump".into(),
            expected_weekday: 0,
            expected_day_of_month: 1,
            grace_minutes: 60,
            is_active: true,
            notify_emails: Vec::new(),
            schedule: schedule.map(|s| CronText::parse(s).unwrap()),
            timezone: Zone::parse(zone).unwrap(),
            max_duration_minutes: None,
            min_size_bytes: 1,
            size_drop_percent: Some(50),
            stale_hash_check: true,
            ping_key: String::new(),
            snoozed_until: None,
            snooze_reason: None,
            repeat_every_minutes: None,
            created_at: epoch,
            updated_at: epoch,
        }
    }

    fn late(slot: &str) -> Alert {
        Alert {
            id: 1,
            job_id: Some(7),
            agent_id: None,
            kind: AlertKind::Late,
            slot_utc: slot.parse().unwrap(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            attempts: 0,
            sent_at: None,
            last_error: None,
            entry_id: None,
            suppressed: false,
            deliveries: Vec::new(),
        }
    }

    #[test]
    fn late_slots_of_a_silent_agent_fold_into_one_alert() {
        use LateAlerts::{AgentSilent, EachJob, Fold};
        let cases = [
            // (open agent_silent alert, newly late jobs, heard since, expected)
            (false, 1, false, EachJob, "one late job is just late"),
            (
                false,
                2,
                false,
                AgentSilent,
                "two late jobs and silence: the agent",
            ),
            (false, 12, false, AgentSilent, "twelve late jobs: one alert"),
            (
                false,
                12,
                true,
                EachJob,
                "the agent reported meanwhile: jobs",
            ),
            (true, 1, false, Fold, "open alert: folded"),
            (true, 3, true, Fold, "open alert: folded, whatever else"),
        ];
        for (open, late, heard, expected, why) in cases {
            assert_eq!(late_alerts(open, late, heard), expected, "{why}");
        }
    }

    #[test]
    fn agent_alerts_name_the_agent_its_jobs_and_since_when() {
        let silent = Alert {
            job_id: None,
            agent_id: Some("nas-host-1".into()),
            kind: AlertKind::AgentSilent,
            ..late("2027-01-05T02:30:00Z")
        };
        assert_eq!(
            agent_subject(&silent, 2),
            "[backup-monitor] AGENT SILENT nas-host-1: 2 jobs late since 2027-01-05 02:30 UTC"
        );
        let slot: DateTime<Utc> = "2027-01-05T02:30:00Z".parse().unwrap();
        let body = agent_body(
            &silent,
            &[
                (job(None, "UTC", Frequency::Daily), slot),
                (
                    job(Some("30 3 * * *"), "Europe/Paris", Frequency::Daily),
                    slot,
                ),
            ],
            None,
            None,
        );
        assert!(body.contains("Agent nas-host-1 has sent nothing since 2027-01-05 02:30:00 UTC, and 2 of its jobs are late."), "{body}");
        assert!(body.contains("Last heard:    never"), "{body}");
        assert!(
            body.contains("- acme/Lyon db=erp (job 7): expected 02:30 UTC"),
            "{body}"
        );
        let back = Alert {
            kind: AlertKind::AgentBack,
            created_at: "2027-01-05T07:31:00Z".parse().unwrap(),
            ..silent
        };
        assert_eq!(
            agent_subject(&back, 2),
            "[backup-monitor] AGENT BACK nas-host-1: reporting again after 5 h"
        );
    }

    #[test]
    fn a_brief_says_what_where_since_when_why_and_links_to_the_job() {
        let job = job(None, "UTC", Frequency::Daily);
        let alert = Alert {
            kind: AlertKind::Failed,
            created_at: "2027-01-05T02:40:00Z".parse().unwrap(),
            ..late("2027-01-05T02:30:00Z")
        };
        let entry = Entry {
            id: 9,
            expected_job_id: 7,
            status: super::super::entry::EntryStatus::Failed,
            backup_timestamp_utc: "2027-01-05T02:31:00Z".parse().unwrap(),
            backup_hash: None,
            backup_size_bytes: None,
            error_message: Some(format!("pg_dump:\n  {}", "x".repeat(700))),
            created_at: "2027-01-05T02:31:00Z".parse().unwrap(),
            run_id: None,
            duration_seconds: None,
            suspect_reason: None,
            log: None,
        };
        let context = AlertContext {
            entry: Some(entry),
            last_success: Some("2027-01-04T02:31:00Z".parse().unwrap()),
            expected_path: Some("/b/20270105.dump".into()),
            link: job_link("https://m.example", 7),
        };
        let brief = brief(&alert, &job, &context);
        assert_eq!(brief.title, "FAILED acme/Lyon db=erp for 02:30 UTC");
        let facts: Vec<String> = brief
            .facts
            .iter()
            .map(|(label, value)| format!("{label}: {value}"))
            .collect();
        assert_eq!(
            facts,
            [
                "Company: acme",
                "City: Lyon",
                "Database: erp",
                "Agent: agent-1",
                "Reported at: 2027-01-05 02:31 UTC",
                "Last success: 2027-01-04 02:31 UTC (24 h ago)",
                "Expected file: /b/20270105.dump",
            ]
        );
        let reason = brief.reason.unwrap();
        assert!(reason.starts_with("pg_dump: xxx"), "one line: {reason}");
        assert_eq!(reason.chars().count(), REASON_MAX_CHARS);
        assert!(reason.ends_with('…'));
        assert_eq!(brief.link.as_deref(), Some("https://m.example/#job=7"));
        assert_eq!(job_link("", 7), None, "no public URL, no link");
        // The email carries the link too.
        assert!(body(&alert, &job, &context).contains("Dashboard: https://m.example/#job=7\n"));
    }

    #[test]
    fn a_subject_names_the_local_time_and_zone_of_a_cron_job() {
        let cases = [
            (
                job(None, "UTC", Frequency::Daily),
                "2027-01-05T02:30:00Z",
                "[backup-monitor] LATE acme/Lyon db=erp expected 02:30 UTC",
            ),
            (
                job(Some("30 2 * * *"), "Europe/Paris", Frequency::Daily),
                "2027-01-05T01:30:00Z",
                "[backup-monitor] LATE acme/Lyon db=erp expected 02:30 Europe/Paris (CET)",
            ),
            // Moved by the spring gap: the time the clock read.
            (
                job(Some("30 2 * * *"), "Europe/Paris", Frequency::Daily),
                "2027-03-28T01:30:00Z",
                "[backup-monitor] LATE acme/Lyon db=erp expected 03:30 Europe/Paris (CEST)",
            ),
            (
                job(Some("0 22 1,15 * *"), "America/New_York", Frequency::Daily),
                "2027-07-02T02:00:00Z",
                "[backup-monitor] LATE acme/Lyon db=erp expected 2027-07-01 22:00 America/New_York (EDT)",
            ),
        ];
        for (job, slot, want) in cases {
            assert_eq!(subject(&late(slot), &job), want);
        }
    }

    #[test]
    fn a_cron_jobs_body_shows_its_expression_zone_and_local_slot() {
        let job = job(Some("30 2 * * *"), "Europe/Paris", Frequency::Daily);
        let body = body(
            &late("2027-03-28T01:30:00Z"),
            &job,
            &AlertContext::default(),
        );
        assert!(
            body.contains(
                "Schedule:      every day at 02:30 Europe/Paris (cron 30 2 * * * Europe/Paris), grace 60 min"
            ),
            "{body}"
        );
        assert!(
            body.contains(
                "Expected slot: 2027-03-28 03:30 Europe/Paris (CEST), 2027-03-28 01:30:00 UTC"
            ),
            "{body}"
        );
    }
}
