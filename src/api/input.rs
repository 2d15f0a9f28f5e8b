//! Reading requests: JSON bodies, query strings and path ids, checked field by field so that
//! every problem comes back at once as a FastAPI-shaped 422 naming where it is.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::{header, request::Parts, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::domain::entry::EntryStatus;
use crate::domain::schedule::Frequency;
use crate::domain::status::JobState;
use crate::domain::{boolean, email, time};
use crate::error::{ApiError, FieldError, LocItem};

/// A closed set of names a field or parameter takes: an enum's variants, each with its
/// wire name. The validator accepts exactly these and lists them when it refuses a value,
/// so the words come from the enum and nowhere else.
pub trait Choice: Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
}

/// [`Choice`] for enums that carry an `ALL` array and an `as_str`.
macro_rules! choice_from_all {
    ($($t:ty),* $(,)?) => {$(
        impl Choice for $t {
            const ALL: &'static [Self] = &<$t>::ALL;
            fn as_str(self) -> &'static str {
                <$t>::as_str(self)
            }
        }
    )*};
}

choice_from_all!(
    Frequency,
    EntryStatus,
    JobState,
    super::entries::ReportStatus
);

/// Whether a field must be there, and whether `null` stands for "not given".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Absent: "Field required"; `null`: a type error.
    Required,
    /// Absent: not given; `null`: a type error.
    Optional,
    /// Absent or `null`: not given.
    Nullable,
}

/// Why one value is refused: pydantic's error type and message.
type Refusal = (&'static str, String);

/// A JSON request body, parsed. Refuses (422) a missing or non-JSON content type, an empty
/// body and malformed JSON; answers 413 past the configured body limit.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            })
            .unwrap_or(false);
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::invalid(
                    vec!["body".into()],
                    "body_read",
                    "The request body could not be read",
                )
            }
        })?;
        if !is_json {
            return Err(ApiError::invalid(
                vec!["body".into()],
                "content_type",
                "Content-Type must be application/json",
            ));
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid(
                vec!["body".into()],
                "missing",
                "Field required",
            ));
        }
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| {
            // At a premature end Python's json module points past the last character.
            let position = if e.is_eof() {
                String::from_utf8_lossy(&bytes).chars().count()
            } else {
                char_position(&bytes, e.line(), e.column())
            };
            ApiError::invalid(
                vec!["body".into(), LocItem::Index(position)],
                "json_invalid",
                format!("JSON decode error: {e}"),
            )
        })
    }
}

/// The character offset of serde_json's 1-based line and column, as FastAPI reports it.
fn char_position(bytes: &[u8], line: usize, column: usize) -> usize {
    let text = String::from_utf8_lossy(bytes);
    let before: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(|l| l.chars().count())
        .sum();
    before + column.saturating_sub(1)
}

/// The fields of one JSON object, read one by one; errors accumulate until [`Fields::finish`].
pub struct Fields<'a> {
    object: &'a Map<String, Value>,
    loc: Vec<LocItem>,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// `loc` is where the object is (`["body"]`, or `["body", 3]` in a batch).
    pub fn of(value: &'a Value, loc: Vec<LocItem>) -> Result<Self, FieldError> {
        match value {
            Value::Object(object) => Ok(Self {
                object,
                loc,
                errors: Vec::new(),
            }),
            _ => Err(FieldError::new(
                loc,
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
            )),
        }
    }

    fn refuse(&mut self, key: &str, (kind, msg): Refusal) {
        let mut loc = self.loc.clone();
        loc.push(key.into());
        self.errors.push(FieldError::new(loc, kind, msg));
    }

    /// Adds an error found outside this reader (a rule across fields).
    pub fn refuse_field(&mut self, key: &str, kind: &'static str, msg: impl Into<String>) {
        self.refuse(key, (kind, msg.into()));
    }

    fn read<T>(
        &mut self,
        key: &str,
        need: Need,
        convert: impl FnOnce(&Value) -> Result<T, Refusal>,
    ) -> Option<T> {
        match self.object.get(key) {
            None if need == Need::Required => {
                self.refuse(key, ("missing", "Field required".into()));
                None
            }
            None => None,
            Some(Value::Null) if need == Need::Nullable => None,
            Some(value) => match convert(value) {
                Ok(v) => Some(v),
                Err(refusal) => {
                    self.refuse(key, refusal);
                    None
                }
            },
        }
    }

    /// A name: trimmed, then `min..=max` characters.
    pub fn name(&mut self, key: &str, min: usize, max: usize, need: Need) -> Option<String> {
        self.read(key, need, |v| string(v).and_then(|s| name(&s, min, max)))
    }

    /// Free text kept as sent, at most `max` characters.
    pub fn text(&mut self, key: &str, max: usize, need: Need) -> Option<String> {
        self.read(key, need, |v| string(v).and_then(|s| at_most(s, max)))
    }

    pub fn int(&mut self, key: &str, min: i64, max: i64, need: Need) -> Option<i64> {
        self.read(key, need, |v| {
            integer(v).and_then(|n| in_range(n, min, max))
        })
    }

    /// A small whole number in `min..=max`.
    pub fn small(&mut self, key: &str, min: u32, max: u32, need: Need) -> Option<u32> {
        self.int(key, i64::from(min), i64::from(max), need)
            .and_then(|n| u32::try_from(n).ok())
    }

    pub fn boolean(&mut self, key: &str, need: Need) -> Option<bool> {
        self.read(key, need, |v| match v {
            Value::Bool(b) => Ok(*b),
            _ => Err(("bool_type", "Input should be a valid boolean".into())),
        })
    }

    /// One of the names of `T`.
    pub fn choice<T: Choice>(&mut self, key: &str, need: Need) -> Option<T> {
        self.read(key, need, |v| string(v).and_then(|s| choice(&s)))
    }

    pub fn datetime(&mut self, key: &str, need: Need) -> Option<DateTime<Utc>> {
        self.read(key, need, |v| string(v).and_then(|s| datetime(&s)))
    }

    /// A list of email addresses, duplicates removed (first occurrence kept).
    pub fn emails(&mut self, key: &str, max_items: usize, need: Need) -> Option<Vec<String>> {
        let loc = self.loc.clone();
        let mut item_errors = Vec::new();
        let result = self.read(key, need, |v| {
            let Value::Array(items) = v else {
                return Err(("list_type", "Input should be a valid list".into()));
            };
            if items.len() > max_items {
                return Err((
                    "too_long",
                    format!(
                        "List should have at most {max_items} items, not {}",
                        items.len()
                    ),
                ));
            }
            let mut out: Vec<String> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match string(item).and_then(|s| email_address(&s)) {
                    Ok(a) if !out.contains(&a) => out.push(a),
                    Ok(_) => {}
                    Err((kind, msg)) => {
                        let mut l = loc.clone();
                        l.extend([key.into(), LocItem::Index(i)]);
                        item_errors.push(FieldError::new(l, kind, msg));
                    }
                }
            }
            Ok(out)
        });
        let ok = item_errors.is_empty();
        self.errors.extend(item_errors);
        result.filter(|_| ok)
    }

    /// The errors found, if any.
    pub fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }
}

fn string(v: &Value) -> Result<String, Refusal> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(("string_type", "Input should be a valid string".into())),
    }
}

fn name(s: &str, min: usize, max: usize) -> Result<String, Refusal> {
    let s = s.trim();
    if s.chars().count() < min {
        let plural = if min == 1 { "" } else { "s" };
        return Err((
            "string_too_short",
            format!("String should have at least {min} character{plural}"),
        ));
    }
    at_most(s.to_owned(), max)
}

fn at_most(s: String, max: usize) -> Result<String, Refusal> {
    if s.chars().count() > max {
        Err((
            "string_too_long",
            format!("String should have at most {max} characters"),
        ))
    } else {
        Ok(s)
    }
}

fn integer(v: &Value) -> Result<i64, Refusal> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .ok_or_else(|| {
                if n.as_f64().is_some_and(|f| f.fract() != 0.0) {
                    (
                        "int_from_float",
                        "Input should be a valid integer, got a number with a fractional part"
                            .into(),
                    )
                } else {
                    ("int_type", "Input should be a valid integer".into())
                }
            }),
        _ => Err(("int_type", "Input should be a valid integer".into())),
    }
}

fn int_from_str(s: &str) -> Result<i64, Refusal> {
    s.trim().parse::<i64>().map_err(|_| {
        (
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer".into(),
        )
    })
}

fn in_range(n: i64, min: i64, max: i64) -> Result<i64, Refusal> {
    if n < min {
        Err((
            "greater_than_equal",
            format!("Input should be greater than or equal to {min}"),
        ))
    } else if n > max {
        Err((
            "less_than_equal",
            format!("Input should be less than or equal to {max}"),
        ))
    } else {
        Ok(n)
    }
}

fn choice<T: Choice>(s: &str) -> Result<T, Refusal> {
    T::ALL
        .iter()
        .copied()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| {
            let quoted: Vec<String> = T::ALL.iter().map(|a| format!("'{}'", a.as_str())).collect();
            let list = match quoted.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => quoted.join(""),
            };
            ("enum", format!("Input should be {list}"))
        })
}

fn datetime(s: &str) -> Result<DateTime<Utc>, Refusal> {
    time::parse(s).ok_or_else(|| {
        (
            "datetime_parsing",
            "Input should be a valid RFC 3339 datetime, e.g. 2026-11-24T02:30:00Z".to_owned(),
        )
    })
}

fn email_address(s: &str) -> Result<String, Refusal> {
    let s = s.trim();
    if email::is_valid(s) {
        Ok(s.to_owned())
    } else {
        Err((
            "value_error",
            format!("value is not a valid email address: {s:?}"),
        ))
    }
}

fn parse_bool(s: &str) -> Result<bool, Refusal> {
    boolean::parse(s).ok_or_else(|| {
        (
            "bool_parsing",
            "Input should be a valid boolean, unable to interpret input".into(),
        )
    })
}

/// A keyset cursor as the schema's pattern states it: an optional `-`, then digits, `_`,
/// digits, each run at most as long as the largest `i64`.
pub const CURSOR_DIGITS_MAX: u32 = i64::MAX.ilog10() + 1;

/// [`CURSOR_DIGITS_MAX`] as the OpenAPI schema's pattern.
pub fn cursor_pattern() -> String {
    format!("^-?[0-9]{{1,{CURSOR_DIGITS_MAX}}}_[0-9]{{1,{CURSOR_DIGITS_MAX}}}$")
}

fn cursor(s: &str) -> Result<(i64, i64), Refusal> {
    let digits = |d: &str| {
        (1..=CURSOR_DIGITS_MAX as usize).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
    };
    s.split_once('_')
        .filter(|(at, id)| digits(at.strip_prefix('-').unwrap_or(at)) && digits(id))
        .and_then(|(at, id)| Some((at.parse().ok()?, id.parse().ok()?)))
        .ok_or_else(|| {
            (
                "value_error",
                "Value error, not a cursor: pass the X-Next-Cursor of the previous page".to_owned(),
            )
        })
}

/// A query string, read parameter by parameter (the last of repeated names wins); unknown
/// parameters are ignored, as FastAPI does.
pub struct Query {
    values: HashMap<String, String>,
    errors: Vec<FieldError>,
}

impl Query {
    /// Longest accepted text filter, in characters.
    pub const TEXT_MAX: usize = 1024;

    pub fn parse(raw: Option<&str>) -> Self {
        let values = raw
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        Self {
            values,
            errors: Vec::new(),
        }
    }

    fn read<T>(
        &mut self,
        key: &str,
        convert: impl FnOnce(&str) -> Result<T, Refusal>,
    ) -> Option<T> {
        let raw = self.values.get(key)?;
        match convert(raw) {
            Ok(v) => Some(v),
            Err((kind, msg)) => {
                self.errors
                    .push(FieldError::new(vec!["query".into(), key.into()], kind, msg));
                None
            }
        }
    }

    /// An exact-match text filter (kept as sent), at most [`Query::TEXT_MAX`] characters.
    pub fn text(&mut self, key: &str) -> Option<String> {
        self.read(key, |s| at_most(s.to_owned(), Self::TEXT_MAX))
    }

    pub fn int(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        self.read(key, |s| int_from_str(s).and_then(|n| in_range(n, min, max)))
    }

    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        self.read(key, parse_bool)
    }

    /// One of the names of `T`.
    pub fn choice<T: Choice>(&mut self, key: &str) -> Option<T> {
        self.read(key, choice)
    }

    /// A keyset cursor `<timestamp µs>_<id>`, as `X-Next-Cursor` hands it out.
    pub fn cursor(&mut self, key: &str) -> Option<(i64, i64)> {
        self.read(key, cursor)
    }

    pub fn datetime(&mut self, key: &str) -> Option<DateTime<Utc>> {
        self.read(key, datetime)
    }

    /// `skip` ≥ [`Page::MIN_SKIP`] (default that) and `limit` in
    /// [`Page::MIN_LIMIT`]`..=`[`Page::MAX_LIMIT`] (default [`Page::DEFAULT_LIMIT`]).
    pub fn page(&mut self) -> Page {
        Page {
            skip: self
                .int(Page::SKIP, Page::MIN_SKIP, i64::MAX)
                .unwrap_or(Page::MIN_SKIP),
            limit: self
                .int(Page::LIMIT, Page::MIN_LIMIT, Page::MAX_LIMIT)
                .unwrap_or(Page::DEFAULT_LIMIT),
        }
    }

    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.errors))
        }
    }
}

/// FastAPI-style pagination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub skip: i64,
    pub limit: i64,
}

impl Page {
    /// The parameters' names, in every listing.
    pub const SKIP: &'static str = "skip";
    pub const LIMIT: &'static str = "limit";
    pub const MIN_SKIP: i64 = 0;
    pub const MIN_LIMIT: i64 = 1;
    pub const MAX_LIMIT: i64 = 1000;
    pub const DEFAULT_LIMIT: i64 = 100;
}

/// A numeric id from the path (`{job_id}`, `{entry_id}`): anything else is a 422 naming it.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|_| {
                ApiError::invalid(
                    vec!["path".into()],
                    "path_parsing",
                    "The path could not be decoded",
                )
            })?;
        let Some((name, value)) = params.iter().next() else {
            return Err(ApiError::invalid(
                vec!["path".into()],
                "missing",
                "Field required",
            ));
        };
        int_from_str(value)
            .map(Id)
            .map_err(|(kind, msg)| ApiError::invalid(vec!["path".into(), name.into()], kind, msg))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Two names, to see how a refusal lists them.
    #[derive(Debug, Clone, Copy)]
    enum Often {
        Hourly,
        Daily,
    }

    impl Choice for Often {
        const ALL: &'static [Self] = &[Often::Hourly, Often::Daily];
        fn as_str(self) -> &'static str {
            match self {
                Often::Hourly => "hourly",
                Often::Daily => "daily",
            }
        }
    }

    #[test]
    fn every_problem_in_an_object_is_reported_at_once() {
        let body = json!({"a": "  ", "b": 24, "c": "x", "e": 1.5});
        let mut f = Fields::of(&body, vec!["body".into()]).unwrap();
        f.name("a", 1, 10, Need::Required);
        f.int("b", 0, 23, Need::Required);
        f.choice::<Often>("c", Need::Required);
        f.name("d", 1, 10, Need::Required);
        f.int("e", 0, 10, Need::Required);
        let errors = f.finish().unwrap_err();
        let kinds: Vec<&str> = errors.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "string_too_short",
                "less_than_equal",
                "enum",
                "missing",
                "int_from_float"
            ]
        );
        assert_eq!(errors[2].msg, "Input should be 'hourly' or 'daily'");
        assert_eq!(
            errors[0].loc,
            vec![LocItem::from("body"), LocItem::from("a")]
        );
    }

    #[test]
    fn names_are_trimmed_and_counted_in_characters() {
        let body = json!({"a": "  Lyon  ", "b": "é".repeat(3)});
        let mut f = Fields::of(&body, vec![]).unwrap();
        assert_eq!(f.name("a", 1, 4, Need::Required).as_deref(), Some("Lyon"));
        assert_eq!(f.name("b", 1, 3, Need::Required).as_deref(), Some("ééé"));
        assert!(f.finish().is_ok());
    }

    #[test]
    fn null_means_not_given_only_where_nullable() {
        let body = json!({"a": null});
        let mut f = Fields::of(&body, vec![]).unwrap();
        assert_eq!(f.int("a", 0, 1, Need::Nullable), None);
        assert!(f.errors.is_empty());
        assert_eq!(f.int("a", 0, 1, Need::Optional), None);
        assert_eq!(f.errors[0].kind, "int_type");
    }

    #[test]
    fn email_lists_name_the_bad_item() {
        let body = json!({"to": ["ok@example.com", "nope", "ok@example.com"]});
        let mut f = Fields::of(&body, vec!["body".into()]).unwrap();
        assert_eq!(f.emails("to", 50, Need::Optional), None);
        let errors = f.finish().unwrap_err();
        assert_eq!(
            errors[0].loc,
            vec![
                LocItem::from("body"),
                LocItem::from("to"),
                LocItem::Index(1)
            ]
        );
    }

    #[test]
    fn a_non_object_is_refused() {
        assert!(Fields::of(&json!([1]), vec!["body".into()]).is_err());
    }

    #[test]
    fn query_values_are_parsed_and_checked() {
        let mut q = Query::parse(Some("limit=0&skip=-1&is_active=maybe&company_name=A%26B"));
        let page = q.page();
        assert_eq!(
            page,
            Page {
                skip: 0,
                limit: 100
            }
        );
        assert_eq!(q.boolean("is_active"), None);
        assert_eq!(q.text("company_name").as_deref(), Some("A&B"));
        let ApiError::Validation(errors) = q.finish().unwrap_err() else {
            panic!("expected a validation error")
        };
        let names: Vec<_> = errors.iter().map(|e| e.loc[1].clone()).collect();
        assert_eq!(
            names,
            vec![
                LocItem::from("skip"),
                LocItem::from("limit"),
                LocItem::from("is_active")
            ]
        );
    }

    #[test]
    fn json_error_positions_count_characters_across_lines() {
        assert_eq!(char_position(b"{\n  \"a\": x}", 2, 8), 9);
    }
}
