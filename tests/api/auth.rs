//! Bearer tokens over the real socket: who may call what (DESIGN §5), agent confinement,
//! revocation, rate limiting, the first-start admin token, CORS, security headers, the
//! OpenAPI security declarations, and hostile strings that must not reach the SQL.
#![allow(clippy::unwrap_used)]

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::{
    client_with, command, create_token, migrated_db, spawn_app, spawn_app_with, valid_job, with,
    Role, Settings, TestApp, ADMIN_TOKEN,
};

/// What came back: status, headers and the body as JSON (Null if it is not JSON).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn total(&self) -> i64 {
        self.header("x-total-count")
            .unwrap_or_else(|| panic!("no X-Total-Count on {}", self.body))
            .parse()
            .unwrap()
    }

    fn detail(&self) -> &str {
        self.body["detail"].as_str().unwrap_or_default()
    }
}

/// Sends `request` and collects the answer.
async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

async fn call(
    client: &reqwest::Client,
    app: &TestApp,
    method: &Method,
    path: &str,
    body: Option<&Value>,
) -> Answer {
    let mut request = client.request(method.clone(), app.url(path));
    if let Some(body) = body {
        request = request.json(body);
    }
    answer(request).await
}

async fn get(client: &reqwest::Client, app: &TestApp, path: &str) -> Answer {
    call(client, app, &Method::GET, path, None).await
}

/// Asserts a 401 with the bearer challenge and a FastAPI-shaped `detail`.
fn assert_unauthorized(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 401, "{case}: {}", answer.body);
    assert!(
        answer
            .header("www-authenticate")
            .is_some_and(|c| c.starts_with("Bearer")),
        "{case}: WWW-Authenticate is {:?}",
        answer.header("www-authenticate")
    );
    assert!(
        !answer.detail().is_empty(),
        "{case}: no detail in {}",
        answer.body
    );
}

fn report(job_id: &Value, at: &str) -> Value {
    json!({"expected_job_id": job_id, "status": "success", "backup_timestamp_utc": at})
}

/// Every `/api/v1` operation, with a body that would be accepted from an admin.
fn protected_routes(job: &Value, entry: &Value) -> Vec<(Method, String, Option<Value>)> {
    let one = report(job, "2026-11-25T02:31:00Z");
    vec![
        (Method::GET, "/api/v1/jobs/".to_owned(), None),
        (Method::GET, "/api/v1/jobs".to_owned(), None),
        (Method::POST, "/api/v1/jobs/".to_owned(), Some(valid_job())),
        (Method::GET, format!("/api/v1/jobs/{job}"), None),
        (
            Method::PUT,
            format!("/api/v1/jobs/{job}"),
            Some(json!({"city": "Paris"})),
        ),
        (
            Method::PATCH,
            format!("/api/v1/jobs/{job}"),
            Some(json!({"city": "Paris"})),
        ),
        (Method::DELETE, format!("/api/v1/jobs/{job}"), None),
        (
            Method::GET,
            format!("/api/v1/jobs/{job}/expected_path"),
            None,
        ),
        (
            Method::POST,
            "/api/v1/entries/".to_owned(),
            Some(one.clone()),
        ),
        (
            Method::POST,
            "/api/v1/entries/batch".to_owned(),
            Some(json!([one])),
        ),
        (Method::GET, "/api/v1/entries/".to_owned(), None),
        (Method::GET, format!("/api/v1/entries/{entry}"), None),
        (Method::GET, format!("/api/v1/entries/by_job/{job}"), None),
        (Method::GET, "/api/v1/status".to_owned(), None),
        (Method::GET, "/api/v1/status/".to_owned(), None),
        (Method::GET, "/api/v1/companies".to_owned(), None),
        (Method::GET, "/api/v1/alerts".to_owned(), None),
    ]
}

/// An app with one job (agent-lyon-1) and one entry for it.
async fn app_with_a_job() -> (TestApp, Value, Value) {
    let app = spawn_app().await;
    let job = app.create_job(json!({})).await;
    let entry = app
        .report(
            job["id"].as_i64().unwrap(),
            "success",
            "2026-11-24T02:31:00Z",
        )
        .await;
    (app, job["id"].clone(), entry["id"].clone())
}

/// Asserts, with the admin client, that the job is as it was and holds `entries` entries.
async fn assert_untouched(app: &TestApp, job_id: &Value, before: &Value, entries: i64, case: &str) {
    let admin = client_with(Some(ADMIN_TOKEN));
    let job = get(&admin, app, &format!("/api/v1/jobs/{job_id}")).await;
    assert_eq!(&job.body, before, "{case}: the job changed");
    let listed = get(&admin, app, &format!("/api/v1/entries/by_job/{job_id}")).await;
    assert_eq!(listed.total(), entries, "{case}: entries were written");
    let jobs = get(&admin, app, "/api/v1/jobs/").await;
    assert_eq!(jobs.total(), 1, "{case}: a job was created");
}

#[tokio::test]
async fn every_protected_route_refuses_a_request_without_a_token() {
    // Arrange
    let (app, job, entry) = app_with_a_job().await;
    let before = app
        .get(&format!("/api/v1/jobs/{job}"))
        .await
        .json()
        .await
        .unwrap();
    let anonymous = client_with(None);

    // Act + Assert
    for (method, path, body) in protected_routes(&job, &entry) {
        let answer = call(&anonymous, &app, &method, &path, body.as_ref()).await;
        assert_unauthorized(&answer, &format!("{method} {path} without a token"));
        assert_eq!(
            answer.detail(),
            "Not authenticated",
            "{method} {path} without a token"
        );
    }
    assert_untouched(&app, &job, &before, 1, "after anonymous requests").await;
}

#[tokio::test]
async fn every_protected_route_refuses_malformed_unknown_and_tampered_tokens() {
    // Arrange
    let (app, job, entry) = app_with_a_job().await;
    let before = app
        .get(&format!("/api/v1/jobs/{job}"))
        .await
        .json()
        .await
        .unwrap();
    let real = app.token(Role::Admin, None);
    let genuine = get(&client_with(Some(&real)), &app, "/api/v1/jobs/").await;
    assert_eq!(genuine.status, 200, "the untampered secret must work");
    let last = if real.ends_with('0') { "1" } else { "0" };
    let one_changed = format!("{}{last}", &real[..real.len() - 1]);
    let first_hex = if real.as_bytes()[3] == b'a' { "b" } else { "a" };
    let cases: Vec<(&str, String)> = vec![
        ("a Basic scheme", "Basic xyz".to_owned()),
        ("Bearer alone", "Bearer".to_owned()),
        (
            "a Basic scheme carrying a real secret",
            format!("Basic {real}"),
        ),
        (
            "an unknown bm_ token",
            format!("Bearer bm_{}", "0123456789abcdef".repeat(4)),
        ),
        (
            "the last character changed",
            format!("Bearer {one_changed}"),
        ),
        (
            "the first hex character changed",
            format!("Bearer bm_{first_hex}{}", &real[4..]),
        ),
        ("truncated", format!("Bearer {}", &real[..real.len() - 1])),
        ("with a suffix", format!("Bearer {real}0")),
        ("upper-cased", format!("Bearer {}", real.to_uppercase())),
        ("without its bm_ prefix", format!("Bearer {}", &real[3..])),
        (
            "the environment admin token with a suffix",
            format!("Bearer {ADMIN_TOKEN}x"),
        ),
    ];
    let bare = client_with(None);

    for (case, authorization) in &cases {
        for (method, path, body) in protected_routes(&job, &entry) {
            // Act
            let mut request = bare
                .request(method.clone(), app.url(&path))
                .header("authorization", authorization);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let answer = answer(request).await;

            // Assert
            assert_unauthorized(&answer, &format!("{method} {path} with {case}"));
        }
    }
    assert_untouched(&app, &job, &before, 1, "after bad tokens").await;
}

#[tokio::test]
async fn public_routes_answer_without_a_token_and_even_with_an_invalid_one() {
    // Arrange
    let app = spawn_app().await;
    let routes = [
        "/healthz",
        "/openapi.json",
        "/docs",
        "/redoc",
        "/",
        "/assets/site.css",
        "/assets/vendor/swagger-ui/swagger-ui-bundle.js",
    ];
    let clients = [
        ("no token", client_with(None)),
        ("an unknown token", client_with(Some("bm_not-a-real-token"))),
        ("an admin token", client_with(Some(ADMIN_TOKEN))),
    ];

    for (who, client) in &clients {
        for route in routes {
            // Act
            let response = client.get(app.url(route)).send().await.unwrap();

            // Assert
            assert_eq!(response.status(), 200, "GET {route} with {who}");
        }
    }
}

/// The roles in the order each row of the table below lists them.
const ROLES: [Role; 3] = [Role::Viewer, Role::Agent, Role::Admin];

#[tokio::test]
async fn each_role_gets_what_design_section_5_allows_it() {
    // Arrange: J and D both belong to the agent; D is there to be deleted.
    let app = spawn_app().await;
    let j = app.create_job(json!({})).await["id"].clone();
    let d = app.create_job(json!({"database_name": "crm"})).await["id"].clone();
    let e = app
        .report(j.as_i64().unwrap(), "success", "2026-11-24T02:31:00Z")
        .await["id"]
        .clone();
    let clients = [
        client_with(Some(&app.token(Role::Viewer, None))),
        client_with(Some(&app.token(Role::Agent, Some("agent-lyon-1")))),
        client_with(Some(&app.token(Role::Admin, None))),
    ];
    // A distinct report per role, so that none is an idempotent repeat of another.
    let single = |i: usize| Some(report(&j, &format!("2026-11-1{i}T02:31:00Z")));
    let batch = |i: usize| {
        Some(json!([report(
            &j,
            &format!("2026-11-0{}T02:31:00Z", i + 1)
        )]))
    };
    let none = |_: usize| None;
    let city = |_: usize| Some(json!({"city": "Paris"}));
    let job = |_: usize| Some(valid_job());
    type Body<'a> = &'a dyn Fn(usize) -> Option<Value>;
    // (method, path, body, [viewer, agent, admin])
    let table: Vec<(Method, String, Body<'_>, [u16; 3])> = vec![
        (Method::GET, "/api/v1/jobs/".into(), &none, [200, 200, 200]),
        (
            Method::GET,
            format!("/api/v1/jobs/{j}"),
            &none,
            [200, 200, 200],
        ),
        (
            Method::GET,
            format!("/api/v1/jobs/{j}/expected_path"),
            &none,
            [200, 200, 200],
        ),
        (
            Method::GET,
            "/api/v1/entries/".into(),
            &none,
            [200, 200, 200],
        ),
        (
            Method::GET,
            format!("/api/v1/entries/{e}"),
            &none,
            [200, 200, 200],
        ),
        (
            Method::GET,
            format!("/api/v1/entries/by_job/{j}"),
            &none,
            [200, 200, 200],
        ),
        (Method::GET, "/api/v1/status".into(), &none, [200, 200, 200]),
        (
            Method::GET,
            "/api/v1/companies".into(),
            &none,
            [200, 200, 200],
        ),
        (Method::GET, "/api/v1/alerts".into(), &none, [200, 200, 200]),
        (Method::POST, "/api/v1/jobs/".into(), &job, [403, 403, 201]),
        (
            Method::PUT,
            format!("/api/v1/jobs/{j}"),
            &city,
            [403, 403, 200],
        ),
        (
            Method::PATCH,
            format!("/api/v1/jobs/{j}"),
            &city,
            [403, 403, 200],
        ),
        (
            Method::POST,
            "/api/v1/entries/".into(),
            &single,
            [403, 201, 201],
        ),
        (
            Method::POST,
            "/api/v1/entries/batch".into(),
            &batch,
            [403, 201, 201],
        ),
        (
            Method::DELETE,
            format!("/api/v1/jobs/{d}"),
            &none,
            [403, 403, 200],
        ),
    ];

    for (method, path, body, expected) in &table {
        for (i, role) in ROLES.iter().enumerate() {
            // Act
            let answer = call(&clients[i], &app, method, path, body(i).as_ref()).await;

            // Assert
            let case = format!("{method} {path} as {}", role.as_str());
            assert_eq!(answer.status, expected[i], "{case}: {}", answer.body);
            if answer.status == 403 {
                assert!(
                    answer.detail().contains(role.as_str()),
                    "{case}: the 403 detail should name the role: {}",
                    answer.body
                );
            }
        }
    }
    // The refused writes left nothing behind: J's first entry plus one report and one
    // batch each from the agent and the admin; J and the admin's new job, D gone.
    let admin = client_with(Some(ADMIN_TOKEN));
    let entries = get(&admin, &app, &format!("/api/v1/entries/by_job/{j}")).await;
    assert_eq!(entries.total(), 5, "{}", entries.body);
    let jobs = get(&admin, &app, "/api/v1/jobs/").await;
    assert_eq!(jobs.total(), 2, "{}", jobs.body);
}

/// Jobs of agents A and B, one entry each, and a client with agent A's token.
struct TwoAgents {
    app: TestApp,
    a: Value,
    b: Value,
    a_entry: Value,
    b_entry: Value,
    agent_a: reqwest::Client,
    admin: reqwest::Client,
}

async fn two_agents() -> TwoAgents {
    let app = spawn_app().await;
    let a = app
        .create_job(json!({"agent_id_responsible": "agent-a", "database_name": "erp-a"}))
        .await;
    let b = app
        .create_job(json!({"agent_id_responsible": "agent-b", "database_name": "erp-b"}))
        .await;
    let a_entry = app
        .report(a["id"].as_i64().unwrap(), "success", "2026-11-24T02:31:00Z")
        .await;
    let b_entry = app
        .report(b["id"].as_i64().unwrap(), "success", "2026-11-24T02:31:00Z")
        .await;
    let agent_a = client_with(Some(&app.token(Role::Agent, Some("agent-a"))));
    TwoAgents {
        app,
        a,
        b,
        a_entry,
        b_entry,
        agent_a,
        admin: client_with(Some(ADMIN_TOKEN)),
    }
}

#[tokio::test]
async fn an_agent_token_cannot_read_another_agents_job_or_entries() {
    // Arrange
    let t = two_agents().await;
    let paths = |job: &Value, entry: &Value| {
        vec![
            format!("/api/v1/jobs/{}", job["id"]),
            format!("/api/v1/jobs/{}/expected_path", job["id"]),
            format!("/api/v1/entries/by_job/{}", job["id"]),
            format!("/api/v1/entries/{}", entry["id"]),
        ]
    };

    for (own, other) in paths(&t.a, &t.a_entry)
        .into_iter()
        .zip(paths(&t.b, &t.b_entry))
    {
        // Act
        let refused = get(&t.agent_a, &t.app, &other).await;
        let allowed = get(&t.agent_a, &t.app, &own).await;

        // Assert
        assert_eq!(
            refused.status, 403,
            "GET {other} (agent B's): {}",
            refused.body
        );
        assert!(
            refused.detail().contains("agent-a"),
            "GET {other}: the detail should say which agent the token is confined to: {}",
            refused.body
        );
        assert_eq!(
            allowed.status, 200,
            "GET {own} (agent A's): {}",
            allowed.body
        );
    }
}

#[tokio::test]
async fn an_agent_token_cannot_report_for_another_agents_job_and_nothing_is_written() {
    // Arrange
    let t = two_agents().await;
    let body = report(&t.b["id"], "2026-11-25T02:31:00Z");

    // Act
    let refused = call(
        &t.agent_a,
        &t.app,
        &Method::POST,
        "/api/v1/entries/",
        Some(&body),
    )
    .await;

    // Assert
    assert_eq!(refused.status, 403, "{}", refused.body);
    let b_entries = get(
        &t.admin,
        &t.app,
        &format!("/api/v1/entries/by_job/{}", t.b["id"]),
    )
    .await;
    assert_eq!(b_entries.total(), 1, "nothing written: {}", b_entries.body);
    let own = report(&t.a["id"], "2026-11-25T02:31:00Z");
    let allowed = call(
        &t.agent_a,
        &t.app,
        &Method::POST,
        "/api/v1/entries/",
        Some(&own),
    )
    .await;
    assert_eq!(allowed.status, 201, "its own job: {}", allowed.body);
}

#[tokio::test]
async fn an_agent_token_cannot_update_or_delete_another_agents_job() {
    // Arrange
    let t = two_agents().await;
    let path = format!("/api/v1/jobs/{}", t.b["id"]);
    let change = json!({"agent_id_responsible": "agent-a", "city": "Paris"});
    let cases = [
        (Method::PUT, Some(&change)),
        (Method::PATCH, Some(&change)),
        (Method::DELETE, None),
    ];

    for (method, body) in cases {
        // Act
        let answer = call(&t.agent_a, &t.app, &method, &path, body).await;

        // Assert
        assert_eq!(answer.status, 403, "{method} {path}: {}", answer.body);
        let now = get(&t.admin, &t.app, &path).await;
        assert_eq!(now.body, t.b, "{method} {path}: the job changed");
    }
}

#[tokio::test]
async fn a_batch_with_one_item_for_another_agents_job_is_refused_whole() {
    // Arrange
    let t = two_agents().await;
    let mixed = json!([
        report(&t.a["id"], "2026-11-25T02:31:00Z"),
        report(&t.b["id"], "2026-11-25T02:31:00Z"),
        report(&t.a["id"], "2026-11-26T02:31:00Z"),
    ]);

    // Act
    let refused = call(
        &t.agent_a,
        &t.app,
        &Method::POST,
        "/api/v1/entries/batch",
        Some(&mixed),
    )
    .await;

    // Assert
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(!refused.detail().is_empty(), "{}", refused.body);
    let all = get(&t.admin, &t.app, "/api/v1/entries/").await;
    assert_eq!(all.total(), 2, "nothing written: {}", all.body);
    let own = json!([
        report(&t.a["id"], "2026-11-25T02:31:00Z"),
        report(&t.a["id"], "2026-11-26T02:31:00Z"),
    ]);
    let allowed = call(
        &t.agent_a,
        &t.app,
        &Method::POST,
        "/api/v1/entries/batch",
        Some(&own),
    )
    .await;
    assert_eq!(allowed.status, 201, "its own jobs only: {}", allowed.body);
    assert_eq!(get(&t.admin, &t.app, "/api/v1/entries/").await.total(), 4);
}

#[tokio::test]
async fn listings_show_an_agent_only_its_own_jobs_entries_states_and_alerts() {
    // Arrange: A runs a1 and a2, B runs b1; a1 and b1 fail (an alert each), b1 recovers.
    let app = spawn_app().await;
    let job = |agent: &str, db: &str| json!({"agent_id_responsible": agent, "database_name": db});
    let a1 = app.create_job(job("agent-a", "a1")).await["id"]
        .as_i64()
        .unwrap();
    let b1 = app.create_job(job("agent-b", "b1")).await["id"]
        .as_i64()
        .unwrap();
    let a2 = app.create_job(job("agent-a", "a2")).await["id"]
        .as_i64()
        .unwrap();
    // Reported as they happen, so that each failure and the recovery raise their alert.
    app.set_now(Some(crate::common::at("2026-11-24T02:32:00Z")));
    app.report(a1, "failed", "2026-11-24T02:31:00Z").await;
    app.report(a2, "success", "2026-11-24T02:31:00Z").await;
    app.report(b1, "failed", "2026-11-24T02:31:00Z").await;
    app.set_now(Some(crate::common::at("2026-11-25T02:32:00Z")));
    app.report(b1, "success", "2026-11-25T02:31:00Z").await;
    let agent_a = client_with(Some(&app.token(Role::Agent, Some("agent-a"))));
    let admin = client_with(Some(ADMIN_TOKEN));
    // (path, the field naming the job, A's total, everyone's total, A's items on the page)
    let table = [
        ("/api/v1/jobs/", "id", 2, 3, 2),
        ("/api/v1/jobs/?limit=1", "id", 2, 3, 1),
        ("/api/v1/entries/", "expected_job_id", 2, 4, 2),
        ("/api/v1/entries/?limit=1", "expected_job_id", 2, 4, 1),
        ("/api/v1/status", "job_id", 2, 3, 2),
        ("/api/v1/status?limit=1", "job_id", 2, 3, 1),
        ("/api/v1/alerts", "job_id", 1, 3, 1),
    ];

    for (path, field, own_total, all_total, page) in table {
        // Act
        let mine = get(&agent_a, &app, path).await;
        let everyone = get(&admin, &app, path).await;

        // Assert
        assert_eq!(mine.status, 200, "GET {path} as agent A: {}", mine.body);
        let items = mine.body.as_array().unwrap();
        assert_eq!(items.len(), page, "GET {path} as agent A: {}", mine.body);
        assert!(
            items
                .iter()
                .all(|i| [a1, a2].contains(&i[field].as_i64().unwrap())),
            "GET {path} as agent A shows another agent's: {}",
            mine.body
        );
        assert_eq!(
            mine.total(),
            own_total,
            "GET {path} as agent A: X-Total-Count"
        );
        assert_eq!(
            everyone.total(),
            all_total,
            "GET {path} as admin: X-Total-Count"
        );
    }
}

#[tokio::test]
async fn filtering_jobs_by_another_agent_with_an_agent_token_gives_nothing() {
    // Arrange
    let t = two_agents().await;
    // (query, token, expected job ids)
    let cases = [
        ("agent-b", &t.agent_a, vec![]),
        ("agent-a", &t.agent_a, vec![t.a["id"].clone()]),
        ("agent-b", &t.admin, vec![t.b["id"].clone()]),
    ];

    for (agent, client, expected) in cases {
        // Act
        let answer = get(
            client,
            &t.app,
            &format!("/api/v1/jobs/?agent_id_responsible={agent}"),
        )
        .await;

        // Assert
        let case = format!("agent_id_responsible={agent}");
        assert_eq!(answer.status, 200, "{case}: {}", answer.body);
        let ids: Vec<Value> = answer
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].clone())
            .collect();
        assert_eq!(ids, expected, "{case}");
        assert_eq!(
            answer.total(),
            i64::try_from(expected.len()).unwrap(),
            "{case}"
        );
    }
}

#[tokio::test]
async fn a_token_revoked_through_the_cli_is_refused_at_once_by_the_running_server() {
    // Arrange
    let app = spawn_app().await;
    let doomed = app.token(Role::Viewer, None);
    let kept = app.token(Role::Viewer, None);
    let doomed_client = client_with(Some(&doomed));
    assert_eq!(get(&doomed_client, &app, "/api/v1/jobs/").await.status, 200);
    let id = app.token_id(&doomed);

    // Act
    let out = command(app.dir.path())
        .arg("--database")
        .arg(&app.db_path)
        .args(["token", "revoke", &id.to_string()])
        .output()
        .unwrap();

    // Assert
    assert!(
        out.status.success(),
        "revoke failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refused = get(&doomed_client, &app, "/api/v1/jobs/").await;
    assert_unauthorized(&refused, "the revoked token");
    let other = get(&client_with(Some(&kept)), &app, "/api/v1/jobs/").await;
    assert_eq!(other.status, 200, "another token still works");
}

#[tokio::test]
async fn a_token_revoked_in_the_database_is_refused_at_once() {
    // Arrange
    let app = spawn_app().await;
    let secret = app.token(Role::Agent, Some("agent-lyon-1"));
    let client = client_with(Some(&secret));
    assert_eq!(get(&client, &app, "/api/v1/status").await.status, 200);

    // Act
    app.revoke_token(app.token_id(&secret));

    // Assert
    assert_unauthorized(&get(&client, &app, "/api/v1/status").await, "revoked");
}

fn rate_limited(s: &mut Settings) {
    s.auth.rate_limit_per_second = 1;
    s.auth.rate_limit_burst = 3;
}

fn assert_too_many(answer: &Answer, case: &str) {
    assert_eq!(answer.status, 429, "{case}: {}", answer.body);
    let wait: u64 = answer
        .header("retry-after")
        .unwrap_or_else(|| panic!("{case}: no Retry-After"))
        .parse()
        .unwrap();
    assert!(wait >= 1, "{case}: Retry-After {wait}");
    assert!(!answer.detail().is_empty(), "{case}: {}", answer.body);
    assert_eq!(
        answer.header("x-content-type-options"),
        Some("nosniff"),
        "{case}"
    );
}

#[tokio::test]
async fn the_fourth_quick_request_with_one_token_is_refused_with_retry_after() {
    // Arrange
    let app = spawn_app_with(rate_limited).await;
    let viewer = client_with(Some(&app.token(Role::Viewer, None)));

    // Act
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(get(&viewer, &app, "/api/v1/jobs/").await.status);
    }
    let fourth = get(&viewer, &app, "/api/v1/jobs/").await;

    // Assert
    assert_eq!(statuses, [200, 200, 200], "the burst of 3 goes through");
    assert_too_many(&fourth, "the 4th request");
}

#[tokio::test]
async fn a_rate_limited_report_is_not_written() {
    // Arrange
    let app = spawn_app_with(rate_limited).await;
    let job = app.create_job(json!({})).await["id"].clone();
    let agent = client_with(Some(&app.token(Role::Agent, Some("agent-lyon-1"))));
    for _ in 0..3 {
        assert_eq!(get(&agent, &app, "/api/v1/status").await.status, 200);
    }

    // Act
    let body = report(&job, "2026-11-24T02:31:00Z");
    let answer = call(&agent, &app, &Method::POST, "/api/v1/entries/", Some(&body)).await;

    // Assert
    assert_too_many(&answer, "a report over the limit");
    let admin = client_with(Some(ADMIN_TOKEN));
    assert_eq!(get(&admin, &app, "/api/v1/entries/").await.total(), 0);
}

#[tokio::test]
async fn each_token_has_its_own_rate_limit_bucket() {
    // Arrange
    let app = spawn_app_with(rate_limited).await;
    let first = client_with(Some(&app.token(Role::Viewer, None)));
    let second = client_with(Some(&app.token(Role::Viewer, None)));
    for _ in 0..3 {
        get(&first, &app, "/api/v1/jobs/").await;
    }
    assert_too_many(&get(&first, &app, "/api/v1/jobs/").await, "the first token");

    // Act
    let other = get(&second, &app, "/api/v1/jobs/").await;
    let environment = get(&client_with(Some(ADMIN_TOKEN)), &app, "/api/v1/jobs/").await;

    // Assert
    assert_eq!(other.status, 200, "a second token: {}", other.body);
    assert_eq!(environment.status, 200, "the environment admin token");
}

#[tokio::test]
async fn requests_without_a_token_are_limited_per_client_address() {
    // Arrange
    let app = spawn_app_with(rate_limited).await;
    let anonymous = client_with(None);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(get(&anonymous, &app, "/openapi.json").await.status);
    }

    // Act: a fresh connection from the same address, and a bad token from it
    let fourth = get(&client_with(None), &app, "/openapi.json").await;
    let bad_token = get(&client_with(Some("bm_nope")), &app, "/openapi.json").await;
    let with_token = get(&client_with(Some(ADMIN_TOKEN)), &app, "/openapi.json").await;

    // Assert
    assert_eq!(statuses, [200, 200, 200], "the burst of 3 goes through");
    assert_too_many(&fourth, "the 4th anonymous request");
    assert_too_many(&bad_token, "an invalid token counts against the address");
    assert_eq!(with_token.status, 200, "a valid token has its own bucket");
}

#[tokio::test]
async fn the_health_check_is_never_rate_limited() {
    // Arrange: the address's bucket is empty
    let app = spawn_app_with(rate_limited).await;
    let probe = client_with(None);
    for _ in 0..3 {
        get(&probe, &app, "/openapi.json").await;
    }
    assert_too_many(
        &get(&probe, &app, "/openapi.json").await,
        "the bucket is empty",
    );

    // Act: a load balancer's probes, many and quick, with and without a bad token
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(get(&probe, &app, "/healthz").await.status);
        statuses.push(get(&probe, &app, "/healthz/").await.status);
    }
    let with_bad_token = get(&client_with(Some("bm_nope")), &app, "/healthz").await;

    // Assert
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(with_bad_token.status, 200);
}

/// Sends an anonymous GET with `X-Forwarded-For: forwarded_for`.
async fn get_forwarded_for(app: &TestApp, path: &str, forwarded_for: &str) -> Answer {
    answer(
        client_with(None)
            .get(app.url(path))
            .header("x-forwarded-for", forwarded_for),
    )
    .await
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
    // Arrange: the tests' requests come from 127.0.0.1, the "proxy"
    let app = spawn_app_with(|s| {
        rate_limited(s);
        s.server.trusted_proxies = vec!["127.0.0.1".into(), "10.0.0.0/8".into()];
    })
    .await;
    for _ in 0..3 {
        get_forwarded_for(&app, "/openapi.json", "198.51.100.1").await;
    }

    // Act
    let first_again = get_forwarded_for(&app, "/openapi.json", "198.51.100.1").await;
    let second = get_forwarded_for(&app, "/openapi.json", "198.51.100.2").await;
    // The client sent its own header; our proxies (127.0.0.1, then 10.0.0.7) appended.
    let spoofing = get_forwarded_for(
        &app,
        "/openapi.json",
        "203.0.113.50, 198.51.100.1, 10.0.0.7",
    )
    .await;
    let proxy_itself = get(&client_with(None), &app, "/openapi.json").await;

    // Assert
    assert_too_many(&first_again, "the first client's 4th request");
    assert_eq!(second.status, 200, "another client: {}", second.body);
    assert_too_many(
        &spoofing,
        "the right-most untrusted address is the first client, whatever it wrote",
    );
    assert_eq!(
        proxy_itself.status, 200,
        "the proxy's own address has its own bucket"
    );
}

#[tokio::test]
async fn the_forwarded_for_header_of_an_untrusted_peer_is_ignored() {
    // Arrange: no trusted proxies (the default), then some that are not this peer
    for trusted in [vec![], vec!["10.0.0.0/8".to_owned()]] {
        let app = spawn_app_with(|s| {
            rate_limited(s);
            s.server.trusted_proxies = trusted.clone();
        })
        .await;

        // Act: each request claims another client
        let mut statuses = Vec::new();
        for i in 0..4 {
            statuses.push(
                get_forwarded_for(&app, "/openapi.json", &format!("198.51.100.{i}"))
                    .await
                    .status,
            );
        }

        // Assert
        assert_eq!(
            statuses,
            [200, 200, 200, 429],
            "trusted proxies {trusted:?}"
        );
    }
}

/// The `*.admin-token` files in `dir`.
fn token_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".admin-token"))
        .collect()
}

#[tokio::test]
async fn the_first_start_writes_a_working_admin_token_file_that_survives_a_restart() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("monitor.db").display());
    let file = dir.path().join("monitor.admin-token");
    let first = spawn_app_with(|s| {
        s.database.url = url.clone();
        s.auth.admin_token = None;
    })
    .await;

    // Act
    let written = std::fs::read_to_string(&file).unwrap();
    let secret = written.trim().to_owned();
    let admin = client_with(Some(&secret));
    let created = call(
        &admin,
        &first,
        &Method::POST,
        "/api/v1/jobs/",
        Some(&valid_job()),
    )
    .await;

    // Assert
    assert_eq!(token_files(dir.path()), vec![file.clone()]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "mode {mode:o}");
    }
    assert!(secret.starts_with("bm_"), "{secret}");
    assert_eq!(
        created.status, 201,
        "the file's token is an admin: {}",
        created.body
    );

    // Act: restart on the same database
    first.stop().await;
    let second = spawn_app_with(|s| {
        s.database.url = url.clone();
        s.auth.admin_token = None;
    })
    .await;

    // Assert
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        written,
        "rewritten"
    );
    let listed = get(&admin, &second, "/api/v1/jobs/").await;
    assert_eq!(
        listed.status, 200,
        "invalidated by the restart: {}",
        listed.body
    );
    assert_eq!(listed.total(), 1);
    let stored = second.stored_tokens();
    assert_eq!(
        stored.len(),
        1,
        "a second admin token was minted: {stored:?}"
    );
}

#[tokio::test]
async fn no_token_file_is_written_when_an_admin_token_is_configured() {
    // Arrange + Act
    let app = spawn_app().await;

    // Assert
    assert!(app.db_path.exists());
    let dir = app.db_path.parent().unwrap();
    assert_eq!(token_files(dir), Vec::<std::path::PathBuf>::new());
    assert!(app.stored_tokens().is_empty());
}

#[tokio::test]
async fn cors_is_off_by_default_and_never_allows_credentials() {
    // Arrange
    let plain = spawn_app().await;
    let open =
        spawn_app_with(|s| s.server.cors_origins = vec!["https://dash.example".into()]).await;
    let anonymous = client_with(None);
    let admin = client_with(Some(ADMIN_TOKEN));
    let preflight = |app: &TestApp| {
        anonymous
            .request(Method::OPTIONS, app.url("/api/v1/entries/"))
            .header("origin", "https://dash.example")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
    };
    let simple = |client: &reqwest::Client, app: &TestApp| {
        client
            .get(app.url("/api/v1/jobs/"))
            .header("origin", "https://dash.example")
    };
    // (case, request, whether Access-Control-Allow-Origin is expected)
    let cases = [
        ("default: a preflight", preflight(&plain), false),
        ("default: a GET with a token", simple(&admin, &plain), false),
        ("default: a 401", simple(&anonymous, &plain), false),
        ("configured: a preflight", preflight(&open), true),
        (
            "configured: a GET with a token",
            simple(&admin, &open),
            true,
        ),
        ("configured: a 401", simple(&anonymous, &open), true),
    ];

    for (case, request, allowed) in cases {
        // Act
        let response = request.send().await.unwrap();

        // Assert
        let headers = response.headers();
        assert_eq!(
            headers.get("access-control-allow-origin").is_some(),
            allowed,
            "{case}: {headers:?}"
        );
        assert!(
            headers.get("access-control-allow-credentials").is_none(),
            "{case}: credentials allowed"
        );
        if allowed && case.contains("preflight") {
            assert!(
                response.status().is_success(),
                "{case}: {}",
                response.status()
            );
        }
    }
}

#[tokio::test]
async fn the_pages_carry_a_strict_content_security_policy_and_refuse_framing() {
    // Arrange
    let app = spawn_app().await;

    for page in ["/docs", "/redoc", "/"] {
        // Act
        let answer = get(&client_with(None), &app, page).await;

        // Assert
        let csp = answer
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{page}: no Content-Security-Policy"));
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        for wanted in ["default-src 'self'", "frame-ancestors 'none'"] {
            assert!(
                directives.contains(&wanted),
                "{page}: {wanted} not in {csp}"
            );
        }
        assert_eq!(answer.header("x-frame-options"), Some("DENY"), "{page}");
    }
}

#[tokio::test]
async fn every_response_says_nosniff_api_and_errors_included() {
    // Arrange
    let app = spawn_app_with(|s| s.server.body_limit_bytes = 2048).await;
    let job = app.create_job(json!({})).await["id"].clone();
    let entry = app
        .report(job.as_i64().unwrap(), "success", "2026-11-24T02:31:00Z")
        .await["id"]
        .clone();
    let admin = client_with(Some(ADMIN_TOKEN));
    let anonymous = client_with(None);
    let big = json!({"database_name": "x".repeat(4096)});
    let job_path = format!("/api/v1/jobs/{job}");
    let entry_path = format!("/api/v1/entries/{entry}");
    // (case, client, method, path, body, expected status)
    type Case<'a> = (
        &'a str,
        &'a reqwest::Client,
        Method,
        &'a str,
        Option<Value>,
        u16,
    );
    let cases: Vec<Case<'_>> = vec![
        ("health", &anonymous, Method::GET, "/healthz", None, 200),
        ("spec", &anonymous, Method::GET, "/openapi.json", None, 200),
        ("docs", &anonymous, Method::GET, "/docs", None, 200),
        ("redoc", &anonymous, Method::GET, "/redoc", None, 200),
        ("dashboard", &anonymous, Method::GET, "/", None, 200),
        (
            "asset",
            &anonymous,
            Method::GET,
            "/assets/site.css",
            None,
            200,
        ),
        (
            "missing asset",
            &anonymous,
            Method::GET,
            "/assets/nope.js",
            None,
            404,
        ),
        ("a job", &admin, Method::GET, &job_path, None, 200),
        ("an entry", &admin, Method::GET, &entry_path, None, 200),
        (
            "no token",
            &anonymous,
            Method::GET,
            "/api/v1/jobs/",
            None,
            401,
        ),
        (
            "unknown job",
            &admin,
            Method::GET,
            "/api/v1/jobs/999999",
            None,
            404,
        ),
        (
            "unknown route",
            &admin,
            Method::GET,
            "/api/v1/nothing",
            None,
            404,
        ),
        (
            "wrong method",
            &admin,
            Method::DELETE,
            "/healthz",
            None,
            405,
        ),
        (
            "bad body",
            &admin,
            Method::POST,
            "/api/v1/jobs/",
            Some(json!([])),
            422,
        ),
        (
            "big body",
            &admin,
            Method::POST,
            "/api/v1/jobs/",
            Some(big),
            413,
        ),
    ];

    for (case, client, method, path, body, status) in cases {
        // Act
        let answer = call(client, &app, &method, path, body.as_ref()).await;

        // Assert
        assert_eq!(answer.status, status, "{case}: {method} {path}");
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{case}: {method} {path}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_declares_bearer_security_on_every_api_operation() {
    // Arrange
    let app = spawn_app().await;

    // Act
    let doc = get(&client_with(None), &app, "/openapi.json").await.body;

    // Assert
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(
        scheme["scheme"].as_str().map(str::to_lowercase).as_deref(),
        Some("bearer")
    );
    let mut api_operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if !["get", "put", "post", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let case = format!("{method} {path}");
            // An operation's own `security` wins over the document's.
            let security = op.get("security").or(doc.get("security"));
            if path.starts_with("/api/v1") {
                api_operations += 1;
                assert_eq!(security, Some(&json!([{"bearer": []}])), "{case}");
                for code in ["401", "403", "429"] {
                    assert!(op["responses"][code].is_object(), "{case} lacks {code}");
                }
                assert!(
                    op["responses"]["401"]["headers"]["WWW-Authenticate"].is_object(),
                    "{case}: the 401 should document WWW-Authenticate"
                );
                assert!(
                    op["responses"]["429"]["headers"]["Retry-After"].is_object(),
                    "{case}: the 429 should document Retry-After"
                );
            } else {
                let public = security.is_none_or(|s| {
                    s.as_array()
                        .is_some_and(|a| a.is_empty() || a.iter().any(|r| r == &json!({})))
                });
                assert!(public, "{case} should need no token: {security:?}");
            }
        }
    }
    assert_eq!(api_operations, 21, "every /api/v1 operation was checked");
    assert!(doc["paths"]["/healthz"]["get"].is_object());
}

/// Strings that would break a query built by concatenation, climb out of a directory,
/// or be expanded twice by a template engine.
const HOSTILE: [&str; 7] = [
    "'; DROP TABLE tokens; --",
    "Robert'); DELETE FROM jobs WHERE ('1'='1",
    "../../etc/passwd",
    "%00",
    "\"double\" and 'single' quotes",
    "{job_id}",
    "100% _wild_ \\ card",
];

#[tokio::test]
async fn hostile_strings_are_stored_verbatim_and_the_tokens_keep_working() {
    // Arrange
    let app = spawn_app().await;
    let viewer_secret = app.token(Role::Viewer, None);
    let viewer = client_with(Some(&viewer_secret));
    let admin = client_with(Some(ADMIN_TOKEN));
    let template =
        "/backups/{company_name}/{city}/{database_name}/{agent_id_responsible}/{job_id}/%Y.dump";
    let email = "o'neil+{job_id}%00@example.com";

    for (i, s) in HOSTILE.iter().enumerate() {
        let case = format!("{s:?}");
        // Act: a job whose every name is the hostile string, then a report and an update
        let created = call(
            &admin,
            &app,
            &Method::POST,
            "/api/v1/jobs/",
            Some(&json!({
                "database_name": s, "agent_id_responsible": s, "company_name": s, "city": s,
                "expected_hour_utc": 2, "expected_minute_utc": 30, "backup_frequency": "daily",
                "final_storage_path_template": template, "notify_emails": [email],
            })),
        )
        .await;
        assert_eq!(created.status, 201, "{case}: {}", created.body);
        let id = created.body["id"].clone();
        let reported = call(
            &admin,
            &app,
            &Method::POST,
            "/api/v1/entries/",
            Some(&json!({"expected_job_id": id, "status": "failed",
                "backup_timestamp_utc": "2026-11-24T02:31:00Z",
                "backup_hash": s, "error_message": s})),
        )
        .await;
        let patched = call(
            &admin,
            &app,
            &Method::PATCH,
            &format!("/api/v1/jobs/{id}"),
            Some(&json!({"city": format!("{s} (moved)")})),
        )
        .await;

        // Assert: stored and read back verbatim
        for field in [
            "database_name",
            "agent_id_responsible",
            "company_name",
            "city",
        ] {
            assert_eq!(created.body[field], *s, "{case}: {field}");
        }
        assert_eq!(
            created.body["final_storage_path_template"], template,
            "{case}"
        );
        assert_eq!(created.body["notify_emails"], json!([email]), "{case}");
        assert_eq!(reported.status, 201, "{case}: {}", reported.body);
        let entry = get(
            &viewer,
            &app,
            &format!("/api/v1/entries/{}", reported.body["id"]),
        )
        .await;
        assert_eq!(entry.body["backup_hash"], *s, "{case}: backup_hash");
        assert_eq!(entry.body["error_message"], *s, "{case}: error_message");
        assert_eq!(patched.status, 200, "{case}: {}", patched.body);
        assert_eq!(
            patched.body["city"],
            format!("{s} (moved)"),
            "{case}: PATCH"
        );

        // Filters match the string exactly, wildcards included
        for (path, key) in [
            ("/api/v1/jobs/", "company_name"),
            ("/api/v1/status", "company_name"),
        ] {
            let listed = viewer
                .get(app.url(path))
                .query(&[(key, s)])
                .send()
                .await
                .unwrap();
            assert_eq!(listed.status(), 200, "{case}: {path}");
            let total = listed.headers()["x-total-count"]
                .to_str()
                .unwrap()
                .to_owned();
            assert_eq!(total, "1", "{case}: {path}?{key}= matches exactly one job");
        }

        // Rendered into one path segment each, never expanded twice
        let rendered = get(
            &viewer,
            &app,
            &format!("/api/v1/jobs/{id}/expected_path?at=2026-11-24T12:00:00Z"),
        )
        .await;
        let segment = s.replace(['/', '\\'], "_");
        let moved = format!("{s} (moved)").replace(['/', '\\'], "_");
        assert_eq!(
            rendered.body["path"],
            format!("/backups/{segment}/{moved}/{segment}/{segment}/{id}/2026.dump"),
            "{case}: expected_path"
        );

        // An agent token bound to the string sees its job and only it
        let agent = client_with(Some(&app.token(Role::Agent, Some(s))));
        let own = get(&agent, &app, "/api/v1/jobs/").await;
        assert_eq!(own.status, 200, "{case}: agent token");
        assert_eq!(own.total(), 1, "{case}: the agent's jobs: {}", own.body);
        assert_eq!(own.body[0]["id"], id, "{case}");
        assert_eq!(
            get(&agent, &app, "/api/v1/entries/").await.total(),
            1,
            "{case}: the agent's entries"
        );
        assert_eq!(
            i64::try_from(i + 1).unwrap(),
            get(&admin, &app, "/api/v1/jobs/").await.total()
        );
    }

    // The tokens table is intact and every stored token still works
    let after = get(&viewer, &app, "/api/v1/jobs/").await;
    assert_eq!(
        after.status, 200,
        "the viewer token after the hostile writes"
    );
    let stored = app.stored_tokens();
    assert_eq!(stored.len(), 1 + HOSTILE.len(), "{stored:?}");
    assert!(stored.iter().all(|t| t.revoked_at.is_none()));
}

#[tokio::test]
async fn hostile_storage_path_templates_are_stored_verbatim_or_refused_never_a_500() {
    // Arrange
    let app = spawn_app().await;
    // (template, expected status): `..` segments and unknown `%` fields are refused by design
    let cases = [
        ("/b/'; DROP TABLE tokens; --/%Y", 201),
        ("/b/\"double\" and 'single'/{job_id}", 201),
        ("/b/100%% done/{city}", 201),
        ("/b/../../etc/passwd", 422),
        ("../../etc/passwd", 422),
        ("/b/%00", 422),
        ("/b/{job_id}}", 422),
        ("/b/{unknown}", 422),
    ];

    for (template, status) in cases {
        // Act
        let answer = call(
            &app.client,
            &app,
            &Method::POST,
            "/api/v1/jobs/",
            Some(&with(
                valid_job(),
                json!({"final_storage_path_template": template}),
            )),
        )
        .await;

        // Assert
        assert_eq!(answer.status, status, "{template:?}: {}", answer.body);
        if status == 201 {
            assert_eq!(answer.body["final_storage_path_template"], template);
        }
    }
    assert_eq!(get(&app.client, &app, "/api/v1/jobs/").await.total(), 3);
}

#[tokio::test]
async fn an_admin_token_file_is_written_when_only_agent_tokens_exist() {
    // Arrange: a sysadmin made an agent token before the first `serve`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("early.db");
    migrated_db(&path);
    create_token(&path, "early agent", Role::Agent, Some("a"));
    // Act
    let app = spawn_app_with(|s| {
        s.auth.admin_token = None;
        s.database.url = format!("sqlite://{}", path.display());
    })
    .await;
    // Assert: there is still a way in as admin.
    let file = dir.path().join("early.admin-token");
    let token = std::fs::read_to_string(&file).expect("admin token file");
    let response = client_with(Some(token.trim()))
        .post(app.url("/api/v1/jobs/"))
        .json(&valid_job())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}
