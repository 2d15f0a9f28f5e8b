//! A cron expression in words, for people reading the dashboard or an email: `0 22 * * 1-5`
//! is "every weekday at 22:00". Common shapes get a sentence; anything else keeps its
//! expression, which is never wrong.

use super::cron::CronExpr;

/// Day names, Sunday first (cron's numbering).
pub const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `expr` (written as `text`) in words, e.g. "every weekday at 22:00"; the expression
/// itself (`cron 7,19 3-5 * * *`) when no simple sentence says it.
pub fn describe(expr: &CronExpr, text: &str) -> String {
    words(expr).unwrap_or_else(|| format!("cron {text}"))
}

fn words(expr: &CronExpr) -> Option<String> {
    let super::cron::CronSets {
        minutes,
        hours,
        days,
        months,
        weekdays,
        either_day: either,
    } = expr.sets();
    let all_days = days.len() == 31;
    let all_weekdays = weekdays.len() == 7;
    let day = if either && !all_days && !all_weekdays {
        format!("{} and {}", day_of_month(&days), weekday(&weekdays))
    } else if !all_weekdays {
        weekday(&weekdays)
    } else if !all_days {
        day_of_month(&days)
    } else {
        "every day".to_owned()
    };
    let month = if months.len() == 12 {
        String::new()
    } else {
        format!(
            " in {}",
            list(
                &months
                    .iter()
                    .map(|m| MONTHS[*m as usize - 1])
                    .collect::<Vec<_>>()
            )
        )
    };
    let time = time_of_day(&minutes, &hours)?;
    Some(match time {
        Time::At(at) => format!("{day}{month} at {at}"),
        Time::Every(every) => format!("{every}, {day}{month}"),
    })
}

enum Time {
    /// "22:00", "06:30 and 18:30"
    At(String),
    /// "every 15 minutes", "every hour at :05", "every 4 hours from 06:00 to 22:00"
    Every(String),
}

fn time_of_day(minutes: &[u32], hours: &[u32]) -> Option<Time> {
    let all_hours = hours.len() == 24;
    match (minutes, all_hours) {
        ([m], true) => Some(Time::Every(format!("every hour at :{m:02}"))),
        ([m], false) => match step_of(hours) {
            Some(step) if hours.len() > 2 => Some(Time::Every(format!(
                "every {step} hours from {:02}:{m:02} to {:02}:{m:02}",
                hours[0],
                hours[hours.len() - 1]
            ))),
            _ => Some(Time::At(list(
                &hours
                    .iter()
                    .map(|h| format!("{h:02}:{m:02}"))
                    .collect::<Vec<_>>(),
            ))),
        },
        (_, true) if minutes.len() == 60 => Some(Time::Every("every minute".to_owned())),
        (_, true) => match step_of(minutes) {
            Some(step)
                if minutes[0] == 0 && 60 % step == 0 && minutes.len() as u32 * step == 60 =>
            {
                Some(Time::Every(format!("every {step} minutes")))
            }
            _ => None,
        },
        _ => None,
    }
}

/// The common difference of `values` (at least two of them), if they step evenly.
fn step_of(values: &[u32]) -> Option<u32> {
    let step = values.get(1)?.checked_sub(values[0])?;
    values
        .windows(2)
        .all(|w| w[1] - w[0] == step)
        .then_some(step)
}

fn weekday(weekdays: &[u32]) -> String {
    match weekdays {
        [1, 2, 3, 4, 5] => "every weekday".to_owned(),
        [0, 6] => "every Saturday and Sunday".to_owned(),
        _ => format!(
            "every {}",
            list(
                &weekdays
                    .iter()
                    .map(|d| DAYS[*d as usize])
                    .collect::<Vec<_>>()
            )
        ),
    }
}

fn day_of_month(days: &[u32]) -> String {
    let ordinals: Vec<String> = days.iter().map(|d| ordinal(*d)).collect();
    format!("on the {} of the month", list(&ordinals))
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (1, 11) | (2, 12) | (3, 13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// "a", "a and b", "a, b and c".
fn list<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [init @ .., last] => format!(
            "{} and {}",
            init.iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", "),
            last.as_ref()
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn common_schedules_read_as_sentences() {
        let cases = [
            ("30 2 * * *", "every day at 02:30"),
            ("0 22 * * 1-5", "every weekday at 22:00"),
            ("0 22 * * MON-FRI", "every weekday at 22:00"),
            ("0 3 * * 0,6", "every Saturday and Sunday at 03:00"),
            ("15 1 * * 7", "every Sunday at 01:15"),
            ("0 2 1,15 * *", "on the 1st and 15th of the month at 02:00"),
            ("0 0 1 * *", "on the 1st of the month at 00:00"),
            (
                "0 6-22/4 * * *",
                "every 4 hours from 06:00 to 22:00, every day",
            ),
            ("30 6,18 * * *", "every day at 06:30 and 18:30"),
            ("5 * * * *", "every hour at :05, every day"),
            ("*/15 * * * *", "every 15 minutes, every day"),
            ("* * * * *", "every minute, every day"),
            ("0 4 * 1,7 *", "every day in January and July at 04:00"),
            (
                "0 1 1 * MON",
                "on the 1st of the month and every Monday at 01:00",
            ),
            ("0 2 22 * *", "on the 22nd of the month at 02:00"),
            (
                "0 2 11,12,13 * *",
                "on the 11th, 12th and 13th of the month at 02:00",
            ),
        ];
        for (text, expected) in cases {
            let expr = CronExpr::parse(text).unwrap();
            assert_eq!(describe(&expr, text), expected, "{text}");
        }
    }

    #[test]
    fn what_has_no_simple_sentence_keeps_its_expression() {
        for text in ["7,19 3-5 * * *", "*/7 * * * *", "0-10 2 * * *"] {
            let expr = CronExpr::parse(text).unwrap();
            assert_eq!(describe(&expr, text), format!("cron {text}"));
        }
    }
}
