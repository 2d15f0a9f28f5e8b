//! Schedule math: when a job's backups are expected, when each becomes late, and which slot a report belongs to.
//!
//! A schedule has one of two forms: the seed's fixed frequencies in UTC (DESIGN §3,
//! [`FrequencySchedule`]) or a cron expression in a time zone (§11, [`CronSchedule`]).
//! Each form answers three questions about its slots (the latest at or before an instant,
//! the next after it, the previous before it); [`Schedule`] builds everything else on
//! them once (windows, due times, catching up), so both forms share §3's rules exactly.
//!
//! Everything here is a pure function of its arguments (time is always a parameter, the
//! clock is never read), so the scheduler, the status API and the path renderer agree on
//! the same slots and tests can pin any instant.
//!
//! Field values outside their documented ranges are clamped rather than rejected, because
//! validation belongs to the API layer and a bad row in the database must not panic the
//! scheduler: `hour` to 0..=23, `minute` to 0..=59, `weekday` to 0..=6, `day_of_month` to
//! 1..=31 and `grace_minutes` to 1..=1440. Grace is *not* clamped to the period: the rule
//! "shorter than the period" is enforced on input, and the windows still tile if it is
//! broken. Results that would fall outside chrono's representable range (years beyond
//! ±262 000) saturate at `DateTime::<Utc>::MIN_UTC` / `MAX_UTC` instead of panicking.

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};

use super::cron::CronExpr;
use super::zone::Zone;

// The bounds of a schedule's fields: the API's validator checks them, its OpenAPI schema
// states them and the clamps below apply them, all from these constants.

/// `hour`, UTC.
pub const HOUR_MIN: u32 = 0;
pub const HOUR_MAX: u32 = 23;
pub const MINUTE_MIN: u32 = 0;
pub const MINUTE_MAX: u32 = 59;
/// `weekday`: 0 = Monday ..= 6 = Sunday.
pub const WEEKDAY_MIN: u32 = 0;
pub const WEEKDAY_MAX: u32 = 6;
pub const DAY_OF_MONTH_MIN: u32 = 1;
pub const DAY_OF_MONTH_MAX: u32 = 31;
/// `grace_minutes`; it must also be shorter than the period (see `job::check_grace`).
pub const GRACE_MIN: u32 = 1;
pub const GRACE_MAX: u32 = 1440;
/// How far ahead the shortest interval between slots is looked for (DESIGN §11).
pub const INTERVAL_HORIZON_DAYS: i64 = 366;

/// How often a job is expected to back up.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    Hourly,
    Daily,
    Weekly,
    Monthly,
}

impl Frequency {
    /// Every variant, so callers can list or validate names without repeating them.
    pub const ALL: [Frequency; 4] = [
        Frequency::Hourly,
        Frequency::Daily,
        Frequency::Weekly,
        Frequency::Monthly,
    ];

    /// The wire and database name; it matches the serde representation.
    pub fn as_str(self) -> &'static str {
        match self {
            Frequency::Hourly => "hourly",
            Frequency::Daily => "daily",
            Frequency::Weekly => "weekly",
            Frequency::Monthly => "monthly",
        }
    }

    /// Only the exact lowercase names are accepted, so that a stored value has a single
    /// spelling and query filters match exactly.
    pub fn parse(s: &str) -> Option<Frequency> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The shortest gap between two slots (a month counts as February's 28 days); grace
    /// must stay below it so that a slot is due before the next one starts.
    pub fn min_period_minutes(self) -> u32 {
        match self {
            Frequency::Hourly => 60,
            Frequency::Daily => 24 * 60,
            Frequency::Weekly => 7 * 24 * 60,
            Frequency::Monthly => 28 * 24 * 60,
        }
    }
}

/// `backup_frequency` as a job is answered: the seed's four, or `cron` for a job with a
/// `schedule` (DESIGN §11). Only the four are accepted on input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnsweredFrequency {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    /// The job has a `schedule`: its slots are the cron expression's, in its time zone.
    Cron,
}

impl AnsweredFrequency {
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredFrequency::Hourly => "hourly",
            AnsweredFrequency::Daily => "daily",
            AnsweredFrequency::Weekly => "weekly",
            AnsweredFrequency::Monthly => "monthly",
            AnsweredFrequency::Cron => "cron",
        }
    }
}

impl From<Frequency> for AnsweredFrequency {
    fn from(f: Frequency) -> Self {
        match f {
            Frequency::Hourly => AnsweredFrequency::Hourly,
            Frequency::Daily => AnsweredFrequency::Daily,
            Frequency::Weekly => AnsweredFrequency::Weekly,
            Frequency::Monthly => AnsweredFrequency::Monthly,
        }
    }
}

/// A job's schedule, in either form, with everything §3 derives from its slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// The seed's fields: hourly, daily, weekly or monthly, in UTC.
    Frequency(FrequencySchedule),
    /// A cron expression read on the wall clock of a time zone.
    Cron(CronSchedule),
}

impl From<FrequencySchedule> for Schedule {
    fn from(s: FrequencySchedule) -> Self {
        Schedule::Frequency(s)
    }
}

impl From<CronSchedule> for Schedule {
    fn from(s: CronSchedule) -> Self {
        Schedule::Cron(s)
    }
}

impl Schedule {
    /// A job's schedule from its stored fields: its cron expression read on the wall clock
    /// of `zone` when it has one, else the seed's frequency fields, in UTC.
    pub fn of_job(cron: Option<CronExpr>, zone: Zone, frequency: FrequencySchedule) -> Self {
        match cron {
            Some(expr) => Schedule::Cron(CronSchedule {
                expr,
                zone,
                grace_minutes: frequency.grace_minutes,
            }),
            None => Schedule::Frequency(frequency),
        }
    }

    /// The latest slot at or before `t`: the building block for every other question.
    pub fn slot_at_or_before(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::Frequency(s) => s.slot_at_or_before(t),
            Schedule::Cron(s) => s.slot_at_or_before(t),
        }
    }

    /// The first slot strictly after `slot`. Given a slot it is the following one; given
    /// any other instant it is still well defined, so callers need not pre-align.
    pub fn next_slot(&self, slot: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::Frequency(s) => s.next_slot(slot),
            Schedule::Cron(s) => s.next_slot(slot),
        }
    }

    /// The latest slot strictly before `slot`; like [`Schedule::next_slot`] it accepts any
    /// instant.
    pub fn prev_slot(&self, slot: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Schedule::Frequency(s) => s.prev_slot(slot),
            Schedule::Cron(s) => s.prev_slot(slot),
        }
    }

    /// Grace as a duration, clamped to 1..=1440 minutes.
    pub fn grace(&self) -> Duration {
        let minutes = match self {
            Schedule::Frequency(s) => s.grace_minutes,
            Schedule::Cron(s) => s.grace_minutes,
        };
        grace(minutes)
    }

    /// The zone whose wall clock names the slots: UTC for the seed's form.
    pub fn zone(&self) -> Zone {
        match self {
            Schedule::Frequency(_) => Zone::UTC,
            Schedule::Cron(s) => s.zone,
        }
    }

    /// The wall-clock time of `slot` in the schedule's zone: what the storage path's
    /// `%Y %m %d %H %M` are rendered from (DESIGN §11), UTC for the seed's form. A cron
    /// slot moved by a spring-forward gap shows the time the clock read (03:30, not 02:30).
    pub fn wall_time(&self, slot: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Schedule::Frequency(_) => slot.naive_utc(),
            Schedule::Cron(s) => s.wall_time(slot),
        }
    }

    /// The slot whose window holds `at`: this is how a reported backup (which may start up
    /// to `grace` early) is matched to the slot it fulfils.
    pub fn slot_for(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        self.slot_at_or_before(saturating_add(at, self.grace()))
    }

    /// When a slot with no report becomes late.
    pub fn due(&self, slot: DateTime<Utc>) -> DateTime<Utc> {
        saturating_add(slot, self.grace())
    }

    /// `[slot − grace, next slot − grace)`: consecutive windows tile time, so every report
    /// belongs to exactly one slot.
    pub fn window(&self, slot: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let grace = self.grace();
        (
            saturating_sub(slot, grace),
            saturating_sub(self.next_slot(slot), grace),
        )
    }

    /// The latest slot whose due time is at or before `now`.
    ///
    /// Not an `Option`: slots repeat without end in both directions, so one always exists.
    /// Whether it matters (for instance, whether it is due after the job was created, which
    /// decides the "pending" state) is the caller's comparison to make.
    pub fn latest_due_slot(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.slot_at_or_before(saturating_sub(now, self.grace()))
    }

    /// The slots due strictly after `after` and at or before `now`, oldest first, at most
    /// `max` of them.
    ///
    /// Oldest first so that a scheduler catching up after downtime, bounded per tick,
    /// proceeds in order and resumes on the next tick where it stopped. The first slot is
    /// found in constant time and each further one in constant time, so a gap of years
    /// costs only the slots returned. Strictly after `after`: a job created exactly at a
    /// slot's due time is not blamed for that slot.
    pub fn due_slots_between(
        &self,
        after: DateTime<Utc>,
        now: DateTime<Utc>,
        max: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut slots = Vec::new();
        // The first slot with `slot + grace > after`.
        let mut slot = self.next_slot(saturating_sub(after, self.grace()));
        while slots.len() < max && self.due(slot) <= now {
            slots.push(slot);
            let next = self.next_slot(slot);
            if next <= slot {
                // Saturated at the end of representable time.
                break;
            }
            slot = next;
        }
        slots
    }

    /// The first due time strictly after `now`: the status API's `next_due_utc`.
    pub fn next_due_after(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        self.due(self.next_slot(saturating_sub(now, self.grace())))
    }

    /// The shortest interval between two consecutive slots, the first of them at or after
    /// `now` and before `now` + 366 days (DESIGN §11: grace must be shorter). Daylight saving
    /// time makes cron intervals uneven: a daily 02:30 in Paris is 23 hours from the spring
    /// change to the next day, an hourly `0 * * * *` in Lord Howe 30 minutes.
    ///
    /// At least one interval is always measured, so a schedule with fewer than two slots in
    /// the horizon (`0 0 29 2 *`) answers its next one. It walks the slots one by one (some
    /// 105,000 for `*/5 * * * *`: see `cron_shortest_interval` in benches/micro.rs), so it
    /// is for validating input, not for the tick; it stops early at one minute, the
    /// shortest possible. `None` only at the end of representable time.
    pub fn shortest_interval(&self, now: DateTime<Utc>) -> Option<SlotInterval> {
        let horizon = now.checked_add_signed(Duration::days(INTERVAL_HORIZON_DAYS))?;
        let mut from = self.next_slot(now.checked_sub_signed(Duration::nanoseconds(1))?);
        let mut shortest: Option<SlotInterval> = None;
        loop {
            let to = self.next_slot(from);
            if to <= from {
                break;
            }
            let interval = SlotInterval { from, to };
            if shortest.is_none_or(|s| interval.length() < s.length()) {
                shortest = Some(interval);
            }
            if interval.length() <= Duration::minutes(1) || to >= horizon {
                break;
            }
            from = to;
        }
        shortest
    }
}

/// Two consecutive slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotInterval {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl SlotInterval {
    pub fn length(&self) -> Duration {
        self.to - self.from
    }
}

/// The seed's form: the slots of DESIGN §3, in UTC.
///
/// Fields that the frequency does not use are ignored (`hour` for hourly, `weekday` outside
/// weekly, `day_of_month` outside monthly), so a job can keep its defaults for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrequencySchedule {
    pub frequency: Frequency,
    /// 0..=23, UTC.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0 = Monday ..= 6 = Sunday.
    pub weekday: u32,
    /// 1..=31; a shorter month uses its last day.
    pub day_of_month: u32,
    /// 1..=1440.
    pub grace_minutes: u32,
}

/// Which way to move from one slot to its neighbour.
#[derive(Clone, Copy)]
enum Step {
    Back,
    Forward,
}

impl FrequencySchedule {
    /// The latest slot at or before `t`.
    pub fn slot_at_or_before(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self.slot_in_period_of(t) {
            Some(c) if c <= t => c,
            Some(c) => self.step(c, Step::Back),
            None => DateTime::<Utc>::MIN_UTC,
        }
    }

    /// The first slot strictly after `t`.
    pub fn next_slot(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self.slot_in_period_of(t) {
            Some(c) if c > t => c,
            Some(c) => self.step(c, Step::Forward),
            None => DateTime::<Utc>::MAX_UTC,
        }
    }

    /// The latest slot strictly before `t`.
    pub fn prev_slot(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        match self.slot_in_period_of(t) {
            Some(c) if c < t => c,
            Some(c) => self.step(c, Step::Back),
            None => DateTime::<Utc>::MIN_UTC,
        }
    }

    /// The slot that lies in the same hour, day, week (the latest matching weekday on or
    /// before `t`'s date) or month as `t`. It may be after `t`; the slots on either side of
    /// `t` are then at most one step away, which keeps every query O(1).
    fn slot_in_period_of(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let date = t.date_naive();
        let (hour, minute) = (self.hour.min(HOUR_MAX), self.minute.min(MINUTE_MAX));
        match self.frequency {
            Frequency::Hourly => at_time(date, t.hour(), minute),
            Frequency::Daily => at_time(date, hour, minute),
            Frequency::Weekly => {
                let today = date.weekday().num_days_from_monday();
                let back = (today + 7 - self.weekday.min(WEEKDAY_MAX)) % 7;
                at_time(
                    date.checked_sub_days(Days::new(u64::from(back)))?,
                    hour,
                    minute,
                )
            }
            Frequency::Monthly => self.monthly_slot(month_index(date)),
        }
    }

    /// The neighbouring slot of `slot`, which must be a slot.
    fn step(&self, slot: DateTime<Utc>, step: Step) -> DateTime<Utc> {
        let neighbour = match self.frequency {
            Frequency::Monthly => {
                let delta = match step {
                    Step::Back => -1,
                    Step::Forward => 1,
                };
                self.monthly_slot(month_index(slot.date_naive()) + delta)
            }
            fixed => {
                let period = Duration::minutes(i64::from(fixed.min_period_minutes()));
                match step {
                    Step::Back => slot.checked_sub_signed(period),
                    Step::Forward => slot.checked_add_signed(period),
                }
            }
        };
        neighbour.unwrap_or(match step {
            Step::Back => DateTime::<Utc>::MIN_UTC,
            Step::Forward => DateTime::<Utc>::MAX_UTC,
        })
    }

    /// The slot in the month numbered `index` (see [`month_index`]), on `day_of_month` or
    /// the month's last day when it is shorter.
    fn monthly_slot(&self, index: i64) -> Option<DateTime<Utc>> {
        let year = i32::try_from(index.div_euclid(12)).ok()?;
        let month = u32::try_from(index.rem_euclid(12)).ok()? + 1;
        let day = self
            .day_of_month
            .clamp(DAY_OF_MONTH_MIN, DAY_OF_MONTH_MAX)
            .min(days_in_month(year, month)?);
        at_time(
            NaiveDate::from_ymd_opt(year, month, day)?,
            self.hour.min(HOUR_MAX),
            self.minute.min(MINUTE_MAX),
        )
    }
}

/// DESIGN §11's form: the instants whose wall-clock time in `zone` matches `expr`.
///
/// A wall time that occurs twice (the clocks went back) is its first occurrence only; one
/// that does not occur (the clocks went forward) is moved later by the gap's length; two
/// wall times landing on the same instant are one slot ([`Zone::resolve`]).
///
/// Wall time does not map to instants in order across a spring-forward change: in Paris,
/// `59 2 * * *` and `0 3 * * *` on 2027-03-28 are 03:59 and 03:00 CEST. So the searches
/// walk matching wall times in order and keep the best instant, looking past the first
/// candidate only as far as a gap's length can reorder them. Away from a change, a search
/// costs one wall-time search (which skips by field) and a few offset look-ups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CronSchedule {
    pub expr: CronExpr,
    pub zone: Zone,
    /// 1..=1440.
    pub grace_minutes: u32,
}

impl CronSchedule {
    /// The latest slot at or before `t`.
    pub fn slot_at_or_before(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.last_before(t, true)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// The first slot strictly after `t`.
    pub fn next_slot(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.first_after(t).unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// The latest slot strictly before `t`.
    pub fn prev_slot(&self, t: DateTime<Utc>) -> DateTime<Utc> {
        self.last_before(t, false)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    /// The wall-clock time of `slot` in the zone.
    pub fn wall_time(&self, slot: DateTime<Utc>) -> NaiveDateTime {
        self.zone.wall_time(slot).unwrap_or(slot.naive_utc())
    }

    /// The first slot strictly after `t`.
    ///
    /// Candidates are matching wall times from `t`'s own (or from a gap's length earlier,
    /// when a spring-forward change just happened: the times it skipped land after `t`).
    /// Resolved without a gap, a candidate is final: later wall times resolve later. Moved
    /// by a gap, it can still be beaten by a wall time less than a gap's length later
    /// (02:59 → 03:59 CEST is beaten by 03:00 CEST).
    fn first_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = self.zone.wall_time(t)?;
        let mut wall = match self.zone.recent_gap(t) {
            Some(gap) => local.checked_sub_signed(gap)?,
            None => local,
        };
        let mut best: Option<DateTime<Utc>> = None;
        let mut limit: Option<NaiveDateTime> = None;
        while let Some(next) = self.expr.next_after(wall) {
            wall = next;
            if limit.is_some_and(|l| wall >= l) {
                break;
            }
            let Some(r) = self.zone.resolve(wall) else {
                break;
            };
            if r.instant <= t {
                // The first occurrence of a repeated wall time, before `t`.
                continue;
            }
            best = Some(best.map_or(r.instant, |b| b.min(r.instant)));
            let Some(end) = r.gap.and_then(|gap| wall.checked_add_signed(gap)) else {
                break;
            };
            limit = Some(limit.map_or(end, |l| l.min(end)));
        }
        best
    }

    /// The latest slot before `t` (or at it, when `inclusive`).
    ///
    /// Candidates are matching wall times down from `t`'s own (or from a fold's length
    /// later, when a fall-back change just happened: `t` is then in the repeated hour, and
    /// the first occurrences of the wall times after its own came before it). A candidate
    /// moved by a gap is final; one that is not can still be beaten by a gap wall time
    /// less than a gap's length earlier, when a spring-forward change happened just before.
    fn last_before(&self, t: DateTime<Utc>, inclusive: bool) -> Option<DateTime<Utc>> {
        let local = self.zone.wall_time(t)?;
        let top = match self.zone.recent_fold(t) {
            Some(fold) => local.checked_add_signed(fold)?,
            None => local,
        };
        let mut wall = self.expr.at_or_before(top)?;
        let mut best: Option<DateTime<Utc>> = None;
        let mut floor: Option<NaiveDateTime> = None;
        loop {
            if floor.is_some_and(|f| wall <= f) {
                break;
            }
            let Some(r) = self.zone.resolve(wall) else {
                break;
            };
            let before = if inclusive {
                r.instant <= t
            } else {
                r.instant < t
            };
            if before {
                best = Some(best.map_or(r.instant, |b| b.max(r.instant)));
                if r.gap.is_some() {
                    break;
                }
                if floor.is_none() {
                    match self
                        .zone
                        .recent_gap(r.instant)
                        .and_then(|gap| wall.checked_sub_signed(gap))
                    {
                        Some(f) => floor = Some(f),
                        None => break,
                    }
                }
            }
            match self.expr.prev_before(wall) {
                Some(w) => wall = w,
                None => break,
            }
        }
        best
    }
}

fn grace(minutes: u32) -> Duration {
    Duration::minutes(i64::from(minutes.clamp(GRACE_MIN, GRACE_MAX)))
}

/// Months counted from year 0, so that stepping across a year end is plain arithmetic.
fn month_index(date: NaiveDate) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month0())
}

fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    Some(first_of_next.pred_opt()?.day())
}

fn at_time(date: NaiveDate, hour: u32, minute: u32) -> Option<DateTime<Utc>> {
    Some(date.and_hms_opt(hour, minute, 0)?.and_utc())
}

fn saturating_add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn saturating_sub(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t.checked_sub_signed(d).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse()
            .unwrap_or_else(|e| panic!("bad timestamp {s:?} in a test: {e}"))
    }

    fn schedule(
        frequency: Frequency,
        hour: u32,
        minute: u32,
        weekday: u32,
        day_of_month: u32,
        grace_minutes: u32,
    ) -> Schedule {
        Schedule::Frequency(FrequencySchedule {
            frequency,
            hour,
            minute,
            weekday,
            day_of_month,
            grace_minutes,
        })
    }

    /// The hour is deliberately non-zero to show that hourly ignores it.
    fn hourly(minute: u32, grace: u32) -> Schedule {
        schedule(Frequency::Hourly, 7, minute, 0, 1, grace)
    }

    fn daily(hour: u32, minute: u32, grace: u32) -> Schedule {
        schedule(Frequency::Daily, hour, minute, 0, 1, grace)
    }

    fn weekly(weekday: u32, hour: u32, minute: u32, grace: u32) -> Schedule {
        schedule(Frequency::Weekly, hour, minute, weekday, 1, grace)
    }

    fn monthly(day_of_month: u32, hour: u32, minute: u32, grace: u32) -> Schedule {
        schedule(Frequency::Monthly, hour, minute, 0, day_of_month, grace)
    }

    #[test]
    fn frequency_names_round_trip_through_parse_and_serde() {
        for f in Frequency::ALL {
            // Act
            let parsed = Frequency::parse(f.as_str());
            let json = serde_json::to_string(&f).unwrap();
            let back: Frequency = serde_json::from_str(&json).unwrap();

            // Assert
            assert_eq!(parsed, Some(f), "parse(as_str) for {f:?}");
            assert_eq!(json, format!("\"{}\"", f.as_str()), "serde name for {f:?}");
            assert_eq!(back, f, "serde round trip for {f:?}");
        }
    }

    #[test]
    fn frequency_parse_accepts_only_exact_lowercase_names() {
        for bad in [
            "", "Hourly", "DAILY", " weekly", "monthly ", "yearly", "day",
        ] {
            assert_eq!(Frequency::parse(bad), None, "parse({bad:?}) must fail");
        }
    }

    #[test]
    fn frequency_min_periods_are_an_hour_a_day_a_week_and_february() {
        let cases = [
            (Frequency::Hourly, 60),
            (Frequency::Daily, 1440),
            (Frequency::Weekly, 10080),
            (Frequency::Monthly, 40320),
        ];
        for (f, minutes) in cases {
            assert_eq!(f.min_period_minutes(), minutes, "min period of {f:?}");
        }
    }

    #[test]
    fn slot_at_or_before_finds_the_latest_slot_for_every_frequency() {
        let cases = [
            (
                "hourly just before :15 is the previous hour, hour field ignored",
                hourly(15, 10),
                "2026-03-10T10:14:59Z",
                "2026-03-10T09:15:00Z",
            ),
            (
                "hourly exactly at :15 is that slot",
                hourly(15, 10),
                "2026-03-10T10:15:00Z",
                "2026-03-10T10:15:00Z",
            ),
            (
                "hourly across the year end",
                hourly(30, 10),
                "2027-01-01T00:10:00Z",
                "2026-12-31T23:30:00Z",
            ),
            (
                "hourly across a leap day",
                hourly(45, 10),
                "2028-03-01T00:00:00Z",
                "2028-02-29T23:45:00Z",
            ),
            (
                "daily before its time is yesterday's slot",
                daily(2, 30, 60),
                "2026-03-10T02:29:59Z",
                "2026-03-09T02:30:00Z",
            ),
            (
                "daily exactly at its time is today's slot",
                daily(2, 30, 60),
                "2026-03-10T02:30:00Z",
                "2026-03-10T02:30:00Z",
            ),
            (
                "daily across the year end",
                daily(23, 0, 60),
                "2027-01-01T05:00:00Z",
                "2026-12-31T23:00:00Z",
            ),
            (
                "weekly sunday seen from a thursday",
                weekly(6, 23, 0, 60),
                "2026-12-31T12:00:00Z",
                "2026-12-27T23:00:00Z",
            ),
            (
                "weekly monday wraps into the previous year",
                weekly(0, 9, 0, 60),
                "2027-01-03T12:00:00Z",
                "2026-12-28T09:00:00Z",
            ),
            (
                "weekly on its day but before its time is last week's slot",
                weekly(0, 9, 0, 60),
                "2027-01-04T08:59:59Z",
                "2026-12-28T09:00:00Z",
            ),
            (
                "weekly on its day at its time is this week's slot",
                weekly(0, 9, 0, 60),
                "2027-01-04T09:00:00Z",
                "2027-01-04T09:00:00Z",
            ),
            (
                "weekly saturday wraps into the previous month",
                weekly(5, 4, 0, 60),
                "2026-02-02T00:00:00Z",
                "2026-01-31T04:00:00Z",
            ),
            (
                "monthly before its day is last month's slot",
                monthly(15, 2, 30, 60),
                "2026-03-10T00:00:00Z",
                "2026-02-15T02:30:00Z",
            ),
            (
                "monthly across the year end",
                monthly(31, 22, 0, 60),
                "2027-01-15T00:00:00Z",
                "2026-12-31T22:00:00Z",
            ),
            (
                "monthly day 1 at midnight exactly at the new year",
                monthly(1, 0, 0, 60),
                "2027-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
        ];
        for (name, s, t, expected) in cases {
            // Act
            let got = s.slot_at_or_before(utc(t));

            // Assert
            assert_eq!(got, utc(expected), "case: {name}");
        }
    }

    #[test]
    fn monthly_days_29_to_31_clamp_to_the_last_day_of_short_months() {
        // (case, day_of_month, t, latest slot at or before t)
        let cases = [
            (
                "day 31 in February 2028 (leap)",
                31,
                "2028-03-01T00:00:00Z",
                "2028-02-29T02:30:00Z",
            ),
            (
                "day 30 in February 2028 (leap)",
                30,
                "2028-03-01T00:00:00Z",
                "2028-02-29T02:30:00Z",
            ),
            (
                "day 29 in February 2028 (leap)",
                29,
                "2028-03-01T00:00:00Z",
                "2028-02-29T02:30:00Z",
            ),
            (
                "day 29 in February 2027",
                29,
                "2027-03-01T00:00:00Z",
                "2027-02-28T02:30:00Z",
            ),
            (
                "day 31 in February 2100 (not leap)",
                31,
                "2100-03-01T00:00:00Z",
                "2100-02-28T02:30:00Z",
            ),
            (
                "day 29 in February 2100 (not leap)",
                29,
                "2100-03-01T00:00:00Z",
                "2100-02-28T02:30:00Z",
            ),
            (
                "day 31 in February 2000 (leap)",
                31,
                "2000-03-01T00:00:00Z",
                "2000-02-29T02:30:00Z",
            ),
            (
                "day 31 in April",
                31,
                "2026-05-01T00:00:00Z",
                "2026-04-30T02:30:00Z",
            ),
            (
                "day 31 in June",
                31,
                "2030-07-01T00:00:00Z",
                "2030-06-30T02:30:00Z",
            ),
            (
                "day 31 in March is not clamped",
                31,
                "2028-04-01T00:00:00Z",
                "2028-03-31T02:30:00Z",
            ),
            (
                "day 30 in January is not clamped",
                30,
                "2027-01-31T00:00:00Z",
                "2027-01-30T02:30:00Z",
            ),
        ];
        for (name, dom, t, expected) in cases {
            // Arrange
            let s = monthly(dom, 2, 30, 60);

            // Act
            let got = s.slot_at_or_before(utc(t));

            // Assert
            assert_eq!(got, utc(expected), "case: {name}");
        }
    }

    #[test]
    fn monthly_day_31_falls_on_feb_29_in_a_leap_year_and_returns_to_the_31st() {
        // Arrange
        let s = monthly(31, 2, 30, 60);

        // Act
        let feb = s.next_slot(utc("2028-01-31T02:30:00Z"));
        let mar = s.next_slot(feb);

        // Assert
        assert_eq!(feb, utc("2028-02-29T02:30:00Z"), "January -> February");
        assert_eq!(mar, utc("2028-03-31T02:30:00Z"), "February -> March");
        assert_eq!(s.prev_slot(mar), feb, "March -> February");
    }

    #[test]
    fn next_and_prev_slot_accept_instants_that_are_not_slots() {
        // Arrange
        let s = daily(2, 30, 60);
        let noon = utc("2026-03-10T12:00:00Z");

        // Act / Assert
        assert_eq!(
            s.next_slot(noon),
            utc("2026-03-11T02:30:00Z"),
            "next from noon"
        );
        assert_eq!(
            s.prev_slot(noon),
            utc("2026-03-10T02:30:00Z"),
            "prev from noon"
        );
    }

    #[test]
    fn grace_boundaries_split_windows_and_set_due_times() {
        // (case, schedule, slot, previous slot)
        let cases = [
            (
                "hourly",
                hourly(0, 15),
                "2026-06-01T00:00:00Z",
                "2026-05-31T23:00:00Z",
            ),
            (
                "daily",
                daily(2, 30, 60),
                "2026-03-01T02:30:00Z",
                "2026-02-28T02:30:00Z",
            ),
            (
                "weekly over the year end",
                weekly(0, 0, 0, 1440),
                "2027-01-04T00:00:00Z",
                "2026-12-28T00:00:00Z",
            ),
            (
                "monthly after a leap february",
                monthly(31, 0, 0, 1440),
                "2028-03-31T00:00:00Z",
                "2028-02-29T00:00:00Z",
            ),
        ];
        for (name, s, slot, prev) in cases {
            // Arrange
            let (slot, prev) = (utc(slot), utc(prev));
            let grace = s.grace();
            let start = slot - grace;

            // Act
            let (window_start, window_end) = s.window(slot);

            // Assert
            assert_eq!(window_start, start, "{name}: window starts at slot - grace");
            assert_eq!(
                s.slot_for(start),
                slot,
                "{name}: window start belongs to the slot"
            );
            assert_eq!(
                s.slot_for(start - Duration::seconds(1)),
                prev,
                "{name}: one second before the window belongs to the previous slot"
            );
            assert_eq!(s.due(slot), slot + grace, "{name}: due at slot + grace");
            assert_eq!(
                s.slot_for(s.due(slot)),
                slot,
                "{name}: due time is inside the window"
            );
            assert_eq!(window_end, s.next_slot(slot) - grace, "{name}: window end");
            assert_eq!(
                s.slot_for(window_end - Duration::nanoseconds(1)),
                slot,
                "{name}: last instant of the window belongs to the slot"
            );
            assert_eq!(
                s.slot_for(window_end),
                s.next_slot(slot),
                "{name}: window end is the next slot's"
            );
        }
    }

    #[test]
    fn consecutive_slots_round_trip_and_their_windows_tile() {
        let cases = [
            ("hourly", hourly(59, 59)),
            ("daily", daily(23, 45, 1439)),
            ("weekly sunday", weekly(6, 12, 0, 1440)),
            ("monthly day 1", monthly(1, 0, 0, 1440)),
            ("monthly day 29", monthly(29, 3, 0, 60)),
            ("monthly day 31", monthly(31, 23, 59, 1440)),
        ];
        for (name, s) in cases {
            // Arrange
            let Schedule::Frequency(fields) = s else {
                panic!("{name} is a frequency schedule")
            };
            let mut slot = s.slot_at_or_before(utc("2027-12-01T00:00:00Z"));
            for i in 0..400 {
                // Act
                let next = s.next_slot(slot);

                // Assert
                assert_eq!(
                    s.slot_at_or_before(slot),
                    slot,
                    "{name} #{i}: {slot} is a slot"
                );
                assert!(next > slot, "{name} #{i}: next of {slot} moves forward");
                assert_eq!(s.prev_slot(next), slot, "{name} #{i}: prev(next({slot}))");
                assert_eq!(
                    s.window(slot).1,
                    s.window(next).0,
                    "{name} #{i}: windows of {slot} tile"
                );
                let gap = (next - slot).num_minutes();
                if fields.frequency == Frequency::Monthly {
                    let last_day = days_in_month(next.year(), next.month()).unwrap();
                    assert_eq!(
                        next.day(),
                        fields.day_of_month.min(last_day),
                        "{name} #{i}: day of {next}"
                    );
                    assert!(
                        (40320..=44640).contains(&gap),
                        "{name} #{i}: gap after {slot}"
                    );
                } else {
                    assert_eq!(
                        gap,
                        i64::from(fields.frequency.min_period_minutes()),
                        "{name} #{i}: gap after {slot}"
                    );
                }
                slot = next;
            }
        }
    }

    #[test]
    fn due_slots_between_counts_a_slot_only_when_due_strictly_after_after() {
        // Arrange: the 2026-03-10 slot is 02:30 and due at 03:30.
        let s = daily(2, 30, 60);
        let d = |t: &str| vec![utc(t)];
        let cases = [
            (
                "created one second before the due time gets the slot",
                "2026-03-10T03:29:59Z",
                "2026-03-10T12:00:00Z",
                d("2026-03-10T02:30:00Z"),
            ),
            (
                "created exactly at the due time does not get the slot",
                "2026-03-10T03:30:00Z",
                "2026-03-10T12:00:00Z",
                vec![],
            ),
            (
                "created after the due time does not get the slot",
                "2026-03-10T03:30:01Z",
                "2026-03-10T12:00:00Z",
                vec![],
            ),
            (
                "due exactly at now counts",
                "2026-03-10T03:29:59Z",
                "2026-03-10T03:30:00Z",
                d("2026-03-10T02:30:00Z"),
            ),
            (
                "not yet due at now does not count",
                "2026-03-10T00:00:00Z",
                "2026-03-10T03:29:59Z",
                vec![],
            ),
            (
                "a day earlier gets both slots, oldest first",
                "2026-03-09T03:29:59Z",
                "2026-03-10T12:00:00Z",
                vec![utc("2026-03-09T02:30:00Z"), utc("2026-03-10T02:30:00Z")],
            ),
            (
                "after equal to now is empty",
                "2026-03-10T12:00:00Z",
                "2026-03-10T12:00:00Z",
                vec![],
            ),
            (
                "after later than now is empty",
                "2026-03-12T00:00:00Z",
                "2026-03-10T12:00:00Z",
                vec![],
            ),
        ];
        for (name, after, now, expected) in cases {
            // Act
            let got = s.due_slots_between(utc(after), utc(now), 10);

            // Assert
            assert_eq!(got, expected, "case: {name}");
        }
    }

    #[test]
    fn due_slots_between_returns_at_most_max_oldest_first() {
        // Arrange: the 00:00 slot is due at 00:05, after `after`, so it is included.
        let s = hourly(0, 5);
        let (after, now) = (utc("2026-01-01T00:00:00Z"), utc("2026-01-02T00:00:00Z"));

        // Act
        let three = s.due_slots_between(after, now, 3);
        let none = s.due_slots_between(after, now, 0);

        // Assert
        let expected = [
            "2026-01-01T00:00:00Z",
            "2026-01-01T01:00:00Z",
            "2026-01-01T02:00:00Z",
        ]
        .map(utc);
        assert_eq!(three, expected, "the three oldest due slots");
        assert!(none.is_empty(), "max 0 returns nothing");
    }

    #[test]
    fn due_slots_between_jumps_a_multi_year_gap_without_walking_it() {
        // Arrange: seven thousand years of hourly slots, of which only two are wanted.
        let s = hourly(0, 5);
        let (after, now) = (utc("1970-01-01T00:00:00Z"), utc("9000-01-01T00:00:00Z"));

        // Act
        let started = std::time::Instant::now();
        let got = s.due_slots_between(after, now, 2);
        let elapsed = started.elapsed();

        // Assert
        assert_eq!(
            got,
            ["1970-01-01T00:00:00Z", "1970-01-01T01:00:00Z"].map(utc),
            "the oldest two"
        );
        assert!(
            elapsed.as_secs() < 1,
            "took {elapsed:?}: the gap must not be walked"
        );
    }

    #[test]
    fn due_slots_between_lists_thirty_years_of_daily_slots_without_gaps() {
        // Arrange
        let s = daily(2, 30, 60);
        let (after, now) = (utc("2000-01-01T00:00:00Z"), utc("2030-01-01T00:00:00Z"));

        // Act
        let got = s.due_slots_between(after, now, usize::MAX);

        // Assert: 30 years, 8 of them leap (2000, 2004, ..., 2028).
        assert_eq!(got.len(), 30 * 365 + 8, "number of daily slots");
        assert_eq!(
            got.first(),
            Some(&utc("2000-01-01T02:30:00Z")),
            "first slot"
        );
        assert_eq!(got.last(), Some(&utc("2029-12-31T02:30:00Z")), "last slot");
        assert!(
            got.windows(2).all(|w| s.next_slot(w[0]) == w[1]),
            "consecutive slots"
        );
    }

    #[test]
    fn due_slots_between_in_bounded_pages_catches_up_in_order() {
        for (name, s) in [
            ("weekly", weekly(2, 1, 0, 30)),
            ("monthly day 30", monthly(30, 6, 0, 60)),
        ] {
            // Arrange
            let (created, now) = (utc("2026-01-01T00:00:00Z"), utc("2028-06-01T00:00:00Z"));
            let all = s.due_slots_between(created, now, usize::MAX);

            // Act: each tick resumes after the due time of the last slot it handled.
            let mut paged = Vec::new();
            let mut after = created;
            loop {
                let page = s.due_slots_between(after, now, 5);
                let Some(&last) = page.last() else { break };
                paged.extend(page);
                after = s.due(last);
            }

            // Assert
            assert!(!all.is_empty(), "{name}: some slots are due");
            assert_eq!(
                paged, all,
                "{name}: paging yields every slot once, in order"
            );
        }
    }

    #[test]
    fn latest_due_slot_switches_exactly_at_the_due_time() {
        // Arrange
        let s = daily(2, 30, 60);
        let cases = [
            (
                "exactly at the due time",
                "2026-03-10T03:30:00Z",
                "2026-03-10T02:30:00Z",
            ),
            (
                "one second before the due time",
                "2026-03-10T03:29:59Z",
                "2026-03-09T02:30:00Z",
            ),
            (
                "at the slot itself, not yet due",
                "2026-03-10T02:30:00Z",
                "2026-03-09T02:30:00Z",
            ),
        ];
        for (name, now, expected) in cases {
            // Act / Assert
            assert_eq!(s.latest_due_slot(utc(now)), utc(expected), "case: {name}");
        }
    }

    #[test]
    fn next_due_after_is_strictly_after_now() {
        let cases = [
            (
                "daily one second before due",
                daily(2, 30, 60),
                "2026-03-10T03:29:59Z",
                "2026-03-10T03:30:00Z",
            ),
            (
                "daily exactly at due",
                daily(2, 30, 60),
                "2026-03-10T03:30:00Z",
                "2026-03-11T03:30:00Z",
            ),
            (
                "hourly, grace 59",
                hourly(10, 59),
                "2026-12-31T23:59:00Z",
                "2027-01-01T00:09:00Z",
            ),
            (
                "weekly friday over the year end",
                weekly(4, 22, 0, 1440),
                "2026-12-30T00:00:00Z",
                "2027-01-02T22:00:00Z",
            ),
            (
                "monthly day 31 in february 2028",
                monthly(31, 2, 30, 60),
                "2028-02-01T00:00:00Z",
                "2028-02-29T03:30:00Z",
            ),
        ];
        for (name, s, now, expected) in cases {
            // Act / Assert
            assert_eq!(s.next_due_after(utc(now)), utc(expected), "case: {name}");
        }
    }

    #[test]
    fn out_of_range_fields_are_clamped() {
        let t = utc("2027-02-16T12:34:56Z");
        for f in Frequency::ALL {
            // Arrange
            let low = schedule(f, 0, 0, 0, 0, 0);
            let low_clamped = schedule(f, 0, 0, 0, 1, 1);
            let high = schedule(f, 99, 99, 99, 99, 99_999);
            let high_clamped = schedule(f, 23, 59, 6, 31, 1440);

            // Act / Assert
            for (name, s, same) in [("low", low, low_clamped), ("high", high, high_clamped)] {
                assert_eq!(s.grace(), same.grace(), "{f:?} {name}: grace");
                assert_eq!(s.slot_for(t), same.slot_for(t), "{f:?} {name}: slot_for");
                assert_eq!(s.next_slot(t), same.next_slot(t), "{f:?} {name}: next_slot");
                assert_eq!(s.window(t), same.window(t), "{f:?} {name}: window");
            }
        }
    }

    #[test]
    fn no_method_panics_at_the_edges_of_time() {
        let instants = [
            DateTime::<Utc>::MIN_UTC,
            utc("1970-01-01T00:00:00Z"),
            utc("9000-12-31T23:59:59Z"),
            DateTime::<Utc>::MAX_UTC,
        ];
        for f in Frequency::ALL {
            let s = schedule(f, 23, 59, 6, 31, 1440);
            for t in instants {
                // Act
                let at_or_before = s.slot_at_or_before(t);
                let _ = (
                    s.next_slot(t),
                    s.prev_slot(t),
                    s.slot_for(t),
                    s.due(t),
                    s.window(t),
                );
                let _ = (s.latest_due_slot(t), s.next_due_after(t));
                let catch_up = s.due_slots_between(DateTime::<Utc>::MIN_UTC, t, 3);

                // Assert
                assert!(
                    at_or_before <= t,
                    "{f:?} at {t}: slot_at_or_before is not after t"
                );
                assert!(catch_up.len() <= 3, "{f:?} at {t}: bounded catch-up");
            }
        }
    }

    #[derive(Debug, serde::Deserialize)]
    struct Vector {
        job: VectorJob,
        at: DateTime<Utc>,
        slot_utc: DateTime<Utc>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct VectorJob {
        expected_weekday: u32,
        expected_day_of_month: u32,
        backup_frequency: Frequency,
        expected_hour_utc: u32,
        expected_minute_utc: u32,
        grace_minutes: u32,
    }

    #[test]
    fn slot_for_agrees_with_every_independent_vector() {
        // Arrange
        let raw: Vec<serde_json::Value> =
            serde_json::from_str(include_str!("../../tests/fixtures/schedule-vectors.json"))
                .unwrap();
        assert!(!raw.is_empty(), "the vector file holds no cases");

        // Act
        let failures: Vec<String> = raw
            .iter()
            .enumerate()
            .filter_map(|(i, case)| {
                let v: Vector = serde_json::from_value(case.clone())
                    .unwrap_or_else(|e| panic!("vector #{i} does not parse ({e}): {case}"));
                let s = schedule(
                    v.job.backup_frequency,
                    v.job.expected_hour_utc,
                    v.job.expected_minute_utc,
                    v.job.expected_weekday,
                    v.job.expected_day_of_month,
                    v.job.grace_minutes,
                );
                let got = s.slot_for(v.at);
                (got != v.slot_utc)
                    .then(|| format!("vector #{i}: got {got}, want {}: {case}", v.slot_utc))
            })
            .collect();

        // Assert
        assert!(
            failures.is_empty(),
            "{} of {} vectors disagree:\n{}",
            failures.len(),
            raw.len(),
            failures.join("\n")
        );
    }
}

#[cfg(test)]
mod cron_tests;
