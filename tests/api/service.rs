//! The service as a whole: health, unknown routes, CORS.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};

use crate::common::{spawn_app, spawn_app_with};

#[tokio::test]
async fn health_check_answers_when_the_database_does() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(app.get("/healthz/").await.status(), 200);
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_fastapi_shape() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/nothing-here").await;
    assert_eq!(response.status(), 404);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"detail": "Not Found"})
    );
    let response = app.delete("/healthz").await;
    assert_eq!(response.status(), 405);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"detail": "Method Not Allowed"})
    );
}

#[tokio::test]
async fn no_cors_headers_without_configured_origins() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/jobs/"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[tokio::test]
async fn configured_origins_are_allowed_and_others_are_not() {
    let app = spawn_app_with(|s| s.server.cors_origins = vec!["https://dash.example".into()]).await;
    let allowed = app
        .client
        .get(app.url("/api/v1/jobs/"))
        .header("origin", "https://dash.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://dash.example"
    );
    let exposed = allowed.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("x-total-count"), "{exposed}");
    assert!(allowed
        .headers()
        .get("access-control-allow-credentials")
        .is_none());

    let other = app
        .client
        .get(app.url("/api/v1/jobs/"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/entries/"))
        .header("origin", "https://dash.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
}

#[tokio::test]
async fn a_wildcard_origin_never_comes_with_credentials() {
    let app = spawn_app_with(|s| s.server.cors_origins = vec!["*".into()]).await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://anywhere.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    assert!(response
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
}

#[tokio::test]
async fn graceful_stop_finishes_and_the_data_stays() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("kept.db").display());
    let first = spawn_app_with(|s| s.database.url = url.clone()).await;
    let job = first.create_job(json!({})).await;
    first.stop().await;

    let second = spawn_app_with(|s| s.database.url = url.clone()).await;
    let response = second.get(&format!("/api/v1/jobs/{}", job["id"])).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap(), job);
}
