//! Snooze and reminders (DESIGN §13): a maintenance window records alerts without sending
//! them; a job that stays bad is recalled every N minutes until it is ok again.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};

use crate::common::{
    at, remind, spawn_app, spawn_app_with, Settings, SmtpSettings, SmtpTls, TestApp,
};
use crate::smtp::SmtpServer;

fn emailing(port: u16) -> impl FnOnce(&mut Settings) {
    move |s| {
        s.smtp = SmtpSettings {
            host: Some("127.0.0.1".to_owned()),
            port,
            username: None,
            password: None,
            from: Some("monitor@example.com".to_owned()),
            tls: SmtpTls::None,
        };
        s.alerts.to = vec!["ops@example.com".to_owned()];
    }
}

async fn alerts(app: &TestApp) -> Vec<Value> {
    let mut alerts: Vec<Value> = app.get("/api/v1/alerts").await.json().await.unwrap();
    alerts.reverse();
    alerts
}

async fn fail(app: &TestApp, job: i64, when: &str) {
    let response = app
        .post_json(
            "/api/v1/entries/",
            &json!({"expected_job_id": job, "status": "failed", "backup_timestamp_utc": when,
                    "error_message": "disk full"}),
        )
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_snoozed_company_records_its_alerts_without_sending_them() {
    let smtp = SmtpServer::start();
    let app = spawn_app_with(emailing(smtp.port)).await;
    let acme = app.create_job(json!({"company_name": "acme"})).await["id"]
        .as_i64()
        .unwrap();
    let globex = app.create_job(json!({"company_name": "globex"})).await["id"]
        .as_i64()
        .unwrap();
    app.set_now(Some(at("2026-11-24T02:00:00Z")));

    let response = app
        .post_json(
            "/api/v1/jobs/snooze",
            &json!({"until": "2026-11-24T06:00:00Z", "company_name": "acme", "reason": "SAN firmware upgrade"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let snoozed: Value = response.json().await.unwrap();
    assert_eq!(
        snoozed,
        json!({"until": "2026-11-24T06:00:00Z", "reason": "SAN firmware upgrade", "job_ids": [acme]})
    );
    let job: Value = app
        .get(&format!("/api/v1/jobs/{acme}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(job["snoozed_until"], "2026-11-24T06:00:00Z");
    assert_eq!(job["snooze_reason"], "SAN firmware upgrade");

    // Both fail during the window: only globex's failure is emailed.
    app.set_now(Some(at("2026-11-24T02:40:00Z")));
    fail(&app, acme, "2026-11-24T02:31:00Z").await;
    fail(&app, globex, "2026-11-24T02:32:00Z").await;
    let mails = smtp.wait_for(1).await;
    assert!(
        mails[0].subject().contains("globex"),
        "{}",
        mails[0].subject()
    );
    let listed = alerts(&app).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (listed[0]["job_id"].as_i64(), &listed[0]["suppressed"]),
        (Some(acme), &json!(true))
    );
    assert_eq!(listed[1]["suppressed"], false);
    // The state is kept as usual.
    let status: Vec<Value> = app.get("/api/v1/status").await.json().await.unwrap();
    assert!(status.iter().all(|s| s["state"] == "failed"), "{status:?}");

    // The window ends early: the next failure pages again.
    let response = app
        .post_json(
            "/api/v1/jobs/snooze",
            &json!({"until": null, "company_name": "acme"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    app.set_now(Some(at("2026-11-25T02:40:00Z")));
    fail(&app, acme, "2026-11-25T02:31:00Z").await;
    let mails = smtp.wait_for(2).await;
    assert!(
        mails[1].subject().contains("acme"),
        "{}",
        mails[1].subject()
    );
    // Nothing else was sent, the suppressed alert included.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(smtp.received().len(), 2);
}

#[tokio::test]
async fn a_snooze_names_its_jobs_and_a_time_to_come() {
    let app = spawn_app().await;
    app.create_job(json!({})).await;
    app.set_now(Some(at("2026-11-24T02:00:00Z")));
    for (body, loc, says) in [
        (
            json!({"until": "2026-11-24T06:00:00Z"}),
            json!(["body"]),
            "name the jobs to snooze",
        ),
        (
            json!({"until": "2026-11-24T01:00:00Z", "city": "Lyon"}),
            json!(["body", "until"]),
            "is not in the future",
        ),
        (
            json!({"city": "Lyon"}),
            json!(["body", "until"]),
            "Field required",
        ),
        (
            json!({"until": "soon", "city": "Lyon"}),
            json!(["body", "until"]),
            "datetime",
        ),
    ] {
        let response = app.post_json("/api/v1/jobs/snooze", &body).await;
        assert_eq!(response.status(), 422, "{body}");
        let detail: Value = response.json().await.unwrap();
        assert_eq!(detail["detail"][0]["loc"], loc, "{detail}");
        assert!(
            detail["detail"][0]["msg"].as_str().unwrap().contains(says),
            "{detail}"
        );
    }
    let agent = app
        .post_json(
            "/api/v1/jobs/snooze",
            &json!({"until": "2026-11-24T06:00:00Z", "agent_id_responsible": "agent-lyon-1"}),
        )
        .await;
    assert_eq!(agent.json::<Value>().await.unwrap()["job_ids"], json!([1]));
    let nobody = app
        .post_json(
            "/api/v1/jobs/snooze",
            &json!({"until": "2026-11-24T06:00:00Z", "city": "Paris"}),
        )
        .await;
    assert_eq!(nobody.json::<Value>().await.unwrap()["job_ids"], json!([]));
}

#[tokio::test]
async fn a_job_that_stays_late_is_recalled_every_n_minutes_until_it_recovers() {
    let app = spawn_app().await;
    let job = app.create_job(json!({"repeat_every_minutes": 60})).await["id"]
        .as_i64()
        .unwrap();
    app.backdate(job, at("2026-11-24T00:00:00Z"));
    assert_eq!(
        app.tick(at("2026-11-24T03:30:00Z")).alerts_queued,
        1,
        "late"
    );

    let due = |t: &str| remind(&app.db_path, at(t), None);
    assert_eq!(
        due("2026-11-24T04:29:00Z"),
        0,
        "59 minutes after the late alert"
    );
    assert_eq!(due("2026-11-24T04:31:00Z"), 1, "an hour after");
    assert_eq!(due("2026-11-24T04:59:00Z"), 0, "not twice in the hour");
    // The service was down for three hours: one reminder, on the cadence.
    assert_eq!(due("2026-11-24T07:45:00Z"), 1);
    assert_eq!(due("2026-11-24T08:00:00Z"), 0);

    let kinds: Vec<Value> = alerts(&app)
        .await
        .iter()
        .map(|a| a["kind"].clone())
        .collect();
    assert_eq!(kinds, ["late", "reminder", "reminder"]);
    let reminders = alerts(&app).await;
    assert_eq!(
        reminders[2]["slot_utc"], "2026-11-24T07:30:00Z",
        "03:30 + 4 × 60 min"
    );

    // It recovers: no more reminders.
    app.set_now(Some(at("2026-11-24T08:10:00Z")));
    app.report(job, "success", "2026-11-24T08:05:00Z").await;
    assert_eq!(due("2026-11-24T09:45:00Z"), 0);
}

#[tokio::test]
async fn without_an_interval_there_are_no_reminders_and_the_default_applies_to_all() {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await["id"].as_i64().unwrap();
    app.backdate(job, at("2026-11-24T00:00:00Z"));
    app.tick(at("2026-11-24T03:30:00Z"));
    assert_eq!(remind(&app.db_path, at("2026-11-25T03:30:00Z"), None), 0);
    assert_eq!(
        remind(&app.db_path, at("2026-11-24T07:30:00Z"), Some(240)),
        1
    );
}
