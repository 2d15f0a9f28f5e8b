//! Queries on the `deliveries` table: an alert's delivery through each channel that takes it,
//! each retried on its own, and the summary of them kept on the alert for older clients.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, params_from_iter, Connection, TransactionBehavior};

use crate::domain::alert::{AlertKind, Delivery};
use crate::domain::time::{from_micros, to_micros};

/// The `last_error` of an alert that no channel takes.
pub const UNROUTED: &str =
    "no channel takes this alert: see the companies and kinds of notify.channels";

/// A delivery a sender has claimed: it holds it until its lease runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub alert_id: i64,
    pub channel: String,
    /// Attempts before this one.
    pub attempts: i64,
}

/// What an attempt came to, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt<'a> {
    Delivered,
    /// Failed; tried again at `retry_at`, or never (refused for good) when None.
    Failed {
        error: &'a str,
        retry_at: Option<DateTime<Utc>>,
    },
}

/// The channels an alert goes to, given its kind and the companies it is about.
pub type Router<'a> = &'a dyn Fn(AlertKind, &[String]) -> Vec<String>;

/// In one transaction: routes up to `route_limit` alerts whose time has come and that no
/// sender has routed yet (one delivery per channel `route` names, due at once; an alert no
/// channel takes is settled with [`UNROUTED`]), then claims up to `limit` due deliveries and
/// leases them until `now + lease`, so that another sender (a second process) leaves them
/// alone. A sender that dies while holding them gives them back when the lease runs out.
/// Returns how many alerts it routed and the deliveries it claimed.
pub fn claim(
    conn: &mut Connection,
    now: DateTime<Utc>,
    lease: Duration,
    route_limit: usize,
    limit: usize,
    route: Router<'_>,
) -> rusqlite::Result<(usize, Vec<Claimed>)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let unrouted: Vec<(i64, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, kind FROM alerts WHERE routed_at_us IS NULL AND suppressed = 0 \
             AND next_attempt_us <= ?1 \
             ORDER BY next_attempt_us, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![to_micros(now), as_limit(route_limit)], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for (alert_id, kind) in &unrouted {
        let companies: Vec<String> = {
            let mut stmt = tx.prepare_cached(
                "SELECT DISTINCT company_name FROM jobs \
                 WHERE id = (SELECT job_id FROM alerts WHERE id = ?1) \
                 OR id IN (SELECT job_id FROM alert_jobs WHERE alert_id = ?1) \
                 ORDER BY company_name",
            )?;
            let rows = stmt.query_map([alert_id], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        // A kind this binary does not know (a newer one wrote it) goes nowhere.
        let channels = AlertKind::parse(kind)
            .map(|kind| route(kind, &companies))
            .unwrap_or_default();
        for channel in &channels {
            tx.prepare_cached(
                "INSERT INTO deliveries (alert_id, channel, next_attempt_us) VALUES (?1, ?2, ?3) \
                 ON CONFLICT DO NOTHING",
            )?
            .execute(params![alert_id, channel, to_micros(now)])?;
        }
        tx.prepare_cached(
            "UPDATE alerts SET routed_at_us = ?2, \
             last_error = CASE WHEN ?3 THEN ?4 ELSE last_error END WHERE id = ?1",
        )?
        .execute(params![
            alert_id,
            to_micros(now),
            channels.is_empty(),
            UNROUTED
        ])?;
    }
    let claimed: Vec<Claimed> = {
        let mut stmt = tx.prepare_cached(
            "SELECT alert_id, channel, attempts FROM deliveries \
             WHERE next_attempt_us IS NOT NULL AND next_attempt_us <= ?1 \
             ORDER BY next_attempt_us, alert_id, channel LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![to_micros(now), as_limit(limit)], |r| {
            Ok(Claimed {
                alert_id: r.get(0)?,
                channel: r.get(1)?,
                attempts: r.get(2)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for delivery in &claimed {
        tx.prepare_cached(
            "UPDATE deliveries SET next_attempt_us = ?3 WHERE alert_id = ?1 AND channel = ?2",
        )?
        .execute(params![
            delivery.alert_id,
            delivery.channel,
            to_micros(now + lease)
        ])?;
    }
    tx.commit()?;
    Ok((unrouted.len(), claimed))
}

fn as_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Hands claimed deliveries back: due again at `now`, for whichever sender comes next.
pub fn release(
    conn: &Connection,
    deliveries: &[(i64, String)],
    now: DateTime<Utc>,
) -> rusqlite::Result<usize> {
    let mut released = 0;
    for (alert_id, channel) in deliveries {
        released += conn.execute(
            "UPDATE deliveries SET next_attempt_us = ?3 \
             WHERE alert_id = ?1 AND channel = ?2 AND next_attempt_us IS NOT NULL",
            params![alert_id, channel, to_micros(now)],
        )?;
    }
    Ok(released)
}

/// Records one attempt of a delivery, and updates the alert's summary: `attempts` counts
/// every channel's, `sent_at` is when a channel first took it, `last_error` is the error of
/// a delivery that has not succeeded (named by its channel when the alert has several).
pub fn record(
    conn: &mut Connection,
    alert_id: i64,
    channel: &str,
    attempt: Attempt<'_>,
    now: DateTime<Utc>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    match attempt {
        Attempt::Delivered => tx.execute(
            "UPDATE deliveries SET attempts = attempts + 1, sent_at_us = ?3, \
             next_attempt_us = NULL, last_error = NULL WHERE alert_id = ?1 AND channel = ?2",
            params![alert_id, channel, to_micros(now)],
        )?,
        Attempt::Failed { error, retry_at } => tx.execute(
            "UPDATE deliveries SET attempts = attempts + 1, last_error = ?3, \
             next_attempt_us = ?4 WHERE alert_id = ?1 AND channel = ?2",
            params![alert_id, channel, error, retry_at.map(to_micros)],
        )?,
    };
    tx.execute(
        "UPDATE alerts SET attempts = attempts + 1, \
         sent_at_us = ifnull(sent_at_us, (SELECT min(sent_at_us) FROM deliveries WHERE alert_id = ?1)), \
         last_error = (SELECT CASE WHEN (SELECT count(*) FROM deliveries WHERE alert_id = ?1) > 1 \
                 THEN d.channel || ': ' || d.last_error ELSE d.last_error END \
             FROM deliveries d WHERE d.alert_id = ?1 AND d.sent_at_us IS NULL \
             AND d.last_error IS NOT NULL ORDER BY d.channel LIMIT 1) \
         WHERE id = ?1",
        [alert_id],
    )?;
    tx.commit()
}

/// The deliveries of the alerts `ids`, by alert, each alert's by channel name.
pub fn of_alerts(conn: &Connection, ids: &[i64]) -> rusqlite::Result<HashMap<i64, Vec<Delivery>>> {
    let mut out: HashMap<i64, Vec<Delivery>> = HashMap::new();
    // SQLite takes at least 32766 parameters; a page holds at most 1000 alerts.
    for chunk in ids.chunks(1000) {
        let marks = vec!["?"; chunk.len()].join(", ");
        let mut stmt = conn.prepare(&format!(
            "SELECT alert_id, channel, attempts, sent_at_us, last_error, next_attempt_us \
             FROM deliveries WHERE alert_id IN ({marks}) ORDER BY alert_id, channel"
        ))?;
        let rows = stmt.query_map(params_from_iter(chunk), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Delivery {
                    channel: r.get(1)?,
                    attempts: r.get(2)?,
                    sent_at: r.get::<_, Option<i64>>(3)?.map(from_micros),
                    last_error: r.get(4)?,
                    next_attempt_at: r.get::<_, Option<i64>>(5)?.map(from_micros),
                },
            ))
        })?;
        for row in rows {
            let (alert_id, delivery) = row?;
            out.entry(alert_id).or_default().push(delivery);
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::db::{alerts, jobs, MIGRATIONS};
    use crate::service::jobs::JobCreate;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A sender's claim at `now`: 5 minutes of lease, 20 alerts and deliveries at most.
    fn claim_at(
        conn: &mut Connection,
        now: DateTime<Utc>,
        route: Router<'_>,
    ) -> (usize, Vec<Claimed>) {
        claim(conn, now, Duration::minutes(5), 20, 20, route).unwrap()
    }

    /// A database at the schema before deliveries, holding one alert emailed and one that
    /// SMTP kept failing; then upgraded.
    fn upgraded_with_two_alerts() -> (Connection, i64, i64) {
        let conn = Connection::open_in_memory().unwrap();
        let at = MIGRATIONS
            .iter()
            .position(|(name, _)| *name == "0012_deliveries")
            .unwrap();
        for (_, sql) in &MIGRATIONS[..at] {
            conn.execute_batch(sql).unwrap();
        }
        let now = t("2026-11-24T02:40:00Z");
        let body = serde_json::json!({
            "database_name": "erp", "agent_id_responsible": "a", "company_name": "acme",
            "city": "Lyon", "expected_hour_utc": 2, "expected_minute_utc": 30,
            "backup_frequency": "daily", "final_storage_path_template": "/b/%Y.dump"
        });
        let job = JobCreate::parse(&body).unwrap().into_job(60, now).unwrap();
        let job = jobs::insert(&conn, &job, now).unwrap();
        let queue = |day: &str| {
            alerts::queue(&conn, job.id, AlertKind::Failed, t(day), None, now)
                .unwrap()
                .unwrap()
                .id
        };
        let sent = queue("2026-11-23T02:30:00Z");
        let failing = queue("2026-11-24T02:30:00Z");
        conn.execute(
            "UPDATE alerts SET attempts = 2, sent_at_us = ?2 WHERE id = ?1",
            params![sent, to_micros(now)],
        )
        .unwrap();
        conn.execute(
            "UPDATE alerts SET attempts = 3, last_error = 'smtp down' WHERE id = ?1",
            [failing],
        )
        .unwrap();
        for (_, sql) in &MIGRATIONS[at..] {
            conn.execute_batch(sql).unwrap();
        }
        (conn, sent, failing)
    }

    #[test]
    fn alerts_emailed_before_channels_keep_their_email_delivery_and_the_rest_are_routed_anew() {
        // Arrange
        let (mut conn, sent, failing) = upgraded_with_two_alerts();
        let listed = of_alerts(&conn, &[sent, failing]).unwrap();
        assert_eq!(listed[&sent].len(), 1);
        assert_eq!(listed[&sent][0].channel, "email");
        assert_eq!(listed[&sent][0].attempts, 2);
        assert!(listed[&sent][0].sent_at.is_some());
        assert!(!listed.contains_key(&failing), "not routed yet");
        assert_eq!(alerts::pending_count(&conn).unwrap(), 1);

        // Act: routed to two channels; one of them fails.
        let now = t("2030-01-01T00:00:00Z");
        let both = |_: AlertKind, companies: &[String]| {
            assert_eq!(companies, ["acme"]);
            vec!["email".to_owned(), "ops".to_owned()]
        };
        let (routed, claimed) = claim_at(&mut conn, now, &both);
        record(
            &mut conn,
            failing,
            "ops",
            Attempt::Failed {
                error: "answered 500",
                retry_at: Some(now + Duration::seconds(30)),
            },
            now,
        )
        .unwrap();

        // Assert: the old attempts are kept in the summary, and the error names its channel.
        assert_eq!(routed, 1);
        assert_eq!(claimed.len(), 2, "the old one is delivered already");
        let alert = alerts::get(&conn, failing).unwrap().unwrap();
        assert_eq!(alert.attempts, 4);
        assert_eq!(alert.sent_at, None);
        assert_eq!(alert.last_error.as_deref(), Some("ops: answered 500"));
        record(&mut conn, failing, "email", Attempt::Delivered, now).unwrap();
        let alert = alerts::get(&conn, failing).unwrap().unwrap();
        assert_eq!(alert.sent_at, Some(now), "a channel took it");
        assert_eq!(
            alert.last_error.as_deref(),
            Some("ops: answered 500"),
            "ops still fails"
        );
        assert_eq!(
            alerts::pending_count(&conn).unwrap(),
            1,
            "ops is still to try"
        );
        // The lease: claimed deliveries are not claimed again before it runs out…
        let (_, again) = claim_at(&mut conn, now + Duration::seconds(30), &both);
        assert_eq!(again.len(), 1, "ops, due again after its backoff");
        assert_eq!(again[0].channel, "ops");
        assert_eq!(again[0].attempts, 1);
        let (_, leased) = claim_at(&mut conn, now + Duration::minutes(1), &both);
        assert!(leased.is_empty(), "held by the first claim");
        // …unless released, as a stopping sender does.
        let released = release(
            &conn,
            &[(failing, "ops".to_owned())],
            now + Duration::minutes(1),
        )
        .unwrap();
        assert_eq!(released, 1);
        let (_, back) = claim_at(&mut conn, now + Duration::minutes(1), &both);
        assert_eq!(back.len(), 1);
    }

    #[test]
    fn an_alert_no_channel_takes_is_settled_with_the_reason() {
        let (mut conn, _, failing) = upgraded_with_two_alerts();
        let nowhere = |_: AlertKind, _: &[String]| Vec::new();
        let now = t("2030-01-01T00:00:00Z");
        let (routed, claimed) = claim_at(&mut conn, now, &nowhere);
        assert_eq!((routed, claimed.len()), (1, 0));
        let alert = alerts::get(&conn, failing).unwrap().unwrap();
        assert_eq!(alert.last_error.as_deref(), Some(UNROUTED));
        assert_eq!(alerts::pending_count(&conn).unwrap(), 0);
        let (routed, _) = claim_at(&mut conn, now, &nowhere);
        assert_eq!(routed, 0, "routed once");
    }
}
