//! The dashboard at `/` in headless Chromium against the real service: rows come from the
//! API, states show in words (a suspect job says why, a running job since when), alerts
//! name their job or agent, the token leaves the address bar, the page logs no error and
//! asks nothing of any host but the service, and screenshots land in
//! `target/dashboard-screenshots/` for a person to look at.
//!
//! Managing jobs and tokens from the page, driven through the DevTools protocol, is in
//! `dashboard/manage.rs` (the driver: `dashboard/cdp.rs`).
//!
//! Ignored by the plain `cargo test`: they need Debian's `chromium`, which `.ci/run` installs
//! before running the ignored tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "dashboard/cdp.rs"]
mod cdp;
mod common;
#[path = "dashboard/manage.rs"]
mod manage;

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{spawn_app, with, Role, TestApp};
use serde_json::{json, Value};
use tokio::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";

/// At most two browsers at once: the tests run in parallel, and a dozen Chromiums on a small
/// machine cut their network logs and screenshots short.
static CHROMIUMS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A turn to run a browser, held until it is dropped.
async fn chromium_turn() -> tokio::sync::SemaphorePermit<'static> {
    CHROMIUMS
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

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

/// Runs Chromium to completion over `url` with `extra` arguments; returns its stdout and
/// stderr.
async fn run_chromium_output(url: &str, extra: &[String]) -> (String, String) {
    let _turn = chromium_turn().await;
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
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs Chromium to completion over `url` with `extra` arguments; returns its stdout.
async fn run_chromium(url: &str, extra: &[String]) -> String {
    run_chromium_output(url, extra).await.0
}

/// The page's DOM once its scripts have run (and its requests answered).
async fn dump_dom(url: &str) -> String {
    run_chromium(url, &["--dump-dom".to_owned()]).await
}

/// What a page did: its DOM once its scripts ran, what it wrote to the console (errors,
/// CSP refusals and failed loads included), and the address of every request it made.
struct Visit {
    dom: String,
    console: Vec<String>,
    requests: Vec<String>,
}

/// Loads `url` with Chromium's console logged to stderr and its network log on disk.
async fn visit(url: &str) -> Visit {
    let dir = tempfile::tempdir().unwrap();
    let net_log = dir.path().join("net-log.json");
    let (dom, stderr) = run_chromium_output(
        url,
        &[
            "--dump-dom".to_owned(),
            "--enable-logging=stderr".to_owned(),
            "--log-level=0".to_owned(),
            format!("--log-net-log={}", net_log.display()),
            // Chromium's own autofill asks Google about the token form, in the page's
            // partition: that is the browser's doing, not the page's.
            "--disable-features=AutofillServerCommunication".to_owned(),
        ],
    )
    .await;
    // `[pid:tid:time:INFO:CONSOLE:12] "Uncaught TypeError: …", source: http://… (12)`
    let console = stderr
        .lines()
        .filter(|line| line.contains(":CONSOLE"))
        .map(str::to_owned)
        .collect();
    Visit {
        dom,
        console,
        requests: page_requests(&std::fs::read_to_string(&net_log).unwrap(), url),
    }
}

/// The URL of every request the page at `url` made, from Chromium's network log: those
/// started in the page's own network partition (Chromium's own traffic, updates and the
/// like, has another one and is not the page's doing).
fn page_requests(net_log: &str, url: &str) -> Vec<String> {
    let log: Value = serde_json::from_str(net_log).expect("a complete network log");
    let start = &log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"];
    let site = url.split(':').take(2).collect::<Vec<_>>().join(":");
    log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| &event["type"] == start)
        .filter(|event| {
            event["params"]["network_isolation_key"]
                .as_str()
                .is_some_and(|key| key.starts_with(&site))
        })
        .filter_map(|event| event["params"]["url"].as_str().map(str::to_owned))
        .collect()
}

/// The page logged nothing and asked for nothing but the service's own addresses.
fn assert_clean(visit: &Visit, origin: &str) {
    assert!(
        visit.console.is_empty(),
        "the page wrote to the console:\n{}",
        visit.console.join("\n")
    );
    assert!(
        visit.requests.iter().any(|r| r.contains("/api/v1/status")),
        "the network log saw none of the page's requests: {:?}",
        visit.requests
    );
    let away: Vec<&String> = visit
        .requests
        .iter()
        .filter(|r| !r.starts_with(&format!("{origin}/")))
        .collect();
    assert!(away.is_empty(), "requests left {origin}: {away:?}");
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

    let page = visit(&url).await;
    assert_clean(&page, &app.url(""));
    let dom = page.dom;

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

    let page = visit(&url).await;
    assert_clean(&page, &app.url(""));
    let dom = page.dom;

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
    let _turn = chromium_turn().await;
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

// ---- runs, content checks and agent alerts (DESIGN §10) ----

/// The jobs of DESIGN §10 the dashboard tests look for.
struct RunJobs {
    suspect: i64,
    running: i64,
    timed: i64,
    silent: i64,
}

/// A suspect job (a dump of 0 bytes after one of 150 MB), a job whose run began 12 min ago,
/// a job with three timed runs, and an agent whose two jobs went late with nothing heard from
/// it: one `agent_silent` alert, about the agent, with no job.
async fn seed_runs(app: &App) -> RunJobs {
    let now = Utc::now();
    let minute = chrono::Duration::minutes(1);
    let day = chrono::Duration::days(1);
    let suspect = app.job("erp-empty", "Umbrella", "Oslo", json!({})).await;
    let size = |bytes: i64| json!({"backup_size_bytes": bytes});
    app.report(suspect, "success", now - day, size(150_000_000))
        .await;
    app.report(suspect, "success", now - minute * 90, size(0))
        .await;
    let running = app
        .job(
            "crm-running",
            "Umbrella",
            "Oslo",
            json!({"max_duration_minutes": 60}),
        )
        .await;
    app.report(running, "success", now - day, size(80_000_000))
        .await;
    app.report(
        running,
        "started",
        now - minute * 12,
        json!({"run_id": "run-42"}),
    )
    .await;
    let timed = app.job("ledger", "Umbrella", "Bergen", json!({})).await;
    for (days_ago, seconds, bytes) in [
        (3, 240, 700_000_000_i64),
        (2, 300, 720_000_000),
        (1, 420, 760_000_000),
    ] {
        let end = now - day * days_ago;
        let began = end - chrono::Duration::seconds(seconds);
        app.report(timed, "started", began, json!({})).await;
        let hash = format!("sha256:{bytes:064x}");
        app.report(
            timed,
            "success",
            end,
            json!({"backup_size_bytes": bytes, "backup_hash": hash}),
        )
        .await;
    }
    let mut silent = 0;
    for database in ["files-a", "files-b"] {
        silent = app.job(database, "Hooli", "Reno", json!({})).await;
        app.backdate(silent, now - day * 3);
    }
    app.service.tick(now);
    RunJobs {
        suspect,
        running,
        timed,
        silent,
    }
}

/// The element that `marker` (an attribute) is in: from its opening `<tag` to its closing
/// `</tag>`, elements of the same tag nested in it included.
fn element<'a>(dom: &'a str, tag: &str, marker: &str) -> &'a str {
    let at = dom
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in the page:\n{dom}"));
    let start = dom[..at].rfind(&format!("<{tag}")).unwrap();
    let (open, close) = (format!("<{tag}"), format!("</{tag}>"));
    let mut depth = 0;
    let mut i = start;
    loop {
        let next_open = dom[i + 1..].find(&open).map(|n| n + i + 1);
        let next_close = i + dom[i..].find(&close).expect("a closing tag");
        match next_open {
            Some(o) if o < next_close => {
                depth += 1;
                i = o;
            }
            _ if depth == 0 => return &dom[start..next_close],
            _ => {
                depth -= 1;
                i = next_close + 1;
            }
        }
    }
}

#[tokio::test]
#[ignore = "needs chromium: run by .ci/run"]
async fn suspect_and_running_jobs_and_an_agent_alert_show_in_words() {
    let app = spawn_with_viewer().await;
    let jobs = seed_runs(&app).await;
    let statuses: Value = app
        .service
        .get("/api/v1/status")
        .await
        .json()
        .await
        .unwrap();
    let reason = statuses
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["job_id"] == jobs.suspect)
        .and_then(|s| s["suspect_reason"].as_str())
        .expect("the 0-byte success is suspect")
        .to_owned();
    let url = app.url(&format!("/#token={}", app.viewer));

    let page = visit(&url).await;

    assert_clean(&page, &app.url(""));
    let dom = &page.dom;
    let suspect = job_row(dom, jobs.suspect);
    assert!(
        suspect.contains("data-state=\"suspect\"") && suspect.contains("</span>Suspect</span>"),
        "the suspect job does not say Suspect: {suspect}"
    );
    assert!(
        reason.contains("0 B") && suspect.contains(&reason),
        "the suspect job does not say why ({reason}): {suspect}"
    );
    let running = job_row(dom, jobs.running);
    assert!(
        running.contains("running since ") && running.contains(" UTC</time> (12 min)"),
        "the running job does not say since when: {running}"
    );
    let count = element(dom, "button", "data-key=\"count-suspect\"");
    assert!(
        count.contains("<span class=\"n\">1</span>") && count.contains(">Suspect<"),
        "no suspect count: {count}"
    );
    assert!(
        dom.contains("<option value=\"suspect\">Suspect</option>"),
        "no suspect filter"
    );
    let umbrella = element(dom, "h2", "<span>Umbrella</span>");
    assert!(
        umbrella.contains("1 suspect"),
        "the company's summary has no suspect count: {umbrella}"
    );
    let alert = element(dom, "li", "data-kind=\"agent_silent\"");
    assert!(
        alert.contains("Agent silent")
            && alert.contains(">agent-reno</strong>")
            && alert.contains("2 of its jobs are late now"),
        "the agent's alert does not name the agent: {alert}"
    );

    // Tall enough to show the recent alerts below the jobs.
    let desktop = screenshot(&url, "runs-overview-desktop", (1280, 1500)).await;
    let phone = screenshot(&url, "runs-overview-phone", (390, 2600)).await;
    eprintln!("screenshots: {} {}", desktop.display(), phone.display());
}

#[tokio::test]
#[ignore = "needs chromium: run by .ci/run"]
async fn the_job_view_shows_durations_runs_and_the_agents_alerts() {
    let app = spawn_with_viewer().await;
    let jobs = seed_runs(&app).await;
    let job_url = |id: i64| app.url(&format!("/#job={id}&token={}", app.viewer));

    let timed = visit(&job_url(jobs.timed)).await;
    let running = visit(&job_url(jobs.running)).await;
    let suspect = visit(&job_url(jobs.suspect)).await;
    let silent = visit(&job_url(jobs.silent)).await;

    for page in [&timed, &running, &suspect, &silent] {
        assert_clean(page, &app.url(""));
    }
    let dom = &timed.dom;
    let last_run = dom.split("Last run took").nth(1).expect("no last duration");
    assert!(last_run.starts_with("</dt><dd>7 min</dd>"), "{last_run}");
    let entries = dom.split("<tbody>").last().unwrap();
    for shown in ["4 min", "5 min", "7 min"] {
        assert!(
            entries.contains(&format!("data-label=\"Duration\">{shown}</td>")),
            "no duration of {shown} in the entries: {entries}"
        );
    }
    assert_eq!(
        entries.matches("<tr class=\"s-started\"").count(),
        3,
        "{entries}"
    );
    assert_eq!(entries.matches("finished after ").count(), 3, "{entries}");
    let durations = &dom[dom
        .find("aria-labelledby=\"chart-durations")
        .expect("no chart of durations")..];
    let durations = &durations[..durations.find("</svg>").unwrap()];
    assert_eq!(
        durations.matches("<circle").count(),
        3,
        "one dot per timed run"
    );

    let dom = &running.dom;
    assert!(
        element(dom, "span", "id=\"job-state\"").contains("running since "),
        "the running job's view does not say since when"
    );
    let open = element(dom, "tr", "class=\"s-started\"");
    assert!(
        open.contains("running since ") && open.contains("run run-42"),
        "the open run's entry: {open}"
    );

    let note = element(&suspect.dom, "p", "id=\"job-note\"");
    assert!(
        note.contains("Suspect: </strong>size 0 B") && !note.contains(" hidden"),
        "the suspect job's view does not say why: {note}"
    );
    let entries = suspect.dom.split("<tbody>").last().unwrap();
    assert_eq!(
        entries.matches("<tr class=\"s-suspect\"").count(),
        1,
        "the suspect entry: {entries}"
    );

    let alerts = element(&silent.dom, "div", "id=\"job-alerts\"");
    assert!(
        alerts.contains("data-kind=\"agent_silent\"") && alerts.contains(">agent-reno</strong>"),
        "the job's view does not show its agent's alert: {alerts}"
    );

    screenshot(&job_url(jobs.timed), "runs-job-desktop", (1280, 1900)).await;
    screenshot(&job_url(jobs.timed), "runs-job-phone", (390, 3000)).await;
    screenshot(&job_url(jobs.running), "running-job-phone", (390, 2400)).await;
    screenshot(&job_url(jobs.suspect), "suspect-job-phone", (390, 1200)).await;
}
