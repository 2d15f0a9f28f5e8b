//! Cron expressions (DESIGN §11): the five fields `minute hour day-of-month month
//! day-of-week`, read as wall-clock times. Which instants they stand for in a time zone is
//! `schedule::CronSchedule`'s business; this module knows only calendars and clocks.
//!
//! The grammar is Vixie cron's: `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists
//! `a,b-c`, the names `JAN`–`DEC` and `SUN`–`SAT` in any case, day-of-week 0 and 7 both
//! Sunday. Nothing else: no seconds field, no `@daily`, no `?`, `L`, `W` or `#`, and no
//! step from a single value (`5/15`: Vixie refuses it, Quartz reads it as `5-59/15`; we
//! refuse it and say what to write instead of guessing).
//!
//! Vixie's day rule: when the day-of-month and day-of-week fields both start with something
//! other than `*`, a day matches if *either* matches (`0 2 1 * MON`: the 1st and every
//! Monday); otherwise both must (`*/2` counts as starting with `*`, as in Vixie and
//! Debian cron, and healthchecks' cronsim).

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};

const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One of the five fields, for parsing and for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        }
    }

    /// The values a field accepts (day-of-week 7 is Sunday again).
    pub fn range(self) -> (u32, u32) {
        match self {
            Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 7),
        }
    }

    fn names(self) -> &'static [&'static str] {
        match self {
            Field::Month => &MONTH_NAMES,
            Field::DayOfWeek => &WEEKDAY_NAMES,
            _ => &[],
        }
    }

    /// The value of a name, e.g. `JAN` is 1 and `SUN` is 0.
    fn value_of_name(self, name: &str) -> Option<u32> {
        let index = self
            .names()
            .iter()
            .position(|n| n.eq_ignore_ascii_case(name))?;
        let index = u32::try_from(index).ok()?;
        Some(if self == Field::Month {
            index + 1
        } else {
            index
        })
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What is wrong with an expression, worded for the person who wrote it (the API answers
/// it as a 422's detail).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("expected 5 fields (minute hour day-of-month month day-of-week), got {0}")]
    FieldCount(usize),
    #[error("{field} has an empty item in {text:?}")]
    EmptyItem { field: Field, text: String },
    #[error("{field} {value} is out of range {min}-{max}", min = field.range().0, max = field.range().1)]
    OutOfRange { field: Field, value: String },
    #[error("{field} {text:?} is not {expected}", expected = expected(*field))]
    NotANumber { field: Field, text: String },
    #[error("{field} range {text} goes backwards; write the values in increasing order{sunday}, or a list of two ranges", sunday = if *field == Field::DayOfWeek { " (Sunday is 0 or 7)" } else { "" })]
    Backwards { field: Field, text: String },
    #[error("{field} step {step} is out of range 1-{max}", max = step_max(*field))]
    StepOutOfRange { field: Field, step: String },
    #[error("{field} {text:?} steps from a single value; write {hint}")]
    StepFromValue {
        field: Field,
        text: String,
        hint: String,
    },
    #[error("the expression never fires: {0}")]
    NeverFires(String),
}

fn expected(field: Field) -> &'static str {
    match field {
        Field::Month => "a number or a month name (JAN-DEC)",
        Field::DayOfWeek => "a number or a day name (SUN-SAT)",
        _ => "a number",
    }
}

/// The largest step: the number of values in the field's cycle (`*/60` in minutes still
/// means "at minute 0"; `*/61` is surely a typo).
fn step_max(field: Field) -> u32 {
    match field {
        Field::Minute => 60,
        Field::Hour => 24,
        Field::DayOfMonth => 31,
        Field::Month => 12,
        Field::DayOfWeek => 7,
    }
}

/// How the day-of-month and day-of-week fields combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum DayRule {
    /// Both must match (one of them starts with `*`).
    Both,
    /// Either may match (both are restricted: Vixie's rule).
    Either,
}

/// The values an expression chose, field by field, in increasing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSets {
    pub minutes: Vec<u32>,
    pub hours: Vec<u32>,
    /// Days of the month, 1..=31.
    pub days: Vec<u32>,
    /// 1..=12.
    pub months: Vec<u32>,
    /// Sunday = 0.
    pub weekdays: Vec<u32>,
    /// Both day fields are restricted: a day matches when either does (Vixie's rule).
    pub either_day: bool,
}

/// A parsed expression: one bit per allowed value of each field.
///
/// Plain bit sets, so the type is `Copy` and the next matching minute is found by skipping
/// whole months, days and hours rather than by scanning minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CronExpr {
    /// Bits 0..=59.
    minutes: u64,
    /// Bits 0..=23.
    hours: u32,
    /// Bits 1..=31.
    days: u32,
    /// Bits 1..=12.
    months: u16,
    /// Bits 0..=6, Sunday = 0.
    weekdays: u8,
    rule: DayRule,
}

impl std::str::FromStr for CronExpr {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl CronExpr {
    /// Reads an expression; fields are separated by any run of spaces or tabs.
    pub fn parse(text: &str) -> Result<Self, CronError> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields[..] else {
            return Err(CronError::FieldCount(fields.len()));
        };
        let minutes = parse_field(Field::Minute, minute)?;
        let hours = parse_field(Field::Hour, hour)?;
        let days = parse_field(Field::DayOfMonth, dom)?;
        let months = parse_field(Field::Month, month)?;
        let weekdays = parse_field(Field::DayOfWeek, dow)?;
        // Day-of-week 7 is Sunday: fold bit 7 onto bit 0.
        let weekdays = (weekdays | (weekdays >> 7)) & 0x7f;
        let rule = if dom.starts_with('*') || dow.starts_with('*') {
            DayRule::Both
        } else {
            DayRule::Either
        };
        let expr = CronExpr {
            minutes,
            hours: narrow(hours),
            days: narrow(days),
            months: narrow(months),
            weekdays: narrow(weekdays),
            rule,
        };
        expr.check_fires()?;
        Ok(expr)
    }

    /// An expression that never fires is refused: its job would never be due, which is
    /// surely not what was meant. The weekday cannot be the reason (each date of the
    /// calendar falls on every weekday over the years, Feb 29 included), and neither can
    /// a restricted day-of-week under the "either" rule; so the question is only whether
    /// some chosen day exists in some chosen month.
    fn check_fires(&self) -> Result<(), CronError> {
        if self.rule == DayRule::Either {
            return Ok(());
        }
        let exists = (1..=12u32)
            .filter(|m| self.months & (1 << m) != 0)
            .any(|m| (1..=max_days_in_month(m)).any(|d| self.days & (1 << d) != 0));
        if exists {
            return Ok(());
        }
        let days: Vec<String> = (1..=31u32)
            .filter(|d| self.days & (1 << d) != 0)
            .map(|d| d.to_string())
            .collect();
        let months: Vec<&str> = (1..=12u32)
            .filter(|m| self.months & (1 << m) != 0)
            .filter_map(|m| MONTH_NAMES.get(usize::try_from(m - 1).ok()?).copied())
            .collect();
        let (day_word, verb) = if days.len() == 1 {
            ("day", "exists")
        } else {
            ("days", "exist")
        };
        Err(CronError::NeverFires(format!(
            "{day_word} {} of the month never {verb} in {}",
            days.join(", "),
            months.join(", ")
        )))
    }

    /// Whether a wall-clock time matches (seconds are ignored).
    pub fn matches(&self, wall: NaiveDateTime) -> bool {
        self.months & (1 << wall.month()) != 0
            && self.day_matches(wall.date())
            && self.hours & (1 << wall.hour()) != 0
            && self.minutes & (1 << wall.minute()) != 0
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let dom = self.days & (1 << date.day()) != 0;
        let dow = self.weekdays & (1 << date.weekday().num_days_from_sunday()) != 0;
        match self.rule {
            DayRule::Both => dom && dow,
            DayRule::Either => dom || dow,
        }
    }

    /// The values each field chose, in order (to describe the expression in words).
    pub fn sets(&self) -> CronSets {
        let bits = |mask: u64, from: u32, to: u32| -> Vec<u32> {
            (from..=to).filter(|b| mask & (1 << b) != 0).collect()
        };
        CronSets {
            minutes: bits(self.minutes, 0, 59),
            hours: bits(u64::from(self.hours), 0, 23),
            days: bits(u64::from(self.days), 1, 31),
            months: bits(u64::from(self.months), 1, 12),
            weekdays: bits(u64::from(self.weekdays), 0, 6),
            either_day: self.rule == DayRule::Either,
        }
    }

    /// The first matching wall-clock minute strictly after `wall`; `None` only past the end
    /// of the calendar chrono represents.
    ///
    /// Skips by field: a month not chosen jumps to the next chosen one, an hour not chosen
    /// to the next chosen hour, so the cost does not grow with the gap between matches
    /// (a day-of-month 29 in February costs some thirty steps per year to reach).
    pub fn next_after(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = truncate_to_minute(wall).checked_add_signed(Duration::minutes(1))?;
        let mut c = Cursor::at(start);
        let last_year = start.year().checked_add(MAX_YEARS_BETWEEN_MATCHES)?;
        while c.year <= last_year {
            let Some(month) = next_bit(u64::from(self.months), c.month) else {
                c = Cursor::new(c.year.checked_add(1)?, 1, 1, 0, 0);
                continue;
            };
            if month != c.month {
                c = Cursor::new(c.year, month, 1, 0, 0);
            }
            if self.rule == DayRule::Both {
                // Only the chosen days of the month can match: jump to the next one.
                match next_bit(u64::from(self.days), c.day) {
                    Some(day) if day != c.day => c = Cursor::new(c.year, c.month, day, 0, 0),
                    Some(_) => {}
                    None => {
                        c = Cursor::new(c.year, c.month, 31, 0, 0).next_day()?;
                        continue;
                    }
                }
            }
            let date = NaiveDate::from_ymd_opt(c.year, c.month, c.day);
            let Some(date) = date.filter(|d| self.day_matches(*d)) else {
                c = c.next_day()?;
                continue;
            };
            let Some(hour) = next_bit(u64::from(self.hours), c.hour) else {
                c = c.next_day()?;
                continue;
            };
            if hour != c.hour {
                c.hour = hour;
                c.minute = 0;
            }
            let Some(minute) = next_bit(self.minutes, c.minute) else {
                c = c.next_hour()?;
                continue;
            };
            return date.and_hms_opt(c.hour, minute, 0);
        }
        None
    }

    /// The last matching wall-clock minute strictly before `wall`.
    pub fn prev_before(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = truncate_to_minute(wall);
        let start = if start == wall {
            start.checked_sub_signed(Duration::minutes(1))?
        } else {
            start
        };
        self.at_or_before(start)
    }

    /// The last matching wall-clock minute at or before `wall`.
    pub fn at_or_before(&self, wall: NaiveDateTime) -> Option<NaiveDateTime> {
        let start = truncate_to_minute(wall);
        let mut c = Cursor::at(start);
        let first_year = start.year().checked_sub(MAX_YEARS_BETWEEN_MATCHES)?;
        while c.year >= first_year {
            let Some(month) = prev_bit(u64::from(self.months), c.month) else {
                let year = c.year.checked_sub(1)?;
                c = Cursor::new(year, 12, 31, 23, 59);
                continue;
            };
            if month != c.month {
                c = Cursor::new(c.year, month, days_in_month(c.year, month)?, 23, 59);
            }
            if self.rule == DayRule::Both {
                // Only the chosen days of the month can match: jump to the previous one.
                match prev_bit(u64::from(self.days), c.day) {
                    Some(day) if day != c.day => c = Cursor::new(c.year, c.month, day, 23, 59),
                    Some(_) => {}
                    None => {
                        c = Cursor::new(c.year, c.month, 1, 23, 59).prev_day()?;
                        continue;
                    }
                }
            }
            let date = NaiveDate::from_ymd_opt(c.year, c.month, c.day);
            let Some(date) = date.filter(|d| self.day_matches(*d)) else {
                c = c.prev_day()?;
                continue;
            };
            let Some(hour) = prev_bit(u64::from(self.hours), c.hour) else {
                c = c.prev_day()?;
                continue;
            };
            if hour != c.hour {
                c.hour = hour;
                c.minute = 59;
            }
            let Some(minute) = prev_bit(self.minutes, c.minute) else {
                c = c.prev_hour()?;
                continue;
            };
            return date.and_hms_opt(c.hour, minute, 0);
        }
        None
    }
}

/// The Gregorian calendar repeats every 400 years, so an expression that fires at all fires
/// within any 401 (Feb 29 on a Sunday can be 40 years apart); past this a search gives up
/// rather than loop.
const MAX_YEARS_BETWEEN_MATCHES: i32 = 401;

/// A calendar position that may briefly be out of range (day 31 of a 30-day month) while
/// the search moves it; `NaiveDate` would refuse it.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
}

impl Cursor {
    fn new(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> Self {
        Cursor {
            year,
            month,
            day,
            hour,
            minute,
        }
    }

    fn at(t: NaiveDateTime) -> Self {
        Cursor::new(t.year(), t.month(), t.day(), t.hour(), t.minute())
    }

    fn next_day(self) -> Option<Self> {
        if self.day < days_in_month(self.year, self.month)? {
            Some(Cursor::new(self.year, self.month, self.day + 1, 0, 0))
        } else if self.month < 12 {
            Some(Cursor::new(self.year, self.month + 1, 1, 0, 0))
        } else {
            Some(Cursor::new(self.year.checked_add(1)?, 1, 1, 0, 0))
        }
    }

    fn next_hour(self) -> Option<Self> {
        if self.hour < 23 {
            Some(Cursor::new(
                self.year,
                self.month,
                self.day,
                self.hour + 1,
                0,
            ))
        } else {
            self.next_day()
        }
    }

    fn prev_day(self) -> Option<Self> {
        if self.day > 1 {
            Some(Cursor::new(self.year, self.month, self.day - 1, 23, 59))
        } else if self.month > 1 {
            let month = self.month - 1;
            let day = days_in_month(self.year, month)?;
            Some(Cursor::new(self.year, month, day, 23, 59))
        } else {
            Some(Cursor::new(self.year.checked_sub(1)?, 12, 31, 23, 59))
        }
    }

    fn prev_hour(self) -> Option<Self> {
        if self.hour > 0 {
            Some(Cursor::new(
                self.year,
                self.month,
                self.day,
                self.hour - 1,
                59,
            ))
        } else {
            self.prev_day()
        }
    }
}

/// The lowest set bit at or above `from`.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    let above = mask.checked_shr(from)?.checked_shl(from)?;
    (above != 0).then(|| above.trailing_zeros())
}

/// The highest set bit at or below `to`.
fn prev_bit(mask: u64, to: u32) -> Option<u32> {
    let below = if to >= 63 {
        mask
    } else {
        mask & ((1u64 << (to + 1)) - 1)
    };
    (below != 0).then(|| 63 - below.leading_zeros())
}

/// Bit sets are built in a u64 and narrowed to their field's width: the parser only sets
/// bits inside the field's range, which fits.
fn narrow<T: TryFrom<u64> + Default>(bits: u64) -> T {
    T::try_from(bits).unwrap_or_default()
}

fn truncate_to_minute(t: NaiveDateTime) -> NaiveDateTime {
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let (y, m) = if month == 12 {
        (year.checked_add(1)?, 1)
    } else {
        (year, month + 1)
    };
    Some(NaiveDate::from_ymd_opt(y, m, 1)?.pred_opt()?.day())
}

/// The most days a month ever has (February 29).
fn max_days_in_month(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// One field: a comma-separated list of `*`, `v`, `a-b`, `*/n` or `a-b/n`.
fn parse_field(field: Field, text: &str) -> Result<u64, CronError> {
    let mut bits = 0u64;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(CronError::EmptyItem {
                field,
                text: text.to_owned(),
            });
        }
        bits |= parse_item(field, item)?;
    }
    Ok(bits)
}

fn parse_item(field: Field, item: &str) -> Result<u64, CronError> {
    let (min, max) = field.range();
    let (range, step) = match item.split_once('/') {
        Some((range, step)) => (range, Some(parse_step(field, step, item)?)),
        None => (item, None),
    };
    let (low, high) = if range == "*" {
        (min, max)
    } else if let Some((a, b)) = range.split_once('-') {
        let (low, high) = (parse_value(field, a, item)?, parse_value(field, b, item)?);
        if low > high {
            return Err(CronError::Backwards {
                field,
                text: range.to_owned(),
            });
        }
        (low, high)
    } else {
        let value = parse_value(field, range, item)?;
        if step.is_some() {
            return Err(CronError::StepFromValue {
                field,
                text: item.to_owned(),
                hint: format!("{range}-{max}/{}", step.unwrap_or(1)),
            });
        }
        (value, value)
    };
    let step = step.unwrap_or(1);
    Ok((low..=high)
        .step_by(usize::try_from(step).unwrap_or(1))
        .fold(0u64, |bits, v| bits | (1 << v)))
}

/// `item` is the whole list item, named in the message when `text` is empty (`*/`, `-5`).
fn parse_step(field: Field, text: &str, item: &str) -> Result<u32, CronError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_a_number(field, text, item));
    }
    match text.parse::<u32>() {
        Ok(step) if (1..=step_max(field)).contains(&step) => Ok(step),
        _ => Err(CronError::StepOutOfRange {
            field,
            step: text.to_owned(),
        }),
    }
}

fn parse_value(field: Field, text: &str, item: &str) -> Result<u32, CronError> {
    let (min, max) = field.range();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u32>() {
            Ok(v) if (min..=max).contains(&v) => Ok(v),
            _ => Err(CronError::OutOfRange {
                field,
                value: text.to_owned(),
            }),
        };
    }
    field
        .value_of_name(text)
        .ok_or_else(|| not_a_number(field, text, item))
}

fn not_a_number(field: Field, text: &str, item: &str) -> CronError {
    CronError::NotANumber {
        field,
        text: if text.is_empty() { item } else { text }.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn wall(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap_or_else(|e| panic!("bad wall time {s:?} in a test: {e}"))
    }

    fn cron(s: &str) -> CronExpr {
        CronExpr::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    #[test]
    fn malformed_expressions_are_refused_saying_what_is_wrong() {
        let cases = [
            ("", "expected 5 fields (minute hour day-of-month month day-of-week), got 0"),
            ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
            ("0 * * * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 6"),
            ("0 0 * * 8", "day-of-week 8 is out of range 0-7"),
            ("60 * * * *", "minute 60 is out of range 0-59"),
            ("0 24 * * *", "hour 24 is out of range 0-23"),
            ("0 0 0 * *", "day-of-month 0 is out of range 1-31"),
            ("0 0 32 * *", "day-of-month 32 is out of range 1-31"),
            ("0 0 * 13 *", "month 13 is out of range 1-12"),
            ("0 0 * 0 *", "month 0 is out of range 1-12"),
            ("0 0 * * 99999999999", "day-of-week 99999999999 is out of range 0-7"),
            ("x * * * *", "minute \"x\" is not a number"),
            ("-5 * * * *", "minute \"-5\" is not a number"),
            ("0 0 * FOO *", "month \"FOO\" is not a number or a month name (JAN-DEC)"),
            ("0 0 * * MONDAY", "day-of-week \"MONDAY\" is not a number or a day name (SUN-SAT)"),
            ("0 0 * JAN-MON *", "month \"MON\" is not a number or a month name (JAN-DEC)"),
            ("0 MON * * *", "hour \"MON\" is not a number"),
            ("0 0 ? * *", "day-of-month \"?\" is not a number"),
            ("0 0 L * *", "day-of-month \"L\" is not a number"),
            ("0 0 * * 5#3", "day-of-week \"5#3\" is not a number or a day name (SUN-SAT)"),
            ("1,,2 * * * *", "minute has an empty item in \"1,,2\""),
            ("1, * * * *", "minute has an empty item in \"1,\""),
            ("0 22-2 * * *", "hour range 22-2 goes backwards"),
            ("0 0 * * FRI-MON", "day-of-week range FRI-MON goes backwards; write the values in increasing order (Sunday is 0 or 7)"),
            ("*/0 * * * *", "minute step 0 is out of range 1-60"),
            ("*/61 * * * *", "minute step 61 is out of range 1-60"),
            ("0 */25 * * *", "hour step 25 is out of range 1-24"),
            ("0 0 */32 * *", "day-of-month step 32 is out of range 1-31"),
            ("0 0 * * */8", "day-of-week step 8 is out of range 1-7"),
            ("*/x * * * *", "minute \"x\" is not a number"),
            ("*/ * * * *", "minute \"*/\" is not a number"),
            ("5/15 * * * *", "minute \"5/15\" steps from a single value; write 5-59/15"),
            ("0 0 31 2 *", "the expression never fires: day 31 of the month never exists in FEB"),
            ("0 0 30 2 *", "the expression never fires: day 30 of the month never exists in FEB"),
            ("0 0 30,31 2 *", "the expression never fires: days 30, 31 of the month never exist in FEB"),
            ("0 0 31 4,6,9,11 *", "the expression never fires: day 31 of the month never exists in APR, JUN, SEP, NOV"),
            ("0 0 31 2 */2", "the expression never fires: day 31 of the month never exists in FEB"),
        ];
        for (text, message) in cases {
            // Act
            let got = CronExpr::parse(text).map(|_| ()).map_err(|e| e.to_string());

            // Assert
            let err = got.expect_err(text);
            assert!(
                err.starts_with(message),
                "{text:?}: got {err:?}, want it to start with {message:?}"
            );
        }
    }

    #[test]
    fn well_formed_expressions_parse() {
        for text in [
            "* * * * *",
            "  0\t2  * * *  ",
            "*/15 * * * *",
            "1-10/2 * * * *",
            "0 0-23/6 * * *",
            "0 0 * jan,Feb,MAR *",
            "0 0 * * sun,Mon,TUE,wed,thu,fri,sat",
            "0 0 * * 0-7",
            "0 0 * * 5-7",
            "0 0 * * MON-FRI/2",
            "0 0 29 2 *",
            "0 0 31 2 MON",
            "0 0 */10 * *",
            "0 0 31 1-12 *",
            "*/60 * * * *",
            "007 02 01 01 00",
        ] {
            assert!(
                CronExpr::parse(text).is_ok(),
                "{text:?}: {:?}",
                CronExpr::parse(text)
            );
        }
    }

    #[test]
    fn fields_select_the_values_written() {
        let cases = [
            // (expression, wall time, matches)
            ("*/15 * * * *", "2027-01-01 10:45", true),
            ("*/15 * * * *", "2027-01-01 10:46", false),
            ("1-10/2 * * * *", "2027-01-01 10:09", true),
            ("1-10/2 * * * *", "2027-01-01 10:10", false),
            ("0 */6 * * *", "2027-01-01 18:00", true),
            ("0 */6 * * *", "2027-01-01 19:00", false),
            ("0 0 * SEP *", "2027-09-15 00:00", true),
            ("0 0 * sep *", "2027-10-15 00:00", false),
            // Sunday as 0, 7 and SUN; 2027-01-03 is a Sunday.
            ("0 0 * * 0", "2027-01-03 00:00", true),
            ("0 0 * * 7", "2027-01-03 00:00", true),
            ("0 0 * * sun", "2027-01-03 00:00", true),
            ("0 0 * * 5-7", "2027-01-03 00:00", true),
            ("0 0 * * 5-7", "2027-01-04 00:00", false),
            ("0 0 * * 1-5", "2027-01-04 00:00", true),
            // Vixie's rule: both restricted, either matches (2027-02-01 is a Monday).
            ("0 2 15 * MON", "2027-02-15 02:00", true),
            ("0 2 15 * MON", "2027-02-08 02:00", true),
            ("0 2 15 * MON", "2027-02-09 02:00", false),
            // A field starting with * makes both necessary.
            ("0 2 */2 * MON", "2027-02-08 02:00", false),
            ("0 2 */2 * MON", "2027-02-15 02:00", true),
            ("0 2 */2 * MON", "2027-02-17 02:00", false),
            ("0 2 15 * *", "2027-02-08 02:00", false),
            ("0 2 15 * */1", "2027-02-08 02:00", false),
        ];
        for (text, at, expected) in cases {
            assert_eq!(cron(text).matches(wall(at)), expected, "{text:?} at {at}");
        }
    }

    #[test]
    fn next_and_previous_matches_skip_by_field() {
        let cases = [
            (
                "30 2 * * *",
                "2027-03-28 02:30",
                "2027-03-29 02:30",
                "2027-03-27 02:30",
            ),
            (
                "30 2 * * *",
                "2027-03-28 02:29",
                "2027-03-28 02:30",
                "2027-03-27 02:30",
            ),
            (
                "0 0 29 2 *",
                "2027-01-01 00:00",
                "2028-02-29 00:00",
                "2024-02-29 00:00",
            ),
            (
                "0 0 29 2 *",
                "2097-01-01 00:00",
                "2104-02-29 00:00",
                "2096-02-29 00:00",
            ),
            (
                "59 23 31 12 *",
                "2027-12-31 23:59",
                "2028-12-31 23:59",
                "2026-12-31 23:59",
            ),
            (
                "0 0 1 1 *",
                "2027-12-31 23:59",
                "2028-01-01 00:00",
                "2027-01-01 00:00",
            ),
            (
                "*/20 9-17 * * *",
                "2027-06-01 17:40",
                "2027-06-02 09:00",
                "2027-06-01 17:20",
            ),
            (
                "0 0 31 * *",
                "2027-04-01 00:00",
                "2027-05-31 00:00",
                "2027-03-31 00:00",
            ),
            (
                "0 2 1 * MON",
                "2027-02-01 02:00",
                "2027-02-08 02:00",
                "2027-01-25 02:00",
            ),
        ];
        for (text, at, next, prev) in cases {
            let e = cron(text);
            assert_eq!(
                e.next_after(wall(at)),
                Some(wall(next)),
                "{text:?} after {at}"
            );
            assert_eq!(
                e.prev_before(wall(at)),
                Some(wall(prev)),
                "{text:?} before {at}"
            );
        }
    }

    #[test]
    fn next_and_previous_agree_with_a_minute_by_minute_scan() {
        // Arrange: expressions over every field, scanned over 2027-2028.
        let exprs = [
            "*/7 */5 * * *",
            "15-52/10 * 8-10 1 SUN-THU",
            "0 11,14,23 * */4 *",
            "2,11,29 0 29 * *",
            "17,30,44 22,23 30 * 5",
            "0 0 */10 2 MON",
            "59 23 * * 6",
        ];
        let start = wall("2027-01-01 00:00");
        for text in exprs {
            let e = cron(text);
            let matching: Vec<NaiveDateTime> = (0..2 * 366 * 1440)
                .map(|m| start + Duration::minutes(m))
                .filter(|t| e.matches(*t))
                .collect();
            assert!(matching.len() >= 2, "{text:?} matches twice at least");
            // Act / Assert
            for pair in matching.windows(2) {
                assert_eq!(
                    e.next_after(pair[0]),
                    Some(pair[1]),
                    "{text:?} after {}",
                    pair[0]
                );
                assert_eq!(
                    e.next_after(pair[1] - Duration::seconds(1)),
                    Some(pair[1]),
                    "{text:?} a second before {}",
                    pair[1]
                );
                assert_eq!(
                    e.prev_before(pair[1]),
                    Some(pair[0]),
                    "{text:?} before {}",
                    pair[1]
                );
                assert_eq!(
                    e.at_or_before(pair[1] + Duration::seconds(59)),
                    Some(pair[1]),
                    "{text:?} at or before {}",
                    pair[1]
                );
            }
        }
    }

    #[test]
    fn searches_end_at_the_edges_of_the_calendar() {
        let e = cron("0 0 29 2 *");
        assert_eq!(e.next_after(NaiveDateTime::MAX), None);
        assert_eq!(e.prev_before(NaiveDateTime::MIN), None);
        let every = cron("* * * * *");
        assert_eq!(every.next_after(NaiveDateTime::MAX), None);
        assert_eq!(every.prev_before(NaiveDateTime::MIN), None);
        assert!(every.at_or_before(NaiveDateTime::MAX).is_some());
    }
}
