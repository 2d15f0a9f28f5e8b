//! `GET /api/v1/companies`: each company's jobs counted by state, its worst state and its
//! badge URL (DESIGN §15).
#![allow(clippy::unwrap_used)]

use chrono::Duration;
use serde_json::{json, Value};

use crate::common::{at, client_with, spawn_app, total_count, Role, TestApp};

/// The service's clock in these tests: the daily 02:30 slot (grace 60) was due at 03:30.
const NOW: &str = "2026-11-20T12:00:00Z";

/// The service, its clock at [`NOW`].
async fn app_at_noon() -> TestApp {
    let app = spawn_app().await;
    app.set_now(Some(at(NOW)));
    app
}

/// Creates a job of `company` (run by `agent`) in `state` at [`NOW`]: `ok`, `late`,
/// `failed`, `pending` or `paused`.
async fn job_in(app: &TestApp, company: &str, agent: &str, state: &str) -> i64 {
    let body = json!({
        "company_name": company,
        "agent_id_responsible": agent,
        "is_active": state != "paused",
    });
    let id = app.create_job(body).await["id"].as_i64().unwrap();
    let now = at(NOW);
    match state {
        "late" => app.backdate(id, now - Duration::days(3)),
        "failed" => {
            app.report(id, "failed", &now.to_rfc3339()).await;
        }
        "ok" => {
            app.backdate(id, now - Duration::days(3));
            // In the window of today's slot, which is the latest due.
            let recent = now - Duration::minutes(1);
            app.report(id, "success", &recent.to_rfc3339()).await;
        }
        _ => {}
    }
    id
}

async fn companies(app: &TestApp, client: &reqwest::Client, path: &str) -> (Vec<Value>, i64) {
    let response = client.get(app.url(path)).send().await.unwrap();
    assert_eq!(response.status(), 200, "GET {path}");
    let total = total_count(&response);
    let body: Value = response.json().await.unwrap();
    (body.as_array().unwrap().clone(), total)
}

fn counts(ok: usize, late: usize, failed: usize, pending: usize, paused: usize) -> Value {
    json!({"ok": ok, "late": late, "failed": failed, "suspect": 0, "pending": pending, "paused": paused})
}

#[tokio::test]
async fn every_company_is_listed_by_name_with_its_states_its_worst_and_its_badge() {
    // Arrange
    let app = app_at_noon().await;
    job_in(&app, "globex", "agent-1", "ok").await;
    job_in(&app, "globex", "agent-1", "failed").await;
    job_in(&app, "globex", "agent-2", "late").await;
    job_in(&app, "acme", "agent-1", "ok").await;
    job_in(&app, "acme", "agent-2", "pending").await;
    job_in(&app, "acme", "agent-2", "paused").await;
    job_in(&app, "initech", "agent-2", "paused").await;
    job_in(&app, "Zeta", "agent-2", "late").await;

    // Act
    let (list, total) = companies(&app, &app.client, "/api/v1/companies").await;

    // Assert
    assert_eq!(total, 4);
    let names: Vec<&str> = list
        .iter()
        .map(|c| c["company_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Zeta", "acme", "globex", "initech"], "byte order");
    let expected = [
        (1, counts(0, 1, 0, 0, 0), "late"),
        (3, counts(1, 0, 0, 1, 1), "pending"),
        (3, counts(1, 1, 1, 0, 0), "failed"),
        (1, counts(0, 0, 0, 0, 1), "paused"),
    ];
    for (company, (jobs, states, worst)) in list.iter().zip(expected) {
        let name = &company["company_name"];
        assert_eq!(company["jobs"], jobs, "{name}");
        assert_eq!(company["states"], states, "{name}");
        assert_eq!(company["worst_state"], worst, "{name}");
        let mut keys: Vec<&String> = company.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(
            keys,
            ["badge_url", "company_name", "jobs", "states", "worst_state"],
            "{name}"
        );
    }

    // The badge URL opens the company's badge, without a token, showing the same state.
    let url = list[2]["badge_url"].as_str().unwrap();
    assert!(
        url.starts_with("/badge/") && url.ends_with("/company/globex.svg"),
        "{url}"
    );
    let badge = client_with(None).get(app.url(url)).send().await.unwrap();
    assert_eq!(badge.status(), 200);
    assert!(badge.text().await.unwrap().contains(">failed<"));
}

#[tokio::test]
async fn a_badge_url_works_for_a_company_name_that_needs_escaping() {
    let app = app_at_noon().await;
    let name = "Smith & Sons / Lyon #1 ü?";
    job_in(&app, name, "agent-1", "late").await;

    let (list, _) = companies(&app, &app.client, "/api/v1/companies").await;

    assert_eq!(list[0]["company_name"], name);
    let url = list[0]["badge_url"].as_str().unwrap();
    let badge = client_with(None).get(app.url(url)).send().await.unwrap();
    assert_eq!(badge.status(), 200, "{url}");
    let svg = badge.text().await.unwrap();
    assert!(
        svg.contains("Smith &amp; Sons / Lyon #1 ü?") && svg.contains(">late<"),
        "{svg}"
    );
}

#[tokio::test]
async fn an_agent_sees_only_its_own_jobs_companies_and_no_badge_a_viewer_sees_all() {
    // Arrange
    let app = app_at_noon().await;
    job_in(&app, "acme", "agent-1", "ok").await;
    job_in(&app, "acme", "agent-2", "failed").await;
    job_in(&app, "globex", "agent-2", "late").await;
    let agent = client_with(Some(&app.token(Role::Agent, Some("agent-1"))));
    let viewer = client_with(Some(&app.token(Role::Viewer, None)));

    // Act
    let (mine, total) = companies(&app, &agent, "/api/v1/companies").await;
    let (all, _) = companies(&app, &viewer, "/api/v1/companies").await;

    // Assert
    assert_eq!(total, 1);
    assert_eq!(
        mine,
        [json!({
            "company_name": "acme",
            "jobs": 1,
            "states": counts(1, 0, 0, 0, 0),
            "worst_state": "ok",
            "badge_url": null,
        })],
        "the other agent's failure is not counted, nor its company listed"
    );
    assert_eq!(all.len(), 2);
    assert_eq!(all[0]["worst_state"], "failed");
    assert!(all.iter().all(|c| c["badge_url"].is_string()));
}

#[tokio::test]
async fn companies_answer_with_and_without_a_trailing_slash_and_page_like_every_listing() {
    let app = app_at_noon().await;
    for company in ["a", "b", "c"] {
        job_in(&app, company, "agent-1", "pending").await;
    }

    for path in ["/api/v1/companies", "/api/v1/companies/"] {
        let (list, total) = companies(&app, &app.client, path).await;
        assert_eq!((list.len(), total), (3, 3), "{path}");
    }
    let (list, total) = companies(&app, &app.client, "/api/v1/companies/?skip=1&limit=1").await;
    assert_eq!(total, 3);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["company_name"], "b");

    let empty = app_at_noon().await;
    let (list, total) = companies(&empty, &empty.client, "/api/v1/companies").await;
    assert_eq!((list.len(), total), (0, 0));
}

#[tokio::test]
async fn companies_need_a_token_and_a_valid_page() {
    let app = app_at_noon().await;

    let anonymous = client_with(None)
        .get(app.url("/api/v1/companies"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    for query in ["limit=0", "limit=1001", "skip=-1", "limit=x"] {
        let response = app.get(&format!("/api/v1/companies?{query}")).await;
        assert_eq!(response.status(), 422, "{query}");
    }
}
