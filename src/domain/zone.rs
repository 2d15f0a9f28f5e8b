//! Time zones (DESIGN §11): IANA names, and the rule that turns a wall-clock time into an
//! instant across daylight saving changes.
//!
//! The database is chrono-tz's, compiled into the binary (IANA 2025b, transitions computed
//! up to 2099; after that a zone keeps the offset it had at the end of 2099): no file is
//! read, so the answers are the same on every machine and in every test.

use chrono::{DateTime, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{GapInfo, OffsetName, Tz};

/// An IANA time zone, e.g. `Europe/Paris`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Zone(Tz);

/// The name is not in the IANA database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {name:?}{hint}", hint = suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
pub struct ZoneError {
    pub name: String,
    /// The zone whose name differs only in case, if there is one.
    pub suggestion: Option<&'static str>,
}

/// The instant a wall-clock time stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    pub instant: DateTime<Utc>,
    /// `Some(length)` when the wall time fell in a spring-forward gap and was moved later
    /// by the gap's length.
    pub gap: Option<Duration>,
}

impl Zone {
    pub const UTC: Zone = Zone(Tz::UTC);

    /// An exact IANA name (`Europe/Paris`, `UTC`); the error names what was given, and the
    /// zone that differs only in case if there is one.
    pub fn parse(name: &str) -> Result<Zone, ZoneError> {
        name.parse::<Tz>().map(Zone).map_err(|_| ZoneError {
            name: name.to_owned(),
            suggestion: chrono_tz::TZ_VARIANTS
                .iter()
                .map(|tz| tz.name())
                .find(|known| known.eq_ignore_ascii_case(name)),
        })
    }

    /// The IANA name, as stored and answered.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The offset from UTC in effect at `t` (local = UTC + offset).
    pub fn offset_at(&self, t: DateTime<Utc>) -> Duration {
        Duration::seconds(i64::from(
            self.0
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
        ))
    }

    /// The zone's abbreviation at `t` (`CET`, `CEST`), or its offset (`+1030`) where the
    /// database has no abbreviation.
    pub fn abbreviation(&self, t: DateTime<Utc>) -> String {
        let offset = self.0.offset_from_utc_datetime(&t.naive_utc());
        match offset.abbreviation() {
            Some(name) => name.to_owned(),
            None => offset.to_string(),
        }
    }

    /// The wall-clock time at `t`; `None` past the calendar's end.
    pub fn wall_time(&self, t: DateTime<Utc>) -> Option<NaiveDateTime> {
        t.naive_utc().checked_add_signed(self.offset_at(t))
    }

    /// The instant a wall-clock time stands for, by DESIGN §11's rule (JavaScript Temporal
    /// and jiff call it "compatible"; java.time and Python's zoneinfo with `fold=0` agree):
    /// a time that occurs once is that instant; a time that occurs twice (the clocks went
    /// back) is its first occurrence; a time that never occurs (the clocks went forward) is
    /// read with the offset in effect before the change, which moves it later by the gap's
    /// length (02:30 in Paris on 2027-03-28 is 03:30 CEST, 01:30 UTC). `None` past the
    /// calendar's end.
    pub fn resolve(&self, wall: NaiveDateTime) -> Option<Resolved> {
        let at = |offset: i32| wall.checked_sub_signed(Duration::seconds(i64::from(offset)));
        match self.0.offset_from_local_datetime(&wall) {
            chrono::LocalResult::Single(o) => Some(Resolved {
                instant: at(o.fix().local_minus_utc())?.and_utc(),
                gap: None,
            }),
            chrono::LocalResult::Ambiguous(a, b) => {
                let a = at(a.fix().local_minus_utc())?;
                let b = at(b.fix().local_minus_utc())?;
                Some(Resolved {
                    instant: a.min(b).and_utc(),
                    gap: None,
                })
            }
            chrono::LocalResult::None => {
                let before = match GapInfo::new(&wall, &self.0).and_then(|g| g.begin) {
                    Some((_, offset)) => offset.fix().local_minus_utc(),
                    // Not reached with chrono-tz's tables (a gap always has a start); the
                    // offset a day earlier is Temporal's way to find it.
                    None => self.offset_seconds(at(0)?.checked_sub_signed(Duration::days(1))?),
                };
                let instant = at(before)?.and_utc();
                let after = self.offset_at(instant);
                Some(Resolved {
                    instant,
                    gap: Some(after - Duration::seconds(i64::from(before))),
                })
            }
        }
    }

    /// The length of a spring-forward change that happened less than its own length before
    /// `t` (then the wall times skipped by it land at or after `t`), if any.
    pub fn recent_gap(&self, t: DateTime<Utc>) -> Option<Duration> {
        let now = self.offset_at(t);
        let day_before = self.offset_at(t.checked_sub_signed(Duration::days(1))?);
        let gap = now - day_before;
        (gap > Duration::zero() && self.offset_at(t.checked_sub_signed(gap)?) < now).then_some(gap)
    }

    /// The length of a fall-back change that happened less than its own length before `t`
    /// (then `t`'s wall time is a second occurrence, and the first occurrences of the wall
    /// times up to that length later came before `t`), if any.
    pub fn recent_fold(&self, t: DateTime<Utc>) -> Option<Duration> {
        let now = self.offset_at(t);
        let day_before = self.offset_at(t.checked_sub_signed(Duration::days(1))?);
        let fold = day_before - now;
        (fold > Duration::zero() && self.offset_at(t.checked_sub_signed(fold)?) > now)
            .then_some(fold)
    }

    fn offset_seconds(&self, utc: NaiveDateTime) -> i32 {
        self.0
            .offset_from_utc_datetime(&utc)
            .fix()
            .local_minus_utc()
    }
}

impl std::fmt::Display for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Zone {
    type Err = ZoneError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Zone::parse(s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse()
            .unwrap_or_else(|e| panic!("bad timestamp {s:?} in a test: {e}"))
    }

    fn wall(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap_or_else(|e| panic!("bad wall time {s:?} in a test: {e}"))
    }

    fn zone(name: &str) -> Zone {
        Zone::parse(name).unwrap()
    }

    #[test]
    fn unknown_zones_are_named_in_the_error() {
        let cases = [
            (
                "Mars/Olympus_Mons",
                "unknown time zone \"Mars/Olympus_Mons\"",
            ),
            ("", "unknown time zone \"\""),
            (" Europe/Paris", "unknown time zone \" Europe/Paris\""),
            (
                "europe/paris",
                "unknown time zone \"europe/paris\" (did you mean \"Europe/Paris\"?)",
            ),
            ("CEST", "unknown time zone \"CEST\""),
        ];
        for (name, message) in cases {
            assert_eq!(
                Zone::parse(name).unwrap_err().to_string(),
                message,
                "{name:?}"
            );
        }
    }

    #[test]
    fn known_zones_keep_their_name() {
        for name in [
            "UTC",
            "Etc/UTC",
            "Europe/Paris",
            "Australia/Lord_Howe",
            "America/St_Johns",
            "Asia/Kolkata",
        ] {
            assert_eq!(zone(name).name(), name);
            assert_eq!(zone(name).to_string(), name);
        }
    }

    #[test]
    fn wall_times_resolve_by_the_compatible_rule() {
        let cases = [
            // (zone, wall time, instant, moved by a gap of minutes)
            (
                "Europe/Paris",
                "2027-03-28 01:59",
                "2027-03-28T00:59:00Z",
                None,
            ),
            (
                "Europe/Paris",
                "2027-03-28 02:00",
                "2027-03-28T01:00:00Z",
                Some(60),
            ),
            (
                "Europe/Paris",
                "2027-03-28 02:30",
                "2027-03-28T01:30:00Z",
                Some(60),
            ),
            (
                "Europe/Paris",
                "2027-03-28 03:00",
                "2027-03-28T01:00:00Z",
                None,
            ),
            (
                "Europe/Paris",
                "2027-03-28 03:30",
                "2027-03-28T01:30:00Z",
                None,
            ),
            // Fall back: the first occurrence, in summer time.
            (
                "Europe/Paris",
                "2027-10-31 01:59",
                "2027-10-30T23:59:00Z",
                None,
            ),
            (
                "Europe/Paris",
                "2027-10-31 02:00",
                "2027-10-31T00:00:00Z",
                None,
            ),
            (
                "Europe/Paris",
                "2027-10-31 02:30",
                "2027-10-31T00:30:00Z",
                None,
            ),
            (
                "Europe/Paris",
                "2027-10-31 03:00",
                "2027-10-31T02:00:00Z",
                None,
            ),
            // Lord Howe moves by 30 minutes, at 02:00 both ways.
            (
                "Australia/Lord_Howe",
                "2027-10-03 02:15",
                "2027-10-02T15:45:00Z",
                Some(30),
            ),
            (
                "Australia/Lord_Howe",
                "2027-10-03 02:30",
                "2027-10-02T15:30:00Z",
                None,
            ),
            (
                "Australia/Lord_Howe",
                "2027-04-04 01:45",
                "2027-04-03T14:45:00Z",
                None,
            ),
            // Santiago changes at midnight: 00:30 on 2027-09-05 does not exist.
            (
                "America/Santiago",
                "2027-09-05 00:30",
                "2027-09-05T04:30:00Z",
                Some(60),
            ),
            ("UTC", "2027-03-28 02:30", "2027-03-28T02:30:00Z", None),
            (
                "Asia/Kolkata",
                "2027-03-28 02:30",
                "2027-03-27T21:00:00Z",
                None,
            ),
        ];
        for (name, local, instant, gap) in cases {
            // Act
            let got = zone(name).resolve(wall(local)).unwrap();

            // Assert
            assert_eq!(got.instant, utc(instant), "{name} {local}");
            assert_eq!(got.gap.map(|g| g.num_minutes()), gap, "{name} {local}: gap");
        }
    }

    #[test]
    fn recent_changes_are_seen_only_within_their_length() {
        let paris = zone("Europe/Paris");
        let cases = [
            ("2027-03-28T00:59:59Z", None, None),
            ("2027-03-28T01:00:00Z", Some(60), None),
            ("2027-03-28T01:59:59Z", Some(60), None),
            ("2027-03-28T02:00:00Z", None, None),
            ("2027-10-31T00:59:59Z", None, None),
            ("2027-10-31T01:00:00Z", None, Some(60)),
            ("2027-10-31T01:59:59Z", None, Some(60)),
            ("2027-10-31T02:00:00Z", None, None),
        ];
        for (t, gap, fold) in cases {
            assert_eq!(
                paris.recent_gap(utc(t)).map(|d| d.num_minutes()),
                gap,
                "gap at {t}"
            );
            assert_eq!(
                paris.recent_fold(utc(t)).map(|d| d.num_minutes()),
                fold,
                "fold at {t}"
            );
        }
    }

    #[test]
    fn wall_times_and_abbreviations_follow_the_offset() {
        let paris = zone("Europe/Paris");
        let t = utc("2027-03-28T01:30:00Z");
        assert_eq!(paris.wall_time(t), Some(wall("2027-03-28 03:30")));
        assert_eq!(paris.abbreviation(t), "CEST");
        assert_eq!(paris.abbreviation(utc("2027-03-28T00:30:00Z")), "CET");
        assert_eq!(Zone::UTC.wall_time(t), Some(t.naive_utc()));
        let lord_howe = zone("Australia/Lord_Howe");
        assert_eq!(lord_howe.offset_at(t), Duration::minutes(11 * 60));
        assert_eq!(
            lord_howe.offset_at(utc("2027-07-01T00:00:00Z")),
            Duration::minutes(10 * 60 + 30)
        );
    }

    #[test]
    fn the_edges_of_time_do_not_panic() {
        for name in ["UTC", "Pacific/Kiritimati", "Etc/GMT+12"] {
            let z = zone(name);
            for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
                let _ = (
                    z.wall_time(t),
                    z.recent_gap(t),
                    z.recent_fold(t),
                    z.abbreviation(t),
                );
            }
            for w in [NaiveDateTime::MIN, NaiveDateTime::MAX] {
                let _ = z.resolve(w);
            }
        }
    }
}
