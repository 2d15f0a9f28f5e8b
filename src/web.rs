//! Web pages served from the binary: the landing page (`/`), the API docs (`/docs`: Swagger UI, `/redoc`: ReDoc) and every file under `assets/` at `/assets/...`.
//!
//! Everything is embedded with rust-embed, so the service needs no files on disk and no CDN.
//! Responses carry an `ETag` (the file's SHA-256) and answer a matching `If-None-Match` with 304.
//! Vendored files (`assets/vendor/`) may be cached for an hour; our own files are revalidated
//! every time (`no-cache`), so a new release shows at once.

use axum::{
    extract::Path,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "assets/"]
struct Assets;

/// Caching of the vendored third-party files, which change only with their version.
const VENDOR_CACHE_CONTROL: &str = "public, max-age=3600";
/// Caching of our own pages, scripts and styles: always revalidate (cheap thanks to the ETag).
const OWN_CACHE_CONTROL: &str = "no-cache";
const NOT_FOUND_BODY: &str = r#"{"detail":"Not Found"}"#;

/// Routes for the landing page, the API docs pages and the embedded assets.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index_page))
        .route("/docs", get(docs_page))
        .route("/redoc", get(redoc_page))
        .route("/assets/{*path}", get(asset))
}

/// Names of all embedded files, relative to `assets/` (as served under `/assets/`).
pub fn asset_paths() -> Vec<String> {
    let mut paths: Vec<String> = Assets::iter().map(|path| path.into_owned()).collect();
    paths.sort();
    paths
}

async fn index_page(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn docs_page(headers: HeaderMap) -> Response {
    serve("docs.html", &headers)
}

async fn redoc_page(headers: HeaderMap) -> Response {
    serve("redoc.html", &headers)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// Serves one embedded file. Only names rust-embed knows are found, so `..` and
/// the like simply give 404.
fn serve(path: &str, request_headers: &HeaderMap) -> Response {
    let Some(file) = Assets::get(path) else {
        return not_found();
    };
    let etag = etag_of(&file.metadata.sha256_hash());
    let cache_control = if path.starts_with("vendor/") {
        VENDOR_CACHE_CONTROL
    } else {
        OWN_CACHE_CONTROL
    };

    if if_none_match_hits(request_headers, &etag) {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::CACHE_CONTROL, cache_control.to_owned()),
            ],
        )
            .into_response();
    }

    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type(path).to_owned()),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache_control.to_owned()),
        ],
        file.data,
    )
        .into_response()
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        NOT_FOUND_BODY,
    )
        .into_response()
}

/// A strong entity tag: the hex SHA-256 of the content, in quotes.
fn etag_of(hash: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut tag = String::with_capacity(hash.len() * 2 + 2);
    tag.push('"');
    for byte in hash {
        tag.push(char::from(HEX[usize::from(byte >> 4)]));
        tag.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    tag.push('"');
    tag
}

/// Whether `If-None-Match` names our tag (weak comparison, as RFC 9110 asks for
/// this header) or is `*`.
fn if_none_match_hits(request_headers: &HeaderMap, etag: &str) -> bool {
    request_headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == etag)
}

fn content_type(path: &str) -> &'static str {
    let extension = std::path::Path::new(path)
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("txt") => "text/plain; charset=utf-8",
        // LICENSE, NOTICE, VERSION and the like.
        None => "text/plain; charset=utf-8",
        Some(_) => mime_guess::from_path(path)
            .first_raw()
            .unwrap_or("application/octet-stream"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::{
        body::{to_bytes, Body},
        http::{HeaderValue, Request},
    };
    use tower::ServiceExt;

    const PAGES: [(&str, &str); 3] = [
        ("/", "index.html"),
        ("/docs", "docs.html"),
        ("/redoc", "redoc.html"),
    ];
    /// Page, script and style of the dashboard together, uncompressed: no framework, no
    /// vendored library (about 27 KB gzipped, with the alerts, runs and durations of
    /// DESIGN §10 and the job form, tokens and ping URLs of §15).
    const DASHBOARD_BUDGET_BYTES: usize = 96 * 1024;
    /// Routes other parts of the service answer, which our pages may link to.
    const KNOWN_ROUTES: [&str; 5] = ["/", "/openapi.json", "/docs", "/redoc", "/healthz"];

    async fn get_with(uri: &str, if_none_match: Option<&str>) -> Response {
        let mut request = Request::builder().uri(uri);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        let request = match request.body(Body::empty()) {
            Ok(request) => request,
            Err(error) => panic!("cannot build a request for {uri}: {error}"),
        };
        match router::<()>().oneshot(request).await {
            Ok(response) => response,
            Err(error) => match error {},
        }
    }

    async fn get(uri: &str) -> Response {
        get_with(uri, None).await
    }

    async fn body_text(response: Response) -> String {
        match to_bytes(response.into_body(), 16 * 1024 * 1024).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(error) => panic!("cannot read the body: {error}"),
        }
    }

    fn header_of(response: &Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(&name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    fn page_source(file: &str) -> String {
        match Assets::get(file) {
            Some(embedded) => String::from_utf8_lossy(&embedded.data).into_owned(),
            None => panic!("{file} is not embedded"),
        }
    }

    /// Values of every `name="..."` attribute (name preceded by whitespace).
    fn attribute_values<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
        let needle = format!("{name}=\"");
        let mut values = Vec::new();
        let mut rest = html;
        while let Some(at) = rest.find(&needle) {
            let preceded_by_space = rest[..at]
                .chars()
                .next_back()
                .is_some_and(char::is_whitespace);
            rest = &rest[at + needle.len()..];
            let Some(end) = rest.find('"') else { break };
            if preceded_by_space {
                values.push(&rest[..end]);
            }
            rest = &rest[end + 1..];
        }
        values
    }

    #[tokio::test]
    async fn the_three_pages_are_served_as_utf8_html_that_is_always_revalidated() {
        for (route, file) in PAGES {
            let response = get(route).await;
            assert_eq!(response.status(), StatusCode::OK, "{route}");
            assert_eq!(
                header_of(&response, header::CONTENT_TYPE),
                "text/html; charset=utf-8",
                "{route}"
            );
            assert_eq!(
                header_of(&response, header::CACHE_CONTROL),
                "no-cache",
                "{route}"
            );
            assert_eq!(body_text(response).await, page_source(file), "{route}");
        }
    }

    #[tokio::test]
    async fn every_src_and_href_in_the_pages_is_a_local_embedded_asset_or_a_known_route() {
        let assets = asset_paths();
        for (_, file) in PAGES {
            let html = page_source(file);
            let links: Vec<&str> = ["src", "href"]
                .iter()
                .flat_map(|name| attribute_values(&html, name))
                .collect();
            assert!(!links.is_empty(), "{file} links to nothing");
            for link in links {
                assert!(
                    link.starts_with('/') && !link.starts_with("//"),
                    "{file}: {link} is not a local absolute path"
                );
                // A view of the dashboard (`/#tokens`) is a fragment of a known route.
                let route = link.split('#').next().unwrap_or(link);
                let known = match route.strip_prefix("/assets/") {
                    Some(asset) => assets.iter().any(|path| path == asset),
                    None => KNOWN_ROUTES.contains(&route),
                };
                assert!(
                    known,
                    "{file}: {link} is neither an embedded asset nor a known route"
                );
            }
        }
    }

    #[tokio::test]
    async fn the_pages_have_no_inline_script_or_style() {
        for (_, file) in PAGES {
            let html = page_source(file).to_ascii_lowercase();
            assert!(!html.contains("<style"), "{file} has a <style> block");
            assert!(
                attribute_values(&html, "style").is_empty(),
                "{file} has a style attribute"
            );
            assert!(
                !html.contains("javascript:"),
                "{file} has a javascript: URL"
            );
            let event_handler = html.split_whitespace().find(|token| {
                token.strip_prefix("on").is_some_and(|rest| {
                    rest.split_once('=')
                        .is_some_and(|(name, _)| name.chars().all(|c| c.is_ascii_alphabetic()))
                })
            });
            assert_eq!(event_handler, None, "{file} has an inline event handler");
            for script in html.split("<script").skip(1) {
                let (tag, after) = script.split_once('>').unwrap_or((script, ""));
                assert!(tag.contains(" src=\"/"), "{file} has an inline <script>");
                assert!(
                    after.starts_with("</script>"),
                    "{file} has a <script src> with a body"
                );
            }
        }
    }

    #[test]
    fn the_dashboard_asks_for_a_token_in_a_form_and_links_to_the_api_docs() {
        let html = page_source("index.html");
        assert!(html.contains(r#"<input id="token" name="token" type="password""#));
        // Without its script the form must not send the token anywhere in a URL.
        assert!(html.contains(r#"<form id="login-form" method="post""#));
        assert!(html.contains(r#"role="status" aria-live="polite""#));
        assert!(html.contains(r#"<script type="module" src="/assets/dashboard/dashboard.js">"#));
        let links = attribute_values(&html, "href");
        for route in ["/docs", "/redoc"] {
            assert!(links.contains(&route), "no link to {route}");
        }
    }

    #[test]
    fn the_dashboard_script_never_turns_api_text_into_markup() {
        let script = page_source("dashboard/dashboard.js");
        for sink in [
            ".innerHTML",
            ".outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
            "createContextualFragment",
        ] {
            assert!(!script.contains(sink), "dashboard.js uses {sink}");
        }
        assert!(script.contains(r#"`Bearer ${token}`"#));
        assert!(script.contains("localStorage"));
        assert!(script.contains("history.replaceState"));
    }

    #[test]
    fn the_dashboard_stays_light() {
        let weight: usize = [
            "index.html",
            "dashboard/dashboard.js",
            "dashboard/dashboard.css",
        ]
        .iter()
        .map(|file| page_source(file).len())
        .sum();
        assert!(
            weight <= DASHBOARD_BUDGET_BYTES,
            "the dashboard weighs {weight} bytes, over its {DASHBOARD_BUDGET_BYTES}"
        );
    }

    #[tokio::test]
    async fn redoc_reads_the_spec_from_openapi_json_and_swagger_skips_the_online_validator() {
        assert!(page_source("redoc.html").contains(r#"<redoc spec-url="/openapi.json">"#));
        let init = page_source("docs-init.js");
        assert!(init.contains(r#"url: "/openapi.json""#));
        assert!(init.contains("validatorUrl: null"));
    }

    #[tokio::test]
    async fn vendored_scripts_are_served_as_javascript_and_cached_for_an_hour() {
        for path in [
            "/assets/vendor/swagger-ui/swagger-ui-bundle.js",
            "/assets/vendor/redoc/redoc.standalone.js",
        ] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(
                header_of(&response, header::CONTENT_TYPE),
                "text/javascript; charset=utf-8",
                "{path}"
            );
            assert_eq!(
                header_of(&response, header::CACHE_CONTROL),
                "public, max-age=3600",
                "{path}"
            );
            let body = body_text(response).await;
            assert!(body.len() > 100_000, "{path} looks truncated");
            assert!(
                !body.contains("//# sourceMappingURL=redoc.standalone.js.map")
                    && !body.contains("//# sourceMappingURL=swagger-ui-bundle.js.map"),
                "{path} still points at a source map we do not ship"
            );
        }
    }

    #[tokio::test]
    async fn other_assets_get_their_own_content_types() {
        for (path, expected) in [
            ("/assets/docs-init.js", "text/javascript; charset=utf-8"),
            ("/assets/site.css", "text/css; charset=utf-8"),
            (
                "/assets/vendor/swagger-ui/swagger-ui.css",
                "text/css; charset=utf-8",
            ),
            ("/assets/favicon.svg", "image/svg+xml"),
            ("/assets/vendor/redoc/LICENSE", "text/plain; charset=utf-8"),
            ("/assets/index.html", "text/html; charset=utf-8"),
            (
                "/assets/dashboard/dashboard.js",
                "text/javascript; charset=utf-8",
            ),
            ("/assets/dashboard/dashboard.css", "text/css; charset=utf-8"),
        ] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(
                header_of(&response, header::CONTENT_TYPE),
                expected,
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn sending_back_the_etag_gives_304_without_a_body() {
        let first = get("/assets/vendor/swagger-ui/swagger-ui.css").await;
        let etag = header_of(&first, header::ETAG).to_owned();
        assert!(
            etag.len() == 66 && etag.starts_with('"') && etag.ends_with('"'),
            "unexpected ETag {etag}"
        );

        for sent in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"other\", {etag}"),
            "*".to_owned(),
        ] {
            let again = get_with("/assets/vendor/swagger-ui/swagger-ui.css", Some(&sent)).await;
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{sent}");
            assert_eq!(header_of(&again, header::ETAG), etag);
            assert_eq!(
                header_of(&again, header::CACHE_CONTROL),
                "public, max-age=3600"
            );
            assert!(body_text(again).await.is_empty());
        }

        let page = get("/docs").await;
        let page_etag = header_of(&page, header::ETAG).to_owned();
        let revalidated = get_with("/docs", Some(&page_etag)).await;
        assert_eq!(revalidated.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(header_of(&revalidated, header::CACHE_CONTROL), "no-cache");
    }

    #[tokio::test]
    async fn a_stale_etag_gets_the_full_file() {
        let response = get_with("/assets/docs-init.js", Some("\"stale\"")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(body_text(response).await.contains("SwaggerUIBundle"));
    }

    #[tokio::test]
    async fn an_unknown_asset_gets_a_json_404() {
        let response = get("/assets/vendor/nothing-here.js").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE),
            Some(&HeaderValue::from_static("application/json"))
        );
        assert_eq!(body_text(response).await, r#"{"detail":"Not Found"}"#);
    }

    #[tokio::test]
    async fn path_traversal_attempts_find_nothing() {
        for path in [
            "/assets/../Cargo.toml",
            "/assets/vendor/../../src/web.rs",
            "/assets/..%2FCargo.toml",
            "/assets/%2E%2E/%2E%2E/Cargo.toml",
            "/assets//etc/passwd",
            "/assets/%2Fetc%2Fpasswd",
        ] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[test]
    fn asset_paths_lists_the_pages_and_the_vendored_bundles() {
        let paths = asset_paths();
        for expected in [
            "index.html",
            "docs.html",
            "redoc.html",
            "docs-init.js",
            "dashboard/dashboard.js",
            "dashboard/dashboard.css",
            "vendor/swagger-ui/swagger-ui-bundle.js",
            "vendor/swagger-ui/swagger-ui.css",
            "vendor/swagger-ui/LICENSE",
            "vendor/swagger-ui/VERSION",
            "vendor/redoc/redoc.standalone.js",
            "vendor/redoc/LICENSE",
            "vendor/redoc/VERSION",
        ] {
            assert!(paths.iter().any(|path| path == expected), "{expected}");
        }
        assert!(
            paths.iter().all(|path| !path.ends_with(".map")),
            "source maps are not shipped"
        );
    }
}
