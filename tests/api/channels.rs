//! Alert channels end to end (DESIGN §13): real HTTP receivers on 127.0.0.1 stand in for
//! Slack, Teams, ntfy and a webhook endpoint; the outbox is driven a step at a time with an
//! explicit `now`, or runs in the service as it would in production.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::common::{
    at, client_with, closed_port, command, outbox_with, plain_smtp, spawn_app, terminate,
    valid_job, with, AlertKind, ChannelKind, ChannelSettings, Outbox, Secret, Settings, TestApp,
    ADMIN_TOKEN,
};
use crate::receiver::{Receiver, Reply};
use crate::smtp::SmtpServer;

const PUBLIC_URL: &str = "https://monitor.example.com";
/// When the hand-driven outbox runs first: after every alert the tests queue.
fn t0() -> DateTime<Utc> {
    at("2030-01-01T00:00:00Z")
}

fn channel(name: &str, kind: ChannelKind, url: &str) -> ChannelSettings {
    ChannelSettings {
        name: name.to_owned(),
        kind,
        url: Some(Secret::new(url)),
        secret: None,
        companies: Vec::new(),
        kinds: Vec::new(),
    }
}

/// An outbox on the app's database with `channels` (and no email), links under
/// [`PUBLIC_URL`], HTTP calls cut after 1 s.
fn outbox(app: &TestApp, channels: Vec<ChannelSettings>) -> Outbox {
    outbox_with(&app.db_path, &settings(channels, None))
}

fn settings(channels: Vec<ChannelSettings>, smtp_port: Option<u16>) -> Settings {
    let mut s = Settings::default();
    s.notify.channels = channels;
    s.notify.timeout_seconds = 1;
    s.server.public_url = Some(PUBLIC_URL.to_owned());
    if let Some(port) = smtp_port {
        s.smtp = plain_smtp(port);
        s.alerts.to = vec!["ops@example.com".to_owned()];
    }
    s
}

/// Creates a job with `changes` and reports a failed backup for its 02:30 slot of
/// 2026-11-24, as it happens; returns the job.
async fn failed_job(app: &TestApp, changes: Value) -> Value {
    let job = app.create_job(changes).await;
    app.set_now(Some(at("2026-11-24T02:40:00Z")));
    let response = app
        .post_json(
            "/api/v1/entries/",
            &json!({"expected_job_id": job["id"], "status": "failed",
                    "backup_timestamp_utc": "2026-11-24T02:31:00Z",
                    "error_message": "pg_dump: error: connection to server failed: FATAL: password authentication failed"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    job
}

async fn alerts(app: &TestApp) -> Vec<Value> {
    app.get("/api/v1/alerts").await.json().await.unwrap()
}

/// The deliveries of the alert of `kind` about job `job_id`, by channel.
async fn deliveries(app: &TestApp, job_id: &Value, kind: &str) -> Vec<Value> {
    let rows = alerts(app).await;
    let alert = rows
        .iter()
        .find(|a| a["job_id"] == *job_id && a["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} alert for job {job_id}: {rows:?}"));
    alert["deliveries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_failed_backup_reaches_slack_as_one_text_a_person_can_act_on_from_a_phone() {
    // Arrange
    let slack = Receiver::start().await;
    let app = spawn_app().await;
    let job = failed_job(&app, json!({})).await;
    let sender = outbox(
        &app,
        vec![channel(
            "ops",
            ChannelKind::Slack,
            &slack.url("/services/T1/B2/xyz"),
        )],
    );

    // Act
    let sent = sender.dispatch_pending(t0()).await.unwrap();

    // Assert: Slack's incoming-webhook message, `{"text": …}` and nothing else.
    assert_eq!((sent.sent, sent.failed), (1, 0));
    let got = slack.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].target, "/services/T1/B2/xyz");
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    let text = format!(
        "🔴 *FAILED acme/Lyon db=erp for 02:30 UTC*\n\
         The agent reported a FAILED backup for the slot of 2026-11-24 02:30:00 UTC.\n\
         Company: acme\n\
         City: Lyon\n\
         Database: erp\n\
         Agent: agent-lyon-1\n\
         Reported at: 2026-11-24 02:31 UTC\n\
         Last success: never\n\
         Expected file: /backups/acme/Lyon/erp/2026-11-24.dump\n\
         Reason: pg_dump: error: connection to server failed: FATAL: password authentication failed\n\
         {PUBLIC_URL}/#job={}",
        job["id"]
    );
    assert_eq!(got[0].json(), json!({ "text": text }));
}

#[tokio::test]
async fn a_late_backup_reaches_teams_as_an_adaptive_card_in_a_workflows_message() {
    let teams = Receiver::start().await;
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    let id = job["id"].as_i64().unwrap();
    app.backdate(id, at("2026-11-20T00:00:00Z"));
    assert_eq!(app.tick(at("2026-11-21T03:31:00Z")).alerts_queued, 1);
    let sender = outbox(
        &app,
        vec![channel(
            "acme-teams",
            ChannelKind::Teams,
            &teams.url("/workflows/abc/triggers/manual/paths/invoke?sig=s1"),
        )],
    );

    sender.dispatch_pending(t0()).await.unwrap();

    let got = teams.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("content-type"), Some("application/json"));
    let message = got[0].json();
    assert_eq!(message["type"], "message");
    let attachments = message["attachments"].as_array().unwrap();
    assert_eq!(attachments.len(), 1);
    assert_eq!(
        attachments[0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachments[0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(
        card["$schema"],
        "http://adaptivecards.io/schemas/adaptive-card.json"
    );
    assert_eq!(card["version"], "1.4");
    let body = card["body"].as_array().unwrap();
    assert_eq!(
        body[0],
        json!({"type": "TextBlock", "text": "LATE acme/Lyon db=erp expected 02:30 UTC",
               "weight": "Bolder", "size": "Medium", "color": "Attention", "wrap": true})
    );
    assert_eq!(body[1]["type"], "TextBlock");
    assert!(body[1]["text"]
        .as_str()
        .unwrap()
        .starts_with("No backup was reported for the slot of 2026-11-21 02:30:00 UTC"));
    let facts = body.iter().find(|b| b["type"] == "FactSet").unwrap()["facts"]
        .as_array()
        .unwrap()
        .clone();
    for fact in [
        json!({"title": "Company", "value": "acme"}),
        json!({"title": "City", "value": "Lyon"}),
        json!({"title": "Database", "value": "erp"}),
        json!({"title": "Due since", "value": "2026-11-21 03:30 UTC"}),
    ] {
        assert!(facts.contains(&fact), "{fact} not in {facts:?}");
    }
    assert_eq!(
        card["actions"],
        json!([{"type": "Action.OpenUrl", "title": "Open in backup-monitor",
                "url": format!("{PUBLIC_URL}/#job={id}")}])
    );
}

#[tokio::test]
async fn ntfy_gets_the_text_with_title_priority_tags_and_the_link_as_headers() {
    let ntfy = Receiver::start().await;
    let app = spawn_app().await;
    let job = failed_job(&app, json!({"city": "Besançon"})).await;
    let id = job["id"].as_i64().unwrap();
    let sender = outbox(
        &app,
        vec![channel(
            "phone",
            ChannelKind::Ntfy,
            &ntfy.url("/backup-alerts-7f3k"),
        )],
    );
    sender.dispatch_pending(t0()).await.unwrap();
    // The job recovers: a lower priority.
    app.set_now(Some(at("2026-11-24T04:01:00Z")));
    app.report(id, "success", "2026-11-24T04:00:00Z").await;
    sender.dispatch_pending(t0()).await.unwrap();

    let got = ntfy.received();
    assert_eq!(got.len(), 2);
    let failed = &got[0];
    assert_eq!(failed.target, "/backup-alerts-7f3k");
    assert_eq!(
        failed.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    // A title that is not ASCII travels as an RFC 2047 encoded word, which ntfy decodes.
    let title = failed.header("title").unwrap();
    let encoded = title
        .strip_prefix("=?UTF-8?B?")
        .and_then(|t| t.strip_suffix("?="))
        .unwrap_or_else(|| panic!("not an encoded word: {title}"));
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        "FAILED acme/Besançon db=erp for 02:30 UTC"
    );
    assert_eq!(failed.header("priority"), Some("5"));
    assert_eq!(failed.header("tags"), Some("rotating_light,failed"));
    assert_eq!(
        failed.header("click"),
        Some(format!("{PUBLIC_URL}/#job={id}").as_str())
    );
    let text = failed.text();
    assert!(
        text.starts_with("The agent reported a FAILED backup for the slot of 2026-11-24 02:30:00 UTC.\nCompany: acme\nCity: Besançon\n"),
        "{text}"
    );
    assert!(
        text.contains("Reason: pg_dump: error: connection to server failed"),
        "{text}"
    );
    let recovered = &got[1];
    assert_eq!(recovered.header("priority"), Some("3"));
    assert_eq!(recovered.header("tags"), Some("white_check_mark,recovered"));
}

#[tokio::test]
async fn a_webhook_gets_the_alert_its_job_and_entry_signed_with_the_secret() {
    let signed = Receiver::start().await;
    let unsigned = Receiver::start().await;
    let app = spawn_app().await;
    let job = failed_job(&app, json!({})).await;
    let secret = "s3cret-hmac-key";
    let sender = outbox(
        &app,
        vec![
            ChannelSettings {
                secret: Some(Secret::new(secret)),
                ..channel("itsm", ChannelKind::Webhook, &signed.url("/hooks/backup"))
            },
            channel("plain", ChannelKind::Webhook, &unsigned.url("/hooks/plain")),
        ],
    );

    sender.dispatch_pending(t0()).await.unwrap();

    let got = signed.received();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    assert_eq!(request.header("content-type"), Some("application/json"));
    // The receiver checks the signature over the exact bytes it got, with the shared secret.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&request.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(
        request.header("x-backup-monitor-signature"),
        Some(expected.as_str())
    );
    let document = request.json();
    let keys: Vec<&String> = document.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["alert", "entry", "job", "text"]);
    assert_eq!(
        document["text"],
        "[backup-monitor] FAILED acme/Lyon db=erp for 02:30 UTC"
    );
    assert_eq!(document["alert"]["kind"], "failed");
    assert_eq!(document["alert"]["job_id"], job["id"]);
    assert_eq!(document["alert"]["slot_utc"], "2026-11-24T02:30:00Z");
    assert!(document["alert"].get("deliveries").is_none());
    assert_eq!(document["job"]["id"], job["id"]);
    assert_eq!(document["job"]["company_name"], "acme");
    assert_eq!(document["job"]["backup_frequency"], "daily");
    assert_eq!(document["entry"]["status"], "failed");
    assert!(document["entry"]["error_message"]
        .as_str()
        .unwrap()
        .contains("password authentication failed"));
    // Without a secret, no signature.
    let plain = unsigned.received();
    assert_eq!(plain.len(), 1);
    assert_eq!(plain[0].header("x-backup-monitor-signature"), None);
    assert_eq!(plain[0].body, request.body, "the same document");
}

#[tokio::test]
async fn alerts_are_routed_by_company_and_kind_and_email_still_takes_every_one() {
    // Arrange: acme's failures to one channel, everything to another, and SMTP set up.
    let acme = Receiver::start().await;
    let all = Receiver::start().await;
    let smtp = SmtpServer::start();
    let app = spawn_app().await;
    let acme_job = failed_job(&app, json!({"company_name": "acme"})).await;
    let globex_job = failed_job(
        &app,
        json!({"company_name": "globex", "database_name": "crm"}),
    )
    .await;
    app.set_now(Some(at("2026-11-24T04:01:00Z")));
    app.report(
        acme_job["id"].as_i64().unwrap(),
        "success",
        "2026-11-24T04:00:00Z",
    )
    .await;
    let sender = outbox_with(
        &app.db_path,
        &settings(
            vec![
                ChannelSettings {
                    companies: vec!["acme".to_owned()],
                    kinds: vec![AlertKind::Failed, AlertKind::Late],
                    ..channel("acme-failures", ChannelKind::Slack, &acme.url("/acme"))
                },
                channel("everything", ChannelKind::Webhook, &all.url("/all")),
            ],
            Some(smtp.port),
        ),
    );

    // Act
    let sent = sender.dispatch_pending(t0()).await.unwrap();

    // Assert: 3 alerts; acme's channel takes one, the others all three.
    assert_eq!((sent.routed, sent.sent, sent.failed), (3, 7, 0));
    let to_acme: Vec<String> = acme
        .received()
        .iter()
        .map(|r| {
            r.json()["text"]
                .as_str()
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(to_acme, ["🔴 *FAILED acme/Lyon db=erp for 02:30 UTC*"]);
    assert_eq!(all.received().len(), 3);
    assert_eq!(
        smtp.received().len(),
        3,
        "email is not displaced by channels"
    );
    let names = |deliveries: Vec<Value>| -> Vec<String> {
        deliveries
            .iter()
            .map(|d| d["channel"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(deliveries(&app, &acme_job["id"], "failed").await),
        ["acme-failures", "email", "everything"]
    );
    assert_eq!(
        names(deliveries(&app, &globex_job["id"], "failed").await),
        ["email", "everything"]
    );
    assert_eq!(
        names(deliveries(&app, &acme_job["id"], "recovered").await),
        ["email", "everything"]
    );
}

#[tokio::test]
async fn each_channel_retries_on_its_own_and_a_retry_never_resends_through_another() {
    // Arrange: one channel fails (500), then asks to wait 2 min (429), then takes it.
    let flaky = Receiver::scripted(vec![Reply::Status(500), Reply::RetryAfter(429, 120)]).await;
    let steady = Receiver::start().await;
    let app = spawn_app().await;
    let job = failed_job(&app, json!({})).await;
    let sender = outbox(
        &app,
        vec![
            channel("flaky", ChannelKind::Slack, &flaky.url("/flaky")),
            channel("steady", ChannelKind::Ntfy, &steady.url("/steady")),
        ],
    );

    // Act and assert, a step at a time.
    let first = sender.dispatch_pending(t0()).await.unwrap();
    assert_eq!((first.sent, first.failed), (1, 1));
    let rows = alerts(&app).await;
    assert_eq!(rows[0]["attempts"], 2);
    assert!(
        rows[0]["sent_at"].is_string(),
        "a channel took it: {rows:?}"
    );
    let error = rows[0]["last_error"].as_str().unwrap();
    assert!(error.starts_with("flaky: "), "{error}");
    assert!(error.contains("answered 500"), "{error}");
    let deliveries_now = deliveries(&app, &job["id"], "failed").await;
    assert_eq!(deliveries_now[0]["channel"], "flaky");
    assert_eq!(deliveries_now[0]["attempts"], 1);
    assert_eq!(deliveries_now[0]["sent_at"], Value::Null);
    assert_eq!(deliveries_now[0]["next_attempt_at"], "2030-01-01T00:00:30Z");
    assert_eq!(deliveries_now[1]["channel"], "steady");
    assert_eq!(deliveries_now[1]["attempts"], 1);
    assert_eq!(deliveries_now[1]["sent_at"], "2030-01-01T00:00:00Z");
    assert_eq!(deliveries_now[1]["last_error"], Value::Null);
    assert_eq!(deliveries_now[1]["next_attempt_at"], Value::Null);

    let early = sender
        .dispatch_pending(t0() + Duration::seconds(29))
        .await
        .unwrap();
    assert_eq!((early.sent, early.failed), (0, 0), "backoff: 30 s");
    let second = sender
        .dispatch_pending(t0() + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!((second.sent, second.failed), (0, 1), "429");
    // Retry-After (120 s) is longer than the next backoff (60 s): it wins.
    let waiting = sender
        .dispatch_pending(t0() + Duration::seconds(30 + 119))
        .await
        .unwrap();
    assert_eq!((waiting.sent, waiting.failed), (0, 0));
    let third = sender
        .dispatch_pending(t0() + Duration::seconds(30 + 120))
        .await
        .unwrap();
    assert_eq!((third.sent, third.failed), (1, 0));

    assert_eq!(flaky.received().len(), 3);
    assert_eq!(
        steady.received().len(),
        1,
        "the steady channel was never resent"
    );
    let rows = alerts(&app).await;
    assert_eq!(rows[0]["attempts"], 4);
    assert_eq!(
        rows[0]["sent_at"], "2030-01-01T00:00:00Z",
        "when a channel first took it"
    );
    assert_eq!(rows[0]["last_error"], Value::Null, "every channel took it");
    let later = sender
        .dispatch_pending(t0() + Duration::days(1))
        .await
        .unwrap();
    assert_eq!((later.sent, later.failed), (0, 0));
}

#[tokio::test]
async fn a_refusal_is_recorded_for_good_and_never_retried() {
    let gone = Receiver::scripted(vec![Reply::Says(404, "no_service")]).await;
    let app = spawn_app().await;
    let job = failed_job(&app, json!({})).await;
    let sender = outbox(
        &app,
        vec![channel(
            "ops",
            ChannelKind::Slack,
            &gone.url("/services/T1/B1/revoked-token"),
        )],
    );

    let first = sender.dispatch_pending(t0()).await.unwrap();
    let later = sender
        .dispatch_pending(t0() + Duration::days(2))
        .await
        .unwrap();

    assert_eq!((first.sent, first.failed, first.refused), (0, 1, 1));
    assert_eq!((later.sent, later.failed), (0, 0), "not retried");
    assert_eq!(gone.received().len(), 1);
    let delivery = &deliveries(&app, &job["id"], "failed").await[0];
    assert_eq!(delivery["attempts"], 1);
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    let error = delivery["last_error"].as_str().unwrap();
    let port = gone.addr.port();
    assert_eq!(
        error,
        format!("http://127.0.0.1:{port}/… answered 404 \"no_service\": no such webhook (Slack says \"no_service\" or \"channel_not_found\"): the URL is mistyped, or the webhook or its channel was removed; create a new incoming webhook")
    );
    assert!(!error.contains("revoked-token"));
    let rows = alerts(&app).await;
    assert_eq!(
        rows[0]["last_error"].as_str(),
        Some(error),
        "one delivery: its error"
    );
    assert_eq!(rows[0]["sent_at"], Value::Null);
    // Not pending any more: nothing is left to try.
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("backup_monitor_outbox_pending 0\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_receiver_slower_than_the_timeout_is_retried_and_so_is_one_nobody_runs() {
    let slow = Receiver::scripted(vec![Reply::Slow(StdDuration::from_secs(3))]).await;
    let (_closed, closed) = closed_port();
    let app = spawn_app().await;
    let job = failed_job(&app, json!({})).await;
    let sender = outbox(
        &app,
        vec![
            channel("slow", ChannelKind::Webhook, &slow.url("/hook")),
            channel(
                "down",
                ChannelKind::Ntfy,
                &format!("http://127.0.0.1:{closed}/topic"),
            ),
        ],
    );

    let started = Instant::now();
    let first = sender.dispatch_pending(t0()).await.unwrap();
    let took = started.elapsed();

    assert_eq!((first.sent, first.failed, first.refused), (0, 2, 0));
    assert!(
        took < StdDuration::from_millis(2900),
        "cut at the timeout: {took:?}"
    );
    let rows = deliveries(&app, &job["id"], "failed").await;
    let error = |name: &str| {
        rows.iter().find(|d| d["channel"] == name).unwrap()["last_error"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let port = slow.addr.port();
    assert!(
        error("slow").starts_with(&format!("127.0.0.1:{port} did not answer within 1 s")),
        "{}",
        error("slow")
    );
    assert!(
        error("down").starts_with(&format!("nothing listens on 127.0.0.1:{closed}")),
        "{}",
        error("down")
    );
    for delivery in &rows {
        assert_eq!(
            delivery["next_attempt_at"], "2030-01-01T00:00:30Z",
            "retried"
        );
    }
    // The slow receiver answers at once now: delivered on the retry.
    let second = sender
        .dispatch_pending(t0() + Duration::seconds(30))
        .await
        .unwrap();
    assert_eq!((second.sent, second.failed), (1, 1));
}

#[tokio::test]
async fn deliveries_are_counted_per_configured_channel_and_alerts_by_kind_as_before() {
    let ok = Receiver::start().await;
    let app = spawn_app().await;
    failed_job(&app, json!({})).await;
    let sender = outbox(
        &app,
        vec![channel("counted-ops", ChannelKind::Slack, &ok.url("/x"))],
    );
    let before = app.get("/metrics").await.text().await.unwrap();
    assert!(
        before.contains(
            "backup_monitor_deliveries_total{channel=\"counted-ops\",result=\"refused\"} 0"
        ),
        "every series of a configured channel starts at 0:\n{before}"
    );

    sender.dispatch_pending(t0()).await.unwrap();

    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains("backup_monitor_deliveries_total{channel=\"counted-ops\",result=\"sent\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("backup_monitor_alerts_total{kind=\"failed\",result=\"sent\"}"),
        "{text}"
    );
}

/// The binary, serving with `config` (a monitor.toml) in a temporary directory, its whole
/// stderr kept.
struct Served {
    child: std::process::Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

fn serve(config: &str) -> Served {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("monitor.toml"), config).unwrap();
    let mut child = command(dir.path())
        .args(["--config", "monitor.toml", "serve"])
        .env("BACKUP_MONITOR_ADMIN_TOKEN", ADMIN_TOKEN)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    match listening_address(&log) {
        Some(addr) => Served {
            child,
            addr,
            log,
            dir,
        },
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no start: {:?}", log.lock().unwrap());
        }
    }
}

/// The address the server says it listens on, within 30 s.
fn listening_address(log: &Mutex<Vec<String>>) -> Option<String> {
    let deadline = Instant::now() + StdDuration::from_secs(30);
    while Instant::now() < deadline {
        let found = log.lock().unwrap().iter().find_map(|line| {
            line.split("listening on http://")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .map(|addr| addr.trim_end_matches('"').to_owned())
        });
        if found.is_some() {
            return found;
        }
        std::thread::sleep(StdDuration::from_millis(20));
    }
    None
}

#[tokio::test]
async fn channel_urls_and_secrets_never_show_in_logs_errors_the_api_or_config_check() {
    // Arrange: a revoked Slack webhook (its answer even repeats the URL's path) and a
    // failing signed webhook, both holding secrets in their URLs.
    let slack = Receiver::scripted(vec![Reply::Says(
        404,
        "no_service: /services/T0/B0/TOPSECRET-slack",
    )])
    .await;
    let hook = Receiver::scripted(vec![Reply::Status(503)]).await;
    let config = format!(
        "[server]\nbind = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC_URL}\"\n\
         [database]\nurl = \"sqlite://monitor.db\"\n[scheduler]\nenabled = false\n\
         [[notify.channels]]\nname = \"ops\"\nkind = \"slack\"\nurl = \"{}\"\n\
         [[notify.channels]]\nname = \"itsm\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"TOPSECRET-hmac\"\n",
        slack.url("/services/T0/B0/TOPSECRET-slack"),
        hook.url("/hook?token=TOPSECRET-query"),
    );
    let mut served = serve(&config);
    let client = client_with(Some(ADMIN_TOKEN));
    let base = format!("http://{}", served.addr);

    // Act: a failure, reported as it happens; the service's own delivery loop sends it.
    let job: Value = client
        .post(format!("{base}/api/v1/jobs/"))
        .json(&with(valid_job(), json!({"backup_frequency": "hourly"})))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let report = client
        .post(format!("{base}/api/v1/entries/"))
        .json(&json!({"expected_job_id": job["id"], "status": "failed",
                      "backup_timestamp_utc": Utc::now().to_rfc3339()}))
        .send()
        .await
        .unwrap();
    assert_eq!(report.status(), 201);
    slack.wait_for(1).await;
    hook.wait_for(1).await;
    let deadline = Instant::now() + StdDuration::from_secs(10);
    let api = loop {
        let text = client
            .get(format!("{base}/api/v1/alerts"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
        let attempted = rows[0]["deliveries"]
            .as_array()
            .is_some_and(|d| d.len() == 2 && d.iter().all(|d| d["attempts"] == 1));
        if attempted {
            break text;
        }
        assert!(Instant::now() < deadline, "never attempted: {text}");
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    };
    let checked = tokio::process::Command::from({
        let mut cmd = command(served.dir.path());
        cmd.args(["--config", "monitor.toml", "config", "check"]);
        cmd
    })
    .output()
    .await
    .unwrap();
    terminate(&served.child);
    served.child.wait().unwrap();

    // Assert
    let log = served.log.lock().unwrap().join("\n");
    assert!(log.contains("alert refused by its channel"), "{log}");
    assert!(log.contains("alert not sent; will retry"), "{log}");
    assert!(api.contains("answered 404"), "{api}");
    let shown = String::from_utf8_lossy(&checked.stdout).into_owned()
        + &String::from_utf8_lossy(&checked.stderr);
    assert!(checked.status.success(), "{shown}");
    assert!(shown.contains("[[notify.channels]]"), "{shown}");
    for (what, text) in [
        ("the log", &log),
        ("the API", &api),
        ("config check", &shown),
    ] {
        assert!(
            !text.contains("TOPSECRET"),
            "{what} shows a secret:\n{text}"
        );
    }
}

/// `send-test --channel NAME` run by hand with a monitor.toml holding `channels`; the
/// receivers answer while it runs.
async fn send_test(channels: &str, name: &str) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("monitor.toml"),
        format!("[notify]\ntimeout_seconds = 2\n{channels}"),
    )
    .unwrap();
    let mut cmd = command(dir.path());
    cmd.args(["--config", "monitor.toml", "send-test", "--channel", name]);
    let out = tokio::process::Command::from(cmd).output().await.unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn declared(name: &str, kind: &str, url: &str) -> String {
    format!("[[notify.channels]]\nname = \"{name}\"\nkind = \"{kind}\"\nurl = \"{url}\"\n")
}

#[tokio::test]
async fn send_test_delivers_through_the_named_channel() {
    let slack = Receiver::start().await;
    let (code, stdout, stderr) = send_test(
        &declared("ops", "slack", &slack.url("/services/secret-path")),
        "ops",
    )
    .await;
    assert_eq!(code, 0, "{stderr}");
    let port = slack.addr.port();
    assert_eq!(
        stdout.trim(),
        format!("sent a test message through channel \"ops\" (slack http://127.0.0.1:{port}/…)")
    );
    let got = slack.received();
    assert_eq!(got.len(), 1);
    let text = got[0].json()["text"].as_str().unwrap().to_owned();
    assert!(
        text.starts_with("✅ *backup-monitor test message*\nThis is a test message from backup-monitor through the slack channel \"ops\""),
        "{text}"
    );
}

#[tokio::test]
async fn send_test_says_what_to_fix_when_the_channel_fails() {
    let revoked = Receiver::scripted(vec![Reply::Says(404, "no_service")]).await;
    let locked = Receiver::scripted(vec![Reply::Status(401)]).await;
    let protected = Receiver::scripted(vec![Reply::Status(403)]).await;
    let (_closed, closed) = closed_port();
    let channels = [
        declared("revoked", "slack", &revoked.url("/services/hidden-1")),
        declared("flow", "teams", &locked.url("/workflows/hidden-2")),
        declared("phone", "ntfy", &protected.url("/hidden-3")),
        declared(
            "down",
            "webhook",
            &format!("http://127.0.0.1:{closed}/hidden-4"),
        ),
        declared(
            "nowhere",
            "slack",
            "https://hooks.nonexistent.invalid/hidden-5",
        ),
        declared(
            "plain",
            "ntfy",
            &format!("https://127.0.0.1:{}/hidden-6", revoked.addr.port()),
        ),
    ]
    .concat();
    let cases = [
        ("revoked", "answered 404 \"no_service\": no such webhook"),
        ("flow", "answered 401: the workflow refuses the call: check that the flow is on, that \"Who can trigger the flow\" is \"Anyone\""),
        ("phone", "answered 403: the topic is protected: give credentials in the URL"),
        ("down", &format!("nothing listens on 127.0.0.1:{closed}: check the URL's host and port")),
        ("nowhere", "cannot resolve hooks.nonexistent.invalid: check the host in the URL"),
        ("plain", &format!("127.0.0.1:{} does not speak TLS: use http:// for it", revoked.addr.port())),
        ("nosuch", "no channel is named \"nosuch\": the channels are revoked, flow, phone, down, nowhere, plain"),
    ];
    for (name, expected) in cases {
        let (code, stdout, stderr) = send_test(&channels, name).await;
        assert_eq!(code, 1, "{name}: {stdout}{stderr}");
        assert!(
            stderr.contains(expected),
            "{name}: {stderr:?} should say {expected:?}"
        );
        assert!(!stderr.contains("hidden-"), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr}");
    }
}

#[tokio::test]
async fn a_silent_agent_reaches_the_channels_of_its_jobs_companies_with_the_jobs_it_left_late() {
    // Arrange: two hourly jobs of agent nas-1 at acme report at 00:02, then nothing.
    let acme = Receiver::start().await;
    let globex = Receiver::start().await;
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for db in ["erp", "crm"] {
        let job = app
            .create_job(json!({"database_name": db, "agent_id_responsible": "nas-1",
                               "backup_frequency": "hourly", "expected_minute_utc": 0,
                               "grace_minutes": 30}))
            .await;
        let id = job["id"].as_i64().unwrap();
        app.backdate(id, at("2026-11-24T00:00:00Z"));
        ids.push(id);
    }
    app.set_now(Some(at("2026-11-24T00:10:00Z")));
    for id in &ids {
        app.report(*id, "success", "2026-11-24T00:02:00Z").await;
    }
    assert_eq!(app.tick(at("2026-11-24T01:30:00Z")).alerts_queued, 1);
    let sender = outbox(
        &app,
        vec![
            ChannelSettings {
                companies: vec!["acme".to_owned()],
                ..channel("acme-phone", ChannelKind::Ntfy, &acme.url("/acme"))
            },
            ChannelSettings {
                companies: vec!["globex".to_owned()],
                ..channel("globex-phone", ChannelKind::Ntfy, &globex.url("/globex"))
            },
        ],
    );

    // Act
    sender.dispatch_pending(t0()).await.unwrap();

    // Assert
    assert!(globex.received().is_empty(), "not globex's agent");
    let got = acme.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].header("title"),
        Some("AGENT SILENT nas-1: 2 jobs late since 2026-11-24 01:00 UTC")
    );
    assert_eq!(got[0].header("priority"), Some("5"));
    assert_eq!(got[0].header("tags"), Some("rotating_light,agent_silent"));
    assert_eq!(
        got[0].header("click"),
        Some(format!("{PUBLIC_URL}/").as_str())
    );
    assert_eq!(
        got[0].text(),
        format!(
            "Agent nas-1 has sent nothing since 2026-11-24 01:00 UTC, and 2 of its jobs are late: its host, its network or its scheduler is likely down.\n\
             Agent: nas-1\n\
             Last heard: 2026-11-24 00:02 UTC (88 min ago)\n\
             - acme/Lyon db=erp: expected 01:00 UTC\n\
             - acme/Lyon db=crm: expected 01:00 UTC\n\
             {PUBLIC_URL}/"
        )
    );
}

#[tokio::test]
async fn send_test_through_the_email_channel_mails_alerts_to() {
    let smtp = SmtpServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.args(["send-test", "--channel", "email"])
        .env("SMTP_HOST", "127.0.0.1")
        .env("SMTP_PORT", smtp.port.to_string())
        .env("SMTP_TLS", "none")
        .env("BACKUP_MONITOR_ALERTS_TO", "ops@example.com");
    let out = tokio::process::Command::from(cmd).output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "sent a test message through channel \"email\" (email 127.0.0.1:{} (none))",
            smtp.port
        )
    );
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0].to, ["ops@example.com"]);
    assert_eq!(
        mails[0].subject(),
        "[backup-monitor] test message through channel email"
    );
}

#[tokio::test]
async fn a_redirect_is_followed_within_the_same_host_and_port_only() {
    let elsewhere = Receiver::start().await;
    let moved = Receiver::scripted(vec![
        Reply::Redirect(307, "/new-path".to_owned()),
        Reply::Status(200),
        Reply::Redirect(307, elsewhere.url("/stolen")),
    ])
    .await;
    let app = spawn_app().await;
    let job = failed_job(&app, json!({})).await;
    let sender = outbox(
        &app,
        vec![channel(
            "hooks",
            ChannelKind::Webhook,
            &moved.url("/old-path"),
        )],
    );
    let first = sender.dispatch_pending(t0()).await.unwrap();
    assert_eq!(
        (first.sent, first.failed),
        (1, 0),
        "followed within the host"
    );
    let targets: Vec<String> = moved.received().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, ["/old-path", "/new-path"]);
    let requests = moved.received();
    assert_eq!(requests[1].method, "POST", "a 307 keeps the method…");
    assert_eq!(requests[1].body, requests[0].body, "…and the body");

    // Another port of the same address is another service: not followed, not retried.
    app.set_now(Some(at("2026-11-25T02:40:00Z")));
    app.report(
        job["id"].as_i64().unwrap(),
        "failed",
        "2026-11-25T02:31:00Z",
    )
    .await;
    let second = sender.dispatch_pending(t0()).await.unwrap();
    assert_eq!((second.sent, second.failed, second.refused), (0, 1, 1));
    assert!(elsewhere.received().is_empty());
    let rows = alerts(&app).await;
    let error = rows[0]["last_error"].as_str().unwrap();
    assert!(
        error.contains(&format!(
            "answered 307: a redirect to http://127.0.0.1:{}, not followed",
            elsewhere.addr.port()
        )),
        "{error}"
    );
}
