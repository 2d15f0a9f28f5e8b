//! Managing from the browser (DESIGN §15), driven in headless Chromium as a person does it:
//! an administrator creates a job, sees the API's validation message beside its field, fixes
//! it, rotates the ping URL, pauses, snoozes and deletes the job; creates an agent token whose
//! `backup-monitor report` line, run as shown, reports a backup; revokes it. A viewer sees no
//! control that changes anything; an agent token is refused with the reason. Every page logs
//! no error and asks nothing of any host but the service; screenshots at desktop and phone
//! width land beside the others.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::cdp::Browser;
use super::common::{client_with, Role, BIN};
use super::{
    chromium_args, chromium_turn, dump_dom, is_hidden, screenshot_dir, seed, spawn_with_viewer,
    App, CHROMIUM,
};

const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

/// A browser on `hash` of the dashboard with `token`, once the page has asked what the token
/// may do and shown its first view.
async fn open(app: &App, token: &str, hash: &str) -> Browser {
    let mut browser = Browser::launch(CHROMIUM, chromium_args, chromium_turn().await).await;
    let sep = if hash.is_empty() { "" } else { "&" };
    browser
        .goto(&app.url(&format!("/#{hash}{sep}token={token}")))
        .await;
    browser
        .wait_for(
            "!document.getElementById('status').textContent.startsWith('Loading') \
             && document.getElementById('status').textContent !== ''",
            "the first load",
        )
        .await;
    browser
}

/// Saves a screenshot of the page as it is now at `size`; returns its path.
async fn shot(browser: &mut Browser, name: &str, size: (u32, u32)) -> PathBuf {
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    browser.screenshot(&path, size, true).await;
    browser.resize(DESKTOP.0, DESKTOP.1).await;
    path
}

/// The page logged nothing but the answers it was meant to get (`expected`: the statuses of
/// the refusals the test provoked, which Chromium logs as failed loads), threw nothing, and
/// asked for nothing but the service's own addresses.
fn assert_clean(browser: &Browser, origin: &str, expected: &[u16]) {
    let problems: Vec<String> = browser
        .console()
        .into_iter()
        .filter(|line| {
            !(line.starts_with("log \"network\"")
                && line.contains(&format!("\"{origin}/api/v1/"))
                && expected
                    .iter()
                    .any(|s| line.contains(&format!("status of {s} "))))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "the page logged:\n{}",
        problems.join("\n")
    );
    let requests = browser.requests();
    assert!(
        requests.iter().any(|r| r.contains("/api/v1/status")),
        "no request seen: {requests:?}"
    );
    let away: Vec<&String> = requests
        .iter()
        // A `data:` URL (the date picker's icon in Chromium's own style sheet) asks no host.
        .filter(|r| !r.starts_with(&format!("{origin}/")) && !r.starts_with("data:"))
        .collect();
    assert!(away.is_empty(), "requests left {origin}: {away:?}");
}

async fn job(app: &App, id: i64) -> reqwest::Response {
    app.service.get(&format!("/api/v1/jobs/{id}")).await
}

const VISIBLE: &str = "((id) => document.getElementById(id)?.checkVisibility())";

#[tokio::test]
#[ignore = "needs chromium: run by .ci/run"]
async fn an_admin_creates_a_job_fixes_a_validation_error_pauses_snoozes_and_deletes_it() {
    let app = spawn_with_viewer().await;
    seed(&app).await;
    let admin = app.service.token(Role::Admin, None);
    let origin = app.url("");
    let mut b = open(&app, &admin, "").await;
    assert!(b.visible("new-job-link").await, "no way to add a job");

    // A job with an hour of 25: the API's message beside the hour, what was typed kept.
    b.click("#new-job-link").await;
    b.wait_for(&format!("{VISIBLE}('f-database_name')"), "the job form")
        .await;
    assert_eq!(b.text("document.activeElement.id").await, "editor-title");
    for (field, value) in [
        ("f-database_name", "erp-new"),
        ("f-company_name", "Acme Corp"),
        ("f-city", "Lyon"),
        ("f-agent_id_responsible", "agent-lyon"),
        ("f-expected_hour_utc", "25"),
        ("f-expected_minute_utc", "15"),
        ("f-notify_emails", "dba@acme.example, ops@acme.example"),
    ] {
        b.type_into(field, value).await;
    }
    // Enter in a field submits the form, as a keyboard user does it.
    b.eval("document.getElementById('f-city').focus()").await;
    b.key("Enter", 13).await;
    b.wait_for(
        &format!("{VISIBLE}('f-expected_hour_utc-error')"),
        "the hour's error",
    )
    .await;
    let message = b
        .text("document.getElementById('f-expected_hour_utc-error').textContent")
        .await;
    assert!(
        message.contains("less than or equal to 23"),
        "the API's message is not beside the hour: {message}"
    );
    assert_eq!(
        b.eval("document.getElementById('f-expected_hour_utc').getAttribute('aria-invalid')")
            .await,
        json!("true")
    );
    assert_eq!(
        b.eval("document.getElementById('editor-error').getAttribute('role')")
            .await,
        json!("alert")
    );
    let summary = b
        .text("document.getElementById('editor-error').textContent")
        .await;
    assert!(summary.contains("Hour (UTC"), "the summary: {summary}");
    assert_eq!(
        b.text("document.activeElement.id").await,
        "f-expected_hour_utc",
        "the focus is on the field to fix"
    );
    for (field, value) in [
        ("f-database_name", "erp-new"),
        ("f-expected_hour_utc", "25"),
        ("f-notify_emails", "dba@acme.example, ops@acme.example"),
    ] {
        let kept = b
            .text(&format!("document.getElementById('{field}').value"))
            .await;
        assert_eq!(kept, value, "#{field} lost what was typed");
    }
    assert_eq!(
        app.service
            .get("/api/v1/jobs/")
            .await
            .json::<Vec<Value>>()
            .await
            .unwrap()
            .len(),
        5
    );
    let error_desktop = shot(&mut b, "manage-job-error-desktop", DESKTOP).await;
    let error_phone = shot(&mut b, "manage-job-error-phone", PHONE).await;

    // Fixed, saved: the job view, with its ping URL and a crontab line.
    b.type_into("f-expected_hour_utc", "2").await;
    b.click("#save").await;
    b.wait_for(
        "document.getElementById('job-title').textContent === 'erp-new' && document.getElementById('ping-lines').textContent",
        "the new job's view",
    )
    .await;
    let notice = b
        .text("document.getElementById('notice').textContent")
        .await;
    assert!(notice.contains("Created job erp-new"), "{notice}");
    let id: i64 = b
        .text("new URLSearchParams(location.hash.slice(1)).get('job')")
        .await
        .parse()
        .unwrap();
    let created: Value = job(&app, id).await.json().await.unwrap();
    assert_eq!(created["expected_hour_utc"], 2);
    assert_eq!(created["expected_minute_utc"], 15);
    assert_eq!(created["company_name"], "Acme Corp");
    assert_eq!(
        created["notify_emails"],
        json!(["dba@acme.example", "ops@acme.example"])
    );
    let ping_url = b
        .text("document.getElementById('copy-ping-url').value")
        .await;
    assert!(
        ping_url.starts_with(&format!("{origin}/ping/"))
            && created["ping_url"]
                .as_str()
                .is_some_and(|u| ping_url.ends_with(u)),
        "{ping_url} is not the job's ping URL {}",
        created["ping_url"]
    );
    let crontab = b
        .text("document.getElementById('copy-crontab').value")
        .await;
    assert!(
        crontab.starts_with("15 2 * * * ")
            && crontab.ends_with(&format!(
                "curl -fsS -m 10 --retry 5 -o /dev/null {ping_url}"
            )),
        "{crontab}"
    );
    let client = client_with(None);
    let pinged = client.get(&ping_url).send().await.unwrap();
    assert_eq!(pinged.status(), 200, "the shown ping URL works");
    b.resize(DESKTOP.0, DESKTOP.1).await;
    let job_desktop = shot(&mut b, "manage-job-desktop", DESKTOP).await;
    let job_phone = shot(&mut b, "manage-job-phone", PHONE).await;

    // Edit: the form holds the job; only what changed is sent.
    b.click("#edit-link").await;
    b.wait_for(
        "document.getElementById('f-database_name').value === 'erp-new'",
        "the job in its form",
    )
    .await;
    b.type_into("f-grace_minutes", "30").await;
    b.click("#save").await;
    b.wait_for(
        "document.getElementById('notice').textContent.includes('Saved job erp-new')",
        "saved",
    )
    .await;
    let edited: Value = job(&app, id).await.json().await.unwrap();
    assert_eq!(edited["grace_minutes"], 30);
    assert_eq!(edited["expected_hour_utc"], 2, "the rest is unchanged");
    b.wait_for(
        "document.getElementById('ping-lines').textContent",
        "the job view again",
    )
    .await;

    // Rotate: after a confirmation, a new URL; the old one stops working.
    b.click("#rotate").await;
    b.wait_for("document.getElementById('confirm').open", "the question")
        .await;
    b.click("#confirm-ok").await;
    b.wait_for(
        &format!("document.getElementById('copy-ping-url').value !== {ping_url:?}"),
        "a new ping URL",
    )
    .await;
    let new_url = b
        .text("document.getElementById('copy-ping-url').value")
        .await;
    assert_eq!(client.get(&ping_url).send().await.unwrap().status(), 404);
    assert_eq!(client.get(&new_url).send().await.unwrap().status(), 200);

    // Pause, then resume.
    b.click("#pause").await;
    b.wait_for(
        "document.getElementById('pause').textContent === 'Resume'",
        "paused",
    )
    .await;
    let paused: Value = job(&app, id).await.json().await.unwrap();
    assert_eq!(paused["is_active"], false);
    b.click("#pause").await;
    b.wait_for(
        "document.getElementById('pause').textContent === 'Pause'",
        "resumed",
    )
    .await;
    assert_eq!(
        job(&app, id).await.json::<Value>().await.unwrap()["is_active"],
        true
    );
    b.click("#pause").await;
    b.wait_for(
        "document.getElementById('pause').textContent === 'Resume'",
        "paused again",
    )
    .await;

    // Snooze two days from now, in the browser's own zone.
    let until = b
        .text(
            "(() => { const d = new Date(Date.now() + 2 * 864e5); d.setSeconds(0, 0); \
             const p = (n) => String(n).padStart(2, '0'); const input = document.getElementById('snooze-until'); \
             input.value = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`; \
             return d.toISOString(); })()",
        )
        .await;
    b.click("#snooze-form button[type=submit]").await;
    b.wait_for(&format!("{VISIBLE}('job-snoozed')"), "snoozed")
        .await;
    let snoozed: Value = job(&app, id).await.json().await.unwrap();
    let stored = snoozed["snoozed_until"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .unwrap_or_else(|| panic!("not snoozed: {snoozed}"));
    assert_eq!(
        stored.with_timezone(&Utc),
        until.parse::<DateTime<Utc>>().unwrap()
    );
    assert!(b.visible("unsnooze").await, "no way to end the snooze");
    let snooze_phone = shot(&mut b, "manage-job-snoozed-phone", PHONE).await;

    // Delete: the question names the job; cancel keeps it, confirm deletes it.
    b.click("#delete").await;
    b.wait_for("document.getElementById('confirm').open", "the question")
        .await;
    let question = b
        .text("document.getElementById('confirm').textContent")
        .await;
    assert!(
        question.contains("Delete job erp-new?") && question.contains("Acme Corp, Lyon"),
        "the question does not name the job: {question}"
    );
    let dialog_phone = shot(&mut b, "manage-delete-question-phone", PHONE).await;
    b.key("Escape", 27).await;
    b.wait_for(
        "!document.getElementById('confirm').open",
        "the question closes",
    )
    .await;
    assert_eq!(job(&app, id).await.status(), 200, "cancelled, yet deleted");
    b.click("#delete").await;
    b.wait_for("document.getElementById('confirm').open", "the question")
        .await;
    b.click("#confirm-ok").await;
    b.wait_for(&format!("{VISIBLE}('overview')"), "back to the overview")
        .await;
    let notice = b
        .text("document.getElementById('notice').textContent")
        .await;
    assert!(notice.contains("Deleted job erp-new"), "{notice}");
    assert_eq!(job(&app, id).await.status(), 404);

    assert_clean(&b, &app.url(""), &[422]);
    eprintln!(
        "screenshots: {}",
        [
            error_desktop,
            error_phone,
            job_desktop,
            job_phone,
            snooze_phone,
            dialog_phone
        ]
        .map(|p| p.display().to_string())
        .join(" ")
    );
}

#[tokio::test]
#[ignore = "needs chromium: run by .ci/run"]
async fn an_admin_creates_an_agent_token_whose_report_line_works_and_revokes_it() {
    let app = spawn_with_viewer().await;
    let jobs = seed(&app).await; // erp-late is agent-lyon's only job
    let admin = app.service.token(Role::Admin, None);
    let origin = app.url("");
    let mut b = open(&app, &admin, "").await;
    b.click("#tokens-link").await;
    b.wait_for(
        "document.querySelector('#token-list table')",
        "the token list",
    )
    .await;

    b.choose("t-role", "agent").await;
    b.type_into("t-agent_id", "agent-lyon").await;
    b.type_into("t-name", "Lyon NAS").await;
    b.click("#token-form button[type=submit]").await;
    b.wait_for(&format!("{VISIBLE}('token-created')"), "the new token")
        .await;
    let secret = b.text("document.getElementById('copy-secret').value").await;
    assert!(secret.starts_with("bm_"), "{secret}");
    let mut lines = Vec::new();
    for key in ["report", "exec", "curl"] {
        let line = b
            .text(&format!("document.getElementById('copy-{key}').value"))
            .await;
        assert!(
            line.contains(&secret) && line.contains(&origin),
            "the {key} line lacks the secret or the server's URL: {line}"
        );
        lines.push(line);
    }
    assert!(lines[0].contains("backup-monitor report") && lines[1].contains("backup-monitor exec"));
    assert!(
        lines[0].contains(&format!("--job-id {}", jobs.late)),
        "{}",
        lines[0]
    );
    let desktop = shot(&mut b, "manage-token-desktop", DESKTOP).await;
    let phone = shot(&mut b, "manage-token-phone", PHONE).await;

    // The report line, run as shown in a shell with the binary on its PATH, reports.
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |line: String| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new("sh")
                .args(["-c", &line])
                .env("PATH", path)
                .env_remove("BACKUP_MONITOR_URL")
                .env_remove("BACKUP_MONITOR_TOKEN")
                .output()
                .unwrap()
        })
    };
    let reported = run(lines[0].clone()).await.unwrap();
    assert!(
        reported.status.success(),
        "the report line failed: {}",
        String::from_utf8_lossy(&reported.stderr)
    );
    let entries: Vec<Value> = app
        .service
        .get(&format!("/api/v1/entries/by_job/{}", jobs.late))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        entries.iter().any(|e| e["status"] == "success"),
        "no success stored: {entries:?}"
    );

    // Revoked after a confirmation that names it: the same line is refused.
    let id = app.service.token_id(&secret);
    b.click(&format!("button[data-revoke='{id}']")).await;
    b.wait_for("document.getElementById('confirm').open", "the question")
        .await;
    let question = b
        .text("document.getElementById('confirm-title').textContent")
        .await;
    assert!(question.contains("Lyon NAS"), "{question}");
    b.click("#confirm-ok").await;
    b.wait_for(
        &format!(
            "document.querySelector('tr[data-token-id=\"{id}\"]')?.classList.contains('revoked')"
        ),
        "the token shown revoked",
    )
    .await;
    let refused = run(lines[0].clone()).await.unwrap();
    assert!(!refused.status.success(), "a revoked token still reports");

    assert_clean(&b, &app.url(""), &[]);
    eprintln!("screenshots: {} {}", desktop.display(), phone.display());
}

#[tokio::test]
#[ignore = "needs chromium: run by .ci/run"]
async fn a_viewer_sees_no_control_that_changes_anything_but_can_copy_a_badge() {
    let app = spawn_with_viewer().await;
    let jobs = seed(&app).await;
    let origin = app.url("");
    let mut b = open(&app, &app.viewer, "").await;

    let controls = "[...document.querySelectorAll('.admin-only, #job-form, #token-form, button[data-revoke], #pause, #delete, #rotate, #snooze-form')]\
                    .filter((e) => e.checkVisibility()).map((e) => e.id || e.className)";
    assert_eq!(b.eval(controls).await, json!([]), "on the overview");
    let badge = b
        .text("document.querySelector('.badge-md .copy-text').value")
        .await;
    assert!(
        badge.starts_with(&format!("![Acme Corp backups]({origin}/badge/"))
            && badge.ends_with(".svg)"),
        "{badge}"
    );
    let svg_url = &badge[badge.find("](").unwrap() + 2..badge.len() - 1];
    let svg = client_with(None).get(svg_url).send().await.unwrap();
    assert_eq!(svg.status(), 200, "the badge needs no token");
    b.click(".badge-md summary").await;
    b.click(".badge-md button[data-copies]").await;
    b.wait_for(
        "document.getElementById('notice').textContent",
        "the copy's outcome",
    )
    .await;
    let overview_phone = shot(&mut b, "viewer-overview-phone", PHONE).await;

    b.eval(&format!("location.hash = 'job={}'", jobs.ok)).await;
    b.wait_for(
        "document.getElementById('job-title').textContent === 'crm-ok'",
        "the job view",
    )
    .await;
    assert_eq!(b.eval(controls).await, json!([]), "on the job view");
    assert!(!b.visible("ping").await, "a viewer is shown the ping URL");

    b.eval("location.hash = 'new'").await;
    b.wait_for(
        "document.getElementById('notice').textContent.includes('admin token')",
        "the refusal",
    )
    .await;
    assert!(!b.visible("editor").await, "a viewer gets the job form");
    b.eval("location.hash = 'tokens'").await;
    b.wait_for(&format!("{VISIBLE}('overview')"), "the overview")
        .await;
    assert!(!b.visible("tokens").await, "a viewer gets the tokens");

    assert_clean(&b, &origin, &[]);
    eprintln!("screenshot: {}", overview_phone.display());
}

#[tokio::test]
#[ignore = "needs chromium: run by .ci/run"]
async fn an_agent_token_is_refused_with_a_sentence_saying_which_token_to_use() {
    let app = spawn_with_viewer().await;
    seed(&app).await;
    let agent = app.service.token(Role::Agent, Some("agent-lyon"));

    let dom = dump_dom(&app.url(&format!("/#token={agent}"))).await;

    assert!(!is_hidden(&dom, "login"), "the token form is not shown");
    assert!(is_hidden(&dom, "overview"), "the jobs are shown");
    let error = super::element(&dom, "p", "id=\"login-error\"");
    assert!(
        !is_hidden(&dom, "login-error")
            && error.contains("role=\"alert\"")
            && error.contains("agent token (agent agent-lyon)")
            && error.contains("viewer token")
            && error.contains("admin token"),
        "no sentence saying why and which token to use: {error}"
    );
    assert!(
        !dom.contains("erp-late"),
        "jobs are shown to an agent token"
    );
    assert!(!dom.contains(&agent), "the token is in the page");
    let mut b = open_for_login(&app, &agent).await;
    let phone = shot(&mut b, "agent-refused-phone", PHONE).await;
    eprintln!("screenshot: {}", phone.display());
}

/// A browser on the dashboard with `token`, waiting for the token form to come back.
async fn open_for_login(app: &App, token: &str) -> Browser {
    let mut browser = Browser::launch(CHROMIUM, chromium_args, chromium_turn().await).await;
    browser.goto(&app.url(&format!("/#token={token}"))).await;
    browser
        .wait_for(&format!("{VISIBLE}('login-error')"), "the refusal")
        .await;
    browser
}
