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

use super::error::{FieldError, HttpError, LocItem, ValidationError};
use super::input::{self, Page};
use super::{alerts, companies, entries, health, jobs, ping, status, tokens, ApiState};
use crate::db::status::JobStatus;
use crate::db::tokens::TokenInfo;
use crate::domain::alert::{Alert, AlertKind, Delivery};
use crate::domain::auth::Role;
use crate::domain::entry::{self as entry, Entry, EntryStatus};
use crate::domain::job::{self as job, Job};
use crate::domain::schedule::{self, Frequency};
use crate::domain::status::JobState;
use crate::domain::{content, email, template};
use crate::service::companies::{Company, StateCounts};

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
        jobs::rotate_ping_key,
        jobs::snooze_jobs,
        entries::create_entry,
        entries::create_entries,
        entries::list_entries,
        entries::get_entry,
        entries::list_job_entries,
        health::healthz,
        status::list_status,
        companies::list_companies,
        alerts::list_alerts,
        tokens::create_token,
        tokens::list_tokens,
        tokens::revoke_token,
        tokens::current_token,
        ping::ping_success,
        ping::ping_action,
        ping::push,
    ),
    components(schemas(
        Job, jobs::JobOut, jobs::SnoozeRequest, jobs::Snoozed, ping::PushStatus, jobs::JobCreate, jobs::JobUpdate, jobs::EmailAddress, jobs::ExpectedPath, Frequency,
        Entry, entries::EntryCreate, entries::ReportStatus, EntryStatus,
        HttpError, ValidationError, FieldError, LocItem, health::Health,
        JobStatus, JobState, Alert, AlertKind, Delivery,
        companies::CompanyOut, Company, StateCounts,
        tokens::TokenCreate, tokens::CreatedToken, tokens::CurrentToken, TokenInfo, Role,
    )),
    tags(
        (name = "jobs", description = "Expected backup jobs"),
        (name = "entries", description = "Backup runs reported by agents"),
        (name = "status", description = "Each job's state"),
        (name = "alerts", description = "The alert outbox"),
        (name = "tokens", description = "Bearer tokens: created, listed and revoked by an administrator; the secret is shown once"),
        (name = "pings", description = "Ping URLs for the backup tools people already have (healthchecks.io's protocol, Uptime Kuma's push): no token, the key is the credential"),
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
            s.int(
                "max_duration_minutes",
                content::MAX_DURATION_MIN,
                Some(content::MAX_DURATION_MAX),
            );
            s.int("min_size_bytes", content::MIN_SIZE_MIN, None);
            s.int(
                "size_drop_percent",
                content::SIZE_DROP_MIN,
                Some(content::SIZE_DROP_MAX),
            );
            s.int(
                "repeat_every_minutes",
                job::REPEAT_MIN,
                Some(job::REPEAT_MAX),
            );
            s.text("snooze_reason", 0, job::SNOOZE_REASON_MAX, None);
        }
        if let Some(address) = Bounds::of(doc, &jobs::EmailAddress::name()).object {
            address.max_length = Some(email::ADDRESS_MAX);
        }
        let mut s = Bounds::of(doc, &entries::EntryCreate::name());
        s.text("backup_hash", 0, entry::HASH_MAX, None);
        s.int("backup_size_bytes", entry::SIZE_MIN, None);
        s.text("error_message", 0, entry::ERROR_MESSAGE_MAX, None);
        s.text("run_id", 0, entry::RUN_ID_MAX, None);

        let mut s = Bounds::of(doc, &tokens::TokenCreate::name());
        for field in ["name", "agent_id"] {
            s.text(field, job::NAME_MIN, job::NAME_MAX, Some(job::NAME_PATTERN));
        }

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
        let protected = path.starts_with("/api/v1/");
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

/// The seed's schedule fields: required of a new job without a `schedule` (DESIGN §11).
pub const SEED_SCHEDULE_FIELDS: [&str; 3] = [
    "expected_hour_utc",
    "expected_minute_utc",
    "backup_frequency",
];

/// The document as JSON, with what utoipa cannot say: the grace must be shorter than the
/// period (JSON Schema `if`/`then`), a tighter bound than [`schedule::GRACE_MAX`] for an
/// hourly job (under 60 minutes) and a daily one (under 1440), when no `schedule` is given
/// (a cron job's bound is the shortest interval between its slots, which no schema can
/// state: the 422 names it); and a new job needs either a `schedule` or the seed's fields.
pub fn document_json() -> serde_json::Value {
    let mut doc = serde_json::to_value(document()).unwrap_or_default();
    let rules: Vec<serde_json::Value> = Frequency::ALL
        .into_iter()
        .filter(|f| f.min_period_minutes() - 1 < schedule::GRACE_MAX)
        .map(|f| {
            serde_json::json!({
                "if": {
                    "properties": {
                        "backup_frequency": {"const": f.as_str()},
                        "schedule": {"type": "null"}
                    },
                    "required": ["backup_frequency"]
                },
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
    if let Some(schema) = doc
        .pointer_mut("/components/schemas/JobCreate")
        .and_then(serde_json::Value::as_object_mut)
    {
        schema.insert(
            "anyOf".to_owned(),
            serde_json::json!([
                {"required": ["schedule"], "properties": {"schedule": {"type": "string"}}},
                {"required": SEED_SCHEDULE_FIELDS}
            ]),
        );
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

/// The contract between the document and the validators: wherever the served document
/// states a bound, a value exactly at it passes the validator and one just past it is
/// refused, naming the field; enums list exactly the names the validator takes; nullable
/// and required say what the validator does with `null` and with an absent field.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::Utc;
    use serde_json::{json, Value};

    use super::*;
    use crate::api::input::{Choice, Query};
    use crate::domain::template::{PLACEHOLDERS, SEPARATORS, TIME_FIELDS};
    use crate::service::ServiceError;

    /// Properties that may go without any bound: every other one must state one. A cron
    /// expression and a time zone name have a grammar no length or pattern states: their
    /// parsers check them (see `schedule_and_timezone_are_checked_by_their_parsers`).
    const UNBOUNDED: [&str; 7] = [
        "is_active",
        "snoozed_until",
        "stale_hash_check",
        "backup_timestamp_utc",
        "expected_job_id",
        "schedule",
        "timezone",
    ];

    /// A valid job: monthly, so that every grace up to the maximum fits its period.
    fn job_body() -> Value {
        json!({
            "database_name": "erp",
            "agent_id_responsible": "agent-1",
            "company_name": "acme",
            "city": "Lyon",
            "expected_hour_utc": 2,
            "expected_minute_utc": 30,
            "backup_frequency": "monthly",
            "final_storage_path_template": "/b/{job_id}.dump",
        })
    }

    /// A valid body for a request schema, to change one field of.
    fn base(schema: &str) -> Value {
        match schema {
            "JobCreate" => job_body(),
            "JobUpdate" => json!({}),
            "EntryCreate" => json!({"expected_job_id": 1, "status": "success"}),
            _ => panic!("no validator for {schema}"),
        }
    }

    /// The field a refusal names: `["body", field, …]` or `["query", field]`.
    fn field_of(error: &FieldError) -> String {
        match error.loc.get(1) {
            Some(LocItem::Name(name)) => name.clone(),
            other => format!("{other:?}"),
        }
    }

    fn fields_of(error: ServiceError) -> Vec<String> {
        match error {
            ServiceError::Invalid(errors) => errors.iter().map(field_of).collect(),
            other => vec![format!("{other:?}")],
        }
    }

    /// What the validator behind a request schema says of a body: `Ok`, or the fields it
    /// refuses.
    fn validate(schema: &str, body: &Value) -> Result<(), Vec<String>> {
        let now = Utc::now();
        match schema {
            "JobCreate" => jobs::JobCreate::parse(body)
                .and_then(|job| job.into_job(60, now))
                .map(drop)
                .map_err(fields_of),
            "JobUpdate" => {
                // A grace of 1 fits any period, so no update conflicts with the stored job.
                let mut stored = job_body();
                stored["grace_minutes"] = json!(1);
                let job = jobs::JobCreate::parse(&stored)
                    .and_then(|job| job.into_job(60, now))
                    .unwrap();
                jobs::JobUpdate::parse(body)
                    .and_then(|update| update.apply(&job, now))
                    .map(drop)
                    .map_err(fields_of)
            }
            "EntryCreate" => entries::EntryCreate::parse(body, vec!["body".into()])
                .map(drop)
                .map_err(|errors| errors.iter().map(field_of).collect()),
            _ => panic!("no validator for {schema}"),
        }
    }

    /// The names the validator takes for an enum schema.
    fn choices(schema: &str) -> Vec<&'static str> {
        fn names<T: Choice>() -> Vec<&'static str> {
            T::ALL.iter().map(|v| v.as_str()).collect()
        }
        match schema {
            "Frequency" => names::<Frequency>(),
            "ReportStatus" => names::<entries::ReportStatus>(),
            "EntryStatus" => names::<EntryStatus>(),
            "JobState" => names::<JobState>(),
            _ => panic!("no validator for enum {schema}"),
        }
    }

    /// An address of exactly `len` characters that is otherwise valid.
    fn address_of(len: usize) -> String {
        let local = "a".repeat(email::LOCAL_PART_MAX);
        let domain = format!("{}.org", "b".repeat(len - local.len() - 1 - 4));
        format!("{local}@{domain}")
    }

    /// Whose bound is checked, and which way.
    fn expect(schema: &str, body: &Value, field: &str, pass: bool, what: &str) {
        let verdict = validate(schema, body);
        if pass {
            assert!(
                verdict.is_ok(),
                "{schema}.{field}: {what} should pass, refused {verdict:?}"
            );
        } else {
            let refused =
                verdict.expect_err(&format!("{schema}.{field}: {what} should be refused"));
            assert!(
                refused.iter().any(|f| f == field),
                "{schema}.{field}: {what} was refused for {refused:?}"
            );
        }
    }

    fn with(schema: &str, field: &str, value: Value) -> Value {
        let mut body = base(schema);
        body[field] = value;
        body
    }

    fn n(v: &Value) -> i64 {
        v.as_i64().unwrap()
    }

    fn len(v: &Value) -> usize {
        usize::try_from(v.as_u64().unwrap()).unwrap()
    }

    #[test]
    fn request_bodies_are_bounded_where_the_validators_are() {
        let doc = document_json();
        let schemas = &doc["components"]["schemas"];
        for schema in [
            jobs::JobCreate::name(),
            jobs::JobUpdate::name(),
            entries::EntryCreate::name(),
        ] {
            let schema = schema.as_ref();
            let mut required: Vec<&str> = schemas[schema]["required"]
                .as_array()
                .map(|r| r.iter().map(|v| v.as_str().unwrap()).collect())
                .unwrap_or_default();
            // The base bodies have no schedule: the seed's branch of `anyOf` applies.
            if let Some(branches) = schemas[schema]["anyOf"].as_array() {
                let seed = branches[1]["required"].as_array().unwrap();
                required.extend(seed.iter().map(|v| v.as_str().unwrap()));
            }
            let properties = schemas[schema]["properties"].as_object().unwrap();
            for (field, p) in properties {
                let field = field.as_str();
                let bounds = ["maxLength", "minLength", "pattern", "minimum", "maximum"];
                let bounded = bounds
                    .iter()
                    .chain(&["maxItems", "$ref"])
                    .any(|k| p.get(k).is_some());
                assert!(
                    bounded || UNBOUNDED.contains(&field),
                    "{schema}.{field} states no bound: is the validator's missing?"
                );
                let check = |value: Value, pass: bool, what: &str| {
                    expect(schema, &with(schema, field, value), field, pass, what);
                };
                if let Some(max) = p.get("maxLength").map(len) {
                    check(json!("a".repeat(max)), true, "maxLength");
                    check(json!("a".repeat(max + 1)), false, "maxLength + 1");
                }
                if let Some(min) = p.get("minLength").map(len) {
                    check(json!("a".repeat(min)), true, "minLength");
                    check(json!("a".repeat(min - 1)), false, "minLength - 1");
                }
                if let Some(pattern) = p.get("pattern") {
                    let published = if field == "final_storage_path_template" {
                        template::pattern()
                    } else {
                        job::NAME_PATTERN.to_owned()
                    };
                    assert_eq!(pattern, &json!(published), "{schema}.{field}");
                    check(json!(" \t "), false, "a blank value, against the pattern");
                }
                if let Some(min) = p.get("minimum").map(n) {
                    check(json!(min), true, "minimum");
                    check(json!(min - 1), false, "minimum - 1");
                }
                if let Some(max) = p.get("maximum").map(n) {
                    check(json!(max), true, "maximum");
                    check(json!(max + 1), false, "maximum + 1");
                }
                if let Some(max) = p.get("maxItems").map(len) {
                    let list = |k: usize| {
                        json!((0..k)
                            .map(|i| format!("u{i}@example.com"))
                            .collect::<Vec<_>>())
                    };
                    check(list(max), true, "maxItems");
                    check(list(max + 1), false, "maxItems + 1");
                    let item = p["items"]["$ref"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap();
                    let max = len(&schemas[item]["maxLength"]);
                    check(json!([address_of(max)]), true, "an item of maxLength");
                    check(
                        json!([address_of(max + 1)]),
                        false,
                        "an item of maxLength + 1",
                    );
                }
                if let Some(target) = p.get("$ref").and_then(Value::as_str) {
                    let target = target.rsplit('/').next().unwrap();
                    let names: Vec<&str> = schemas[target]["enum"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap())
                        .collect();
                    assert_eq!(names, choices(target), "{schema}.{field}: {target}");
                    for name in names {
                        check(json!(name), true, name);
                    }
                    check(json!("nope"), false, "a name not in the enum");
                    check(Value::Null, false, "null");
                }
                if let Some(types) = p.get("type").and_then(Value::as_array) {
                    let nullable = types.contains(&json!("null"));
                    check(Value::Null, nullable, "null");
                } else if p.get("type").is_some() {
                    check(Value::Null, false, "null");
                }
                let mut absent = base(schema);
                absent.as_object_mut().unwrap().remove(field);
                expect(
                    schema,
                    &absent,
                    field,
                    !required.contains(&field),
                    "absence",
                );
            }
        }
    }

    #[test]
    fn schedule_and_timezone_are_checked_by_their_parsers() {
        let cron = |schedule: Value, timezone: Value| {
            let mut body = job_body();
            body["schedule"] = schedule;
            body["timezone"] = timezone;
            body
        };
        let cases = [
            (cron(json!("30 2 * * *"), json!("Europe/Paris")), None),
            (cron(json!("30 2 * * *"), json!("UTC")), None),
            (cron(json!("61 2 * * *"), json!("UTC")), Some("schedule")),
            (cron(json!("0 0 31 2 *"), json!("UTC")), Some("schedule")),
            (
                cron(json!("30 2 * * *"), json!("Mars/Olympus")),
                Some("timezone"),
            ),
            (cron(Value::Null, json!("Europe/Paris")), Some("timezone")),
            (cron(json!(5), json!("UTC")), Some("schedule")),
        ];
        for (body, refused) in cases {
            let what = format!("{} {}", body["schedule"], body["timezone"]);
            match refused {
                None => expect("JobCreate", &body, "schedule", true, &what),
                Some(field) => expect("JobCreate", &body, field, false, &what),
            }
        }
        // Without the seed's fields, a schedule is enough.
        let mut body = cron(json!("0 22 * * MON-FRI"), json!("Europe/Paris"));
        for field in SEED_SCHEDULE_FIELDS {
            body.as_object_mut().unwrap().remove(field);
        }
        expect("JobCreate", &body, "schedule", true, "a schedule alone");
    }

    #[test]
    fn the_grace_rules_are_the_validators_limits() {
        let doc = document_json();
        for schema in [jobs::JobCreate::name(), jobs::JobUpdate::name()] {
            let schema = schema.as_ref();
            let rules = doc["components"]["schemas"][schema]["allOf"]
                .as_array()
                .unwrap();
            assert_eq!(rules.len(), 2, "hourly and daily");
            for rule in rules {
                let frequency = &rule["if"]["properties"]["backup_frequency"]["const"];
                let max = n(&rule["then"]["properties"]["grace_minutes"]["maximum"]);
                for (grace, pass) in [(max, true), (max + 1, false)] {
                    let mut body = with(schema, "backup_frequency", frequency.clone());
                    body["grace_minutes"] = json!(grace);
                    expect(
                        schema,
                        &body,
                        "grace_minutes",
                        pass,
                        &format!("{frequency} {grace}"),
                    );
                }
            }
        }
    }

    #[test]
    fn the_template_pattern_is_the_grammar_the_validator_parses() {
        let doc = document_json();
        let pattern = &doc["components"]["schemas"]["JobCreate"]["properties"]
            ["final_storage_path_template"]["pattern"];
        assert_eq!(pattern, &json!(template::pattern()));
        let field = "final_storage_path_template";
        let mut cases: Vec<(String, bool)> = vec![
            ("%%".into(), true),
            ("/b/{nope}".into(), false),
            ("/b/%q".into(), false),
            ("/b/{city".into(), false),
            (" ".into(), false),
        ];
        cases.extend(PLACEHOLDERS.map(|p| (format!("/b/{{{p}}}"), true)));
        cases.extend(TIME_FIELDS.map(|f| (format!("/b/%{f}"), true)));
        for s in SEPARATORS {
            cases.push((format!("a{s}..{s}b"), false));
            cases.push((format!("a{s}..b"), true));
        }
        for (template, pass) in cases {
            let body = with("JobCreate", field, json!(template));
            expect("JobCreate", &body, field, pass, &template);
        }
    }

    fn query_fields_of(error: crate::api::error::ApiError) -> Vec<String> {
        match error {
            crate::api::error::ApiError::Validation(errors) => {
                errors.iter().map(field_of).collect()
            }
            other => vec![format!("{other:?}")],
        }
    }

    /// What the validator of a listing says of one query string.
    fn validate_query(path: &str, query: &str) -> Result<(), Vec<String>> {
        if path.starts_with("/api/v1/entries/") {
            return entries::read_list_query(Some(query))
                .map(drop)
                .map_err(query_fields_of);
        }
        let mut q = Query::parse(Some(query));
        q.page();
        q.choice::<JobState>("state");
        q.finish().map_err(query_fields_of)
    }

    #[test]
    fn listing_parameters_are_bounded_where_the_validators_are() {
        let doc = document_json();
        let mut checked = 0;
        // The listings of the API; the ping routes' parameters are read by the ping protocol
        // (a one-line 400), tested in tests/api/pings.rs.
        let listings = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(path, _)| path.starts_with("/api/v1/"));
        for (path, item) in listings {
            let parameters = item["get"]["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for p in parameters.iter().filter(|p| p["in"] == "query") {
                let name = p["name"].as_str().unwrap();
                let schema = &p["schema"];
                let mut check = |value: String, pass: bool| {
                    let verdict = validate_query(path, &format!("{name}={value}"));
                    if pass {
                        assert!(verdict.is_ok(), "{path} {name}={value}: {verdict:?}");
                    } else {
                        assert_eq!(verdict, Err(vec![name.to_owned()]), "{path} {name}={value}");
                    }
                    checked += 1;
                };
                if let Some(min) = schema.get("minimum").map(n) {
                    check(min.to_string(), true);
                    check((min - 1).to_string(), false);
                }
                if let Some(max) = schema.get("maximum").map(n) {
                    check(max.to_string(), true);
                    check((max + 1).to_string(), false);
                }
                if let Some(pattern) = schema.get("pattern") {
                    assert_eq!(pattern, &json!(input::cursor_pattern()), "{path} {name}");
                    let longest = i64::MAX.to_string();
                    check(format!("{longest}_{longest}"), true);
                    check(format!("-{longest}_1"), true);
                    check(format!("{longest}0_1"), false);
                    check(format!("1_{longest}0"), false);
                    check("+1_1".to_owned(), false);
                    check("1_-1".to_owned(), false);
                }
                if let Some(target) = schema.get("$ref").and_then(Value::as_str) {
                    let target = target.rsplit('/').next().unwrap();
                    let names = &doc["components"]["schemas"][target]["enum"];
                    assert_eq!(names, &json!(choices(target)), "{path} {name}");
                    for name in choices(target) {
                        check(name.to_owned(), true);
                    }
                    check("nope".to_owned(), false);
                }
                if name == Page::LIMIT {
                    let description = p["description"].as_str().unwrap_or_default();
                    let range = format!("{}..={}", Page::MIN_LIMIT, Page::MAX_LIMIT);
                    let default = format!("default {}", Page::DEFAULT_LIMIT);
                    assert!(
                        description.is_empty()
                            || (description.contains(&range) && description.contains(&default)),
                        "{path}: {description:?} should say {range} and {default}"
                    );
                }
            }
        }
        assert!(checked > 30, "only {checked} bounds checked");
    }
}
