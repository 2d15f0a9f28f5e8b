//! The OpenAPI document, generated from the handlers' annotations, served at `/openapi.json`
//! and printed by `backup-monitor openapi`.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Ref, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::OpenApi;

use super::error::{FieldError, HttpError, LocItem, ValidationError};
use super::{alerts, entries, health, jobs, status, ApiState};
use crate::db::status::JobStatus;
use crate::domain::alert::{Alert, AlertKind};
use crate::domain::entry::{Entry, EntryStatus};
use crate::domain::job::Job;
use crate::domain::schedule::Frequency;
use crate::domain::status::JobState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "backup-monitor",
        description = "Know, every morning, that every database backup of every company and site really happened.",
    ),
    paths(
        jobs::create_job,
        jobs::list_jobs,
        jobs::get_job,
        jobs::update_job,
        jobs::delete_job,
        jobs::expected_path,
        entries::create_entry,
        entries::create_entries,
        entries::list_entries,
        entries::get_entry,
        entries::list_job_entries,
        health::healthz,
        status::list_status,
        alerts::list_alerts,
    ),
    components(schemas(
        Job, jobs::JobOut, jobs::JobCreate, jobs::JobUpdate, jobs::EmailAddress, jobs::ExpectedPath, Frequency,
        Entry, entries::EntryCreate, entries::ReportStatus, EntryStatus,
        HttpError, ValidationError, FieldError, LocItem, health::Health,
        JobStatus, JobState, Alert, AlertKind,
    )),
    tags(
        (name = "jobs", description = "Expected backup jobs"),
        (name = "entries", description = "Backup runs reported by agents"),
        (name = "status", description = "Each job's state"),
        (name = "alerts", description = "The alert outbox"),
        (name = "health", description = "Liveness"),
    )
)]
struct ApiDoc;

/// The whole document. PUT on a job is documented beside PATCH (same handler); every
/// `/api/v1` operation needs a bearer token and may answer 401, 403 or 429.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    if let Some(item) = doc.paths.paths.get_mut("/api/v1/jobs/{job_id}") {
        if let Some(patch) = item.patch.clone() {
            let mut put = patch;
            put.operation_id = Some("replace_job_fields".to_owned());
            put.summary = Some("Update a job (PUT, same as PATCH)".to_owned());
            item.put = Some(put);
        }
    }
    secure(&mut doc);
    doc
}

/// An error answer with an `HttpError` body and, if given, one documented header.
fn error_response(description: &str, header: Option<(&str, Type)>) -> RefOr<Response> {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("HttpError")))
            .build(),
    );
    if let Some((name, kind)) = header {
        response = response.header(
            name,
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(kind)))
                .build(),
        );
    }
    RefOr::T(response.build())
}

fn secure(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A token from `backup-monitor token create` (or the first-start admin token file)",
                ))
                .build(),
        ),
    );
    let unauthorized = error_response(
        "No valid token (the answer carries `WWW-Authenticate: Bearer`)",
        Some(("WWW-Authenticate", Type::String)),
    );
    let too_many = error_response(
        "Rate limit exceeded; retry after the given seconds",
        Some(("Retry-After", Type::Integer)),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let protected = path.starts_with("/api/");
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            op.responses
                .responses
                .insert("429".to_owned(), too_many.clone());
            if protected {
                op.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
                op.responses
                    .responses
                    .insert("401".to_owned(), unauthorized.clone());
                op.responses.responses.insert(
                    "403".to_owned(),
                    error_response(
                        "The token's role may not do this, or the job belongs to another agent",
                        None,
                    ),
                );
            }
        }
    }
}

/// The document as JSON, with what utoipa cannot say: the grace of an hourly job must be
/// under 60 minutes and that of a daily job under 1440 (JSON Schema `if`/`then`).
pub fn document_json() -> serde_json::Value {
    let mut doc = serde_json::to_value(document()).unwrap_or_default();
    let rules = serde_json::json!([
        {
            "if": {"properties": {"backup_frequency": {"const": "hourly"}}, "required": ["backup_frequency"]},
            "then": {"properties": {"grace_minutes": {"maximum": 59}}}
        },
        {
            "if": {"properties": {"backup_frequency": {"const": "daily"}}, "required": ["backup_frequency"]},
            "then": {"properties": {"grace_minutes": {"maximum": 1439}}}
        }
    ]);
    for name in ["JobCreate", "JobUpdate"] {
        if let Some(schema) = doc
            .pointer_mut(&format!("/components/schemas/{name}"))
            .and_then(serde_json::Value::as_object_mut)
        {
            schema.insert("allOf".to_owned(), rules.clone());
        }
    }
    doc
}

pub fn to_json() -> String {
    serde_json::to_string_pretty(&document_json())
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub fn router() -> Router<ApiState> {
    let doc = std::sync::Arc::new(document_json());
    Router::new().route(
        "/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    )
}
