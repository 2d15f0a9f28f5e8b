//! The tick's due work committed a chunk at a time (issue 15): every missing entry and
//! alert as in one transaction, chunks of at most the bound in id order, an agent's late
//! jobs weighed together whichever chunks they fall in, and reports stored between the
//! chunks rather than after the whole tick.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::{
    at, insert_jobs, spawn_app, tick_chunk_by_chunk, tick_in_chunks, tick_through, valid_job,
    ChunkBudget, TestApp,
};

/// Hourly jobs at :00 with a 30-minute grace, `count` per agent, whose lateness counts from
/// 24 November 00:40: at 01:30 their 01:00 slot is due and unreported, and nothing before.
fn hourly_jobs(app: &TestApp, agents: &[(&str, usize)]) -> BTreeMap<String, Vec<i64>> {
    let mut bodies = Vec::new();
    let mut owners = Vec::new();
    for (agent, count) in agents {
        for i in 0..*count {
            let mut body = valid_job();
            body["database_name"] = json!(format!("{agent}-db{i}"));
            body["agent_id_responsible"] = json!(agent);
            body["backup_frequency"] = json!("hourly");
            body["expected_minute_utc"] = json!(0);
            body["grace_minutes"] = json!(30);
            bodies.push(body);
            owners.push((*agent).to_owned());
        }
    }
    let ids = insert_jobs(&app.db_path, &bodies);
    let conn = app.db().conn().unwrap();
    conn.execute(
        "UPDATE jobs SET schedule_anchor_us = ?1, created_at_us = ?1, next_due_us = 0 \
         WHERE id BETWEEN ?2 AND ?3",
        (
            at("2026-11-24T00:40:00Z").timestamp_micros(),
            ids.iter().min().unwrap(),
            ids.iter().max().unwrap(),
        ),
    )
    .unwrap();
    let mut by_agent: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (agent, id) in owners.into_iter().zip(ids) {
        by_agent.entry(agent).or_default().push(id);
    }
    by_agent
}

/// How many jobs the agent alert `id` names.
fn jobs_named(app: &TestApp, id: &Value) -> i64 {
    app.db()
        .conn()
        .unwrap()
        .query_row(
            "SELECT count(*) FROM alert_jobs WHERE alert_id = ?1",
            [id.as_i64().unwrap()],
            |r| r.get(0),
        )
        .unwrap()
}

/// The `agent_silent` alerts as (agent, jobs named), and the jobs of the `late` alerts.
async fn agent_and_job_alerts(app: &TestApp) -> (Vec<(String, i64)>, Vec<i64>) {
    let listed = app.alerts().await;
    let mut silent: Vec<(String, i64)> = listed
        .iter()
        .filter(|a| a["kind"] == "agent_silent")
        .map(|a| {
            (
                a["agent_id"].as_str().unwrap().to_owned(),
                jobs_named(app, &a["id"]),
            )
        })
        .collect();
    silent.sort();
    let mut late: Vec<i64> = listed
        .iter()
        .filter(|a| a["kind"] == "late")
        .map(|a| a["job_id"].as_i64().unwrap())
        .collect();
    late.sort_unstable();
    (silent, late)
}

#[tokio::test]
async fn a_tick_over_more_jobs_than_a_chunk_writes_every_missing_entry_and_weighs_each_agent_whole()
{
    // Arrange: with chunks of 4 in id order, "big" (5 jobs) spans the first two chunks and
    // "nas-1" (3) the second and third; "solo-1" and "solo-2" have one job each.
    let app = spawn_app().await;
    let jobs = hourly_jobs(
        &app,
        &[("big", 5), ("nas-1", 3), ("solo-1", 1), ("solo-2", 1)],
    );

    // Act
    let outcome = tick_in_chunks(&app.db_path, at("2026-11-24T01:30:00Z"), 4);

    // Assert
    assert_eq!(outcome.jobs_checked, 10);
    assert_eq!(outcome.missing_written, 10, "one missing entry per job");
    assert_eq!(
        (outcome.chunks, outcome.largest_chunk),
        (3, 4),
        "{outcome:?}"
    );
    assert_eq!(outcome.alerts_queued, 4, "two agent_silent, two late");
    let (silent, late) = agent_and_job_alerts(&app).await;
    assert_eq!(
        silent,
        [("big".to_owned(), 5), ("nas-1".to_owned(), 3)],
        "one agent_silent per silent agent, naming all of its late jobs across the chunks"
    );
    assert_eq!(late, [jobs["solo-1"][0], jobs["solo-2"][0]]);

    let again = tick_in_chunks(&app.db_path, at("2026-11-24T01:31:00Z"), 4);
    assert_eq!(
        (again.missing_written, again.alerts_queued, again.chunks),
        (0, 0, 0),
        "nothing is written twice, and a quiet tick has no chunk"
    );
}

#[tokio::test]
async fn an_agent_whose_two_late_jobs_fall_in_two_chunks_gets_one_agent_silent_alert() {
    // Arrange: chunks of one job each, so each of the agent's jobs is alone in its chunk.
    let app = spawn_app().await;
    hourly_jobs(&app, &[("pair", 2)]);

    // Act
    let outcome = tick_in_chunks(&app.db_path, at("2026-11-24T01:30:00Z"), 1);

    // Assert
    assert_eq!((outcome.chunks, outcome.missing_written), (2, 2));
    assert_eq!(outcome.alerts_queued, 1, "{outcome:?}");
    let (silent, late) = agent_and_job_alerts(&app).await;
    assert_eq!(silent, [("pair".to_owned(), 2)]);
    assert!(
        late.is_empty(),
        "no late alert beside the agent's: {late:?}"
    );
}

#[tokio::test]
async fn an_agent_heard_since_the_earliest_late_window_gets_a_late_alert_per_job_in_every_chunk() {
    // Arrange: one agent, four hourly jobs at :00 in id order A, D, B, C. A and D have a
    // 30-minute grace (the 01:00 slot's window opens at 00:30), B and C a 10-minute one (it
    // opens at 00:50). D reports at 00:45: the agent was heard after A's window opened but
    // not since B's and C's. Weighed whole, A, B and C are late and the agent was heard
    // since the earliest of their windows: three `late` alerts. The second chunk alone (B
    // and C, unheard since 00:50) would have made an `agent_silent` alert.
    let app = spawn_app().await;
    let ids = hourly_jobs(&app, &[("mixed", 4)])["mixed"].clone();
    let (a, d, b, c) = (ids[0], ids[1], ids[2], ids[3]);
    app.db()
        .conn()
        .unwrap()
        .execute(
            "UPDATE jobs SET grace_minutes = 10 WHERE id IN (?1, ?2)",
            (b, c),
        )
        .unwrap();
    app.report(d, "success", "2026-11-24T00:45:00.000Z").await;

    // Act: chunks of two: (A, D) then (B, C).
    let outcome = tick_in_chunks(&app.db_path, at("2026-11-24T01:30:00Z"), 2);

    // Assert
    assert_eq!(
        (outcome.chunks, outcome.missing_written),
        (2, 3),
        "{outcome:?}"
    );
    let (silent, late) = agent_and_job_alerts(&app).await;
    assert!(silent.is_empty(), "{silent:?}");
    assert_eq!(late, [a, b, c]);
}

#[tokio::test]
async fn an_agent_that_comes_back_during_the_tick_has_its_late_jobs_still_named_by_the_ticks_alert()
{
    // Arrange: one agent, three hourly jobs with a 30-minute grace: the first at :00, the
    // other two at :05. At 01:40 all three are late (slots 01:00 and 01:05) and the agent
    // has sent nothing since 00:30: one agent_silent from 01:00. Then it comes back (an
    // agent_back answers the alert) before the tick's second chunk.
    let app = spawn_app().await;
    let ids = hourly_jobs(&app, &[("back", 3)])["back"].clone();
    app.db()
        .conn()
        .unwrap()
        .execute(
            "UPDATE jobs SET expected_minute_utc = 5 WHERE id IN (?1, ?2)",
            (ids[1], ids[2]),
        )
        .unwrap();
    let now = at("2026-11-24T01:40:00Z");

    // Act: chunks of one job; the agent_back after the first.
    let outcome = tick_chunk_by_chunk(&app.db_path, now, 1, |conn, chunk| {
        if chunk == 0 {
            backup_monitor::db::alerts::queue_for_agent(
                conn,
                "back",
                backup_monitor::domain::alert::AlertKind::AgentBack,
                now,
                false,
                now,
            )
            .unwrap()
            .unwrap();
        }
    });

    // Assert: the agent is weighed once, as of the tick's `now`: the jobs the later chunks
    // find late were late in the same silence, and join its alert (not a second
    // agent_silent from the 01:05 slot, not a storm of late alerts).
    assert_eq!(
        (outcome.chunks, outcome.missing_written),
        (3, 3),
        "{outcome:?}"
    );
    assert_eq!(outcome.alerts_queued, 1, "{outcome:?}");
    let (silent, late) = agent_and_job_alerts(&app).await;
    assert_eq!(silent, [("back".to_owned(), 3)]);
    assert!(late.is_empty(), "{late:?}");
}

#[tokio::test]
async fn chunks_hold_at_most_the_bound_in_id_order_whatever_the_agents() {
    // Arrange: four agents of three late jobs each, created agent after agent.
    let app = spawn_app().await;
    hourly_jobs(&app, &[("a", 3), ("b", 3), ("c", 3), ("d", 3)]);

    // Act: chunks of 7 split agent "c" over the two chunks.
    let outcome = tick_in_chunks(&app.db_path, at("2026-11-24T01:30:00Z"), 7);

    // Assert
    assert_eq!(
        (outcome.chunks, outcome.largest_chunk),
        (2, 7),
        "{outcome:?}"
    );
    assert_eq!(outcome.missing_written, 12);
    let (silent, late) = agent_and_job_alerts(&app).await;
    assert_eq!(
        silent,
        ["a", "b", "c", "d"].map(|agent| (agent.to_owned(), 3)),
        "one agent_silent per agent, naming its three jobs"
    );
    assert!(late.is_empty());
}

#[tokio::test]
async fn a_chunk_past_its_budget_leaves_its_other_jobs_to_the_next_and_the_tick_still_does_them_all(
) {
    // Arrange: two silent agents of three jobs each, and a job of a third agent.
    let app = spawn_app().await;
    let jobs = hourly_jobs(&app, &[("a", 3), ("b", 3), ("c", 1)]);
    let (db, writer) = (app.db(), app.writer.clone());

    // Act: chunks of 7 jobs, but no time for more than one job a chunk.
    let outcome = tick_through(
        &db,
        &writer,
        at("2026-11-24T01:30:00Z"),
        100,
        7,
        ChunkBudget::flat(Duration::ZERO),
    )
    .await
    .unwrap();

    // Assert: a transaction a job, every job evaluated once, the agents weighed whole.
    assert_eq!(
        (outcome.chunks, outcome.largest_chunk, outcome.jobs_checked),
        (7, 1, 7),
        "{outcome:?}"
    );
    assert_eq!(outcome.missing_written, 7);
    let (silent, late) = agent_and_job_alerts(&app).await;
    assert_eq!(silent, [("a".to_owned(), 3), ("b".to_owned(), 3)]);
    assert_eq!(late, [jobs["c"][0]]);
}

#[tokio::test]
async fn reports_are_stored_between_the_chunks_of_a_big_tick_not_after_it() {
    // Arrange: 600 jobs of 30 agents fall due at once; a job outside them takes reports.
    let app = spawn_app().await;
    let reporter = app
        .create_job(json!({"agent_id_responsible": "reporter"}))
        .await["id"]
        .as_i64()
        .unwrap();
    // Evaluated once, so that the big tick has only the 600 jobs to do.
    tick_in_chunks(&app.db_path, at("2026-11-24T01:30:00Z"), 20);
    let agents: Vec<(String, usize)> = (0..30).map(|i| (format!("agent-{i:02}"), 20)).collect();
    let agents: Vec<(&str, usize)> = agents.iter().map(|(a, n)| (a.as_str(), *n)).collect();
    hourly_jobs(&app, &agents);
    let (db, writer) = (app.db(), app.writer.clone());
    let now = at("2026-11-24T01:30:00Z");

    // Act: the service's own path (each chunk of 20 jobs one write of the group-commit
    // writer), while reports go in one after another until it ends.
    let first = app
        .report(reporter, "success", "2026-11-24T00:00:00.000Z")
        .await;
    let ticking = tokio::spawn(async move {
        tick_through(&db, &writer, now, 100, 20, ChunkBudget::flat(Duration::MAX)).await
    });
    let mut stored = vec![first["id"].as_i64().unwrap()];
    let mut n = 0;
    while !ticking.is_finished() {
        n += 1;
        let at = format!("2026-11-24T00:{:02}:{:02}.000Z", n / 60 % 60, n % 60);
        stored.push(
            app.report(reporter, "success", &at).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    let outcome = ticking.await.unwrap().unwrap();

    // Assert: all 600 missing entries, in chunks of 20, and some report stored between the
    // first chunk's and the last's (in one transaction, none could be).
    assert_eq!(outcome.missing_written, 600);
    assert_eq!((outcome.chunks, outcome.largest_chunk), (30, 20));
    let (first_missing, last_missing): (i64, i64) = app
        .db()
        .conn()
        .unwrap()
        .query_row(
            "SELECT min(id), max(id) FROM entries WHERE status = 'missing'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        stored
            .iter()
            .any(|id| (first_missing..last_missing).contains(id)),
        "no report among {} was stored while the tick ran (missing entries {first_missing}..={last_missing}, reports {stored:?})",
        stored.len()
    );
}
