//! Content checks (DESIGN §10): what can be told about a backup that "succeeded" from its
//! size and hash against the job's own history. A failed check makes the success
//! *suspect*, with a sentence a person understands as the reason.
//!
//! Pure: the caller reads the history (the sizes of the job's previous successes that had
//! one, newest first, and its previous success) and passes it in.

use chrono::{DateTime, Utc};

/// How many previous sized successes the size drop is measured against.
pub const SIZE_HISTORY: usize = 10;

// The bounds of a job's content-check and run fields (DESIGN §10). The API's validator
// checks them and its OpenAPI schema states them, both from these constants.

/// Shortest `max_duration_minutes`.
pub const MAX_DURATION_MIN: u32 = 1;
/// Longest `max_duration_minutes`: a week.
pub const MAX_DURATION_MAX: u32 = 10_080;
/// Smallest `min_size_bytes`.
pub const MIN_SIZE_MIN: i64 = 0;
/// Smallest `size_drop_percent`.
pub const SIZE_DROP_MIN: u32 = 1;
/// Largest `size_drop_percent`.
pub const SIZE_DROP_MAX: u32 = 99;

/// A job's content-check settings, as its fields hold them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRules {
    /// A success smaller than this is suspect (a 0-byte dump is never "ok").
    pub min_size_bytes: i64,
    /// A success smaller than (100 − p) % of the median of the previous sized successes is
    /// suspect; None disables the check.
    pub size_drop_percent: Option<u32>,
    /// A success whose hash equals the previous success's is suspect.
    pub stale_hash_check: bool,
}

impl Default for ContentRules {
    /// DESIGN §10's defaults: at least 1 byte, a drop of half, the same hash.
    fn default() -> Self {
        Self {
            min_size_bytes: 1,
            size_drop_percent: Some(50),
            stale_hash_check: true,
        }
    }
}

/// What a new success is compared with.
#[derive(Debug, Clone, Copy, Default)]
pub struct History<'a> {
    /// Sizes of the job's previous successes that carried one, newest first (at most
    /// [`SIZE_HISTORY`] are used).
    pub previous_sizes: &'a [i64],
    /// The job's previous success: its hash (if any) and when it ran.
    pub previous_success: Option<(Option<&'a str>, DateTime<Utc>)>,
}

/// Why a success with `size` and `hash` is suspect, or None when every check that applies
/// passes. A check whose input is missing (no size, no hash, no history) does not apply.
pub fn suspect_reason(
    rules: &ContentRules,
    size: Option<i64>,
    hash: Option<&str>,
    history: &History<'_>,
) -> Option<String> {
    if let Some(size) = size {
        if size < rules.min_size_bytes {
            return Some(format!(
                "size {} is below the minimum of {}",
                bytes(size),
                bytes(rules.min_size_bytes)
            ));
        }
        if let (Some(percent), Some(median)) = (
            rules.size_drop_percent,
            median(&history.previous_sizes[..history.previous_sizes.len().min(SIZE_HISTORY)]),
        ) {
            let floor = median * f64::from(100 - percent.min(100)) / 100.0;
            // `as` on a size: exact below 2^53 bytes (8 PiB).
            #[allow(clippy::cast_precision_loss)]
            let size_f = size as f64;
            if size_f < floor {
                let used = history.previous_sizes.len().min(SIZE_HISTORY);
                let share = if median > 0.0 {
                    (size_f / median * 100.0).round()
                } else {
                    0.0
                };
                return Some(format!(
                    "size {} is {share} % of the median {} of the previous {used} backup{}",
                    bytes(size),
                    bytes_f(median),
                    if used == 1 { "" } else { "s" }
                ));
            }
        }
    }
    if rules.stale_hash_check {
        if let (Some(hash), Some((Some(previous), when))) = (hash, history.previous_success) {
            if hash == previous {
                return Some(format!(
                    "same backup_hash as the success of {}",
                    when.format("%Y-%m-%d %H:%M UTC")
                ));
            }
        }
    }
    None
}

/// The median of `values` (the mean of the middle two for an even count); None if empty.
pub fn median(values: &[i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let mid = sorted.len() / 2;
    #[allow(clippy::cast_precision_loss)]
    let at = |i: usize| sorted[i] as f64;
    Some(if sorted.len().is_multiple_of(2) {
        (at(mid - 1) + at(mid)) / 2.0
    } else {
        at(mid)
    })
}

/// A size as people read it: `0 B`, `999 B`, `1.5 KiB`, `12.0 MiB`, `3.2 GiB`.
pub fn bytes(n: i64) -> String {
    #[allow(clippy::cast_precision_loss)]
    bytes_f(n as f64)
}

fn bytes_f(n: f64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n.abs() < 1024.0 {
        return format!("{} B", n.round());
    }
    let mut value = n / 1024.0;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MIB: i64 = 1024 * 1024;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn sizes_read_as_people_read_them() {
        let cases = [
            (0, "0 B"),
            (1, "1 B"),
            (1023, "1023 B"),
            (1536, "1.5 KiB"),
            (12 * MIB, "12.0 MiB"),
            (150 * MIB, "150.0 MiB"),
            (3 * 1024 * MIB + 200 * MIB, "3.2 GiB"),
        ];
        for (n, expected) in cases {
            assert_eq!(bytes(n), expected, "{n}");
        }
    }

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_middle_two() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5]), Some(5.0));
        assert_eq!(median(&[9, 1, 5]), Some(5.0));
        assert_eq!(median(&[1, 2, 3, 10]), Some(2.5));
    }

    #[test]
    fn each_rule_says_why_in_a_sentence() {
        let rules = ContentRules::default();
        let sizes = [150 * MIB; 10];
        let history = History {
            previous_sizes: &sizes,
            previous_success: Some((Some("sha256:aa"), at("2026-11-29T02:31:00Z"))),
        };
        let cases: [(Option<i64>, Option<&str>, Option<&str>); 6] = [
            (Some(0), None, Some("size 0 B is below the minimum of 1 B")),
            (
                Some(12 * MIB),
                Some("sha256:bb"),
                Some("size 12.0 MiB is 8 % of the median 150.0 MiB of the previous 10 backups"),
            ),
            (
                Some(150 * MIB),
                Some("sha256:aa"),
                Some("same backup_hash as the success of 2026-11-29 02:31 UTC"),
            ),
            (Some(76 * MIB), Some("sha256:bb"), None),
            // No size and no hash: nothing to check.
            (None, None, None),
            // Half the median exactly is not below it.
            (Some(75 * MIB), None, None),
        ];
        for (size, hash, expected) in cases {
            assert_eq!(
                suspect_reason(&rules, size, hash, &history).as_deref(),
                expected,
                "{size:?} {hash:?}"
            );
        }
    }

    #[test]
    fn a_check_turned_off_or_without_history_does_not_apply() {
        let off = ContentRules {
            min_size_bytes: 0,
            size_drop_percent: None,
            stale_hash_check: false,
        };
        let sizes = [150 * MIB; 10];
        let history = History {
            previous_sizes: &sizes,
            previous_success: Some((Some("h"), at("2026-11-29T02:31:00Z"))),
        };
        assert_eq!(suspect_reason(&off, Some(0), Some("h"), &history), None);
        let rules = ContentRules::default();
        assert_eq!(
            suspect_reason(&rules, Some(1), Some("h"), &History::default()),
            None,
            "a first backup has nothing to be compared with"
        );
    }

    #[test]
    fn only_the_last_ten_sized_successes_count() {
        let rules = ContentRules::default();
        // Newest first: ten small ones, then old big ones that no longer count.
        let mut sizes = vec![10 * MIB; 10];
        sizes.extend([1000 * MIB; 20]);
        let history = History {
            previous_sizes: &sizes,
            previous_success: None,
        };
        assert_eq!(suspect_reason(&rules, Some(9 * MIB), None, &history), None);
    }

    /// 90 nights of a realistic job, oldest first: a full dump on Sundays that grows ~0.3 %
    /// a day, and incremental dumps the other nights at 8–14 % of the full, with
    /// day-to-day noise; each night a new hash.
    fn realistic_history() -> Vec<(i64, String)> {
        // A small deterministic noise source (no clock, no randomness crate).
        let mut seed: u64 = 0x5eed;
        let mut noise = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            f64::from(u32::try_from(seed >> 40).unwrap()) / f64::from(1u32 << 24)
        };
        (0..90_i64)
            .map(|day| {
                #[allow(clippy::cast_precision_loss)]
                let full = 4_000.0 * MIB as f64 * (1.0 + 0.003 * day as f64);
                let size = if day % 7 == 6 {
                    full * (0.97 + 0.06 * noise())
                } else {
                    full * (0.08 + 0.06 * noise())
                };
                #[allow(clippy::cast_possible_truncation)]
                (size as i64, format!("sha256:{day:064x}"))
            })
            .collect()
    }

    /// The nights of `history` that `rules` would call suspect.
    fn alarms(rules: &ContentRules, history: &[(i64, String)]) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        for (night, (size, hash)) in history.iter().enumerate() {
            let previous: Vec<i64> = history[..night].iter().rev().map(|(s, _)| *s).collect();
            let before = History {
                previous_sizes: &previous,
                previous_success: night
                    .checked_sub(1)
                    .map(|n| (Some(history[n].1.as_str()), at("2026-01-01T02:30:00Z"))),
            };
            if let Some(reason) = suspect_reason(rules, Some(*size), Some(hash), &before) {
                out.push((night, reason));
            }
        }
        out
    }

    /// The defaults raise no false alarm on a realistic history, and a truncated dump is
    /// caught. The margin, as a sweep of `size_drop_percent` over the same 90 nights (run
    /// with `--nocapture` to read it): no alarm from 40 on (a floor of 60 % of the median;
    /// the default 50 % floor), alarms at 30 (a floor of 70 %): the smallest incremental is
    /// about 57 % of the median of the ten nights before it.
    #[test]
    fn the_defaults_raise_no_false_alarm_on_a_realistic_history() {
        let history = realistic_history();
        let false_alarms = alarms(&ContentRules::default(), &history);
        assert!(false_alarms.is_empty(), "{false_alarms:?}");

        let mut sweep = Vec::new();
        for percent in [20, 30, 40, 45, 50, 60, 80] {
            let rules = ContentRules {
                size_drop_percent: Some(percent),
                ..ContentRules::default()
            };
            sweep.push((percent, alarms(&rules, &history).len()));
        }
        eprintln!("size_drop_percent → false alarms over 90 realistic nights: {sweep:?}");
        let at = |p: u32| sweep.iter().find(|(q, _)| *q == p).map(|(_, n)| *n);
        assert_eq!(at(50), Some(0));
        assert!(
            at(30) > Some(0),
            "the sweep shows where the margin ends: {sweep:?}"
        );

        let previous: Vec<i64> = history.iter().rev().map(|(s, _)| *s).collect();
        let truncated = History {
            previous_sizes: &previous,
            previous_success: None,
        };
        let rules = ContentRules::default();
        assert!(suspect_reason(&rules, Some(12 * MIB), None, &truncated).is_some());
    }
}
