//! Tests of the cron form: examples across daylight saving changes, the independent
//! vectors of DESIGN §11, and properties checked over many zones, expressions and instants
//! against a brute-force enumeration of wall times.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use super::*;
use crate::domain::template::{PathTemplate, TemplateValues};

fn utc(s: &str) -> DateTime<Utc> {
    s.parse()
        .unwrap_or_else(|e| panic!("bad timestamp {s:?} in a test: {e}"))
}

fn cron_schedule(expr: &str, zone: &str, grace_minutes: u32) -> CronSchedule {
    CronSchedule {
        expr: CronExpr::parse(expr).unwrap_or_else(|e| panic!("{expr:?}: {e}")),
        zone: Zone::parse(zone).unwrap_or_else(|e| panic!("{zone:?}: {e}")),
        grace_minutes,
    }
}

fn cron(expr: &str, zone: &str, grace_minutes: u32) -> Schedule {
    Schedule::Cron(cron_schedule(expr, zone, grace_minutes))
}

/// The slots from `from` on, `n` of them.
fn slots_from(s: &Schedule, from: &str, n: usize) -> Vec<DateTime<Utc>> {
    let mut slot = s.next_slot(utc(from) - Duration::nanoseconds(1));
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(slot);
        slot = s.next_slot(slot);
    }
    out
}

#[test]
fn a_daily_time_in_a_spring_gap_moves_later_by_the_gap() {
    // Arrange: 02:30 does not exist in Paris on 2027-03-28; it is read as 03:30 CEST.
    let s = cron("30 2 * * *", "Europe/Paris", 10);

    // Act
    let got = slots_from(&s, "2027-03-27T00:00:00Z", 3);

    // Assert
    assert_eq!(
        got,
        [
            "2027-03-27T01:30:00Z",
            "2027-03-28T01:30:00Z",
            "2027-03-29T00:30:00Z"
        ]
        .map(utc)
    );
    let wall: Vec<String> = got
        .iter()
        .map(|t| s.wall_time(*t).format("%m-%d %H:%M").to_string())
        .collect();
    assert_eq!(wall, ["03-27 02:30", "03-28 03:30", "03-29 02:30"]);
}

#[test]
fn an_ambiguous_daily_time_is_its_first_occurrence_only() {
    let s = cron("30 2 * * *", "Europe/Paris", 10);
    assert_eq!(
        slots_from(&s, "2027-10-30T00:00:00Z", 3),
        [
            "2027-10-30T00:30:00Z",
            "2027-10-31T00:30:00Z",
            "2027-11-01T01:30:00Z"
        ]
        .map(utc)
    );
}

#[test]
fn hourly_slots_across_both_changes_in_paris() {
    let s = cron("0 * * * *", "Europe/Paris", 10);
    // Spring: 02:00 is moved to 03:00 CEST, which 03:00 also is: one slot.
    assert_eq!(
        slots_from(&s, "2027-03-27T23:00:00Z", 4),
        [
            "2027-03-27T23:00:00Z",
            "2027-03-28T00:00:00Z",
            "2027-03-28T01:00:00Z",
            "2027-03-28T02:00:00Z"
        ]
        .map(utc)
    );
    // Autumn: 02:00 CEST, then not 02:00 CET (a second occurrence), then 03:00 CET.
    assert_eq!(
        slots_from(&s, "2027-10-30T23:00:00Z", 3),
        [
            "2027-10-30T23:00:00Z",
            "2027-10-31T00:00:00Z",
            "2027-10-31T02:00:00Z"
        ]
        .map(utc)
    );
}

#[test]
fn wall_times_out_of_order_across_a_gap_give_slots_in_order() {
    // Arrange: Lord Howe skips 02:00-02:30 on 2027-10-03. 02:20 is read as 02:50 LHDT,
    // after 02:40, which exists.
    let s = cron("20,40 2 * * *", "Australia/Lord_Howe", 5);

    // Act
    let got = slots_from(&s, "2027-10-02T12:00:00Z", 2);

    // Assert
    assert_eq!(
        got,
        ["2027-10-02T15:40:00Z", "2027-10-02T15:50:00Z"].map(utc)
    );
    let wall: Vec<String> = got
        .iter()
        .map(|t| s.wall_time(*t).format("%H:%M").to_string())
        .collect();
    assert_eq!(wall, ["02:40", "02:50"]);
    assert_eq!(s.prev_slot(got[1]), got[0]);
    assert_eq!(s.prev_slot(got[0]), utc("2027-10-01T16:10:00Z"));
    assert_eq!(s.slot_at_or_before(got[1] - Duration::seconds(1)), got[0]);
}

#[test]
fn a_whole_skipped_day_is_read_a_day_later() {
    // Samoa skipped 2011-12-30 (from UTC-10 to UTC+14): noon that day is read as noon on
    // the 31st, the same instant as the 31st's own noon, so it is one slot.
    let s = cron("0 12 * * *", "Pacific/Apia", 60);
    assert_eq!(
        slots_from(&s, "2011-12-28T00:00:00Z", 3),
        [
            "2011-12-28T22:00:00Z",
            "2011-12-29T22:00:00Z",
            "2011-12-30T22:00:00Z"
        ]
        .map(utc)
    );
    assert_eq!(
        s.wall_time(utc("2011-12-30T22:00:00Z"))
            .format("%Y-%m-%d %H:%M")
            .to_string(),
        "2011-12-31 12:00"
    );
}

#[test]
fn midnight_changes_move_the_day_start() {
    // Santiago and Havana change at midnight: 00:00 does not exist on their spring day.
    let santiago = cron("0 0 * * *", "America/Santiago", 60);
    assert_eq!(
        slots_from(&santiago, "2027-09-04T00:00:00Z", 3),
        [
            "2027-09-04T04:00:00Z",
            "2027-09-05T04:00:00Z",
            "2027-09-06T03:00:00Z"
        ]
        .map(utc)
    );
    let havana = cron("30 0 * * *", "America/Havana", 60);
    assert_eq!(
        slots_from(&havana, "2027-03-13T00:00:00Z", 3),
        [
            "2027-03-13T05:30:00Z",
            "2027-03-14T05:30:00Z",
            "2027-03-15T04:30:00Z"
        ]
        .map(utc)
    );
}

#[test]
fn vixies_rule_applies_through_the_schedule() {
    // The 1st of the month or any Monday, at 02:00 in New York.
    let s = cron("0 2 1 * MON", "America/New_York", 60);
    assert_eq!(
        slots_from(&s, "2027-05-30T00:00:00Z", 4),
        [
            "2027-05-31T06:00:00Z",
            "2027-06-01T06:00:00Z",
            "2027-06-07T06:00:00Z",
            "2027-06-14T06:00:00Z"
        ]
        .map(utc)
    );
}

#[test]
fn a_zone_without_daylight_saving_is_a_plain_shift() {
    let s = cron("0 2 * * *", "Asia/Kolkata", 30);
    assert_eq!(
        slots_from(&s, "2027-06-15T00:00:00Z", 2),
        ["2027-06-15T20:30:00Z", "2027-06-16T20:30:00Z"].map(utc)
    );
}

#[test]
fn catching_up_years_costs_only_the_slots_returned() {
    // Arrange
    let s = cron("*/5 * * * *", "Europe/Paris", 2);
    let (after, now) = (utc("1970-01-01T00:00:00Z"), utc("2090-01-01T00:00:00Z"));

    // Act
    let started = std::time::Instant::now();
    let got = s.due_slots_between(after, now, 3);
    let elapsed = started.elapsed();

    // Assert
    assert_eq!(
        got,
        [
            "1970-01-01T00:00:00Z",
            "1970-01-01T00:05:00Z",
            "1970-01-01T00:10:00Z"
        ]
        .map(utc)
    );
    assert!(elapsed.as_secs() < 1, "took {elapsed:?}");
}

#[test]
fn no_method_panics_at_the_edges_of_time() {
    let instants = [
        DateTime::<Utc>::MIN_UTC,
        utc("1970-01-01T00:00:00Z"),
        utc("9000-12-31T23:59:59Z"),
        DateTime::<Utc>::MAX_UTC,
    ];
    for (expr, zone) in [
        ("59 23 31 12 *", "Pacific/Kiritimati"),
        ("0 0 29 2 *", "Etc/GMT+12"),
        ("* * * * *", "UTC"),
    ] {
        let s = cron(expr, zone, 1440);
        for t in instants {
            // Act
            let at_or_before = s.slot_at_or_before(t);
            let _ = (s.next_slot(t), s.prev_slot(t), s.slot_for(t), s.window(t));
            let _ = (s.latest_due_slot(t), s.next_due_after(t), s.wall_time(t));
            let catch_up = s.due_slots_between(DateTime::<Utc>::MIN_UTC, t, 3);

            // Assert
            assert!(at_or_before <= t, "{expr} at {t}");
            assert!(catch_up.len() <= 3, "{expr} at {t}: bounded catch-up");
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct Vector {
    job: VectorJob,
    at: DateTime<Utc>,
    slot_utc: DateTime<Utc>,
    path: String,
}

#[derive(Debug, serde::Deserialize)]
struct VectorJob {
    database_name: String,
    agent_id_responsible: String,
    company_name: String,
    city: String,
    schedule: String,
    timezone: String,
    grace_minutes: u32,
    final_storage_path_template: String,
}

#[test]
fn slot_for_and_the_path_agree_with_every_independent_cron_vector() {
    // Arrange
    let raw: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("../../../tests/fixtures/cron-vectors.json")).unwrap();
    assert_eq!(raw.len(), 160, "the vector file holds 160 cases");

    // Act
    let failures: Vec<String> = raw
        .iter()
        .enumerate()
        .filter_map(|(i, case)| {
            let v: Vector = serde_json::from_value(case.clone())
                .unwrap_or_else(|e| panic!("vector #{i} does not parse ({e}): {case}"));
            let s = cron(&v.job.schedule, &v.job.timezone, v.job.grace_minutes);
            let slot = s.slot_for(v.at);
            let template = PathTemplate::parse(&v.job.final_storage_path_template).unwrap();
            let values = TemplateValues {
                database_name: &v.job.database_name,
                company_name: &v.job.company_name,
                city: &v.job.city,
                agent_id_responsible: &v.job.agent_id_responsible,
                job_id: 0,
            };
            let path = template.render_wall(&values, s.wall_time(slot)).unwrap();
            (slot != v.slot_utc || path != v.path).then(|| {
                format!(
                    "vector #{i}: got {slot} {path:?}, want {} {:?}: {case}",
                    v.slot_utc, v.path
                )
            })
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

// Properties, over zones that change by an hour, by 30 minutes (Lord Howe), at midnight
// (Santiago, Havana), by odd offsets (St John's, Chatham), in the southern hemisphere, and
// not at all; and over expressions that touch every field.

const ZONES: [&str; 14] = [
    "UTC",
    "Europe/Paris",
    "Europe/London",
    "America/New_York",
    "America/Santiago",
    "America/Havana",
    "America/St_Johns",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Australia/Adelaide",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "Pacific/Apia",
];

const EXPRESSIONS: [&str; 14] = [
    "30 2 * * *",
    "0 * * * *",
    "*/15 * * * *",
    "20,40 2 * * *",
    "0,59 1-3 * * *",
    "45 0,23 * * *",
    "0 2 1 * MON",
    "0 0 29 2 *",
    "59 23 31 12 *",
    "7,29,49 1-22/2 * */2 *",
    "15-52/10 * 8-10 1 SUN-THU",
    "*/20 */6 */10 6-7 *",
    "0 3 * * 0",
    "1-10/3 2 * 3,4,9,10,11 *",
];

/// A fixed sequence of pseudo-random numbers (no dependency, the same every run).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }

    /// An instant in `[from, from + span)`, to the second.
    fn instant(&mut self, from: DateTime<Utc>, span: Duration) -> DateTime<Utc> {
        let seconds = u64::try_from(span.num_seconds()).unwrap();
        from + Duration::seconds(i64::try_from(self.below(seconds)).unwrap())
    }
}

/// The instants at which a zone's offset changes between `from` and `to`, to the minute.
fn changes(zone: Zone, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let mut out = Vec::new();
    let mut t = from;
    while t < to {
        let next = t + Duration::hours(1);
        if zone.offset_at(t) != zone.offset_at(next) {
            // Narrow down to the minute.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > Duration::minutes(1) {
                let mid = lo + (hi - lo) / 2;
                if zone.offset_at(mid) == zone.offset_at(t) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            out.push(hi);
        }
        t = next;
    }
    out
}

/// The slots in `[from, to]` by brute force: every wall minute around the range that the
/// expression matches, resolved, deduplicated and sorted.
fn brute_force(s: &CronSchedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let first = (from - Duration::days(2)).naive_utc();
    let last = (to + Duration::days(2)).naive_utc();
    let mut set = BTreeSet::new();
    let mut wall: NaiveDateTime = first;
    while wall <= last {
        if s.expr.matches(wall) {
            let r = s.zone.resolve(wall).unwrap();
            if (from..=to).contains(&r.instant) {
                set.insert(r.instant);
            }
        }
        wall += Duration::minutes(1);
    }
    set.into_iter().collect()
}

/// Every search agrees with the brute-force list around every change of offset in 2027
/// (and Samoa's skipped day in 2011), at random instants and at the slots themselves.
#[test]
fn searches_agree_with_brute_force_around_every_change() {
    let mut rng = Lcg(7);
    let mut checked = 0;
    for zone_name in ZONES {
        let zone = Zone::parse(zone_name).unwrap();
        let mut around = changes(
            zone,
            utc("2027-01-01T00:00:00Z"),
            utc("2028-01-01T00:00:00Z"),
        );
        if zone_name == "Pacific/Apia" {
            around = changes(
                zone,
                utc("2011-12-01T00:00:00Z"),
                utc("2012-01-15T00:00:00Z"),
            );
        }
        if around.is_empty() {
            around.push(utc("2027-03-28T01:00:00Z"));
        }
        for expr in EXPRESSIONS {
            let s = cron_schedule(expr, zone_name, 1);
            let schedule = Schedule::Cron(s);
            for change in &around {
                // Arrange
                let (from, to) = (*change - Duration::days(3), *change + Duration::days(3));
                let slots = brute_force(&s, from, to);
                let Some((&first, &last)) = slots.first().zip(slots.last()) else {
                    continue;
                };
                let mut probes: Vec<DateTime<Utc>> = slots.clone();
                probes.extend(slots.iter().map(|t| *t - Duration::seconds(1)));
                probes.extend((0..200).map(|_| rng.instant(first, last - first)));
                for t in probes.into_iter().filter(|t| (first..last).contains(t)) {
                    // Act
                    let next = schedule.next_slot(t);
                    let at_or_before = schedule.slot_at_or_before(t);
                    let prev = schedule.prev_slot(t);

                    // Assert
                    let i = slots.partition_point(|s| *s <= t);
                    let want_next = slots[i];
                    let want_at_or_before = slots[i - 1];
                    let j = slots.partition_point(|s| *s < t);
                    let context = format!("{expr:?} in {zone_name} at {t}");
                    assert_eq!(next, want_next, "next_slot: {context}");
                    assert_eq!(
                        at_or_before, want_at_or_before,
                        "slot_at_or_before: {context}"
                    );
                    if j > 0 {
                        assert_eq!(prev, slots[j - 1], "prev_slot: {context}");
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 50_000, "{checked} probes");
}

/// Windows tile time, slots strictly increase, the next slot after a slot's window is the
/// next slot, and `slot_for(slot) == slot` when the grace is under the shortest interval
/// (the rule input validation enforces).
#[test]
fn windows_tile_time_in_every_zone() {
    let mut rng = Lcg(42);
    let start = utc("2026-06-01T00:00:00Z");
    for zone in ZONES {
        for expr in EXPRESSIONS {
            // Arrange: the largest grace the rule allows over the three years probed (a
            // later year's calendar can shorten an interval: "0 2 1 * MON" in Lord Howe has
            // 23.5 hours from Sunday 2028-10-01, the spring change, to the Monday), and a
            // small one.
            let probe = cron(expr, zone, 1);
            let span = Duration::days(3 * 365);
            let shortest = (0..3)
                .filter_map(|year| probe.shortest_interval(start + Duration::days(366 * year)))
                .map(|i| i.length().num_minutes())
                .min()
                .unwrap();
            let largest = u32::try_from(shortest - 1).unwrap().clamp(1, GRACE_MAX);
            for grace in [1, largest] {
                let s = cron(expr, zone, grace);
                let context = format!("{expr:?} in {zone}, grace {grace}");
                for _ in 0..300 {
                    let at = rng.instant(start, span);

                    // Act
                    let slot = s.slot_for(at);
                    let (begin, end) = s.window(slot);
                    let next = s.next_slot(slot);

                    // Assert
                    assert!(
                        begin <= at && at < end,
                        "{context}: {at} in {slot}'s window"
                    );
                    assert!(next > slot, "{context}: after {slot}");
                    assert!(s.prev_slot(slot) < slot, "{context}: before {slot}");
                    if i64::from(grace) < shortest {
                        assert_eq!(s.slot_for(slot), slot, "{context}: slot_for({slot})");
                    }
                    assert_eq!(s.slot_for(end), next, "{context}: after {slot}'s window");
                    assert_eq!(s.window(next).0, end, "{context}: windows of {slot} tile");
                    assert_eq!(
                        s.slot_for(begin - Duration::nanoseconds(1)),
                        s.prev_slot(slot),
                        "{context}: before {slot}'s window"
                    );
                    assert_eq!(s.prev_slot(next), slot, "{context}: prev(next({slot}))");
                    assert_eq!(s.next_slot(s.prev_slot(slot)), slot, "{context}");
                    assert_eq!(s.due(slot), slot + s.grace(), "{context}: due");
                }
            }
        }
    }
}

/// Walking a year slot by slot, each slot is its own `slot_at_or_before`, the walk never
/// goes back, and catching up in bounded pages yields the same list.
#[test]
fn slots_strictly_increase_over_a_year() {
    let (from, to) = (utc("2027-01-01T00:00:00Z"), utc("2028-01-01T00:00:00Z"));
    for zone in ZONES {
        for expr in EXPRESSIONS {
            // Arrange
            let s = cron(expr, zone, 1);
            let all = s.due_slots_between(from, to, usize::MAX);

            // Act
            let mut paged = Vec::new();
            let mut after = from;
            loop {
                let page = s.due_slots_between(after, to, 97);
                let Some(&last) = page.last() else { break };
                paged.extend(page);
                after = s.due(last);
            }

            // Assert
            assert_eq!(paged, all, "{expr:?} in {zone}: paging");
            for pair in all.windows(2) {
                assert!(pair[0] < pair[1], "{expr:?} in {zone}: {pair:?}");
                assert_eq!(s.slot_at_or_before(pair[1]), pair[1], "{expr:?} in {zone}");
            }
        }
    }
}

#[test]
fn the_shortest_interval_names_the_pair_of_slots() {
    let now = utc("2027-01-01T00:00:00Z");
    let cases = [
        ("30 2 * * *", "UTC", 1440, "2027-01-01T02:30:00Z"),
        ("30 2 * * *", "Europe/Paris", 1380, "2027-03-28T01:30:00Z"),
        (
            "0 * * * *",
            "Australia/Lord_Howe",
            30,
            "2027-10-02T15:30:00Z",
        ),
        (
            "20,40 2 * * *",
            "Australia/Lord_Howe",
            10,
            "2027-10-02T15:40:00Z",
        ),
        ("* * * * *", "UTC", 1, "2027-01-01T00:00:00Z"),
        ("0 0 1 1 *", "UTC", 365 * 1440, "2027-01-01T00:00:00Z"),
        // Fewer than two slots in 366 days: the next interval is still measured.
        (
            "0 0 29 2 *",
            "UTC",
            (365 * 4 + 1) * 1440,
            "2028-02-29T00:00:00Z",
        ),
    ];
    for (expr, zone, minutes, from) in cases {
        let got = cron(expr, zone, 1).shortest_interval(now).unwrap();
        assert_eq!(got.length().num_minutes(), minutes, "{expr:?} in {zone}");
        assert_eq!(got.from, utc(from), "{expr:?} in {zone}");
    }
}
