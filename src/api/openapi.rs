//! The OpenAPI document, generated from the handlers' annotations, served at `/openapi.json`
//! and printed by `backup-monitor openapi`.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::OpenApi;

use super::{alerts, entries, health, jobs, status, AppState};
use crate::db::status::JobStatus;
use crate::domain::alert::{Alert, AlertKind};
use crate::domain::entry::{Entry, EntryStatus};
use crate::domain::job::Job;
use crate::domain::schedule::Frequency;
use crate::domain::status::JobState;
use crate::error::{FieldError, HttpError, LocItem, ValidationError};

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
        Job, jobs::JobCreate, jobs::JobUpdate, jobs::ExpectedPath, Frequency,
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

/// The whole document. PUT on a job is documented beside PATCH (same handler).
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
    doc
}

pub fn to_json() -> String {
    document()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(document()) }))
}
