//! Tokens made and revoked two ways: `backup-monitor token create|list|revoke`, run as a
//! sysadmin would, on a database file that a running server then uses; and
//! `/api/v1/tokens` over HTTP, as the dashboard does it.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Output;

use serde_json::{json, Value};
use tempfile::TempDir;

use crate::common::{
    assert_422, client_with, command, hash_secret, open_db, spawn_app, spawn_app_with, stderr,
    stdout, Role, TestApp,
};

/// A database file in its own directory, and the binary run against it.
struct Sysadmin {
    dir: TempDir,
    db: PathBuf,
}

impl Sysadmin {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("backup-monitor.db");
        Self { dir, db }
    }

    /// `backup-monitor --database <db> <args>`, with an empty environment.
    fn run(&self, args: &[&str]) -> Output {
        command(self.dir.path())
            .arg("--database")
            .arg(&self.db)
            .args(args)
            .output()
            .unwrap()
    }

    /// Creates a token; returns its secret (the first line of stdout).
    fn create(&self, args: &[&str]) -> String {
        let out = self.run(&[&["token", "create"], args].concat());
        assert!(
            out.status.success(),
            "token create {args:?}: {}",
            stderr(&out)
        );
        stdout(&out).lines().next().unwrap().to_owned()
    }

    fn list_json(&self) -> Vec<Value> {
        let out = self.run(&["token", "list", "--json"]);
        assert!(out.status.success(), "token list --json: {}", stderr(&out));
        serde_json::from_str(&stdout(&out)).unwrap()
    }

    /// The SHA-256 digests the database holds, as stored.
    fn stored_digests(&self) -> Vec<String> {
        let db = open_db(&self.db);
        let conn = db.conn().unwrap();
        let mut stmt = conn.prepare("SELECT secret_sha256 FROM tokens").unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(Result::unwrap).collect()
    }

    async fn serve(&self) -> TestApp {
        let url = format!("sqlite://{}", self.db.display());
        spawn_app_with(|s| s.database.url = url).await
    }
}

fn is_secret(line: &str) -> bool {
    line.strip_prefix("bm_").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

#[tokio::test]
async fn token_create_prints_the_secret_alone_on_the_first_line_and_it_works_confined() {
    // Arrange
    let admin = Sysadmin::new();

    // Act
    let out = admin.run(&[
        "token",
        "create",
        "--role",
        "agent",
        "--agent-id",
        "lyon-1",
        "--name",
        "n",
    ]);

    // Assert: the secret, alone
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let first = text.lines().next().unwrap_or_default();
    assert!(
        is_secret(first),
        "first line of stdout is not a secret: {text:?}"
    );
    assert!(
        !stderr(&out).contains(&first[3..]),
        "the secret must not be logged on stderr"
    );

    // Assert: it works against a server on the same database, confined to lyon-1
    let app = admin.serve().await;
    let own = app
        .create_job(json!({"agent_id_responsible": "lyon-1"}))
        .await["id"]
        .clone();
    let other = app
        .create_job(json!({"agent_id_responsible": "paris-1"}))
        .await["id"]
        .clone();
    let agent = client_with(Some(first));
    let get = |path: String| {
        let agent = agent.clone();
        let url = app.url(&path);
        async move { agent.get(url).send().await.unwrap() }
    };
    let cases = [
        (format!("/api/v1/jobs/{own}"), 200),
        (format!("/api/v1/jobs/{other}"), 403),
        ("/api/v1/jobs/".to_owned(), 200),
    ];
    for (path, status) in cases {
        assert_eq!(get(path.clone()).await.status(), status, "GET {path}");
    }
    let listed = get("/api/v1/jobs/".to_owned()).await;
    assert_eq!(listed.headers()["x-total-count"], "1", "only lyon-1's jobs");
    let report = |job: &Value| {
        agent
            .post(app.url("/api/v1/entries/"))
            .json(&json!({"expected_job_id": job, "status": "success"}))
            .send()
    };
    assert_eq!(report(&own).await.unwrap().status(), 201, "its own job");
    assert_eq!(report(&other).await.unwrap().status(), 403, "paris-1's job");
}

#[test]
fn token_create_refuses_a_role_and_agent_that_do_not_fit_and_creates_nothing() {
    // Arrange
    let admin = Sysadmin::new();
    // (case, arguments, what the message must mention)
    let cases: [(&str, &[&str], &str); 5] = [
        (
            "an agent without --agent-id",
            &["--role", "agent"],
            "--agent-id",
        ),
        (
            "an agent with a blank --agent-id",
            &["--role", "agent", "--agent-id", "  "],
            "--agent-id",
        ),
        (
            "a viewer with --agent-id",
            &["--role", "viewer", "--agent-id", "x"],
            "--agent-id",
        ),
        (
            "an admin with --agent-id",
            &["--role", "admin", "--agent-id", "x"],
            "--agent-id",
        ),
        ("an unknown role", &["--role", "root"], "root"),
    ];

    for (case, args, mention) in cases {
        // Act
        let out = admin.run(&[&["token", "create"], args].concat());

        // Assert
        assert!(!out.status.success(), "{case}: succeeded");
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{case}: exit code {:?}",
            out.status.code()
        );
        assert_eq!(stdout(&out), "", "{case}: printed something on stdout");
        let message = stderr(&out);
        assert!(
            message.contains(mention),
            "{case}: unclear message {message:?}"
        );
    }
    assert_eq!(
        admin.list_json(),
        Vec::<Value>::new(),
        "no token was created"
    );
}

#[test]
fn token_list_shows_ids_roles_agents_and_names_but_never_a_secret() {
    // Arrange
    let admin = Sysadmin::new();
    let secrets = [
        admin.create(&["--role", "admin", "--name", "ops laptop"]),
        admin.create(&[
            "--role",
            "agent",
            "--agent-id",
            "lyon-1",
            "--name",
            "lyon nas",
        ]),
        admin.create(&["--role", "viewer", "--name", "wall screen"]),
    ];
    let digests = admin.stored_digests();
    assert_eq!(digests.len(), 3);
    for secret in &secrets {
        let digest = hash_secret(secret);
        assert!(
            digests.contains(&digest),
            "the stored digest is the secret's SHA-256"
        );
    }

    // Act
    let out = admin.run(&["token", "list"]);

    // Assert
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "one row per token: {text}");
    let expected = [
        ("1", "admin", "-", "ops laptop"),
        ("2", "agent", "lyon-1", "lyon nas"),
        ("3", "viewer", "-", "wall screen"),
    ];
    for (row, (id, role, agent, name)) in rows.iter().zip(expected) {
        let words: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(&words[..3], [id, role, agent], "{row}");
        assert!(row.contains(name), "{row} lacks {name}");
    }
    let header = text.lines().next().unwrap().to_ascii_uppercase();
    for column in ["ID", "ROLE", "AGENT", "NAME", "CREATED", "REVOKED"] {
        assert!(header.contains(column), "header {header:?} lacks {column}");
    }
    let everything = format!("{text}{}", stderr(&out));
    for secret in &secrets {
        assert!(!everything.contains(&secret[3..]), "a secret is listed");
    }
    for digest in &digests {
        assert!(!everything.contains(digest.as_str()), "a digest is listed");
    }
}

#[test]
fn token_list_json_parses_and_holds_no_secret() {
    // Arrange
    let admin = Sysadmin::new();
    let secret = admin.create(&["--role", "agent", "--agent-id", "lyon-1", "--name", "nas"]);
    let digest = hash_secret(&secret);

    // Act
    let list = admin.list_json();

    // Assert
    assert_eq!(list.len(), 1, "{list:?}");
    let token = &list[0];
    assert_eq!(token["id"], 1);
    assert_eq!(token["role"], "agent");
    assert_eq!(token["agent_id"], "lyon-1");
    assert_eq!(token["name"], "nas");
    assert!(token["created_at"].is_string(), "{token}");
    assert!(token["revoked_at"].is_null(), "{token}");
    let text = token.to_string();
    assert!(
        !text.contains(&secret[3..]) && !text.contains(&digest),
        "{text}"
    );
    let keys: Vec<&String> = token.as_object().unwrap().keys().collect();
    assert!(
        keys.iter()
            .all(|k| !k.contains("secret") && !k.contains("hash")),
        "{keys:?}"
    );
}

#[tokio::test]
async fn token_revoke_revokes_at_once_and_a_second_revoke_or_an_unknown_id_fails() {
    // Arrange
    let admin = Sysadmin::new();
    let secret = admin.create(&["--role", "viewer", "--name", "wall"]);
    let app = admin.serve().await;
    let viewer = client_with(Some(&secret));
    let jobs = app.url("/api/v1/jobs/");
    assert_eq!(viewer.get(&jobs).send().await.unwrap().status(), 200);

    // Act
    let revoked = admin.run(&["token", "revoke", "1"]);

    // Assert
    assert_eq!(revoked.status.code(), Some(0), "{}", stderr(&revoked));
    let refused = viewer.get(&jobs).send().await.unwrap();
    assert_eq!(refused.status(), 401, "the running server still takes it");
    let listed = admin.list_json();
    let when = listed[0]["revoked_at"].as_str().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(when).is_ok(),
        "revoked_at is {:?}",
        listed[0]["revoked_at"]
    );
    let table = stdout(&admin.run(&["token", "list"]));
    let row = table.lines().nth(1).unwrap();
    assert!(
        row.split_whitespace().last().unwrap().starts_with("20"),
        "the REVOKED column shows a date: {row}"
    );

    // (case, id, what the message must mention)
    let failures = [
        ("revoking again", "1", "1"),
        ("an unknown id", "999", "999"),
    ];
    for (case, id, mention) in failures {
        let out = admin.run(&["token", "revoke", id]);
        assert_eq!(out.status.code(), Some(1), "{case}: {}", stdout(&out));
        assert!(stderr(&out).contains(mention), "{case}: {}", stderr(&out));
    }
    assert_eq!(admin.list_json()[0]["revoked_at"], listed[0]["revoked_at"]);
}

#[test]
fn every_token_subcommand_has_complete_help() {
    // Arrange
    let admin = Sysadmin::new();
    // (command, what its help must mention)
    let cases: [(&[&str], &[&str]); 4] = [
        (&["token"], &["create", "list", "revoke"]),
        (
            &["token", "create"],
            &[
                "--role",
                "admin",
                "agent",
                "viewer",
                "--agent-id",
                "--name",
                "once",
            ],
        ),
        (&["token", "list"], &["--json", "secret"]),
        (&["token", "revoke"], &["<ID>", "token list"]),
    ];

    for (command, mentions) in cases {
        // Act
        let out = admin.run(&[command, &["--help"]].concat());

        // Assert
        let help = stdout(&out);
        assert_eq!(out.status.code(), Some(0), "{command:?} --help");
        for mention in mentions {
            assert!(
                help.contains(mention),
                "{command:?} --help lacks {mention:?}:\n{help}"
            );
        }
    }
    assert!(!admin.db.exists(), "--help must not create the database");
}

// ---- /api/v1/tokens ----

#[tokio::test]
async fn an_admin_creates_an_agent_token_over_http_and_it_reports_for_its_agent_only() {
    // Arrange
    let app = spawn_app().await;
    let own = app.create_job(json!({})).await["id"].as_i64().unwrap();
    let other = app
        .create_job(json!({"agent_id_responsible": "agent-paris-2"}))
        .await["id"]
        .as_i64()
        .unwrap();
    let body = json!({"role": "agent", "agent_id": "agent-lyon-1", "name": "Lyon NAS"});

    // Act
    let response = app.post_json("/api/v1/tokens", &body).await;

    // Assert
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert!(is_secret(secret), "{created}");
    assert_eq!(created["role"], "agent");
    assert_eq!(created["agent_id"], "agent-lyon-1");
    assert_eq!(created["name"], "Lyon NAS");
    assert_eq!(created["revoked_at"], Value::Null);
    assert_eq!(app.stored_tokens().len(), 1);
    assert_ne!(hash_secret(secret), secret);
    let agent = client_with(Some(secret));
    let report = |job: i64| json!({"expected_job_id": job, "status": "success"});
    let url = app.url("/api/v1/entries/");
    let mine = agent.post(&url).json(&report(own)).send().await.unwrap();
    assert_eq!(mine.status(), 201, "its own job");
    let theirs = agent.post(&url).json(&report(other)).send().await.unwrap();
    assert_eq!(theirs.status(), 403, "another agent's job");
    let current: Value = agent
        .get(app.url("/api/v1/tokens/current"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        current,
        json!({"role": "agent", "agent_id": "agent-lyon-1"})
    );
}

#[tokio::test]
async fn the_token_list_over_http_shows_every_token_and_never_a_secret() {
    // Arrange
    let app = spawn_app().await;
    let viewer = app.token(Role::Viewer, None);
    let created: Value = app
        .post_json("/api/v1/tokens", &json!({"role": "viewer", "name": "wall"}))
        .await
        .json()
        .await
        .unwrap();

    // Act
    let response = app.get("/api/v1/tokens/").await;

    // Assert
    assert_eq!(
        response.status(),
        200,
        "with and without the trailing slash"
    );
    let text = response.text().await.unwrap();
    let list: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[1]["id"], created["id"]);
    assert_eq!(list[1]["name"], "wall");
    for secret in [viewer.as_str(), created["secret"].as_str().unwrap()] {
        assert!(!text.contains(secret), "a secret is listed: {text}");
    }
    assert!(!text.contains("secret"), "{text}");
}

#[tokio::test]
async fn revoking_over_http_stops_the_token_at_once_and_a_second_revoke_is_404() {
    // Arrange
    let app = spawn_app().await;
    let viewer = app.token(Role::Viewer, None);
    let id = app.token_id(&viewer);
    let client = client_with(Some(&viewer));
    assert_eq!(
        client
            .get(app.url("/api/v1/jobs/"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Act
    let response = app.delete(&format!("/api/v1/tokens/{id}")).await;

    // Assert
    assert_eq!(response.status(), 200);
    let revoked: Value = response.json().await.unwrap();
    assert!(revoked["revoked_at"].is_string(), "{revoked}");
    let refused = client.get(app.url("/api/v1/jobs/")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    for (case, path) in [
        ("again", format!("/api/v1/tokens/{id}")),
        ("unknown", "/api/v1/tokens/999".to_owned()),
    ] {
        let response = app.delete(&path).await;
        assert_eq!(response.status(), 404, "{case}");
    }
}

#[tokio::test]
async fn only_an_admin_token_creates_lists_or_revokes_tokens() {
    // Arrange
    let app = spawn_app().await;
    let viewer = app.token(Role::Viewer, None);
    let agent = app.token(Role::Agent, Some("agent-lyon-1"));
    let target = app.token_id(&viewer);
    let body = json!({"role": "admin", "name": "mine now"});

    for (who, secret) in [("viewer", &viewer), ("agent", &agent)] {
        let client = client_with(Some(secret));
        // Act
        let create = client
            .post(app.url("/api/v1/tokens"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let list = client.get(app.url("/api/v1/tokens")).send().await.unwrap();
        let revoke = client
            .delete(app.url(&format!("/api/v1/tokens/{target}")))
            .send()
            .await
            .unwrap();
        let current = client
            .get(app.url("/api/v1/tokens/current"))
            .send()
            .await
            .unwrap();

        // Assert
        for (what, response) in [("create", create), ("list", list), ("revoke", revoke)] {
            assert_eq!(response.status(), 403, "{who} {what}");
            let detail: Value = response.json().await.unwrap();
            assert!(
                detail["detail"]
                    .as_str()
                    .unwrap()
                    .contains("use an admin token"),
                "{who} {what}: {detail}"
            );
        }
        assert_eq!(current.status(), 200, "{who} may ask what it is");
        let current: Value = current.json().await.unwrap();
        assert_eq!(current["role"], who);
    }
    let anonymous = client_with(None)
        .get(app.url("/api/v1/tokens"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(app.stored_tokens().len(), 2, "nothing created");
    assert!(
        app.stored_tokens().iter().all(|t| t.revoked_at.is_none()),
        "nothing revoked"
    );
}

#[tokio::test]
async fn creating_a_token_over_http_refuses_a_bad_body_naming_the_field() {
    let app = spawn_app().await;
    // (case, body, loc, type)
    let cases = [
        (
            "no role",
            json!({"name": "x"}),
            json!(["body", "role"]),
            "missing",
        ),
        (
            "unknown role",
            json!({"role": "root", "name": "x"}),
            json!(["body", "role"]),
            "enum",
        ),
        (
            "no name",
            json!({"role": "viewer"}),
            json!(["body", "name"]),
            "missing",
        ),
        (
            "blank name",
            json!({"role": "viewer", "name": "  "}),
            json!(["body", "name"]),
            "string_too_short",
        ),
        (
            "agent without agent_id",
            json!({"role": "agent", "name": "x"}),
            json!(["body", "agent_id"]),
            "missing",
        ),
        (
            "agent with a null agent_id",
            json!({"role": "agent", "agent_id": null, "name": "x"}),
            json!(["body", "agent_id"]),
            "missing",
        ),
        (
            "viewer with an agent_id",
            json!({"role": "viewer", "agent_id": "a", "name": "x"}),
            json!(["body", "agent_id"]),
            "value_error",
        ),
        (
            "not an object",
            json!(["agent"]),
            json!(["body"]),
            "model_attributes_type",
        ),
    ];
    for (case, body, loc, kind) in cases {
        let response = app.post_json("/api/v1/tokens", &body).await;
        assert_422(response, loc, kind, case).await;
    }
    assert!(app.stored_tokens().is_empty(), "nothing created");
}
