//! Instants as the API writes them (RFC 3339, UTC, `Z`) and as the database stores them
//! (whole microseconds since the Unix epoch, so that ordering and windows are integer ranges).

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::Serializer;

pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub fn format(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// RFC 3339 with any offset (converted to UTC); a value without an offset is taken as UTC,
/// as pydantic does.
/// A duration as a person reads it: `45 s`, `12 min`, `5 h`, `3 days`, `26 years`
/// (rounded down to the largest unit that fits).
pub fn span(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..120 => format!("{s} s"),
        120..7_200 => format!("{} min", s / 60),
        7_200..172_800 => format!("{} h", s / 3_600),
        172_800..63_072_000 => format!("{} days", s / 86_400),
        _ => format!("{} years", s / 31_557_600),
    }
}

pub fn parse(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    // Any instant chrono represents fits the microsecond column (±262,000 years).
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .map(|n| n.and_utc())
        })
}

pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*t))
}

/// Serializes instants as RFC 3339 in UTC, in order.
pub fn serialize_all<S: Serializer>(ts: &[DateTime<Utc>], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(ts.len()))?;
    for t in ts {
        seq.serialize_element(&format(*t))?;
    }
    seq.end()
}

pub fn serialize_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format(*t)),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_in_the_largest_unit_that_fits() {
        let cases = [
            (0, "0 s"),
            (119, "119 s"),
            (120, "2 min"),
            (7_199, "119 min"),
            (7_200, "2 h"),
            (172_799, "47 h"),
            (172_800, "2 days"),
            (2_335_107_600, "73 years"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(
                span(chrono::Duration::seconds(seconds)),
                expected,
                "{seconds} s"
            );
        }
    }

    #[test]
    fn offsets_are_converted_to_utc_and_naive_times_taken_as_utc() {
        let cases = [
            ("2026-11-24T02:30:00Z", "2026-11-24T02:30:00Z"),
            ("2026-11-24T03:30:00+01:00", "2026-11-24T02:30:00Z"),
            ("2026-11-24T02:30:00", "2026-11-24T02:30:00Z"),
            ("2026-11-24 02:30:00", "2026-11-24T02:30:00Z"),
            ("2026-11-24T02:30:00.123456Z", "2026-11-24T02:30:00.123456Z"),
        ];
        for (input, expected) in cases {
            assert_eq!(format(parse(input).unwrap()), expected, "{input}");
        }
    }

    #[test]
    fn nonsense_is_refused() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-24",
        ] {
            assert!(parse(bad).is_none(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn any_year_an_rfc_3339_date_time_can_carry_is_accepted() {
        for old in [
            "0214-11-15T07:33:13.802-12:16",
            "1019-12-15T22:43:11.07Z",
            "1969-12-31T23:59:59Z",
            "9999-12-31T23:59:59Z",
        ] {
            let t = parse(old).unwrap();
            assert_eq!(from_micros(to_micros(t)), t, "{old}");
        }
    }

    #[test]
    fn micros_round_trip() {
        let t = parse("2026-11-24T02:30:00.000001Z").unwrap();
        assert_eq!(from_micros(to_micros(t)), t);
    }
}
