//! The SQLite database: an r2d2 pool whose connections all run with WAL, foreign keys,
//! full sync and a busy timeout, plus the versioned migrations embedded in the binary.

pub mod alerts;
pub mod backup;
pub mod deliveries;
pub mod digest;
pub mod entries;
mod error;
pub mod jobs;
pub mod retention;
pub mod status;
pub mod tokens;
pub mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, TransactionBehavior};

pub use error::{DbError, StorageFault};

pub type Pool = r2d2::Pool<SqliteConnectionManager>;

/// The migrations, in order; the database's `user_version` counts those applied.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_jobs_and_entries",
        include_str!("migrations/0001_jobs_and_entries.sql"),
    ),
    (
        "0002_scheduler_and_alerts",
        include_str!("migrations/0002_scheduler_and_alerts.sql"),
    ),
    ("0003_tokens", include_str!("migrations/0003_tokens.sql")),
    (
        "0004_installation",
        include_str!("migrations/0004_installation.sql"),
    ),
    (
        "0005_entry_counts",
        include_str!("migrations/0005_entry_counts.sql"),
    ),
    (
        "0006_next_due",
        include_str!("migrations/0006_next_due.sql"),
    ),
    (
        "0007_cron_schedules",
        include_str!("migrations/0007_cron_schedules.sql"),
    ),
    (
        "0008_runs_and_content",
        include_str!("migrations/0008_runs_and_content.sql"),
    ),
    (
        "0009_retention",
        include_str!("migrations/0009_retention.sql"),
    ),
    (
        "0010_ping_keys",
        include_str!("migrations/0010_ping_keys.sql"),
    ),
    (
        "0011_snooze_and_reminders",
        include_str!("migrations/0011_snooze_and_reminders.sql"),
    ),
    (
        "0012_deliveries",
        include_str!("migrations/0012_deliveries.sql"),
    ),
    (
        "0013_job_changes",
        include_str!("migrations/0013_job_changes.sql"),
    ),
    (
        "0014_one_job_index",
        include_str!("migrations/0014_one_job_index.sql"),
    ),
    (
        "0015_newest_entry_times",
        include_str!("migrations/0015_newest_entry_times.sql"),
    ),
    (
        "0016_entry_versions",
        include_str!("migrations/0016_entry_versions.sql"),
    ),
    (
        "0017_checks_without_lists",
        include_str!("migrations/0017_checks_without_lists.sql"),
    ),
    (
        "0018_missing_entries_apart",
        include_str!("migrations/0018_missing_entries_apart.sql"),
    ),
    (
        "0019_entries_without_statement_journal",
        include_str!("migrations/0019_entries_without_statement_journal.sql"),
    ),
];

/// The group-commit writer's page cache, in KiB (see [`Db::writer_conn`]).
pub const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// The writer's own automatic checkpoint, in WAL pages (SQLite's default is 1,000): a
/// safety net behind [`checkpoint_continually`], which does the copying. At 1,000 the
/// writer still checkpointed every few hundred reports (an `fsync` of the database file
/// each time, while the reports behind waited); under reports the WAL now grows to 32 MiB
/// at most (a tick's chunks turn it off: `scheduler::tick_through`).
pub const WRITER_AUTOCHECKPOINT_PAGES: i64 = 8_192;

/// Bytes the WAL file is cut back to when it restarts from its beginning (`PRAGMA
/// journal_size_limit`, set on every connection). An all-due tick could grow the WAL to
/// ~400 MiB over 100,000 due jobs (46-78 MiB since the continual checkpoint has the writer
/// restart it, [`Checkpointer`]); without a limit the file kept its largest size for good.
pub const WAL_SIZE_LIMIT: i64 = WRITER_AUTOCHECKPOINT_PAGES * 4096;

/// How long a connection waits for another writer before giving up with "busy".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct Db {
    pool: Pool,
    path: PathBuf,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

fn configure(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    // FULL: a transaction is on disk when COMMIT returns, so a 201 is never lost.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;",
    )?;
    conn.query_row(
        &format!("PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}"),
        [],
        |_| Ok(()),
    )
}

impl Db {
    /// Opens (creating if needed) the database file. Migrations are not applied here.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            anyhow::ensure!(
                dir.is_dir(),
                "cannot open database {}: directory {} does not exist",
                path.display(),
                dir.display()
            );
        }
        let manager = SqliteConnectionManager::file(path).with_init(configure);
        let pool = r2d2::Pool::builder()
            .max_size(8)
            .connection_timeout(Duration::from_secs(10))
            .build(manager)
            .with_context(|| format!("Failed to open database {}", path.display()))?;
        Ok(Self {
            pool,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes free to unprivileged users on the file system that holds the database file
    /// (through a symlink, the file's own), or `None` when it cannot say. Asked on the
    /// blocking pool: a failing disk may not answer at once.
    pub async fn free_bytes(&self) -> Option<u64> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let stat = rustix::fs::statvfs(&path).ok()?;
            Some(stat.f_bavail.saturating_mul(stat.f_frsize))
        })
        .await
        .ok()
        .flatten()
    }

    /// The bytes the database takes on disk: its file plus its write-ahead log (the shared
    /// memory file is left out: it is a cache, rebuilt at will). A file that cannot be read
    /// counts 0.
    pub fn bytes_on_disk(&self) -> u64 {
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
        size(&self.path) + size(&wal_path(&self.path))
    }

    pub fn conn(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, r2d2::Error> {
        self.pool.get()
    }

    /// The connection for the group-commit writer: a pooled one, with a page cache of
    /// [`WRITER_CACHE_KIB`] instead of SQLite's 2 MiB. Every report updates three indexes of
    /// `entries` at their recent end plus the table and its counters; with 2 MiB those
    /// pages were read again from the OS (`pread`) for most reports. The cache fills only as
    /// pages are used (idle memory does not grow).
    ///
    /// Its statement journal stays in memory (`temp_store = MEMORY`). An insert into
    /// `entries` runs triggers, so SQLite copies each page it changes into a statement
    /// journal first; past 64 KiB in one statement (a page split in two indexes) that
    /// journal became a temporary file for the rest of the transaction, and every later
    /// insert of a tick's chunk wrote its pages there with two `pwrite`s each: 11 % of the
    /// all-due tick's writer, 270 MiB written to disk for nothing.
    pub fn writer_conn(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, DbError> {
        let conn = self.pool.get()?;
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.query_row(
            &format!("PRAGMA wal_autocheckpoint = {WRITER_AUTOCHECKPOINT_PAGES}"),
            [],
            |_| Ok(()),
        )?;
        Ok(conn)
    }

    /// Applies the migrations this database lacks; returns how many were applied. Safe to
    /// run from two processes at once: each migration runs in an immediate transaction that
    /// re-reads the version first.
    pub fn migrate(&self) -> anyhow::Result<usize> {
        let mut conn = self
            .pool
            .get()
            .context("Failed to open a database connection")?;
        // A migration may rebuild a table (SQLite cannot alter a constraint): with foreign
        // keys on, dropping the old table would cascade. They are checked before each commit
        // instead, and turned back on after.
        conn.pragma_update(None, "foreign_keys", false)?;
        let applied = Self::apply_migrations(&mut conn, &self.path);
        conn.pragma_update(None, "foreign_keys", true)?;
        applied
    }

    fn apply_migrations(conn: &mut Connection, path: &Path) -> anyhow::Result<usize> {
        let mut applied = 0;
        for (index, (name, sql)) in MIGRATIONS.iter().enumerate() {
            let version = i64::try_from(index + 1).unwrap_or(i64::MAX);
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
            anyhow::ensure!(
                current <= known,
                "database {} has schema version {current}, newer than this binary knows ({known}): upgrade backup-monitor",
                path.display()
            );
            if current >= version {
                continue;
            }
            tx.execute_batch(sql)
                .with_context(|| format!("Failed to apply migration {name}"))?;
            let dangling: i64 =
                tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                    r.get(0)
                })?;
            anyhow::ensure!(
                dangling == 0,
                "migration {name} would leave {dangling} rows pointing at nothing"
            );
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
            tracing::info!(migration = name, "applied database migration");
            applied += 1;
        }
        Ok(applied)
    }

    /// Fails unless every migration this binary knows is applied (for read-only commands).
    pub fn ensure_current(&self) -> anyhow::Result<()> {
        let conn = self
            .pool
            .get()
            .context("Failed to open a database connection")?;
        ensure_current(&conn, &self.path)
    }

    /// The installation's value under `key`, created by `make` on first use (race-free:
    /// two processes agree on the first value written).
    pub fn installation_value(
        &self,
        key: &str,
        make: impl FnOnce() -> anyhow::Result<String>,
    ) -> anyhow::Result<String> {
        let conn = self
            .pool
            .get()
            .context("Failed to open a database connection")?;
        let value = make()?;
        conn.execute(
            "INSERT INTO installation (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            (key, &value),
        )?;
        Ok(conn.query_row(
            "SELECT value FROM installation WHERE key = ?1",
            [key],
            |r| r.get(0),
        )?)
    }

    /// Runs blocking database work on tokio's blocking pool, inside the caller's span. The
    /// work's error type is the caller's, as long as a [`DbError`] converts into it.
    pub async fn run<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = pool.get().map_err(DbError::from)?;
            work(&mut conn)
        })
        .await
        .map_err(|e| DbError::Unavailable(format!("database task failed: {e}")))?
    }

    /// Answers when the database can run a query.
    pub fn ping(conn: &Connection) -> rusqlite::Result<()> {
        conn.query_row("SELECT 1", [], |_| Ok(()))
    }

    /// Whether the service can go on with this database: a pooled connection runs a query
    /// and the writer thread runs, unstuck. What fails here, a restart may cure: the
    /// health check and the systemd watchdog both ask.
    pub async fn live(&self, writer: &writer::Writer) -> Result<(), DbError> {
        writer.health()?;
        self.run(|conn| Db::ping(conn).map_err(DbError::from)).await
    }

    /// Writes a row with a new value (SQLite skips writing a value that did not change),
    /// to learn whether the disk takes a write again.
    pub fn probe_write(conn: &Connection) -> rusqlite::Result<()> {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos().to_string())
            .unwrap_or_default();
        conn.execute(
            "INSERT INTO installation (key, value) VALUES ('health_probe', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [nonce],
        )
        .map(|_| ())
    }
}

/// Copies what the WAL holds into the database file as far as no reader needs it, without
/// waiting for anyone (a passive checkpoint); the writer's own automatic checkpoints then
/// find little to do. Answers whether every frame of the WAL is copied.
pub fn checkpoint(conn: &Connection) -> rusqlite::Result<bool> {
    checkpoint_counted(conn).map(|(all_copied, _)| all_copied)
}

/// [`checkpoint`], answering also how many frames the WAL held when it began.
fn checkpoint_counted(conn: &Connection) -> rusqlite::Result<(bool, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        let (busy, log, copied): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok((busy == 0 && log == copied, log))
    })
}

/// WAL frames past which a round of the continual checkpoint has the writer restart the
/// WAL ([`Checkpointer`]).
pub const RESTART_AFTER_FRAMES: i64 = 2_048;

/// The write-ahead log beside the database file `path`.
pub fn wal_path(path: &Path) -> PathBuf {
    let mut wal = path.to_path_buf().into_os_string();
    wal.push("-wal");
    PathBuf::from(wal)
}

/// Checkpoints passively ([`checkpoint`]), then empties the WAL file if it is larger than
/// [`WAL_SIZE_LIMIT`] (after an all-due tick, up to ~80 MiB) and every frame it holds is copied: a `TRUNCATE`
/// checkpoint that gives up at once, rather than wait, while a reader still reads an older
/// snapshot or a write is under way (it would hold the writer back meanwhile). Otherwise
/// the file keeps its size until the next write restarts it (cut back to the limit then),
/// which a quiet service may not see for hours. `still_quiet`, asked after the passive
/// step, can call the emptying off (the writer was handed a write meanwhile). Answers
/// whether it emptied the file.
pub fn shrink_wal(
    conn: &Connection,
    wal: &Path,
    still_quiet: impl Fn() -> bool,
) -> rusqlite::Result<bool> {
    let all_copied = checkpoint(conn)?;
    let large = std::fs::metadata(wal).is_ok_and(|m| m.len() > WAL_SIZE_LIMIT.unsigned_abs());
    if !all_copied || !large || !still_quiet() {
        return Ok(false);
    }
    conn.busy_timeout(Duration::ZERO)?;
    let truncated = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        r.get::<_, i64>(0)
    });
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(truncated? == 0)
}

/// How often the service checkpoints the WAL on a pooled connection (see
/// [`checkpoint_continually`]).
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Checkpoints the WAL every `every` (passively, on a pooled connection), until aborted.
/// Under a stream of reports the writer would otherwise checkpoint itself, at the end of
/// whichever group took the WAL past 1,000 pages: a copy of those pages into the database
/// file and an `fsync` of it, a fifth to a quarter of the writer's time, while every report
/// queued behind that group waited. Here it runs beside the writer; the writer's own
/// automatic checkpoint waits for [`WRITER_AUTOCHECKPOINT_PAGES`], and takes over should
/// this fall behind. See [`Checkpointer`] for when it has the writer restart the WAL from
/// its beginning, and when it empties a grown WAL file.
pub async fn checkpoint_continually(db: Db, writer: writer::Writer, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut checkpointer = Checkpointer::new(db, writer);
    loop {
        ticks.tick().await;
        if let Err(e) = checkpointer.round().await {
            tracing::debug!(error = %e, "background checkpoint failed");
        }
    }
}

/// One round after another of the continual checkpoint ([`checkpoint_continually`]). Each
/// copies the WAL into the database file ([`checkpoint`]); a round that finds the writer
/// handed no write since the round before, nor during its copy, also empties a WAL file
/// grown past [`WAL_SIZE_LIMIT`] ([`shrink_wal`]). Not while the writer works: the
/// `TRUNCATE` holds the write lock while it copies and syncs, and a write that begins
/// meanwhile oversleeps its release in SQLite's busy handler (stalls of 25–78 ms during an
/// all-due tick: BENCHMARKS.md). A busy writer restarts the WAL and cuts the file back to
/// the limit itself.
///
/// Beside a busy writer the WAL seldom restarts: SQLite restarts it in a write transaction
/// whose read began with every frame copied, and the writer's next group has always begun
/// (or committed more frames) before a round's copy ends. Only a checkpoint that copies
/// every frame syncs the database file; it was the writer's own, at
/// [`WRITER_AUTOCHECKPOINT_PAGES`], which `fsync`ed every page copied since the last restart
/// (8-12 ms) while every report queued behind it waited, every ~0.4 s at 11,000 reports/s.
/// So a round that finds the WAL past [`RESTART_AFTER_FRAMES`] then hands the writer what
/// it left, to copy between two groups ([`writer::Writer::between_groups`]): a shorter copy
/// and sync, more often; the writer's next group restarts the WAL.
pub struct Checkpointer {
    db: Db,
    writer: writer::Writer,
    wal: PathBuf,
    /// [`writer::Writer::submitted`] at the round before.
    writes_seen: u64,
}

impl Checkpointer {
    /// The first round may empty the WAL (a previous run's), unless the writer works by then.
    pub fn new(db: Db, writer: writer::Writer) -> Self {
        let wal = wal_path(db.path());
        let writes_seen = writer.submitted();
        Self {
            db,
            writer,
            wal,
            writes_seen,
        }
    }

    /// Checkpoints once; answers what it did.
    pub async fn round(&mut self) -> Result<Round, DbError> {
        let writes = self.writer.submitted();
        let quiet = writes == self.writes_seen;
        self.writes_seen = writes;
        if quiet {
            let (wal, writer) = (self.wal.clone(), self.writer.clone());
            let emptied = self
                .db
                .run(move |conn| {
                    shrink_wal(conn, &wal, || writer.submitted() == writes).map_err(DbError::from)
                })
                .await?;
            return Ok(if emptied {
                Round::Emptied
            } else {
                Round::Copied
            });
        }
        let (_, frames) = self
            .db
            .run(|conn| checkpoint_counted(conn).map_err(DbError::from))
            .await?;
        if frames < RESTART_AFTER_FRAMES {
            return Ok(Round::Copied);
        }
        // What this round could not copy (the frames past the snapshot the writer's open
        // group reads, those written since), copied by the writer between two groups: the
        // next group then restarts the WAL from its beginning.
        let all_copied = self
            .writer
            .between_groups(|conn| checkpoint(conn).map_err(DbError::from))
            .await?;
        Ok(if all_copied {
            Round::Restarted
        } else {
            Round::Copied
        })
    }
}

/// What one round of the continual checkpoint did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// Copied what it could of the WAL into the database file.
    Copied,
    /// Copied all of it and emptied the WAL file: the writer was quiet.
    Emptied,
    /// Copied what it could, then had the writer copy the rest between two groups, so that
    /// the next group restarts the WAL: the writer was busy and the WAL past
    /// [`RESTART_AFTER_FRAMES`]. (A reader of an older snapshot can keep frames from both
    /// copies; the round is then [`Round::Copied`]. A reader that began before the copy
    /// ended can still put the restart off to a later group.)
    Restarted,
}

/// A connection's settings as they were before [`set_for_bulk`], to put back with
/// [`restore_settings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnSettings {
    /// `PRAGMA cache_size`: pages if positive, KiB if negative.
    cache_size: i64,
    /// `PRAGMA wal_autocheckpoint`: WAL pages past which a commit checkpoints.
    wal_autocheckpoint: i64,
}

/// Readies `conn` for a run of big write transactions (a tick's chunks): a page cache of at
/// least `cache_kib` KiB, so that a transaction's pages do not spill to the WAL before its
/// commit and get written twice. Unless `autocheckpoint`, its commits no longer checkpoint
/// (copy the WAL into the database file, on the committing thread): the caller then runs
/// [`checkpoint`] after each transaction from another connection, or the WAL grows, and
/// with it the cost of every page read (SQLite searches the WAL's index for each). Answers
/// what to put back.
pub fn set_for_bulk(
    conn: &Connection,
    cache_kib: i64,
    autocheckpoint: bool,
) -> rusqlite::Result<ConnSettings> {
    let saved = ConnSettings {
        cache_size: conn.query_row("PRAGMA cache_size", [], |r| r.get(0))?,
        wal_autocheckpoint: conn.query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))?,
    };
    let current_kib = if saved.cache_size < 0 {
        -saved.cache_size
    } else {
        let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        saved.cache_size.saturating_mul(page_size) / 1024
    };
    if current_kib < cache_kib {
        conn.pragma_update(None, "cache_size", -cache_kib)?;
    }
    if !autocheckpoint {
        conn.query_row("PRAGMA wal_autocheckpoint = 0", [], |_| Ok(()))?;
    }
    Ok(saved)
}

/// Puts back the settings [`set_for_bulk`] changed; the pages beyond the page cache's
/// size are freed.
pub fn restore_settings(conn: &Connection, saved: ConnSettings) -> rusqlite::Result<()> {
    conn.pragma_update(None, "cache_size", saved.cache_size)?;
    conn.query_row(
        &format!("PRAGMA wal_autocheckpoint = {}", saved.wal_autocheckpoint),
        [],
        |_| Ok(()),
    )
}

/// One connection to an existing database whose migrations are all applied, for a one-shot
/// reader such as `check`. No pool: r2d2 retries a failing open for its whole connection
/// timeout and logs each try, so a file that is not a database took seconds and dozens of
/// lines; here it fails at once, with one error. Nothing is created, nothing is written.
pub fn open_current(path: &Path) -> anyhow::Result<Connection> {
    use rusqlite::OpenFlags;
    anyhow::ensure!(path.is_file(), "database {} does not exist", path.display());
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open database {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    ensure_current(&conn, path)?;
    Ok(conn)
}

/// Fails unless `conn` (the database at `path`) has every migration this binary knows.
fn ensure_current(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .with_context(|| format!("cannot read database {}", path.display()))?;
    let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    anyhow::ensure!(
        version == known,
        "database {} has schema version {version}, this binary expects {known}: run `backup-monitor migrate`",
        path.display()
    );
    Ok(())
}

/// `ids` as a JSON array, for `… IN (SELECT value FROM json_each(?))`: one string, written
/// in place (a `String` for each id, then joined: 0.8 % of the all-due tick's instructions,
/// more of its time in a profile on a machine where new memory was slow to touch).
pub(crate) fn json_ids(ids: impl IntoIterator<Item = i64>) -> String {
    use std::fmt::Write;
    let mut list = String::from("[");
    for (i, id) in ids.into_iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        // Writing into a String cannot fail.
        let _ = write!(list, "{id}");
    }
    list.push(']');
    list
}

/// `query_row` through the connection's statement cache: hot queries are parsed once.
pub(crate) fn cached_row<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// The row of `table` whose id is `id`, its `columns` read by `f`, if there is one.
pub(crate) fn row_by_id<T>(
    conn: &Connection,
    table: &str,
    columns: &str,
    id: i64,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    use rusqlite::OptionalExtension;
    cached_row(
        conn,
        &format!("SELECT {columns} FROM {table} WHERE id = ?1"),
        [id],
        f,
    )
    .optional()
}

/// One page of `select` (a `SELECT … FROM … WHERE … ORDER BY …` whose `?n` are the filters'
/// values), `limit` rows after skipping `skip`, each read by `f`.
pub(crate) fn page<T>(
    conn: &Connection,
    select: &str,
    filters: Filters,
    skip: i64,
    limit: i64,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let n = filters.values.len();
    let mut stmt = conn.prepare(&format!("{select} LIMIT ?{} OFFSET ?{}", n + 1, n + 2))?;
    let mut values = filters.values;
    values.push(limit.into());
    values.push(skip.into());
    let rows = stmt
        .query_map(rusqlite::params_from_iter(values.iter()), f)?
        .collect();
    rows
}

/// `execute` through the connection's statement cache.
pub(crate) fn cached_execute<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// Builds `WHERE a = ?1 AND b = ?2` from the filters that are set.
pub(crate) struct Filters {
    clauses: Vec<String>,
    pub values: Vec<rusqlite::types::Value>,
}

impl Filters {
    pub fn new() -> Self {
        Self {
            clauses: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Adds `column <op> ?` (the column and operator are ours, never the client's).
    pub fn add(&mut self, column: &str, op: &str, value: impl Into<rusqlite::types::Value>) {
        self.values.push(value.into());
        self.clauses
            .push(format!("{column} {op} ?{}", self.values.len()));
    }

    /// Adds a clause written by us with no value: a literal SQLite must see when it plans
    /// the query (a term that lets it use a partial index).
    pub fn add_fixed(&mut self, clause: impl Into<String>) {
        self.clauses.push(clause.into());
    }

    /// Adds a clause written by us, `{}` standing for the value's placeholder.
    pub fn add_sql(&mut self, template: &str, value: impl Into<rusqlite::types::Value>) {
        self.values.push(value.into());
        let placeholder = format!("?{}", self.values.len());
        self.clauses.push(template.replace("{}", &placeholder));
    }

    /// Like [`Filters::add_sql`] with two values, `{}` standing for each in turn.
    pub fn add_sql_pair(
        &mut self,
        template: &str,
        first: impl Into<rusqlite::types::Value>,
        second: impl Into<rusqlite::types::Value>,
    ) {
        self.values.push(first.into());
        let a = format!("?{}", self.values.len());
        self.values.push(second.into());
        let b = format!("?{}", self.values.len());
        self.clauses
            .push(template.replacen("{}", &a, 1).replacen("{}", &b, 1));
    }

    pub fn where_sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// What the unit tests of this layer share.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod testing {
    use rusqlite::Connection;

    /// A new database with every migration applied, in a temporary directory that lives as
    /// long as the returned guard.
    pub fn migrated() -> (tempfile::TempDir, super::Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = super::Db::open(&dir.path().join("test.db")).unwrap();
        db.migrate().unwrap();
        (dir, db)
    }

    /// Asserts that the plan `steps` of `sql` read the entries through the indexes by job
    /// (`entries_identical`, `entries_missing`), seeking one job's range with `seek` among
    /// its terms, and through no other index of the entries (another index would walk every
    /// job's entries of a status or a time).
    pub fn assert_seeks_one_job(sql: &str, steps: &[String], seek: &str) {
        let reads: Vec<&String> = steps.iter().filter(|s| s.contains(" entries ")).collect();
        assert!(!reads.is_empty(), "{sql}: {steps:?}");
        for step in reads {
            let by_job = ["entries_identical", "entries_missing"]
                .iter()
                .any(|index| step.contains(&format!("INDEX {index} (job_id=?")));
            assert!(by_job && step.contains(seek), "{sql}: {steps:?}");
        }
    }

    /// A daily job's row with the fields a schema needs and nothing else (job 1 in a new
    /// database).
    pub const INSERT_JOB: &str = "INSERT INTO jobs (database_name, agent_id_responsible, \
        company_name, city, expected_hour_utc, expected_minute_utc, backup_frequency, \
        final_storage_path_template, grace_minutes, schedule_anchor_us, created_at_us, \
        updated_at_us) VALUES ('erp', 'agent', 'acme', 'Lyon', 2, 30, 'daily', '/b', 60, \
        0, 0, 0)";

    /// SQLite's plan for `sql` with `params` bound in a new database with every migration.
    pub fn plan_on_new_database(sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        let (_dir, db) = migrated();
        let conn = db.conn().unwrap();
        query_plan(&conn, sql, params)
    }

    /// The opcodes of the program SQLite compiles `sql` to, in order (its parameters left
    /// unbound).
    pub fn opcodes(conn: &Connection, sql: &str) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
        let mut rows = stmt.raw_query();
        let mut ops = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            ops.push(row.get::<_, String>(1).unwrap());
        }
        ops
    }

    /// SQLite's plan for `sql` with `params` bound, one line a step.
    pub fn query_plan(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map(params, |r| r.get::<_, String>(3)).unwrap();
        rows.collect::<rusqlite::Result<_>>().unwrap()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::{DbError, Round};

    /// The writer's statement journal never becomes a file (see [`super::Db::writer_conn`]):
    /// `temp_store` 2 is memory.
    #[test]
    fn the_writers_statement_journal_stays_in_memory() {
        let (_dir, db) = super::testing::migrated();
        let writer = db.writer_conn().unwrap();

        let temp_store: i64 = writer
            .query_row("PRAGMA temp_store", [], |r| r.get(0))
            .unwrap();

        assert_eq!(temp_store, 2);
    }

    /// The id lists the `json_each` queries read: SQLite reads back the ids given, in order,
    /// the empty list and negative ids included.
    #[test]
    fn an_id_list_reads_back_as_the_ids_given() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for ids in [vec![], vec![7], vec![1, -2, 30, i64::MAX, i64::MIN]] {
            let list = super::json_ids(ids.iter().copied());
            let mut stmt = conn
                .prepare("SELECT value FROM json_each(?1) ORDER BY key")
                .unwrap();
            let read: Vec<i64> = stmt
                .query_map([&list], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            assert_eq!(read, ids, "{list}");
        }
    }

    /// After an all-due tick the WAL restarts and its file is cut back to the limit, instead
    /// of keeping the size the tick grew it to.
    #[test]
    fn the_wal_file_is_cut_back_to_its_limit_once_it_restarts() {
        let (dir, db) = super::testing::migrated();
        let conn = db.conn().unwrap();
        conn.query_row("PRAGMA wal_autocheckpoint = 0", [], |_| Ok(()))
            .unwrap();
        let wal = dir.path().join("test.db-wal");
        let grown = super::WAL_SIZE_LIMIT + 4 * 1024 * 1024;
        conn.execute_batch("CREATE TABLE big (b BLOB)").unwrap();
        conn.execute("INSERT INTO big VALUES (zeroblob(?1))", [grown])
            .unwrap();
        let before = std::fs::metadata(&wal).unwrap().len();
        super::checkpoint(&conn).unwrap();
        conn.execute("DELETE FROM big", []).unwrap();
        let after = std::fs::metadata(&wal).unwrap().len();

        assert!(before > grown.unsigned_abs(), "{before}");
        assert!(after <= super::WAL_SIZE_LIMIT.unsigned_abs(), "{after}");
    }

    /// The continual checkpoint empties a grown WAL file only in a round that finds that the
    /// writer was handed nothing since the round before: never beside a busy writer, whose
    /// writes would wait for the emptying's write lock.
    #[tokio::test]
    async fn the_continual_checkpoint_empties_a_grown_wal_file_only_while_the_writer_is_quiet() {
        let (_dir, db) = super::testing::migrated();
        let writer = super::writer::Writer::start(db.writer_conn().unwrap()).unwrap();
        let wal = super::wal_path(db.path());
        let mut checkpointer = super::Checkpointer::new(db.clone(), writer.clone());
        let grown = super::WAL_SIZE_LIMIT + 4 * 1024 * 1024;
        let grow = |sql: &'static str| {
            writer.write(move |conn| {
                conn.execute_batch(sql)?;
                conn.execute("INSERT INTO big VALUES (zeroblob(?1))", [grown])?;
                Ok::<_, super::DbError>(())
            })
        };
        grow("CREATE TABLE big (b BLOB)").await.unwrap();

        let after_write = checkpointer.round().await.unwrap();
        let size_after_write = std::fs::metadata(&wal).unwrap().len();
        let wal_for_probe = wal.clone();
        let called_off = db
            .run(move |conn| {
                super::shrink_wal(conn, &wal_for_probe, || false).map_err(super::DbError::from)
            })
            .await
            .unwrap();
        let once_quiet = checkpointer.round().await.unwrap();
        let size_once_quiet = std::fs::metadata(&wal).unwrap().len();
        let mut after_next_writes = Vec::new();
        for _ in 0..2 {
            grow("DELETE FROM big").await.unwrap();
            after_next_writes.push(checkpointer.round().await.unwrap());
        }
        let quiet_again = checkpointer.round().await.unwrap();

        assert_ne!(
            after_write,
            Round::Emptied,
            "emptied in the round after a write"
        );
        assert!(
            size_after_write > grown.unsigned_abs(),
            "{size_after_write}"
        );
        assert!(!called_off, "emptied though a write came during the copy");
        assert_eq!(
            once_quiet,
            Round::Emptied,
            "not emptied once the writer was quiet"
        );
        assert_eq!(size_once_quiet, 0);
        assert!(
            !after_next_writes.contains(&Round::Emptied),
            "emptied in a round after a write: {after_next_writes:?}"
        );
        assert_eq!(
            quiet_again,
            Round::Emptied,
            "not emptied once the writer was quiet again"
        );
    }

    /// Beside a busy writer a round never copies the whole WAL (a group commits during its
    /// copy), which then grows until the writer checkpoints it itself (every report behind
    /// waiting for that copy and its `fsync`). A round that finds the WAL past
    /// [`RESTART_AFTER_FRAMES`] has the writer copy the rest between two groups, and the
    /// writer's next group restarts the WAL from its beginning.
    #[tokio::test]
    async fn a_busy_writer_restarts_the_wal_after_a_round_of_the_checkpoint() {
        let (_dir, db) = super::testing::migrated();
        let writer = super::writer::Writer::start(db.writer_conn().unwrap()).unwrap();
        // Only the continual checkpoint copies here: the writer's own would restart the WAL.
        writer
            .between_groups(|conn| {
                conn.query_row("PRAGMA wal_autocheckpoint = 0", [], |_| Ok(()))?;
                Ok::<_, DbError>(())
            })
            .await
            .unwrap();
        let insert = |sql: &'static str| {
            writer.write(move |conn| {
                conn.execute_batch(sql)?;
                Ok::<_, DbError>(())
            })
        };
        insert("CREATE TABLE small (n INTEGER)").await.unwrap();
        let mut checkpointer = super::Checkpointer::new(db.clone(), writer.clone());
        let pages = super::RESTART_AFTER_FRAMES + 512;
        writer
            .write(move |conn| {
                conn.execute("CREATE TABLE big (b BLOB)", [])?;
                conn.execute("INSERT INTO big VALUES (zeroblob(?1))", [pages * 4096])?;
                Ok::<_, DbError>(())
            })
            .await
            .unwrap();
        // A group open while the round copies, committed after its copy began.
        let busy = writer.clone();
        let open_group = tokio::spawn(async move {
            busy.write(|conn| {
                conn.execute("INSERT INTO small VALUES (1)", [])?;
                std::thread::sleep(std::time::Duration::from_millis(300));
                Ok::<_, DbError>(())
            })
            .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let round = checkpointer.round().await.unwrap();
        open_group.await.unwrap().unwrap();
        for _ in 0..2 {
            insert("INSERT INTO small VALUES (2)").await.unwrap();
        }
        let after = {
            let conn = db.conn().unwrap();
            super::checkpoint_counted(&conn).unwrap().1
        };

        assert_eq!(round, Round::Restarted);
        assert!(
            after < 64,
            "the WAL did not restart: {after} frames after {pages} pages"
        );
    }

    /// A quiet service empties a WAL file grown past the limit without waiting for a write,
    /// but never while a reader still reads an older snapshot, nor waits for it.
    #[test]
    fn a_grown_wal_file_is_emptied_once_no_reader_needs_it() {
        let (dir, db) = super::testing::migrated();
        let conn = db.conn().unwrap();
        let wal = super::wal_path(db.path());
        assert_eq!(wal, dir.path().join("test.db-wal"));
        conn.execute_batch("CREATE TABLE big (b BLOB); INSERT INTO big VALUES (1);")
            .unwrap();
        assert!(
            !super::shrink_wal(&conn, &wal, || true).unwrap(),
            "a small WAL is left"
        );

        conn.query_row("PRAGMA wal_autocheckpoint = 0", [], |_| Ok(()))
            .unwrap();
        let reader = db.conn().unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM big", [], |r| r.get(0))
            .unwrap();
        conn.execute(
            "INSERT INTO big VALUES (zeroblob(?1))",
            [super::WAL_SIZE_LIMIT + 1024 * 1024],
        )
        .unwrap();
        let started = std::time::Instant::now();
        let while_read = super::shrink_wal(&conn, &wal, || true).unwrap();
        let waited = started.elapsed();
        let grown = std::fs::metadata(&wal).unwrap().len();
        reader.execute_batch("COMMIT").unwrap();
        let after_read = super::shrink_wal(&conn, &wal, || true).unwrap();
        let emptied = std::fs::metadata(&wal).unwrap().len();

        assert!(
            !while_read,
            "a reader of an older snapshot still needs the WAL"
        );
        assert!(waited < std::time::Duration::from_secs(1), "{waited:?}");
        assert!(grown > super::WAL_SIZE_LIMIT.unsigned_abs(), "{grown}");
        assert!(after_read);
        assert_eq!(emptied, 0);
    }
}
