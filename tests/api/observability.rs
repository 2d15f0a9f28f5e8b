//! `/metrics` in the Prometheus text format, and the status badges.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::common::{
    client_with, command, company_badge_url, free_port, outbox, spawn_app, spawn_app_with,
    terminate, wait_for_listening, Role, SmtpSettings, SmtpTls, TestApp,
};

/// The value of the first sample line starting with `prefix` (a name with its labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Reports `body` to `/api/v1/entries/`; panics unless 201.
async fn post_entry(app: &TestApp, body: Value) {
    let response = app.post_json("/api/v1/entries/", &body).await;
    assert_eq!(response.status(), 201, "{body}");
}

#[tokio::test]
async fn metrics_show_each_jobs_state_last_success_and_size() {
    // The service's scheduler, on here, ticks once at start: its tick durations are shown.
    let app = spawn_app_with(|s| s.scheduler.enabled = true).await;
    let late = app
        .create_job(json!({"company_name": "acme", "city": "Lyon", "database_name": "erp"}))
        .await;
    app.backdate(late["id"].as_i64().unwrap(), Utc::now() - Duration::days(3));
    let ok = app
        .create_job(json!({"company_name": "glo\"bex", "database_name": "crm"}))
        .await;
    let at = Utc::now() - Duration::minutes(1);
    let report = app
        .post_json(
            "/api/v1/entries/",
            &json!({"expected_job_id": ok["id"], "status": "success", "backup_size_bytes": 734003200,
                    "backup_timestamp_utc": at.to_rfc3339()}),
        )
        .await;
    assert_eq!(report.status(), 201);

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();

    let late_labels = format!(
        "job_id=\"{}\",company=\"acme\",city=\"Lyon\",database=\"erp\"",
        late["id"]
    );
    assert_eq!(
        sample(
            &text,
            &format!("backup_monitor_job_state{{{late_labels},state=\"late\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("backup_monitor_job_state{{{late_labels},state=\"ok\"}}")
        ),
        Some(0.0)
    );
    let ok_labels = format!(
        "job_id=\"{}\",company=\"glo\\\"bex\",city=\"Lyon\",database=\"crm\"",
        ok["id"]
    );
    assert_eq!(
        sample(
            &text,
            &format!("backup_monitor_job_state{{{ok_labels},state=\"ok\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("backup_monitor_job_last_success_timestamp_seconds{{{ok_labels}}}")
        ),
        Some(at.timestamp() as f64)
    );
    assert_eq!(
        sample(
            &text,
            &format!("backup_monitor_job_last_size_bytes{{{ok_labels}}}")
        ),
        Some(734003200.0)
    );
    assert!(sample(&text, "backup_monitor_outbox_pending").is_some());
    for name in [
        "backup_monitor_entries_received_total{status=\"success\"}",
        "backup_monitor_http_requests_total{",
        "backup_monitor_http_request_duration_seconds_bucket{",
        "# TYPE backup_monitor_tick_duration_seconds histogram",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
}

#[tokio::test]
async fn metrics_show_a_suspect_job_and_the_duration_of_its_last_run() {
    // Arrange: a success of 0 bytes (under the default min_size_bytes of 1) makes a job
    // suspect; a start and a success 90 s later make a run of 90 s.
    let app = spawn_app().await;
    let empty = app
        .create_job(json!({"company_name": "acme", "city": "Lyon", "database_name": "empty"}))
        .await;
    let empty_id = empty["id"].as_i64().unwrap();
    let start = Utc::now() - Duration::minutes(10);
    post_entry(
        &app,
        json!({"expected_job_id": empty_id, "status": "success", "backup_size_bytes": 0,
                  "backup_timestamp_utc": start.to_rfc3339()}),
    )
    .await;
    let timed = app
        .create_job(json!({"company_name": "acme", "city": "Lyon", "database_name": "timed"}))
        .await;
    let timed_id = timed["id"].as_i64().unwrap();
    post_entry(
        &app,
        json!({"expected_job_id": timed_id, "status": "started",
                  "backup_timestamp_utc": start.to_rfc3339()}),
    )
    .await;
    post_entry(
        &app,
        json!({"expected_job_id": timed_id, "status": "success", "backup_size_bytes": 4096,
                  "backup_timestamp_utc": (start + Duration::seconds(90)).to_rfc3339()}),
    )
    .await;

    // Act
    let text = app.get("/metrics").await.text().await.unwrap();

    // Assert: one series per state, 1 for suspect only; the run's 90 s, and no duration
    // for the job whose latest report finished no run.
    let empty_labels =
        format!("job_id=\"{empty_id}\",company=\"acme\",city=\"Lyon\",database=\"empty\"");
    for state in ["ok", "late", "failed", "pending", "paused", "suspect"] {
        assert_eq!(
            sample(
                &text,
                &format!("backup_monitor_job_state{{{empty_labels},state=\"{state}\"}} ")
            ),
            Some(if state == "suspect" { 1.0 } else { 0.0 }),
            "{state}:\n{text}"
        );
    }
    let timed_labels =
        format!("job_id=\"{timed_id}\",company=\"acme\",city=\"Lyon\",database=\"timed\"");
    assert_eq!(
        sample(
            &text,
            &format!("backup_monitor_job_state{{{timed_labels},state=\"ok\"}} ")
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        text.contains("# TYPE backup_monitor_job_last_duration_seconds gauge"),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("backup_monitor_job_last_duration_seconds{{{timed_labels}}} ")
        ),
        Some(90.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("backup_monitor_job_last_duration_seconds{{{empty_labels}}}")
        ),
        None,
        "an unknown duration is absent, as an unknown size is:\n{text}"
    );
}

#[tokio::test]
async fn http_metrics_use_the_route_template_never_the_raw_path() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    for _ in 0..3 {
        app.get(&format!("/api/v1/jobs/{}", job["id"])).await;
    }
    app.get("/no/such/path/12345").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains("route=\"/api/v1/jobs/{job_id}\""),
        "the matched template is the label:\n{text}"
    );
    assert!(text.contains("route=\"unmatched\""));
    assert!(
        !text.contains("/no/such/path"),
        "raw paths must not become labels"
    );
    assert!(!text.contains(&format!("/api/v1/jobs/{}\"", job["id"])));
}

#[tokio::test]
async fn alert_deliveries_are_counted_by_kind_and_result() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    app.set_now(Some(crate::common::at("2026-11-24T02:32:00Z")));
    app.report(
        job["id"].as_i64().unwrap(),
        "failed",
        "2026-11-24T02:31:00Z",
    )
    .await;
    // Delivered through nothing: counted as an error.
    let outbox = outbox(
        &app.db_path,
        &SmtpSettings {
            host: Some("127.0.0.1".into()),
            port: free_port(),
            username: None,
            password: None,
            from: Some("m@example.com".into()),
            tls: SmtpTls::None,
        },
        vec!["ops@example.com".into()],
    );
    outbox
        .dispatch_pending(Utc::now() + Duration::minutes(1))
        .await
        .unwrap();
    let text = app.get("/metrics").await.text().await.unwrap();
    let errors = sample(
        &text,
        "backup_monitor_alerts_total{kind=\"failed\",result=\"error\"}",
    );
    assert!(errors.is_some_and(|n| n >= 1.0), "{text}");
    assert_eq!(
        sample(&text, "backup_monitor_outbox_pending").map(|n| n >= 1.0),
        Some(true)
    );
}

#[tokio::test]
async fn an_agent_alert_delivery_is_counted_under_its_own_kind() {
    // Arrange: two late jobs of one agent that sent nothing make one agent_silent alert.
    let app = spawn_app().await;
    for database in ["files-a", "files-b"] {
        let job = app
            .create_job(json!({"agent_id_responsible": "backup-host-9", "database_name": database}))
            .await;
        app.backdate(job["id"].as_i64().unwrap(), Utc::now() - Duration::days(3));
    }
    app.tick(Utc::now());
    let queued: Value = app.get("/api/v1/alerts").await.json().await.unwrap();
    assert_eq!(queued[0]["kind"], "agent_silent", "{queued}");
    assert_eq!(queued[0]["job_id"], Value::Null, "{queued}");
    let series = "backup_monitor_alerts_total{kind=\"agent_silent\",result=\"error\"} ";
    let before = app.get("/metrics").await.text().await.unwrap();

    // Act: delivered through nothing, so counted as an error.
    let outbox = outbox(
        &app.db_path,
        &SmtpSettings {
            host: Some("127.0.0.1".into()),
            port: free_port(),
            username: None,
            password: None,
            from: Some("m@example.com".into()),
            tls: SmtpTls::None,
        },
        vec!["ops@example.com".into()],
    );
    outbox
        .dispatch_pending(Utc::now() + Duration::minutes(1))
        .await
        .unwrap();

    // Assert
    let after = app.get("/metrics").await.text().await.unwrap();
    let (before, after) = (sample(&before, series), sample(&after, series));
    assert!(
        after.unwrap_or(0.0) >= before.unwrap_or(0.0) + 1.0,
        "{series}went from {before:?} to {after:?}"
    );
}

#[tokio::test]
async fn metrics_can_require_a_token_and_then_refuse_agent_tokens() {
    let open = spawn_app().await;
    assert_eq!(
        client_with(None)
            .get(open.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let closed = spawn_app_with(|s| s.metrics.require_token = true).await;
    let anonymous = client_with(None)
        .get(closed.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        closed.get("/metrics").await.status(),
        200,
        "the admin token"
    );
    let viewer = client_with(Some(&closed.token(Role::Viewer, None)));
    assert_eq!(
        viewer
            .get(closed.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // An agent token sees only its own jobs elsewhere: /metrics shows them all.
    let agent = client_with(Some(&closed.token(Role::Agent, Some("agent-lyon-1"))));
    let refused = agent.get(closed.url("/metrics")).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    let detail = refused.json::<Value>().await.unwrap()["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        detail.contains("viewer or admin token"),
        "the answer says which token to use: {detail}"
    );
}

#[tokio::test]
async fn invented_methods_do_not_make_new_series() {
    // Arrange
    let app = spawn_app().await;
    let before = app.get("/metrics").await.text().await.unwrap();
    let series = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("backup_monitor_http_request"))
            .count()
    };

    // Act: 50 requests, each with a method of its own
    let anonymous = client_with(None);
    for i in 0..50 {
        let method = reqwest::Method::from_bytes(format!("Z{i}").as_bytes()).unwrap();
        anonymous
            .request(method, app.url("/healthz"))
            .send()
            .await
            .unwrap();
    }
    let after = app.get("/metrics").await.text().await.unwrap();

    // Assert: one series for all of them (plus the /metrics scrape's own)
    assert!(
        after.contains(
            "backup_monitor_http_requests_total{method=\"other\",route=\"/healthz\",status=\"405\"} 50"
        ),
        "{after}"
    );
    assert!(!after.contains("method=\"Z"), "{after}");
    let grown = series(&after) - series(&before);
    assert!(
        grown < 40,
        "50 invented methods made {grown} new lines of http metrics"
    );
}

#[tokio::test]
async fn report_and_alert_counters_are_shown_at_zero_from_the_start() {
    // A process of its own: this binary's recorder has counted other tests' reports.
    let dir = tempfile::tempdir().unwrap();
    let mut server = command(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (addr, _) = wait_for_listening(&mut server);
    let text = client_with(None)
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    terminate(&server);
    server.wait().unwrap();

    let mut wanted: Vec<String> = ["success", "failed", "started"]
        .iter()
        .map(|status| format!("backup_monitor_entries_received_total{{status=\"{status}\"}}"))
        .collect();
    // Every kind of DESIGN §10, the agent's two included: bounded labels, known up front.
    for kind in [
        "late",
        "failed",
        "suspect",
        "hung",
        "recovered",
        "agent_silent",
        "agent_back",
    ] {
        for result in ["sent", "error"] {
            wanted.push(format!(
                "backup_monitor_alerts_total{{kind=\"{kind}\",result=\"{result}\"}}"
            ));
        }
    }
    for series in wanted {
        assert_eq!(
            sample(&text, &format!("{series} ")),
            Some(0.0),
            "{series} missing from:\n{text}"
        );
    }
}

#[tokio::test]
#[ignore = "needs python3 with prometheus_client: run by .ci/run"]
async fn metrics_parse_with_the_prometheus_client_parser() {
    // The service's scheduler, on here, ticks once at start: its tick durations are shown.
    let app = spawn_app_with(|s| s.scheduler.enabled = true).await;
    let job = app
        .create_job(json!({"company_name": "a\\b \"c\"", "city": "Zürich"}))
        .await;
    // A run that started 90 s before its success, for the duration gauge.
    let id = job["id"].as_i64().unwrap();
    app.report(
        id,
        "started",
        &(Utc::now() - Duration::seconds(90)).to_rfc3339(),
    )
    .await;
    app.report(id, "success", &Utc::now().to_rfc3339()).await;
    let text = app.get("/metrics").await.text().await.unwrap();
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
names = {f.name: f.type for f in text_string_to_metric_families(sys.stdin.read())}
for name, kind in [("backup_monitor_job_state", "gauge"), ("backup_monitor_entries_received", "counter"),
                   ("backup_monitor_http_request_duration_seconds", "histogram"),
                   ("backup_monitor_tick_duration_seconds", "histogram"), ("backup_monitor_outbox_pending", "gauge"),
                   ("backup_monitor_job_last_success_timestamp_seconds", "gauge"),
                   ("backup_monitor_job_last_duration_seconds", "gauge"),
                   ("backup_monitor_database_bytes", "gauge"), ("backup_monitor_entries_stored", "gauge")]:
    assert names.get(name) == kind, (name, names.get(name))
print(len(names), "families")
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the output: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_job_badge_shows_its_state_without_a_token_and_cannot_be_guessed() {
    let app = spawn_app().await;
    let job = app.create_job(json!({"database_name": "erp"})).await;
    let url = job["badge_url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("/badge/") && url.ends_with(&format!("/job/{}.svg", job["id"])),
        "{url}"
    );
    let anonymous = client_with(None);

    let badge = anonymous.get(app.url(&url)).send().await.unwrap();
    assert_eq!(badge.status(), 200);
    assert_eq!(badge.headers()["content-type"], "image/svg+xml");
    let svg = badge.text().await.unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("backup erp") && svg.contains(">pending<"),
        "{svg}"
    );

    app.report(
        job["id"].as_i64().unwrap(),
        "failed",
        &Utc::now().to_rfc3339(),
    )
    .await;
    let svg = anonymous
        .get(app.url(&url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(svg.contains(">failed<"), "{svg}");

    // Another job's id under this key, a changed key, or a key of another installation: 404.
    let other = app.create_job(json!({"database_name": "crm"})).await;
    let forged = url.replace(
        &format!("/job/{}.svg", job["id"]),
        &format!("/job/{}.svg", other["id"]),
    );
    assert_eq!(
        anonymous
            .get(app.url(&forged))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let mut tampered = url.clone();
    tampered.replace_range(7..8, if &url[7..8] == "a" { "b" } else { "a" });
    assert_eq!(
        anonymous
            .get(app.url(&tampered))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let elsewhere = spawn_app().await;
    assert_eq!(
        anonymous
            .get(elsewhere.url(&url))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn a_company_badge_shows_its_worst_job() {
    let app = spawn_app().await;
    let ok = app
        .create_job(json!({"company_name": "acme corp", "database_name": "a"}))
        .await;
    app.report(
        ok["id"].as_i64().unwrap(),
        "success",
        &Utc::now().to_rfc3339(),
    )
    .await;
    let late = app
        .create_job(json!({"company_name": "acme corp", "database_name": "b"}))
        .await;
    app.backdate(late["id"].as_i64().unwrap(), Utc::now() - Duration::days(2));
    let secret = {
        let db = app.db();
        let conn = db.conn().unwrap();
        let value: String = conn
            .query_row(
                "SELECT value FROM installation WHERE key = 'badge_secret'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        value
    };
    let url = company_badge_url(&secret, "acme corp");
    let svg = client_with(None)
        .get(app.url(&url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        svg.contains("backup acme corp") && svg.contains(">late<"),
        "{svg}"
    );
    let unknown = company_badge_url(&secret, "nobody");
    let svg = client_with(None)
        .get(app.url(&unknown))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(svg.contains(">no jobs<"), "{svg}");
}

#[tokio::test]
async fn the_badge_secret_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("b.db").display());
    let first = spawn_app_with(|s| s.database.url = url.clone()).await;
    let job: Value = first.create_job(json!({})).await;
    first.stop().await;
    let second = spawn_app_with(|s| s.database.url = url.clone()).await;
    let again: Value = second
        .get(&format!("/api/v1/jobs/{}", job["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["badge_url"], job["badge_url"]);
    let badge = client_with(None)
        .get(second.url(job["badge_url"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(badge.status(), 200);
}
