//! `jobs export` and `jobs import`: the expected backup jobs as JSON or CSV, validated with
//! the API's own rules and written all or nothing.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, TransactionBehavior};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::db::jobs::{self as store, JobFilter};
use crate::db::Db;
use crate::domain::job::Job;
use crate::domain::schedule::AnsweredFrequency;
use crate::service::jobs::JobCreate;
use crate::service::{FieldError, LocItem, ServiceError};

/// The file formats of `jobs import` and `jobs export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    /// The format a file's extension names (`.json`, `.csv`, any case).
    pub fn of_path(path: &Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "json" => Some(Format::Json),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }
}

/// The exported columns, in order: the id, then every field a job is created with. A job
/// with a `schedule` exports `backup_frequency` as `cron`, as the API answers it, and
/// `expected_hour_utc`/`expected_minute_utc` as stored (unused while the schedule is set);
/// import takes `cron` for "not given" when a schedule comes with it.
///
/// The run and content-check settings follow; in CSV an empty cell is "not given" (the
/// default), and `null` turns `size_drop_percent` off.
pub const COLUMNS: [&str; 21] = [
    "id",
    "database_name",
    "agent_id_responsible",
    "company_name",
    "city",
    "expected_hour_utc",
    "expected_minute_utc",
    "backup_frequency",
    "final_storage_path_template",
    "expected_weekday",
    "expected_day_of_month",
    "grace_minutes",
    "is_active",
    "notify_emails",
    "schedule",
    "timezone",
    "max_duration_minutes",
    "min_size_bytes",
    "size_drop_percent",
    "stale_hash_check",
    "repeat_every_minutes",
];

/// Accepted on import and ignored: the server assigns them (so the API's own listing of
/// jobs imports as it is).
///
/// A snooze is the moment's state, not the job's definition: `snoozed_until` and
/// `snooze_reason` are neither exported nor imported (an upsert keeps the stored ones), nor
/// is the ping key (`ping_url`), which belongs to this installation.
const IGNORED: [&str; 9] = [
    "id",
    "created_at",
    "updated_at",
    "badge_url",
    "ping_url",
    "snoozed_until",
    "snooze_reason",
    "schedule_description",
    "next_slots_utc",
];
const INTEGERS: [&str; 9] = [
    "expected_hour_utc",
    "expected_minute_utc",
    "expected_weekday",
    "expected_day_of_month",
    "grace_minutes",
    "max_duration_minutes",
    "min_size_bytes",
    "size_drop_percent",
    "repeat_every_minutes",
];
/// Integer columns where a CSV cell `null` stands for JSON null (the setting off).
const NULLABLE: [&str; 2] = ["max_duration_minutes", "size_drop_percent"];
/// Boolean columns.
const BOOLEANS: [&str; 2] = ["is_active", "stale_hash_check"];
/// How `notify_emails` is joined in a CSV cell.
const LIST_SEPARATOR: char = ';';

/// One job as exported: its id and the fields it is created with.
#[derive(Debug, Serialize)]
struct Exported<'a> {
    id: i64,
    database_name: &'a str,
    agent_id_responsible: &'a str,
    company_name: &'a str,
    city: &'a str,
    expected_hour_utc: u32,
    expected_minute_utc: u32,
    backup_frequency: &'static str,
    final_storage_path_template: &'a str,
    expected_weekday: u32,
    expected_day_of_month: u32,
    grace_minutes: u32,
    is_active: bool,
    notify_emails: &'a [String],
    schedule: Option<&'a str>,
    timezone: &'static str,
    max_duration_minutes: Option<u32>,
    min_size_bytes: i64,
    size_drop_percent: Option<u32>,
    stale_hash_check: bool,
    repeat_every_minutes: Option<u32>,
}

impl<'a> From<&'a Job> for Exported<'a> {
    fn from(job: &'a Job) -> Self {
        Self {
            id: job.id,
            database_name: &job.database_name,
            agent_id_responsible: &job.agent_id_responsible,
            company_name: &job.company_name,
            city: &job.city,
            expected_hour_utc: job.expected_hour_utc,
            expected_minute_utc: job.expected_minute_utc,
            backup_frequency: match job.schedule {
                Some(_) => AnsweredFrequency::Cron.as_str(),
                None => job.backup_frequency.as_str(),
            },
            final_storage_path_template: &job.final_storage_path_template,
            expected_weekday: job.expected_weekday,
            expected_day_of_month: job.expected_day_of_month,
            grace_minutes: job.grace_minutes,
            is_active: job.is_active,
            notify_emails: &job.notify_emails,
            schedule: job.schedule.as_ref().map(|s| s.as_str()),
            timezone: job.timezone.name(),
            max_duration_minutes: job.max_duration_minutes,
            min_size_bytes: job.min_size_bytes,
            size_drop_percent: job.size_drop_percent,
            stale_hash_check: job.stale_hash_check,
            repeat_every_minutes: job.repeat_every_minutes,
        }
    }
}

impl Exported<'_> {
    fn csv_record(&self) -> [String; 21] {
        [
            self.id.to_string(),
            self.database_name.to_owned(),
            self.agent_id_responsible.to_owned(),
            self.company_name.to_owned(),
            self.city.to_owned(),
            self.expected_hour_utc.to_string(),
            self.expected_minute_utc.to_string(),
            self.backup_frequency.to_owned(),
            self.final_storage_path_template.to_owned(),
            self.expected_weekday.to_string(),
            self.expected_day_of_month.to_string(),
            self.grace_minutes.to_string(),
            self.is_active.to_string(),
            self.notify_emails.join(&LIST_SEPARATOR.to_string()),
            self.schedule.unwrap_or_default().to_owned(),
            self.timezone.to_owned(),
            self.max_duration_minutes
                .map(|m| m.to_string())
                .unwrap_or_default(),
            self.min_size_bytes.to_string(),
            self.size_drop_percent
                .map_or_else(|| "null".to_owned(), |p| p.to_string()),
            self.stale_hash_check.to_string(),
            self.repeat_every_minutes
                .map(|m| m.to_string())
                .unwrap_or_default(),
        ]
    }
}

/// Every job, by id.
fn all_jobs(conn: &Connection) -> rusqlite::Result<Vec<Job>> {
    store::list(conn, &JobFilter::default(), 0, i64::MAX).map(|(jobs, _)| jobs)
}

/// Writes every job to `out`; returns how many.
pub fn export(conn: &Connection, format: Format, out: &mut dyn Write) -> anyhow::Result<usize> {
    let jobs = all_jobs(conn).context("Failed to read the jobs")?;
    let rows: Vec<Exported<'_>> = jobs.iter().map(Exported::from).collect();
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, &rows)?;
            out.write_all(b"\n")?;
        }
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(&mut *out);
            writer.write_record(COLUMNS)?;
            for row in &rows {
                writer.write_record(row.csv_record())?;
            }
            writer.flush()?;
        }
    }
    out.flush()?;
    Ok(rows.len())
}

/// `jobs export`: every job of the database at `database` to `output` (stdout by default),
/// in `format` (default: from the output's extension, else JSON).
pub fn export_to(
    database: &Path,
    format: Option<Format>,
    output: Option<&Path>,
) -> anyhow::Result<()> {
    let format = format
        .or_else(|| output.and_then(Format::of_path))
        .unwrap_or(Format::Json);
    anyhow::ensure!(
        database.exists(),
        "no database at {}: nothing to export (see --database)",
        database.display()
    );
    let db = Db::open(database)?;
    db.migrate()?;
    let conn = db.conn().context("Failed to open a database connection")?;
    match output {
        Some(file) => {
            let mut out = std::io::BufWriter::new(
                std::fs::File::create(file)
                    .with_context(|| format!("cannot create {}", file.display()))?,
            );
            let count = export(&conn, format, &mut out)
                .with_context(|| format!("Failed to write {}", file.display()))?;
            eprintln!("exported {count} jobs to {}", file.display());
        }
        None => {
            export(&conn, format, &mut crate::output::stdout())
                .context("Failed to write the jobs")?;
        }
    }
    Ok(())
}

/// `jobs import`: reads `file` (`-` for stdin) into the database at `database`, creating
/// it if needed.
pub fn import_from(
    database: &Path,
    file: &Path,
    format: Format,
    upsert: bool,
    default_grace: u32,
) -> anyhow::Result<ImportSummary> {
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("cannot read stdin")?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let db = Db::open(database)?;
    db.migrate()?;
    let mut conn = db.conn().context("Failed to open a database connection")?;
    import(&mut conn, &text, format, upsert, default_grace, Utc::now())
        .with_context(|| file.display().to_string())
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportSummary {
    pub created: usize,
    pub updated: usize,
    /// Matched by --upsert and already equal to the row.
    pub unchanged: usize,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let total = self.created + self.updated + self.unchanged;
        write!(
            f,
            "imported {total} job{}: {} created, {} updated",
            if total == 1 { "" } else { "s" },
            self.created,
            self.updated
        )?;
        if self.unchanged > 0 {
            write!(f, ", {} unchanged", self.unchanged)?;
        }
        Ok(())
    }
}

/// An import refused as a whole: every problem found, one line each; nothing was written.
#[derive(Debug)]
pub struct ImportRejected {
    pub errors: Vec<String>,
}

impl std::error::Error for ImportRejected {}

impl fmt::Display for ImportRejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "nothing was imported: {} problem{} found",
            self.errors.len(),
            if self.errors.len() == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// One row of the file, as a JSON object the API's parser reads, with what was already
/// found wrong while converting its cells.
struct Row {
    number: usize,
    object: Value,
    /// (field, message); no field for a problem with the whole row.
    errors: Vec<(Option<String>, String)>,
    /// Fields whose conversion failed: the parser's own complaint about them is redundant.
    reported: Vec<String>,
}

impl Row {
    fn new(number: usize, object: Value) -> Self {
        Self {
            number,
            object,
            errors: Vec::new(),
            reported: Vec::new(),
        }
    }

    fn error(&mut self, field: Option<&str>, msg: &str) {
        self.errors.push((field.map(str::to_owned), msg.to_owned()));
    }

    /// The row's errors, one line each, in column order (whole-row problems first).
    fn lines(&self) -> Vec<String> {
        let position = |field: &Option<String>| match field {
            None => 0,
            Some(f) => {
                let base = f.split('.').next().unwrap_or_default();
                COLUMNS
                    .iter()
                    .position(|c| *c == base)
                    .map_or(COLUMNS.len() + 1, |i| i + 1)
            }
        };
        let mut errors: Vec<&(Option<String>, String)> = self.errors.iter().collect();
        errors.sort_by_key(|(field, _)| position(field));
        errors
            .into_iter()
            .map(|(field, msg)| match field {
                Some(field) => format!("row {}, {field}: {msg}", self.number),
                None => format!("row {}: {msg}", self.number),
            })
            .collect()
    }
}

/// The field a validation error is about: its loc without `body` and without list indices
/// (the message names the bad value).
fn field_of(e: &FieldError) -> Option<String> {
    let names: Vec<&str> = e
        .loc
        .iter()
        .filter_map(|l| match l {
            LocItem::Name(n) if n != "body" => Some(n.as_str()),
            _ => None,
        })
        .collect();
    (!names.is_empty()).then(|| names.join("."))
}

fn known_field(name: &str) -> bool {
    COLUMNS.contains(&name) || IGNORED.contains(&name)
}

fn unknown_field_message() -> String {
    format!("unknown field; the fields are {}", COLUMNS[1..].join(", "))
}

/// Reads a JSON array of job objects.
fn json_rows(text: &str) -> Result<Vec<Row>, ImportRejected> {
    let value: Value = serde_json::from_str(text).map_err(|e| ImportRejected {
        errors: vec![format!("invalid JSON: {e}")],
    })?;
    let Value::Array(items) = value else {
        return Err(ImportRejected {
            errors: vec!["expected a JSON array of jobs, as `jobs export` writes".to_owned()],
        });
    };
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(i, object)| {
            let mut row = Row::new(i + 1, object);
            let unknown: Vec<String> = row
                .object
                .as_object()
                .map(|o| o.keys().filter(|k| !known_field(k)).cloned().collect())
                .unwrap_or_default();
            for key in unknown {
                row.error(Some(&key), &unknown_field_message());
            }
            row
        })
        .collect())
}

/// Reads a CSV file with a header row; each row becomes the JSON object the API would get.
fn csv_rows(text: &str) -> Result<Vec<Row>, ImportRejected> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ImportRejected {
            errors: vec![format!("cannot read the CSV header row: {e}")],
        })?
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let h = h.trim();
            // A spreadsheet may start the file with a byte order mark.
            if i == 0 {
                h.trim_start_matches('\u{feff}')
            } else {
                h
            }
            .to_owned()
        })
        .collect();
    let mut header_errors = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        if !known_field(h) {
            header_errors.push(format!("header, column {h:?}: {}", unknown_field_message()));
        } else if headers[..i].contains(h) {
            header_errors.push(format!("header, column {h:?}: appears twice"));
        }
    }
    if !header_errors.is_empty() {
        return Err(ImportRejected {
            errors: header_errors,
        });
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let number = i + 1;
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let mut row = Row::new(number, Value::Null);
                let msg = match e.kind() {
                    csv::ErrorKind::UnequalLengths { len, .. } => format!(
                        "has {len} cells where the header has {} columns",
                        headers.len()
                    ),
                    _ => e.to_string(),
                };
                row.error(None, &msg);
                rows.push(row);
                continue;
            }
        };
        let mut row = Row::new(number, Value::Null);
        let mut object = Map::new();
        for (name, cell) in headers.iter().zip(record.iter()) {
            let cell = cell.trim();
            if cell.is_empty() || IGNORED.contains(&name.as_str()) {
                continue;
            }
            let value = if NULLABLE.contains(&name.as_str()) && cell.eq_ignore_ascii_case("null") {
                Value::Null
            } else if INTEGERS.contains(&name.as_str()) {
                match cell.parse::<i64>() {
                    Ok(n) => Value::from(n),
                    Err(_) => {
                        row.error(
                            Some(name),
                            "Input should be a valid integer, unable to parse string as an integer",
                        );
                        row.reported.push(name.clone());
                        Value::from(cell)
                    }
                }
            } else if BOOLEANS.contains(&name.as_str()) {
                match crate::domain::boolean::parse(cell) {
                    Some(b) => Value::Bool(b),
                    None => {
                        row.error(
                            Some(name),
                            "Input should be a valid boolean, unable to interpret input",
                        );
                        row.reported.push(name.clone());
                        Value::from(cell)
                    }
                }
            } else if name == "notify_emails" {
                Value::Array(
                    cell.split(LIST_SEPARATOR)
                        .map(str::trim)
                        .filter(|a| !a.is_empty())
                        .map(Value::from)
                        .collect(),
                )
            } else {
                Value::from(cell)
            };
            object.insert(name.clone(), value);
        }
        row.object = Value::Object(object);
        rows.push(row);
    }
    Ok(rows)
}

/// The API's validation of one row: the job to store, or the row's errors added to it.
fn validate(row: &mut Row, default_grace: u32, now: DateTime<Utc>) -> Option<Job> {
    if row.object.is_null() {
        return None; // unreadable; already reported
    }
    // An exported cron job (or the API's listing of one) says `cron`, which is no input.
    if let Value::Object(object) = &mut row.object {
        let cron = AnsweredFrequency::Cron.as_str();
        let scheduled = object.get("schedule").is_some_and(|v| !v.is_null());
        if scheduled && object.get("backup_frequency") == Some(&Value::from(cron)) {
            object.remove("backup_frequency");
        }
    }
    let result = JobCreate::parse(&row.object).and_then(|c| c.into_job(default_grace, now));
    let errors = match result {
        Ok(job) if row.errors.is_empty() => return Some(job),
        Ok(_) => return None,
        Err(ServiceError::Invalid(errors)) => errors,
        Err(other) => {
            row.error(None, &other.to_string());
            return None;
        }
    };
    for e in errors {
        let field = field_of(&e);
        if field.as_ref().is_some_and(|f| row.reported.contains(f)) {
            continue;
        }
        row.error(field.as_deref(), &e.msg);
    }
    None
}

/// What identifies a job to an import: (company_name, city, database_name,
/// agent_id_responsible).
type Identity = (String, String, String, String);

fn identity(job: &Job) -> Identity {
    (
        job.company_name.clone(),
        job.city.clone(),
        job.database_name.clone(),
        job.agent_id_responsible.clone(),
    )
}

const IDENTITY: &str = "company_name, city, database_name and agent_id_responsible";

enum Plan {
    Create(Job),
    Update { before: Job, after: Box<Job> },
}

/// Reads `text` as `format`, validates every row, then (only if all are valid) writes them
/// in one transaction: created, or with `upsert` updated when they match an existing job.
pub fn import(
    conn: &mut Connection,
    text: &str,
    format: Format,
    upsert: bool,
    default_grace: u32,
    now: DateTime<Utc>,
) -> anyhow::Result<ImportSummary> {
    let mut rows = match format {
        Format::Json => json_rows(text)?,
        Format::Csv => csv_rows(text)?,
    };
    let mut valid: Vec<(usize, Job)> = Vec::new();
    let mut seen: HashMap<Identity, usize> = HashMap::new();
    for row in &mut rows {
        if let Some(job) = validate(row, default_grace, now) {
            if let Some(first) = seen.get(&identity(&job)) {
                row.error(None, &format!("same {IDENTITY} as row {first}"));
            } else {
                seen.insert(identity(&job), row.number);
                valid.push((row.number, job));
            }
        }
    }
    let mut errors: Vec<(usize, String)> = rows
        .iter()
        .flat_map(|r| r.lines().into_iter().map(|line| (r.number, line)))
        .collect();

    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .context("Failed to start a transaction")?;
    let mut existing: HashMap<Identity, Vec<Job>> = HashMap::new();
    for job in all_jobs(&tx).context("Failed to read the existing jobs")? {
        existing.entry(identity(&job)).or_default().push(job);
    }
    let mut plans = Vec::with_capacity(valid.len());
    for (number, job) in valid {
        match existing.get(&identity(&job)).map(Vec::as_slice) {
            None | Some([]) => plans.push(Plan::Create(job)),
            Some([before]) if upsert => plans.push(Plan::Update {
                before: before.clone(),
                after: Box::new(job),
            }),
            Some(matches) => {
                let ids: Vec<String> = matches.iter().map(|j| j.id.to_string()).collect();
                let msg = if upsert {
                    format!(
                        "matches {} existing jobs (ids {}) by {IDENTITY}: cannot tell which to update",
                        matches.len(),
                        ids.join(", ")
                    )
                } else {
                    format!(
                        "job {} already has this {IDENTITY}: use --upsert to update it",
                        ids.join(", ")
                    )
                };
                errors.push((number, format!("row {number}: {msg}")));
            }
        }
    }
    if !errors.is_empty() {
        // Stable: by row, each row's errors in the order found.
        errors.sort_by_key(|(number, _)| *number);
        return Err(ImportRejected {
            errors: errors.into_iter().map(|(_, e)| e).collect(),
        }
        .into());
    }

    let mut summary = ImportSummary::default();
    for plan in plans {
        match plan {
            Plan::Create(job) => {
                store::insert(&tx, &job, now).context("Failed to insert a job")?;
                summary.created += 1;
            }
            Plan::Update { before, mut after } => {
                after.id = before.id;
                after.created_at = before.created_at;
                after.updated_at = before.updated_at;
                after.ping_key.clone_from(&before.ping_key);
                after.snoozed_until = before.snoozed_until;
                after.snooze_reason.clone_from(&before.snooze_reason);
                if *after == before {
                    summary.unchanged += 1;
                    continue;
                }
                let restart = after.schedule_restarts_from(&before);
                store::update(&tx, &after, restart, now).context("Failed to update a job")?;
                summary.updated += 1;
            }
        }
    }
    tx.commit().context("Failed to commit the import")?;
    Ok(summary)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_format_comes_from_the_extension_in_any_case() {
        assert_eq!(Format::of_path(Path::new("jobs.json")), Some(Format::Json));
        assert_eq!(
            Format::of_path(Path::new("a/b/JOBS.CSV")),
            Some(Format::Csv)
        );
        assert_eq!(Format::of_path(Path::new("jobs.txt")), None);
        assert_eq!(Format::of_path(Path::new("jobs")), None);
    }

    #[test]
    fn csv_cells_become_the_values_the_api_expects() {
        let text = "company_name,expected_hour_utc,is_active,notify_emails,grace_minutes\n\
                    acme,2,no,a@example.com; b@example.com,\n";
        let rows = csv_rows(text).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].object,
            serde_json::json!({
                "company_name": "acme",
                "expected_hour_utc": 2,
                "is_active": false,
                "notify_emails": ["a@example.com", "b@example.com"]
            })
        );
    }

    #[test]
    fn an_unknown_csv_column_is_refused_by_name() {
        let err = csv_rows("company_name,grace_minute\nacme,5\n")
            .err()
            .unwrap();
        assert_eq!(err.errors.len(), 1);
        assert!(err.errors[0].contains("\"grace_minute\""), "{err}");
    }

    #[test]
    fn the_summary_reads_as_a_sentence() {
        let s = ImportSummary {
            created: 10,
            updated: 2,
            unchanged: 0,
        };
        assert_eq!(s.to_string(), "imported 12 jobs: 10 created, 2 updated");
        let s = ImportSummary {
            created: 0,
            updated: 0,
            unchanged: 1,
        };
        assert_eq!(
            s.to_string(),
            "imported 1 job: 0 created, 0 updated, 1 unchanged"
        );
    }
}
