//! The OpenAPI document, generated from the handlers' annotations, served at `/openapi.json`
//! and printed by `backup-monitor openapi`.

use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Object, ObjectBuilder, Ref, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, Number, OpenApi, ToSchema};

use super::input::{self, Page};
use super::{alerts, entries, health, jobs, status, AppState};
use crate::db::status::JobStatus;
use crate::domain::alert::{Alert, AlertKind};
use crate::domain::entry::{self as entry, Entry, EntryStatus};
use crate::domain::job::{self as job, Job};
use crate::domain::schedule::{self, Frequency};
use crate::domain::status::JobState;
use crate::domain::{email, template};
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
    ),
    modifiers(&RequestBounds),
)]
struct ApiDoc;

/// The bounds and patterns of the request schemas and the listings' parameters, from the
/// constants the validators check: utoipa's `#[schema]` attributes take only literals, so
/// they are written here rather than copied beside each field.
struct RequestBounds;

impl Modify for RequestBounds {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use schedule::{
            DAY_OF_MONTH_MAX, DAY_OF_MONTH_MIN, GRACE_MAX, GRACE_MIN, HOUR_MAX, HOUR_MIN,
            MINUTE_MAX, MINUTE_MIN, WEEKDAY_MAX, WEEKDAY_MIN,
        };
        let template_pattern = template::pattern();
        for name in [jobs::JobCreate::name(), jobs::JobUpdate::name()] {
            let mut s = Bounds::of(doc, &name);
            for field in [
                "database_name",
                "agent_id_responsible",
                "company_name",
                "city",
            ] {
                s.text(field, job::NAME_MIN, job::NAME_MAX, Some(job::NAME_PATTERN));
            }
            s.int("expected_hour_utc", HOUR_MIN, Some(HOUR_MAX));
            s.int("expected_minute_utc", MINUTE_MIN, Some(MINUTE_MAX));
            s.text(
                "final_storage_path_template",
                template::TEMPLATE_MIN,
                template::TEMPLATE_MAX,
                Some(&template_pattern),
            );
            s.int("expected_weekday", WEEKDAY_MIN, Some(WEEKDAY_MAX));
            s.int(
                "expected_day_of_month",
                DAY_OF_MONTH_MIN,
                Some(DAY_OF_MONTH_MAX),
            );
            s.int("grace_minutes", GRACE_MIN, Some(GRACE_MAX));
            s.items("notify_emails", job::NOTIFY_EMAILS_MAX);
        }
        if let Some(address) = Bounds::of(doc, &jobs::EmailAddress::name()).object {
            address.max_length = Some(email::ADDRESS_MAX);
        }
        let mut s = Bounds::of(doc, &entries::EntryCreate::name());
        s.text("backup_hash", 0, entry::HASH_MAX, None);
        s.int("backup_size_bytes", entry::SIZE_MIN, None);
        s.text("error_message", 0, entry::ERROR_MESSAGE_MAX, None);

        let cursor_pattern = input::cursor_pattern();
        let operations = doc
            .paths
            .paths
            .values_mut()
            .filter_map(|item| item.get.as_mut());
        for parameter in operations.flat_map(|op| op.parameters.iter_mut().flatten()) {
            let RefOr::T(parameter) = parameter else {
                continue;
            };
            let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() else {
                continue;
            };
            match parameter.name.as_str() {
                Page::SKIP => schema.minimum = Some(Page::MIN_SKIP.into()),
                Page::LIMIT => {
                    schema.minimum = Some(Page::MIN_LIMIT.into());
                    schema.maximum = Some(Page::MAX_LIMIT.into());
                }
                "cursor" => schema.pattern = Some(cursor_pattern.clone()),
                _ => {}
            }
        }
    }
}

/// Writes bounds into the properties of one component schema.
struct Bounds<'a> {
    object: Option<&'a mut Object>,
}

impl<'a> Bounds<'a> {
    fn of(doc: &'a mut utoipa::openapi::OpenApi, name: &str) -> Self {
        let object = doc
            .components
            .as_mut()
            .and_then(|c| c.schemas.get_mut(name))
            .and_then(|schema| match schema {
                RefOr::T(Schema::Object(object)) => Some(object),
                _ => None,
            });
        debug_assert!(object.is_some(), "no object schema {name}");
        Self { object }
    }

    fn property(&mut self, field: &str) -> Option<&mut Schema> {
        let property = self
            .object
            .as_mut()
            .and_then(|o| o.properties.get_mut(field))
            .and_then(|p| match p {
                RefOr::T(schema) => Some(schema),
                RefOr::Ref(_) => None,
            });
        debug_assert!(property.is_some(), "no property {field}");
        property
    }

    /// A string of `min..=max` characters (`min` 0: no lower bound) matching `pattern`.
    fn text(&mut self, field: &str, min: usize, max: usize, pattern: Option<&str>) {
        if let Some(Schema::Object(s)) = self.property(field) {
            s.min_length = (min > 0).then_some(min);
            s.max_length = Some(max);
            s.pattern = pattern.map(str::to_owned);
        }
    }

    fn int<N: Into<Number>>(&mut self, field: &str, min: N, max: Option<N>) {
        if let Some(Schema::Object(s)) = self.property(field) {
            s.minimum = Some(min.into());
            s.maximum = max.map(Into::into);
        }
    }

    fn items(&mut self, field: &str, max: usize) {
        if let Some(Schema::Array(s)) = self.property(field) {
            s.max_items = Some(max);
        }
    }
}

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

/// The document as JSON, with what utoipa cannot say: the grace must be shorter than the
/// period (JSON Schema `if`/`then`), a tighter bound than [`schedule::GRACE_MAX`] for an
/// hourly job (under 60 minutes) and a daily one (under 1440).
pub fn document_json() -> serde_json::Value {
    let mut doc = serde_json::to_value(document()).unwrap_or_default();
    let rules: Vec<serde_json::Value> = Frequency::ALL
        .into_iter()
        .filter(|f| f.min_period_minutes() - 1 < schedule::GRACE_MAX)
        .map(|f| {
            serde_json::json!({
                "if": {"properties": {"backup_frequency": {"const": f.as_str()}}, "required": ["backup_frequency"]},
                "then": {"properties": {"grace_minutes": {"maximum": f.min_period_minutes() - 1}}}
            })
        })
        .collect();
    let rules = serde_json::Value::Array(rules);
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

pub fn router() -> Router<AppState> {
    let doc = std::sync::Arc::new(document_json());
    Router::new().route(
        "/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { Json(doc.as_ref().clone()) }
        }),
    )
}
