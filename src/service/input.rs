//! Reading the request contract from JSON: an object's fields checked one by one, so that
//! every problem comes back at once, each naming where it is (pydantic's shape). The API
//! reads bodies with it and `jobs import` reads rows with it, so both accept exactly the
//! same jobs.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{FieldError, LocItem};
use crate::domain::auth::Role;
use crate::domain::entry::{EntryStatus, ReportStatus};
use crate::domain::job::CronText;
use crate::domain::schedule::Frequency;
use crate::domain::status::JobState;
use crate::domain::zone::Zone;
use crate::domain::{boolean, email, time};

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

choice_from_all!(Frequency, EntryStatus, JobState, ReportStatus, Role);

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
pub(crate) type Refusal = (&'static str, String);

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

    /// Whether the object holds `key` with a value other than `null`.
    pub fn has(&self, key: &str) -> bool {
        self.object.get(key).is_some_and(|v| !v.is_null())
    }

    /// A cron expression (DESIGN §11), where `null` says "none" rather than "not given":
    /// absent → `None`, `null` → `Some(None)`. What is wrong is said in the parser's words.
    pub fn cron(&mut self, key: &str) -> Option<Option<CronText>> {
        self.nullable(key, |f| {
            f.read(key, Need::Optional, |v| {
                string(v).and_then(|s| {
                    CronText::parse(&s).map_err(|e| ("value_error", format!("Value error, {e}")))
                })
            })
        })
    }

    /// A field where `null` says "none" rather than "not given": absent → `None`, `null` →
    /// `Some(None)`, a value → what `read` makes of it (None when refused).
    fn nullable<T>(
        &mut self,
        key: &str,
        read: impl FnOnce(&mut Self) -> Option<T>,
    ) -> Option<Option<T>> {
        match self.object.get(key) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(_) => read(self).map(Some),
        }
    }

    /// A small whole number in `min..=max` where `null` says "none" rather than "not
    /// given": absent → `None`, `null` → `Some(None)`.
    pub fn nullable_small(&mut self, key: &str, min: u32, max: u32) -> Option<Option<u32>> {
        self.nullable(key, |f| f.small(key, min, max, Need::Optional))
    }

    /// An instant where `null` says "none": absent → `None`, `null` → `Some(None)`.
    pub fn nullable_datetime(&mut self, key: &str) -> Option<Option<DateTime<Utc>>> {
        self.nullable(key, |f| f.datetime(key, Need::Optional))
    }

    /// Text of at most `max` characters, trimmed, where `null` or "" says "none".
    pub fn nullable_text(&mut self, key: &str, max: usize) -> Option<Option<String>> {
        self.nullable(key, |f| f.text(key, max, Need::Optional))
            .map(|t| t.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()))
    }

    /// An IANA time zone name.
    pub fn zone(&mut self, key: &str, need: Need) -> Option<Zone> {
        self.read(key, need, |v| {
            string(v).and_then(|s| {
                Zone::parse(&s).map_err(|e| ("value_error", format!("Value error, {e}")))
            })
        })
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

pub(crate) fn string(v: &Value) -> Result<String, Refusal> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(("string_type", "Input should be a valid string".into())),
    }
}

pub(crate) fn name(s: &str, min: usize, max: usize) -> Result<String, Refusal> {
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

pub(crate) fn at_most(s: String, max: usize) -> Result<String, Refusal> {
    if s.chars().count() > max {
        Err((
            "string_too_long",
            format!("String should have at most {max} characters"),
        ))
    } else {
        Ok(s)
    }
}

pub(crate) fn integer(v: &Value) -> Result<i64, Refusal> {
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

pub(crate) fn int_from_str(s: &str) -> Result<i64, Refusal> {
    s.trim().parse::<i64>().map_err(|_| {
        (
            "int_parsing",
            "Input should be a valid integer, unable to parse string as an integer".into(),
        )
    })
}

pub(crate) fn in_range(n: i64, min: i64, max: i64) -> Result<i64, Refusal> {
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

pub(crate) fn choice<T: Choice>(s: &str) -> Result<T, Refusal> {
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

pub(crate) fn datetime(s: &str) -> Result<DateTime<Utc>, Refusal> {
    time::parse(s).ok_or_else(|| {
        (
            "datetime_parsing",
            "Input should be a valid RFC 3339 datetime, e.g. 2026-11-24T02:30:00Z".to_owned(),
        )
    })
}

pub(crate) fn email_address(s: &str) -> Result<String, Refusal> {
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

pub(crate) fn parse_bool(s: &str) -> Result<bool, Refusal> {
    boolean::parse(s).ok_or_else(|| {
        (
            "bool_parsing",
            "Input should be a valid boolean, unable to interpret input".into(),
        )
    })
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
}
