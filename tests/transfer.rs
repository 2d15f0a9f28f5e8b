//! `jobs export` and `jobs import` through the binary, over temporary SQLite files.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::{command, insert_jobs, stored_jobs, valid_job, with, Ran};
use serde_json::{json, Value};
use tempfile::TempDir;

/// A temporary directory holding the databases and files of one test.
struct Scene {
    dir: TempDir,
}

impl Scene {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The binary on database `db`, with nothing inherited from this process's environment.
    fn run(&self, db: &str, args: &[&str]) -> Ran {
        command(self.dir.path())
            .arg("--database")
            .arg(self.path(db))
            .args(args)
            .output()
            .expect("the binary runs")
            .into()
    }

    /// Creates jobs in database `db` as the API would.
    fn seed(&self, db: &str, bodies: &[Value]) {
        insert_jobs(&self.path(db), bodies);
    }

    /// Every job of database `db` as the API shows it, without its timestamps.
    fn jobs(&self, db: &str) -> Vec<Value> {
        stored_jobs(&self.path(db))
            .into_iter()
            .map(|mut value| {
                let object = value.as_object_mut().unwrap();
                object.remove("created_at");
                object.remove("updated_at");
                object.remove("badge_url");
                value
            })
            .collect()
    }
}

impl Ran {
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        self
    }
}

/// A valid job on `database`, with `changes`.
fn job(database: &str, changes: Value) -> Value {
    with(
        with(valid_job(), json!({"database_name": database})),
        changes,
    )
}

/// Jobs that use every field, with values that need quoting in CSV.
fn varied_jobs() -> Vec<Value> {
    // The run and content settings, one of them off (null).
    let mut checked = job(
        "ledger",
        json!({
            "backup_frequency": "monthly",
            "expected_day_of_month": 31,
            "is_active": false,
            "agent_id_responsible": "agent-paris-2",
            "max_duration_minutes": 120,
            "min_size_bytes": 1_048_576,
            "stale_hash_check": false
        }),
    );
    checked["size_drop_percent"] = Value::Null;
    vec![
        job("erp", json!({})),
        job(
            "crm",
            json!({
                "company_name": "Dupont, Fils & \"Cie\"",
                "city": "Saint-Étienne",
                "backup_frequency": "weekly",
                "expected_weekday": 6,
                "grace_minutes": 90,
                "notify_emails": ["ops@example.com", "boss@example.com"],
                "final_storage_path_template": "/b/{city}/%Y/%m/crm, full.dump"
            }),
        ),
        checked,
        job(
            "events",
            json!({"backup_frequency": "hourly", "expected_minute_utc": 5}),
        ),
    ]
}

#[test]
fn export_json_then_import_into_a_fresh_database_gives_the_same_jobs() {
    let scene = Scene::new();
    scene.seed("source.db", &varied_jobs());

    let exported = scene
        .run("source.db", &["jobs", "export", "--format", "json"])
        .ok();
    let file = scene.write("jobs.json", &exported.stdout);
    let imported = scene
        .run("fresh.db", &["jobs", "import", file.to_str().unwrap()])
        .ok();

    assert_eq!(
        imported.stdout.trim(),
        "imported 4 jobs: 4 created, 0 updated"
    );
    assert_eq!(scene.jobs("fresh.db"), scene.jobs("source.db"));
    let array: Vec<Value> = serde_json::from_str(&exported.stdout).unwrap();
    assert_eq!(array.len(), 4);
    assert_eq!(
        array[1]["notify_emails"],
        json!(["ops@example.com", "boss@example.com"])
    );
    assert!(
        array[0].get("created_at").is_none(),
        "server-only fields stay out"
    );
}

#[test]
fn export_csv_then_import_into_a_fresh_database_gives_the_same_jobs() {
    let scene = Scene::new();
    scene.seed("source.db", &varied_jobs());
    let file = scene.path("jobs.csv");

    let exported = scene
        .run(
            "source.db",
            &[
                "jobs",
                "export",
                "--format",
                "csv",
                "--output",
                file.to_str().unwrap(),
            ],
        )
        .ok();
    let imported = scene
        .run("fresh.db", &["jobs", "import", file.to_str().unwrap()])
        .ok();

    assert!(exported.stdout.is_empty(), "the jobs went to the file");
    assert!(imported.stdout.contains("4 created"), "{}", imported.stdout);
    assert_eq!(scene.jobs("fresh.db"), scene.jobs("source.db"));
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines = text.lines();
    assert!(lines.next().unwrap().starts_with("id,database_name,"));
    assert!(
        text.contains("ops@example.com;boss@example.com"),
        "notify_emails joined by ';': {text}"
    );
    assert!(
        text.lines()
            .next()
            .unwrap()
            .ends_with(",size_drop_percent,stale_hash_check,repeat_every_minutes"),
        "{text}"
    );
    assert!(text.contains(",120,1048576,null,false,\n"), "{text}");
    let ledger = scene
        .jobs("fresh.db")
        .into_iter()
        .find(|j| j["database_name"] == "ledger")
        .unwrap();
    assert_eq!(ledger["size_drop_percent"], Value::Null, "{ledger}");
    assert_eq!(ledger["max_duration_minutes"], 120, "{ledger}");
}

#[test]
fn a_csv_with_three_bad_rows_is_refused_with_every_error_and_nothing_written() {
    let scene = Scene::new();
    let file = scene.write(
        "jobs.csv",
        "database_name,agent_id_responsible,company_name,city,expected_hour_utc,expected_minute_utc,backup_frequency,final_storage_path_template,is_active,notify_emails\n\
         erp,a1,acme,Lyon,2,30,daily,/b/{database_name}.dump,true,\n\
         crm,a1,acme,Lyon,24,30,daily,/b/{database_name}.dump,true,\n\
         web,a1,acme,Lyon,2,thirty,yearly,/b/{database_name}.dump,true,\n\
         mail,a1,acme,,2,30,daily,/b/{nope}.dump,maybe,ok@example.com;not-an-address\n",
    );

    let ran = scene.run("target.db", &["jobs", "import", file.to_str().unwrap()]);

    assert_eq!(ran.code, 1, "{}", ran.stderr);
    let expected = [
        "row 2, expected_hour_utc: Input should be less than or equal to 23",
        "row 3, expected_minute_utc: Input should be a valid integer",
        "row 3, backup_frequency: Input should be 'hourly', 'daily', 'weekly' or 'monthly'",
        "row 4, city: Field required",
        "row 4, final_storage_path_template: ",
        "row 4, is_active: Input should be a valid boolean",
        "row 4, notify_emails: ",
    ];
    for line in expected {
        assert!(
            ran.stderr.contains(line),
            "missing {line:?} in:\n{}",
            ran.stderr
        );
    }
    assert!(
        !ran.stderr.contains("row 1"),
        "row 1 is valid:\n{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains("nothing was imported"),
        "{}",
        ran.stderr
    );
    assert!(
        scene.jobs("target.db").is_empty(),
        "nothing written, not even row 1"
    );
}

#[test]
fn a_json_file_with_a_bad_item_is_refused_and_nothing_written() {
    let scene = Scene::new();
    scene.seed("target.db", &[job("existing", json!({}))]);
    let items = json!([
        job("erp", json!({})),
        job("crm", json!({"grace_minutes": 2000})),
        "not a job",
        job(
            "web",
            json!({"backup_frequency": "hourly", "grace_minutes": 60, "colour": "red"})
        ),
    ]);
    let file = scene.write("jobs.json", &items.to_string());

    let ran = scene.run("target.db", &["jobs", "import", file.to_str().unwrap()]);

    assert_eq!(ran.code, 1, "{}", ran.stderr);
    for line in [
        "row 2, grace_minutes: Input should be less than or equal to 1440",
        "row 3: Input should be a valid dictionary",
        "row 4, colour: unknown field",
        "row 4, grace_minutes: Value error, grace_minutes must be shorter than the period",
    ] {
        assert!(
            ran.stderr.contains(line),
            "missing {line:?} in:\n{}",
            ran.stderr
        );
    }
    let jobs = scene.jobs("target.db");
    assert_eq!(jobs.len(), 1, "only the job that was there");
    assert_eq!(jobs[0]["database_name"], "existing");
}

#[test]
fn upsert_updates_the_matched_jobs_and_creates_the_others() {
    let scene = Scene::new();
    scene.seed(
        "target.db",
        &[
            job("erp", json!({})),
            job("crm", json!({})),
            job("web", json!({})),
        ],
    );
    let before = scene.jobs("target.db");
    let items = json!([
        job(
            "erp",
            json!({"expected_hour_utc": 4, "notify_emails": ["ops@example.com"]})
        ),
        job("crm", json!({})),
        job("mail", json!({"city": "Paris"})),
    ]);
    let file = scene.write("jobs.json", &items.to_string());

    let ran = scene
        .run(
            "target.db",
            &["jobs", "import", "--upsert", file.to_str().unwrap()],
        )
        .ok();

    assert_eq!(
        ran.stdout.trim(),
        "imported 3 jobs: 1 created, 1 updated, 1 unchanged"
    );
    let after = scene.jobs("target.db");
    assert_eq!(after.len(), 4);
    assert_eq!(after[0]["id"], before[0]["id"], "updated in place");
    assert_eq!(after[0]["expected_hour_utc"], 4);
    assert_eq!(after[0]["notify_emails"], json!(["ops@example.com"]));
    assert_eq!(after[1], before[1]);
    assert_eq!(
        after[2], before[2],
        "a job the file does not name is left alone"
    );
    assert_eq!(after[3]["database_name"], "mail");
    assert_eq!(after[3]["city"], "Paris");
}

#[test]
fn without_upsert_a_row_matching_an_existing_job_is_refused() {
    let scene = Scene::new();
    scene.seed("target.db", &[job("erp", json!({}))]);
    let items = json!([
        job("crm", json!({})),
        job("erp", json!({"expected_hour_utc": 5}))
    ]);
    let file = scene.write("jobs.json", &items.to_string());

    let ran = scene.run("target.db", &["jobs", "import", file.to_str().unwrap()]);

    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr.contains("row 2: job 1 already has this company_name, city, database_name and agent_id_responsible: use --upsert"),
        "{}",
        ran.stderr
    );
    assert_eq!(scene.jobs("target.db").len(), 1);
}

#[test]
fn two_rows_for_the_same_job_are_refused() {
    let scene = Scene::new();
    let items = json!([
        job("erp", json!({})),
        job("crm", json!({})),
        job("erp", json!({}))
    ]);
    let file = scene.write("jobs.json", &items.to_string());

    let ran = scene.run("target.db", &["jobs", "import", file.to_str().unwrap()]);

    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr.contains("row 3: same company_name"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("as row 1"), "{}", ran.stderr);
    assert!(scene.jobs("target.db").is_empty());
}

#[test]
fn the_format_comes_from_the_file_extension() {
    let scene = Scene::new();
    scene.seed("source.db", &varied_jobs());
    let out = scene.path("JOBS.CSV");

    scene
        .run(
            "source.db",
            &["jobs", "export", "-o", out.to_str().unwrap()],
        )
        .ok();
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.starts_with("id,database_name,"),
        "CSV from .CSV: {text}"
    );
    scene
        .run("fresh.db", &["jobs", "import", out.to_str().unwrap()])
        .ok();

    assert_eq!(scene.jobs("fresh.db"), scene.jobs("source.db"));
}

#[test]
fn an_unknown_extension_without_format_is_a_clear_usage_error() {
    let scene = Scene::new();
    let file = scene.write("jobs.txt", "[]");

    let ran = scene.run("target.db", &["jobs", "import", file.to_str().unwrap()]);

    assert_eq!(ran.code, 2, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("cannot tell the format"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("--format json"), "{}", ran.stderr);

    let with_format = scene
        .run(
            "target.db",
            &["jobs", "import", "--format", "json", file.to_str().unwrap()],
        )
        .ok();
    assert_eq!(
        with_format.stdout.trim(),
        "imported 0 jobs: 0 created, 0 updated"
    );
}

#[test]
fn an_unknown_csv_column_is_refused_before_any_row() {
    let scene = Scene::new();
    let file = scene.write(
        "jobs.csv",
        "database_name,agent_id_responsible,company_name,city,expected_hour_utc,expected_minute_utc,backup_frequency,final_storage_path_template,grace_minute\n\
         erp,a1,acme,Lyon,2,30,daily,/b/x.dump,5\n",
    );

    let ran = scene.run("target.db", &["jobs", "import", file.to_str().unwrap()]);

    assert_eq!(ran.code, 1);
    assert!(
        ran.stderr
            .contains("column \"grace_minute\": unknown field"),
        "{}",
        ran.stderr
    );
    assert!(scene.jobs("target.db").is_empty());
}

#[test]
fn exporting_a_database_that_does_not_exist_says_so() {
    let scene = Scene::new();

    let ran = scene.run("absent.db", &["jobs", "export"]);

    assert_eq!(ran.code, 1);
    assert!(ran.stderr.contains("no database at"), "{}", ran.stderr);
    assert!(!scene.path("absent.db").exists(), "not created by export");
}

#[test]
fn the_apis_own_job_listing_imports_as_it_is() {
    let scene = Scene::new();
    scene.seed("source.db", &varied_jobs());
    let jobs = stored_jobs(&scene.path("source.db"));
    // What GET /api/v1/jobs/ answers: every field, the server's timestamps included.
    let file = scene.write("listing.json", &serde_json::to_string(&jobs).unwrap());

    scene
        .run("fresh.db", &["jobs", "import", file.to_str().unwrap()])
        .ok();

    assert_eq!(scene.jobs("fresh.db"), scene.jobs("source.db"));
}

#[test]
fn cron_jobs_export_and_import_with_their_schedule_and_zone_in_json_and_csv() {
    let scene = Scene::new();
    let cron = |database: &str, schedule: &str, zone: &str| {
        job(
            database,
            json!({"schedule": schedule, "timezone": zone, "backup_frequency": null,
                "expected_hour_utc": null, "expected_minute_utc": null}),
        )
    };
    scene.seed(
        "source.db",
        &[
            job("erp", json!({})),
            cron("crm", "30 2 * * *", "Europe/Paris"),
            cron("ledger", "0 22 1,15 * MON-FRI", "America/New_York"),
        ],
    );

    for format in ["json", "csv"] {
        let exported = scene
            .run("source.db", &["jobs", "export", "--format", format])
            .ok();
        let file = scene.write(&format!("jobs.{format}"), &exported.stdout);
        let fresh = format!("fresh-{format}.db");
        scene
            .run(&fresh, &["jobs", "import", file.to_str().unwrap()])
            .ok();

        assert_eq!(scene.jobs(&fresh), scene.jobs("source.db"), "{format}");
        assert!(
            exported.stdout.contains("30 2 * * *") && exported.stdout.contains("Europe/Paris"),
            "{format}: {}",
            exported.stdout
        );
    }
    let jobs = scene.jobs("source.db");
    assert_eq!(jobs[1]["backup_frequency"], "cron");
    assert_eq!(jobs[0]["timezone"], "UTC");
}
