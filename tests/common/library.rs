//! Every path into the library that the tests take besides HTTP and the binary. A library
//! module that moves or is renamed is followed here, not in every test.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

// The types and functions tests name, re-exported; not every test binary uses each.
#[allow(unused_imports)]
pub use backup_monitor::{
    api::badges::company_badge_url,
    app::Application,
    clock::Clock,
    config::{ChannelSettings, Secret, Settings, SmtpSettings, SmtpTls},
    db::{tokens::TokenInfo, writer::Writer, Db, DbError},
    domain::alert::AlertKind,
    domain::auth::Role,
    domain::channel::ChannelKind,
    notify::outbox::{Outbox, LEASE},
    scheduler::tick_through,
    service::retention::{PruneOutcome, Pruning, BATCH, CHUNK},
    service::tick::{ChunkBudget, TickOutcome, CHUNK_JOBS},
    service::tokens::hash_secret,
};

/// Installs the TLS crypto provider that reqwest needs (once per process).
pub fn install_crypto_provider() {
    backup_monitor::install_crypto_provider();
}

/// The database at `path` as it is (a running service's, say), without migrating it.
pub fn open_db(path: &Path) -> Db {
    Db::open(path).expect("database opens")
}

/// The database at `path`, created and migrated if need be, as `migrate` would leave it.
pub fn migrated_db(path: &Path) -> Db {
    let db = open_db(path);
    db.migrate().expect("migrations apply");
    db
}

/// Creates jobs from API bodies straight in the database at `path` (created if need be;
/// no server needed), as `POST /api/v1/jobs/` would; returns their ids.
pub fn insert_jobs(path: &Path, bodies: &[Value]) -> Vec<i64> {
    use backup_monitor::service::jobs::JobCreate;
    let db = migrated_db(path);
    let conn = db.conn().unwrap();
    let now = Utc::now();
    bodies
        .iter()
        .map(|body| {
            let job = JobCreate::parse(body).unwrap().into_job(60, now).unwrap();
            backup_monitor::db::jobs::insert(&conn, &job, now)
                .unwrap()
                .id
        })
        .collect()
}

/// [`insert_jobs`] for one job.
pub fn insert_job(path: &Path, body: &Value) -> i64 {
    insert_jobs(path, std::slice::from_ref(body))[0]
}

/// Every job of the database at `path` (created if need be), as the API shows them.
pub fn stored_jobs(path: &Path) -> Vec<Value> {
    use backup_monitor::db::jobs::{list, JobFilter};
    let db = migrated_db(path);
    let conn = db.conn().unwrap();
    let (jobs, _) = list(&conn, &JobFilter::default(), 0, i64::MAX).unwrap();
    // The seed's schedule fields as the API answers them (DESIGN §11).
    let now = Utc::now();
    jobs.iter()
        .map(|job| {
            let mut value = serde_json::to_value(job).unwrap();
            let seed = serde_json::to_value(job.seed_answer(now)).unwrap();
            for (key, field) in seed.as_object().unwrap() {
                value[key] = field.clone();
            }
            value
        })
        .collect()
}

/// Creates a token in the database at `path`, as `token create` would; returns its secret.
pub fn create_token(path: &Path, name: &str, role: Role, agent: Option<&str>) -> String {
    let db = open_db(path);
    let conn = db.conn().unwrap();
    backup_monitor::service::tokens::create(&conn, name, role, agent, Utc::now())
        .unwrap()
        .1
}

/// The id of the live token whose secret is `secret`; panics if there is none.
pub fn token_id(path: &Path, secret: &str) -> i64 {
    let db = open_db(path);
    let conn = db.conn().unwrap();
    backup_monitor::db::tokens::find_active(&conn, &hash_secret(secret))
        .unwrap()
        .expect("a live token with this secret")
        .id
}

/// Revokes the live token `id` in the database at `path`; panics if there is none.
pub fn revoke_token(path: &Path, id: i64) {
    let db = open_db(path);
    let conn = db.conn().unwrap();
    backup_monitor::db::tokens::revoke(&conn, id, Utc::now())
        .unwrap()
        .expect("a live token to revoke");
}

/// Every token of the database at `path`, oldest first.
pub fn stored_tokens(path: &Path) -> Vec<TokenInfo> {
    let db = open_db(path);
    let conn = db.conn().unwrap();
    backup_monitor::db::tokens::list(&conn).unwrap()
}

/// One scheduler tick at `now` on the database at `path` (100 slots of catch-up at most).
pub fn tick(path: &Path, now: DateTime<Utc>) -> TickOutcome {
    let db = open_db(path);
    let mut conn = db.conn().unwrap();
    backup_monitor::service::tick::tick(&mut conn, now, 100).expect("tick")
}

/// [`tick`] with chunks of at most `chunk_jobs` due jobs, in id order.
pub fn tick_in_chunks(path: &Path, now: DateTime<Utc>, chunk_jobs: usize) -> TickOutcome {
    let db = open_db(path);
    let mut conn = db.conn().unwrap();
    backup_monitor::service::tick::tick_in_chunks(&mut conn, now, 100, chunk_jobs).expect("tick")
}

/// [`tick_in_chunks`] a chunk at a time, each in its own transaction, calling `between`
/// with the connection and the chunk's number (from 0) after each chunk commits: what
/// happens between the chunks of a tick in the service (a report, an `agent_back`).
pub fn tick_chunk_by_chunk(
    path: &Path,
    now: DateTime<Utc>,
    chunk_jobs: usize,
    mut between: impl FnMut(&rusqlite::Connection, usize),
) -> TickOutcome {
    use backup_monitor::service::tick;
    let db = open_db(path);
    let mut conn = db.conn().unwrap();
    let mut weighed = tick::Weighed::default();
    let mut outcome = TickOutcome::default();
    for (i, chunk) in tick::plan(&conn, now, chunk_jobs)
        .unwrap()
        .iter()
        .enumerate()
    {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .unwrap();
        let (done, rest) =
            tick::tick_chunk(&tx, chunk, now, 100, &mut weighed, std::time::Duration::MAX).unwrap();
        assert!(rest.is_none(), "no budget, no rest");
        outcome += done;
        tx.commit().unwrap();
        between(&conn, i);
    }
    outcome
}

/// The reminders due at `now` on the database at `path`, with `default_every` as
/// `alerts.repeat_every_minutes`; how many were queued.
pub fn remind(path: &Path, now: DateTime<Utc>, default_every: Option<u32>) -> usize {
    let db = open_db(path);
    let mut conn = db.conn().unwrap();
    backup_monitor::service::reminders::remind(&mut conn, now, default_every).expect("remind")
}

/// One whole retention run at `now` keeping `keep_days` days, on the database at `path`.
pub fn prune(path: &Path, now: DateTime<Utc>, keep_days: u32) -> PruneOutcome {
    let db = open_db(path);
    let mut conn = db.conn().unwrap();
    backup_monitor::service::retention::prune(&mut conn, now, keep_days).expect("prune")
}

/// A plain SMTP server on 127.0.0.1:`port` (no TLS, no login), sending as
/// monitor@example.com: the test SMTP server's settings.
pub fn plain_smtp(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: Some("127.0.0.1".to_owned()),
        port,
        username: None,
        password: None,
        from: Some("monitor@example.com".to_owned()),
        tls: SmtpTls::None,
    }
}

/// Settings that email every alert through the test SMTP server on `port` to
/// ops@example.com.
pub fn emailing(port: u16) -> impl Fn(&mut Settings) + Copy {
    move |s| {
        s.smtp = plain_smtp(port);
        s.alerts.to = vec!["ops@example.com".to_owned()];
    }
}

/// An alert outbox on the database at `path` that sends through `smtp` to `to` (besides
/// each job's addresses), driven by hand with `dispatch_pending`.
pub fn outbox(path: &Path, smtp: &SmtpSettings, to: Vec<String>) -> Outbox {
    let mut settings = Settings {
        smtp: smtp.clone(),
        ..Settings::default()
    };
    settings.alerts.to = to;
    outbox_with(path, &settings)
}

/// An alert outbox on the database at `path` with the channels of `settings` (its SMTP
/// server, `alerts.to`, `notify.channels` and `server.public_url`), driven by hand.
pub fn outbox_with(path: &Path, settings: &Settings) -> Outbox {
    Outbox::from_settings(
        open_db(path),
        settings,
        Arc::new(tokio::sync::Notify::new()),
    )
    .expect("the outbox's channels")
}

/// Routes due alerts to the email channel and claims up to `limit` of their deliveries at
/// `now` as a sender would (for [`LEASE`]), then forgets them, as a sender that dies would;
/// returns how many it claimed.
pub fn claim_alerts(path: &Path, now: DateTime<Utc>, limit: usize) -> usize {
    let db = open_db(path);
    let mut conn = db.conn().unwrap();
    let email =
        |_: backup_monitor::domain::alert::AlertKind, _: &[String]| vec!["email".to_owned()];
    backup_monitor::db::deliveries::claim(&mut conn, now, LEASE, limit, limit, &email)
        .unwrap()
        .1
        .len()
}

/// `backup-monitor check --json`'s document for the database at `path` at `now`.
pub fn check_report(path: &Path, now: DateTime<Utc>) -> Value {
    let report = backup_monitor::check::evaluate(path, now).expect("check evaluates");
    serde_json::to_value(report).unwrap()
}
