//! Fast seeding shared by the benches: the real schema (the crate's own migrations), then
//! millions of rows in one transaction on a connection tuned for bulk loading only.
//!
//! The seeding connection runs with `journal_mode = OFF` and `synchronous = OFF` (a crash
//! while seeding just means seeding again) and without the indexes on `entries`, which it
//! recreates from their saved `CREATE INDEX` statements at the end: sorting once is several
//! times faster than keeping the B-trees up to date row by row. That packs every leaf of an
//! index full, which no live database has; `Seeder::open_grown` keeps the indexes instead,
//! for the benches where that matters (the all-due tick). The file it leaves behind
//! is back in WAL mode with exactly the schema `migrate` made, so the server and the
//! scheduler see an ordinary database. None of this touches how the service itself opens
//! its connections.

// Each bench uses part of this module.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use backup_monitor::db::{jobs, Db};
use backup_monitor::domain::job::Job;
use backup_monitor::domain::schedule::Frequency;
use backup_monitor::domain::zone::Zone;
use chrono::{DateTime, Utc};
use rusqlite::Connection;

/// A `usize` from the environment, or `default`.
pub fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A job like the ones an MSP declares; `i` varies its names, hour and minute.
pub fn job(i: usize, frequency: Frequency, now: DateTime<Utc>) -> Job {
    Job {
        id: 0,
        database_name: format!("db{i}"),
        agent_id_responsible: format!("agent{}", i % 100),
        company_name: format!("company{}", i % 500),
        city: format!("city{}", i % 50),
        expected_hour_utc: u32::try_from(i % 24).unwrap_or(0),
        expected_minute_utc: u32::try_from((i * 7) % 60).unwrap_or(0),
        backup_frequency: frequency,
        final_storage_path_template: "/b/{company_name}/{database_name}/%Y%m%d.dump".to_owned(),
        expected_weekday: u32::try_from(i % 7).unwrap_or(0),
        expected_day_of_month: u32::try_from(i % 28 + 1).unwrap_or(1),
        grace_minutes: if frequency == Frequency::Hourly {
            30
        } else {
            60
        },
        is_active: true,
        notify_emails: Vec::new(),
        schedule: None,
        timezone: Zone::UTC,
        max_duration_minutes: None,
        min_size_bytes: 1,
        size_drop_percent: Some(50),
        stale_hash_check: true,
        ping_key: String::new(),
        snoozed_until: None,
        snooze_reason: None,
        repeat_every_minutes: None,
        created_at: now,
        updated_at: now,
    }
}

/// A realistic `sha256:<64 hex>` hash, unique per `n`.
pub fn hash(n: i64) -> String {
    format!("sha256:{n:064x}")
}

/// An open bulk load: one transaction, no journal, no entries indexes until [`Seeder::finish`].
pub struct Seeder {
    conn: Connection,
    indexes: Vec<String>,
}

impl Seeder {
    /// Creates (or migrates) the database at `path` and opens it for bulk loading.
    pub fn open(path: &Path) -> Self {
        Self::open_with(path, false)
    }

    /// Like [`Seeder::open`], but keeps the indexes on `entries` and updates them row by
    /// row, as the reports of a live database do: their leaves split and are left part
    /// full, where `CREATE INDEX` packs them full. Slower (a 4 GiB page cache keeps it in
    /// memory); insert the rows oldest first, as they arrive.
    pub fn open_grown(path: &Path) -> Self {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, grown: bool) -> Self {
        {
            let db = Db::open(path).expect("open the database");
            db.migrate().expect("migrate");
        }
        let conn = Connection::open(path).expect("open the seeding connection");
        // Leaving WAL needs the only connection: the pool's connections close as it drops,
        // some of them on r2d2's own threads, so wait for them.
        let started = Instant::now();
        let mode: String = loop {
            match conn.query_row("PRAGMA journal_mode = OFF", [], |r| r.get(0)) {
                Ok(mode) if mode == "off" => break mode,
                other if started.elapsed() > Duration::from_secs(30) => {
                    panic!(
                        "cannot leave WAL mode to seed {}: {other:?}",
                        path.display()
                    )
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        debug_assert_eq!(mode, "off");
        let cache_kib = if grown { 4_194_304 } else { 524_288 };
        conn.execute_batch(&format!(
            "PRAGMA synchronous = OFF;
             PRAGMA cache_size = -{cache_kib};
             PRAGMA temp_store = MEMORY;
             BEGIN;"
        ))
        .expect("seeding pragmas");
        if grown {
            return Self {
                conn,
                indexes: Vec::new(),
            };
        }
        let indexes = {
            let mut stmt = conn
                .prepare(
                    "SELECT name, sql FROM sqlite_master \
                     WHERE type = 'index' AND tbl_name = 'entries' AND sql IS NOT NULL",
                )
                .expect("list indexes");
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .expect("list indexes")
                .collect::<rusqlite::Result<Vec<_>>>()
                .expect("list indexes");
            rows
        };
        for (name, _) in &indexes {
            conn.execute_batch(&format!("DROP INDEX \"{name}\""))
                .expect("drop index");
        }
        Self {
            conn,
            indexes: indexes.into_iter().map(|(_, sql)| sql).collect(),
        }
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Inserts a job (through the crate's own query) and returns it with its id.
    pub fn job(&self, job: &Job, created: DateTime<Utc>) -> Job {
        jobs::insert(&self.conn, job, created).expect("insert a job")
    }

    /// Rebuilds the indexes it dropped, commits and returns the file to WAL mode.
    pub fn finish(self) {
        for sql in &self.indexes {
            self.conn.execute_batch(sql).expect("recreate an index");
        }
        self.conn.execute_batch("COMMIT").expect("commit the seed");
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .expect("journal_mode");
        assert_eq!(mode, "wal");
    }
}

/// The number of rows in `entries`.
pub fn count_entries(path: &Path) -> i64 {
    Connection::open(path)
        .expect("open")
        .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
        .expect("count entries")
}
