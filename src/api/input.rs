//! Reading requests: JSON bodies, query strings and path ids, checked field by field so that
//! every problem comes back at once as a FastAPI-shaped 422 naming where it is. The fields
//! of a JSON object are read by `service::input`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::{header, request::Parts, StatusCode};
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::error::{ApiError, FieldError, LocItem};
use crate::service::input::{
    at_most, choice, datetime, in_range, int_from_str, parse_bool, Refusal,
};
pub use crate::service::input::{Choice, Fields, Need};

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

/// A keyset cursor as the schema's pattern states it: an optional `-`, then digits, `_`,
/// digits, each run at most as long as the largest `i64`.
pub const CURSOR_DIGITS_MAX: u32 = i64::MAX.ilog10() + 1;

/// [`CURSOR_DIGITS_MAX`] as the OpenAPI schema's pattern.
pub fn cursor_pattern() -> String {
    format!("^-?[0-9]{{1,{CURSOR_DIGITS_MAX}}}_[0-9]{{1,{CURSOR_DIGITS_MAX}}}$")
}

/// A run of digits with an optional `-`, clamped to `i64`'s range.
fn saturating(n: &str) -> i64 {
    n.parse().unwrap_or(if n.starts_with('-') {
        i64::MIN
    } else {
        i64::MAX
    })
}

fn cursor(s: &str) -> Result<(i64, i64), Refusal> {
    let digits = |d: &str| {
        (1..=CURSOR_DIGITS_MAX as usize).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit())
    };
    s.split_once('_')
        .filter(|(at, id)| digits(at.strip_prefix('-').unwrap_or(at)) && digits(id))
        // Any cursor the pattern admits is one: a number past i64 (19 digits can be) is
        // read as the largest, a position beyond every row, so its page is empty.
        .map(|(at, id)| (saturating(at), saturating(id)))
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

/// The page asked for by the query of a listing that takes nothing else.
pub fn page_only(raw: Option<&str>) -> Result<Page, ApiError> {
    let mut q = Query::parse(raw);
    let page = q.page();
    q.finish()?;
    Ok(page)
}

/// The query of a listing that only pages: `skip` and `limit`.
// Their bounds are set by `openapi::RequestBounds` from [`Page`].
#[derive(Debug, Clone, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Rows to skip (default 0).
    pub skip: Option<i64>,
    /// Rows to return, 1..=1000 (default 100).
    pub limit: Option<i64>,
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

    #[test]
    fn every_cursor_the_pattern_admits_is_read() {
        assert_eq!(cursor("-0_9426022706098364358"), Ok((0, i64::MAX)));
        assert_eq!(
            cursor("-9999999999999999999_1"),
            Ok((i64::MIN, 1)),
            "clamped, not refused"
        );
        assert!(cursor("1_").is_err());
        assert!(cursor("+1_2").is_err());
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
