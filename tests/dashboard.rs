//! The dashboard at `/` in headless Chromium against the real service: rows come from the
//! API, states show in words, the token leaves the address bar, and screenshots land in
//! `target/dashboard-screenshots/` for a person to look at.
//!
//! Ignored by the plain `cargo test`: they need Debian's `chromium`, which `.ci/run` installs
//! before running the ignored tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{spawn_app, with, Role, TestApp};
use serde_json::{json, Value};
use tokio::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The service on 127.0.0.1:0 over a temporary database, with a viewer token.
struct App {
    service: TestApp,
    viewer: String,
}

async fn spawn_with_viewer() -> App {
    let service = spawn_app().await;
    let viewer = service.token(Role::Viewer, None);
    App { service, viewer }
}

impl App {
    fn url(&self, path_and_fragment: &str) -> String {
        self.service.url(path_and_fragment)
    }

    /// Creates a daily job in `company`/`city`; returns its id.
    async fn job(&self, database: &str, company: &str, city: &str, changes: Value) -> i64 {
        let names = json!({
            "database_name": database,
            "agent_id_responsible": format!("agent-{}", city.to_lowercase()),
            "company_name": company,
            "city": city,
        });
        self.service.create_job(with(names, changes)).await["id"]
            .as_i64()
            .unwrap()
    }

    async fn report(&self, job_id: i64, status: &str, at: DateTime<Utc>, extra: Value) {
        let body = json!({
            "expected_job_id": job_id,
            "status": status,
            "backup_timestamp_utc": at.to_rfc3339(),
        });
        let response = self
            .service
            .post_json("/api/v1/entries/", &with(body, extra))
            .await;
        assert_eq!(response.status(), 201, "report failed");
    }

    /// Moves a job's anchor back to `at`, as if it had been created then.
    fn backdate(&self, job_id: i64, at: DateTime<Utc>) {
        self.service.backdate(job_id, at);
    }
}

/// The jobs the dashboard tests look for.
struct Jobs {
    late: i64,
    ok: i64,
    failed: i64,
}

const FAILURE: &str = "pg_dump: error: connection to server at \"db1\" failed: FATAL: password authentication failed for user \"backup\"";

/// One job in each state, over three companies and four cities; the ok one has a week of
/// growing sizes for its chart.
async fn seed(app: &App) -> Jobs {
    let now = Utc::now();
    let day = chrono::Duration::days(1);
    let late = app.job("erp-late", "Acme Corp", "Lyon", json!({})).await;
    app.backdate(late, now - day * 5);
    let ok = app.job("crm-ok", "Acme Corp", "Paris", json!({})).await;
    for (days_ago, size) in [
        (6, 1_210_000_000_i64),
        (5, 1_260_000_000),
        (4, 1_240_000_000),
        (3, 1_330_000_000),
        (2, 1_390_000_000),
        (1, 1_420_000_000),
    ] {
        let hash = format!("sha256:{size:064x}");
        app.report(
            ok,
            "success",
            now - day * days_ago,
            json!({"backup_size_bytes": size, "backup_hash": hash}),
        )
        .await;
    }
    app.report(
        ok,
        "failed",
        now - day * 3 - chrono::Duration::hours(2),
        json!({"error_message": "disk full"}),
    )
    .await;
    app.report(
        ok,
        "success",
        now - chrono::Duration::hours(3),
        json!({"backup_size_bytes": 1_480_000_000_i64}),
    )
    .await;
    let failed = app
        .job(
            "hr-payroll",
            "Globex",
            "Berlin",
            json!({"expected_hour_utc": 1}),
        )
        .await;
    app.report(
        failed,
        "success",
        now - day * 2,
        json!({"backup_size_bytes": 52_400_000}),
    )
    .await;
    app.report(
        failed,
        "failed",
        now - chrono::Duration::hours(5),
        json!({"error_message": FAILURE}),
    )
    .await;
    app.job(
        "wiki",
        "Globex",
        "Berlin",
        json!({"backup_frequency": "weekly"}),
    )
    .await;
    app.job(
        "legacy-erp",
        "Initech",
        "Austin",
        json!({"is_active": false}),
    )
    .await;
    Jobs { late, ok, failed }
}

// ---- Chromium ----

fn chromium_args(profile: &Path) -> Vec<String> {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    );
    [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .chain([format!("--user-data-dir={}", profile.display())])
    .collect()
}

/// Runs Chromium to completion over `url` with `extra` arguments; returns its stdout.
async fn run_chromium(url: &str, extra: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut command = Command::new(CHROMIUM);
    command
        .args(chromium_args(profile.path()))
        .arg("--virtual-time-budget=10000")
        .args(extra)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("chromium finishes within 2 minutes")
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The page's DOM once its scripts have run (and its requests answered).
async fn dump_dom(url: &str) -> String {
    run_chromium(url, &["--dump-dom".to_owned()]).await
}

fn screenshot_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| manifest.join("target"), |dir| manifest.join(dir));
    target.join("dashboard-screenshots")
}

/// Saves a screenshot of `url` at `width`×`height` as `name`.png; returns its path.
async fn screenshot(url: &str, name: &str, (width, height): (u32, u32)) -> PathBuf {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&path);
    run_chromium(
        url,
        &[
            format!("--screenshot={}", path.display()),
            format!("--window-size={width},{height}"),
        ],
    )
    .await;
    let png = std::fs::read(&path).unwrap_or_else(|e| panic!("no {}: {e}", path.display()));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "{} is not a plausible screenshot",
        path.display()
    );
    path
}

// ---- DOM checks ----

/// The `<tr …>…</tr>` of the job with id `job_id`.
fn job_row(dom: &str, job_id: i64) -> &str {
    let marker = format!("data-job-id=\"{job_id}\"");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no row for job {job_id} in the page:\n{dom}"));
    let start = dom[..at].rfind("<tr").unwrap();
    let end = at + dom[at..].find("</tr>").unwrap();
    &dom[start..end]
}

/// The opening tag of the element with `id`.
fn opening_tag<'a>(dom: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\"");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let start = dom[..at].rfind('<').unwrap();
    let end = at + dom[at..].find('>').unwrap();
    &dom[start..=end]
}

fn is_hidden(dom: &str, id: &str) -> bool {
    opening_tag(dom, id).contains(" hidden")
}

// ---- tests ----

#[tokio::test]
#[ignore = "needs chromium: run by .ci/run"]
async fn the_dashboard_shows_the_jobs_of_the_api_with_their_states_in_words() {
    let app = spawn_with_viewer().await;
    let jobs = seed(&app).await;
    let url = app.url(&format!("/#token={}", app.viewer));

    let dom = dump_dom(&url).await;

    assert!(is_hidden(&dom, "login"), "the token form is still shown");
    assert!(!dom.contains(&app.viewer), "the token is in the page");
    assert!(!is_hidden(&dom, "overview"), "the overview is not shown");
    for name in ["erp-late", "crm-ok", "hr-payroll", "wiki", "legacy-erp"] {
        assert!(
            dom.contains(&format!(">{name}</a>")),
            "{name} is not listed"
        );
    }
    for (company, city) in [
        ("Acme Corp", "Lyon"),
        ("Acme Corp", "Paris"),
        ("Globex", "Berlin"),
        ("Initech", "Austin"),
    ] {
        assert!(dom.contains(&format!("<h3>{city}</h3>")), "no {city} group");
        assert!(
            dom.contains(&format!("<span>{company}</span>")),
            "no {company} group"
        );
    }
    let late = job_row(&dom, jobs.late);
    assert!(
        late.contains("data-state=\"late\"") && late.contains("</span>Late</span>"),
        "the late job does not say Late: {late}"
    );
    assert!(
        late.contains(">never<"),
        "the late job shows a success: {late}"
    );
    let failed = job_row(&dom, jobs.failed);
    assert!(
        failed.contains("</span>Failed</span>"),
        "the failed job does not say Failed: {failed}"
    );
    assert!(
        failed.contains("pg_dump: error: connection to server at"),
        "the failed job does not show its error: {failed}"
    );
    let ok = job_row(&dom, jobs.ok);
    assert!(
        ok.contains("</span>OK</span>"),
        "the ok job is not OK: {ok}"
    );
    assert!(ok.contains("3 h ago"), "no relative last success: {ok}");
    assert!(ok.contains("1.4 GiB"), "no last size: {ok}");
    assert!(ok.contains(" UTC</time>"), "no UTC time: {ok}");
    assert!(
        dom.contains("Updated ") && opening_tag(&dom, "status").contains("aria-live=\"polite\""),
        "no refresh status"
    );
    for href in ["/docs", "/redoc"] {
        assert!(
            dom.contains(&format!("href=\"{href}\"")),
            "no link to {href}"
        );
    }

    let desktop = screenshot(&url, "overview-desktop", (1280, 900)).await;
    let phone = screenshot(&url, "overview-phone", (390, 844)).await;
    eprintln!("screenshots: {} {}", desktop.display(), phone.display());
}

#[tokio::test]
#[ignore = "needs chromium: run by .ci/run"]
async fn the_job_view_shows_its_entries_and_a_chart_of_sizes() {
    let app = spawn_with_viewer().await;
    let jobs = seed(&app).await;
    let url = app.url(&format!("/#job={}&token={}", jobs.ok, app.viewer));

    let dom = dump_dom(&url).await;

    assert!(!is_hidden(&dom, "job"), "the job view is not shown");
    assert!(dom.contains(">crm-ok</h1>"), "no job title");
    assert!(dom.contains("Daily at 02:30 UTC"), "no schedule");
    let entries = dom.split("<tbody>").last().unwrap();
    assert_eq!(entries.matches("<tr class=\"s-success\"").count(), 7);
    assert_eq!(entries.matches("<tr class=\"s-failed\"").count(), 1);
    assert!(entries.contains("disk full"), "no error in the entries");
    let chart = &dom[dom.find("<svg").expect("no chart")..];
    assert_eq!(
        chart.matches("<circle").count(),
        7,
        "one dot per sized success"
    );
    assert!(
        chart.contains("class=\"m-failed\""),
        "the failure is not marked"
    );

    screenshot(&url, "job-desktop", (1280, 900)).await;
    screenshot(&url, "job-phone", (390, 844)).await;
}

#[tokio::test]
#[ignore = "needs chromium: run by .ci/run"]
async fn a_cron_job_shows_its_schedule_and_next_slot_in_its_zone_and_the_viewers() {
    let app = spawn_with_viewer().await;
    let id = app
        .job(
            "erp-paris",
            "acme",
            "Paris",
            json!({"schedule": "0 22 * * 1-5", "timezone": "Europe/Paris"}),
        )
        .await;
    let url = app.url(&format!("/#job={id}&token={}", app.viewer));

    let dom = dump_dom(&url).await;

    assert!(
        dom.contains("Every weekday at 22:00 Europe/Paris (cron 0 22 * * 1-5)"),
        "no schedule in words in the job view"
    );
    // 22:00 in Paris is 21:00 (winter) or 20:00 (summer) in the viewer's zone, UTC here.
    let slot = dom.split("Next slots").nth(1).expect("no next slots");
    assert_eq!(
        slot[..slot.find("</dd>").unwrap()].matches("<li>").count(),
        3,
        "three slots"
    );
    let slot = &slot[..slot.find("</dd>").unwrap()];
    assert!(
        (slot.contains("10:00") || slot.contains("22:00")) && slot.contains("GMT+"),
        "{slot}"
    );
    assert!(slot.contains("your time"), "{slot}");
    assert!(slot.contains("UTC"), "{slot}");
}

#[tokio::test]
#[ignore = "needs chromium: run by .ci/run"]
async fn the_token_is_taken_out_of_the_address_bar() {
    let app = spawn_with_viewer().await;
    let jobs = seed(&app).await;
    let profile = tempfile::tempdir().unwrap();
    let mut browser = Command::new(CHROMIUM)
        .args(chromium_args(profile.path()))
        .arg("--remote-debugging-port=0")
        .arg(app.url(&format!("/#job={}&token={}", jobs.late, app.viewer)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("chromium starts");

    // Chromium writes the port it chose to DevToolsActivePort; /json/list names each open
    // page with its current address. Poll both until the page has settled.
    let expected = app.url(&format!("/#job={}", jobs.late));
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Ok(active) = std::fs::read_to_string(profile.path().join("DevToolsActivePort")) else {
            continue;
        };
        let Some(port) = active.lines().next() else {
            continue;
        };
        let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/json/list"))
            .send()
            .await
        else {
            continue;
        };
        let Ok(targets) = response.json::<Vec<Value>>().await else {
            continue;
        };
        seen = targets
            .iter()
            .filter(|t| t["type"] == "page")
            .filter_map(|t| t["url"].as_str().map(str::to_owned))
            .collect();
        if seen.contains(&expected) {
            break;
        }
    }
    browser.kill().await.unwrap();

    assert!(
        seen.contains(&expected),
        "the page's address never became {expected}: {seen:?}"
    );
    assert!(seen.iter().all(|url| !url.contains("token")), "{seen:?}");
}

#[tokio::test]
#[ignore = "needs chromium: run by .ci/run"]
async fn without_a_token_the_page_asks_for_one() {
    let app = spawn_with_viewer().await;
    seed(&app).await;

    let dom = dump_dom(&app.url("/")).await;

    assert!(dom.contains("name=\"token\""), "no token field");
    assert!(!is_hidden(&dom, "login"), "the token form is hidden");
    assert!(is_hidden(&dom, "overview"), "the overview is shown");
    assert!(!dom.contains("erp-late"), "jobs are shown without a token");
    screenshot(&app.url("/"), "login-phone", (390, 844)).await;
}

#[tokio::test]
#[ignore = "needs chromium: run by .ci/run"]
async fn a_refused_token_is_asked_for_again() {
    let app = spawn_with_viewer().await;
    seed(&app).await;

    let dom = dump_dom(&app.url("/#token=bm_not-a-valid-token")).await;

    assert!(!is_hidden(&dom, "login"), "the token form is not shown");
    assert!(!is_hidden(&dom, "login-error"), "no explanation");
    assert!(dom.contains("refused"), "no mention of the refusal");
    assert!(!dom.contains("erp-late"), "jobs are shown with a bad token");
}

#[tokio::test]
#[ignore = "needs chromium: run by .ci/run"]
async fn text_from_the_api_is_shown_as_text_never_as_markup() {
    let app = spawn_with_viewer().await;
    let id = app
        .job(
            "<b id=\"injected\">db</b>",
            "<img src=x id=\"injected-img\">",
            "Lyon & Co",
            json!({}),
        )
        .await;
    app.report(
        id,
        "failed",
        Utc::now(),
        json!({"error_message": "<script id=\"injected-script\">x</script>"}),
    )
    .await;

    let dom = dump_dom(&app.url(&format!("/#token={}", app.viewer))).await;

    assert!(
        dom.contains("&lt;b id=\"injected\"&gt;db&lt;/b&gt;"),
        "the name is not shown as text"
    );
    assert!(
        dom.contains("Lyon &amp; Co"),
        "the city is not shown as text"
    );
    for id in [
        "<b id=\"injected\"",
        "<img src=\"x\"",
        "<script id=\"injected-script\"",
    ] {
        assert!(!dom.contains(id), "{id} became markup");
    }
}
