//! The API's own documentation: the OpenAPI document, Swagger UI and ReDoc, all local.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Value};

use crate::common::spawn_app;

/// Every route the service serves, with its methods, as the OpenAPI document must list it.
const ROUTES: &[(&str, &[&str])] = &[
    ("/api/v1/jobs/", &["get", "post"]),
    ("/api/v1/jobs/{job_id}", &["get", "put", "patch", "delete"]),
    ("/api/v1/jobs/{job_id}/expected_path", &["get"]),
    ("/api/v1/jobs/{job_id}/ping_key", &["post"]),
    ("/api/v1/jobs/snooze", &["post"]),
    ("/api/v1/entries/", &["get", "post"]),
    ("/api/v1/entries/batch", &["post"]),
    ("/api/v1/entries/{entry_id}", &["get"]),
    ("/api/v1/entries/by_job/{job_id}", &["get"]),
    ("/api/v1/status", &["get"]),
    ("/api/v1/companies", &["get"]),
    ("/api/v1/alerts", &["get"]),
    ("/api/v1/tokens", &["get", "post"]),
    ("/api/v1/tokens/{token_id}", &["delete"]),
    ("/api/v1/tokens/current", &["get"]),
    ("/healthz", &["get"]),
    ("/ping/{key}", &["get", "post", "head"]),
    ("/ping/{key}/{action}", &["get", "post", "head"]),
    ("/api/push/{key}", &["get", "post"]),
];

/// `src="…"` and `href="…"` values of a page.
fn references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            if let Some(end) = rest.find('"') {
                found.push(rest[..end].to_owned());
                rest = &rest[end..];
            }
        }
    }
    found
}

#[tokio::test]
async fn openapi_document_lists_every_route_with_its_methods() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, methods) in ROUTES {
        let item = &doc["paths"][path];
        assert!(item.is_object(), "{path} is not documented");
        for method in *methods {
            let op = &item[method];
            assert!(op.is_object(), "{method} {path} is not documented");
            assert!(
                op["responses"].is_object(),
                "{method} {path} has no responses"
            );
        }
    }
    let documented = doc["paths"].as_object().unwrap().len();
    assert_eq!(
        documented,
        ROUTES.len(),
        "undocumented or unknown paths in {:?}",
        doc["paths"].as_object().unwrap().keys().collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn openapi_document_describes_bodies_errors_and_parameters() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let create = &doc["paths"]["/api/v1/jobs/"]["post"];
    assert!(create["requestBody"].is_object());
    for code in ["201", "413", "422"] {
        assert!(
            create["responses"][code].is_object(),
            "POST jobs lacks {code}"
        );
    }
    let get = &doc["paths"]["/api/v1/jobs/{job_id}"]["get"];
    assert!(get["responses"]["404"].is_object());
    let params: Vec<&str> = doc["paths"]["/api/v1/entries/"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in ["status", "since", "until", "skip", "limit"] {
        assert!(
            params.contains(&name),
            "entries listing lacks parameter {name}: {params:?}"
        );
    }
    let job = &doc["components"]["schemas"]["JobCreate"];
    // Without a `schedule` (DESIGN §11), the seed's schedule fields are required too: the
    // second branch of `anyOf`.
    let required: Vec<&str> = job["required"]
        .as_array()
        .unwrap()
        .iter()
        .chain(job["anyOf"][1]["required"].as_array().unwrap())
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        required.len(),
        8,
        "the seed's 8 fields are required: {required:?}"
    );
    assert_eq!(job["anyOf"][0]["required"], json!(["schedule"]));
    assert_eq!(job["properties"]["expected_hour_utc"]["maximum"], 23);
}

#[tokio::test]
async fn every_reference_in_the_openapi_document_resolves() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let text = doc.to_string();
    let mut rest = text.as_str();
    let mut count = 0;
    while let Some(i) = rest.find("\"$ref\":\"#/components/schemas/") {
        rest = &rest[i + "\"$ref\":\"#/components/schemas/".len()..];
        let name = &rest[..rest.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref to {name}"
        );
        count += 1;
    }
    assert!(
        count > 10,
        "expected schemas to be referenced, found {count}"
    );
}

#[tokio::test]
async fn docs_pages_load_only_assets_of_this_host() {
    let app = spawn_app().await;
    for page in ["/docs", "/redoc", "/docs/", "/redoc/"] {
        let response = app.get(page).await;
        assert_eq!(response.status(), 200, "{page}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let html = response.text().await.unwrap();
        let refs = references(&html);
        assert!(
            refs.iter().any(|r| r.ends_with(".js")),
            "{page} loads no script: {refs:?}"
        );
        for r in refs {
            assert!(
                r.starts_with('/') && !r.starts_with("//"),
                "{page} references {r}, not a local path"
            );
            let status = app.get(&r).await.status();
            assert_eq!(status, 200, "{page} references {r}, which answers {status}");
        }
        assert!(!html.contains("://"), "{page} names a remote URL");
    }
}

#[tokio::test]
async fn swagger_ui_is_pointed_at_the_local_document() {
    let app = spawn_app().await;
    let html = app.get("/docs").await.text().await.unwrap();
    let init = references(&html)
        .into_iter()
        .find(|r| r.contains("init"))
        .expect("an init script");
    let js = app.get(&init).await.text().await.unwrap();
    assert!(js.contains("/openapi.json"), "{js}");
    let redoc = app.get("/redoc").await.text().await.unwrap();
    assert!(redoc.contains("spec-url=\"/openapi.json\""), "{redoc}");
}

#[tokio::test]
async fn vendored_assets_carry_their_licences() {
    let app = spawn_app().await;
    for licence in [
        "/assets/vendor/swagger-ui/LICENSE",
        "/assets/vendor/redoc/LICENSE",
    ] {
        let response = app.get(licence).await;
        assert_eq!(response.status(), 200, "{licence}");
        assert!(
            response.text().await.unwrap().len() > 500,
            "{licence} is empty"
        );
    }
}
