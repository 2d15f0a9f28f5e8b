//! Group commit for reports: one thread owns a connection and runs every queued write of a
//! moment in ONE transaction, each inside its own savepoint, then commits once (one fsync)
//! and only then answers each caller. Concurrent reports share a commit instead of queueing
//! one transaction each; a 201 still means the row is on disk (synchronous = FULL).
//!
//! The thread cannot fail silently: a write that panics is rolled back alone and its caller
//! answered (the thread goes on); a thread that is gone anyway, or stuck in one transaction,
//! makes [`Writer::health`] fail, which the health check and the systemd watchdog read.
//! A commit refused by a full or failing disk is remembered until one succeeds.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::jobs::JobCache;
use super::{DbError, StorageFault};

/// Writes merged into one transaction at most.
const GROUP_MAX: usize = 512;
/// Writes waiting at most; past that, callers get 503 + Retry-After.
const QUEUE_MAX: usize = 8192;
/// A group transaction open for longer than this means the writer is stuck (a group waits
/// at most the busy timeout for the lock, then runs in milliseconds).
const STUCK_AFTER: Duration = Duration::from_secs(60);

/// What a queued write leaves to do once the commit has (or has not) happened.
type Finish = Box<dyn FnOnce(Option<DbError>) + Send>;

/// A queued write.
trait Job: Send {
    /// Runs inside the shared transaction; says whether it succeeded.
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish);
    /// Answers the caller without running.
    fn abandon(self: Box<Self>, error: DbError);
    /// How it is committed.
    fn mode(&self) -> Mode {
        Mode::Grouped
    }
}

/// How a queued write is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// In the next group, beside the writes queued with it ([`Writer::write`]).
    Grouped,
    /// In a group of its own ([`Writer::write_alone`]).
    Alone,
    /// In a group of its own, committed without waiting for the disk
    /// ([`Writer::write_alone_unsynced`]).
    AloneUnsynced,
    /// Between two groups, outside any transaction ([`Writer::between_groups`]).
    Between,
}

impl Mode {
    fn alone(self) -> bool {
        self != Mode::Grouped
    }
}

/// `PRAGMA synchronous = NORMAL`: in WAL mode, a commit that does not wait for the disk.
const SYNCHRONOUS_NORMAL: i64 = 1;

struct Pending<T, E, F> {
    f: F,
    reply: oneshot::Sender<Result<T, E>>,
    span: tracing::Span,
    mode: Mode,
}

impl<T, E, F> Job for Pending<T, E, F>
where
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
    F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish) {
        let Pending { f, reply, span, .. } = *self;
        // A panic is a bug in one write: it must not take the thread (and every later
        // report) with it. Its savepoint is rolled back like any failed write's.
        let result =
            catch_unwind(AssertUnwindSafe(|| span.in_scope(|| f(conn)))).unwrap_or_else(|panic| {
                span.in_scope(|| {
                    tracing::error!(
                        panic = panic_message(panic.as_ref()),
                        "a write panicked; its changes are rolled back"
                    );
                });
                Err(E::from(DbError::WritePanicked))
            });
        let ok = result.is_ok();
        let finish: Finish = Box::new(move |commit_error| {
            let _ = reply.send(match commit_error {
                Some(e) => Err(E::from(e)),
                None => result,
            });
        });
        (ok, finish)
    }

    fn abandon(self: Box<Self>, error: DbError) {
        let _ = self.reply.send(Err(E::from(error)));
    }

    fn mode(&self) -> Mode {
        self.mode
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

type Work = Box<dyn Job>;

/// What the writer thread tells the rest of the service about itself.
struct Status {
    /// Set when the thread ends, however it ends.
    stopped: AtomicBool,
    /// Milliseconds since `epoch` at which the current group began; 0 between groups.
    group_began_ms: AtomicU64,
    epoch: Instant,
    /// The last commit (or begin) was refused by the disk, and none has succeeded since.
    storage_fault: std::sync::Mutex<Option<StorageFault>>,
    /// Writes handed to the thread since it started.
    submitted: AtomicU64,
}

impl Status {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    fn set_storage_fault(&self, fault: Option<StorageFault>) {
        *self
            .storage_fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fault;
    }
}

/// Marks the thread stopped when dropped: at its end, or while a panic unwinds it.
struct StoppedOnDrop(Arc<Status>);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Release);
        if std::thread::panicking() {
            tracing::error!("the group-commit writer thread panicked: no report can be stored until the service restarts");
        }
    }
}

#[derive(Clone)]
pub struct Writer {
    queue: SyncSender<Work>,
    status: Arc<Status>,
    stuck_after: Duration,
    jobs: Arc<JobCache>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Starts the writer thread on `conn`; it ends when every `Writer` clone is dropped.
    pub fn start(
        conn: impl std::ops::DerefMut<Target = Connection> + Send + 'static,
    ) -> std::io::Result<Self> {
        Self::start_with(conn, STUCK_AFTER)
    }

    fn start_with(
        conn: impl std::ops::DerefMut<Target = Connection> + Send + 'static,
        stuck_after: Duration,
    ) -> std::io::Result<Self> {
        let (queue, work) = sync_channel::<Work>(QUEUE_MAX);
        let status = Arc::new(Status {
            stopped: AtomicBool::new(false),
            group_began_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            storage_fault: std::sync::Mutex::new(None),
            submitted: AtomicU64::new(0),
        });
        let thread_status = status.clone();
        let jobs = Arc::new(JobCache::default());
        let thread_jobs = jobs.clone();
        std::thread::Builder::new()
            .name("group-commit".to_owned())
            .spawn(move || {
                let _stopped = StoppedOnDrop(thread_status.clone());
                run(conn, work, &thread_status, &thread_jobs);
            })?;
        Ok(Self {
            queue,
            status,
            stuck_after,
            jobs,
        })
    }

    /// Runs `f` in the next group transaction and answers once it is committed. An error
    /// from `f` rolls back only `f`'s own changes; so does a panic (answered as
    /// [`DbError::WritePanicked`]).
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        self.submit(f, Mode::Grouped).await
    }

    /// [`Writer::write`] for a big write (a chunk of the tick's work): it runs in a group
    /// transaction of its own, after the writes queued before it have committed, and the
    /// writes queued while it runs go in the next group. A report waits for one big write at
    /// most, never for a big write that was queued after it.
    pub async fn write_alone<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        self.submit(f, Mode::Alone).await
    }

    /// [`Writer::write_alone`] for a big write that its caller can make again from what is
    /// on disk (a tick's chunk: its `missing` entries, alerts and evaluated slots follow from
    /// the reports stored), committed with `synchronous = NORMAL`: its commit does not wait
    /// for the disk; its pages reach it with the next synced commit (a report's) or the
    /// next checkpoint. A power cut before then loses the whole write, never part of it,
    /// and the next tick writes it again. Never for a report: a 201 means on disk. The
    /// writes after it are committed as durably as before (`synchronous` put back; should
    /// that fail, they are refused rather than committed unsynced).
    pub async fn write_alone_unsynced<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        self.submit(f, Mode::AloneUnsynced).await
    }

    /// Runs `f` on the writer's connection between two groups, outside any transaction:
    /// for what SQLite refuses inside one (a checkpoint on the writer's own connection, see
    /// `db::Checkpointer`). The writes queued before it are committed first; those queued
    /// while it runs wait for it. `f` must not write: nothing commits or rolls back
    /// around it.
    pub async fn between_groups<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        self.submit(f, Mode::Between).await
    }

    async fn submit<T, E, F>(&self, f: F, mode: Mode) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<DbError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let work: Work = Box::new(Pending {
            f,
            reply,
            span: tracing::Span::current(),
            mode,
        });
        match self.queue.try_send(work) {
            // What runs between groups is the service's own upkeep, no write of anyone's:
            // counted, a lone tick would take it for a report and pause for it.
            Ok(()) if mode == Mode::Between => {}
            Ok(()) => {
                self.status.submitted.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => return Err(DbError::Busy.into()),
            Err(TrySendError::Disconnected(_)) => return Err(self.stopped().into()),
        }
        // Every write is answered, unless the thread died holding it.
        answer.await.map_err(|_| E::from(self.stopped()))?
    }

    /// The thread is gone (or going: its queue or a reply was dropped while it unwinds).
    fn stopped(&self) -> DbError {
        self.status.stopped.store(true, Ordering::Release);
        stopped()
    }

    /// How many writes have been handed to the writer since it started (not what runs
    /// [`Writer::between_groups`]): a big write's caller tells from it whether others came
    /// while its own ran, and the continual checkpoint whether the writer was quiet
    /// (`db::Checkpointer`).
    pub fn submitted(&self) -> u64 {
        self.status.submitted.load(Ordering::Relaxed)
    }

    /// Whether the writer can store reports: its thread runs and is not stuck in one
    /// transaction. A restart cures what this reports.
    pub fn health(&self) -> Result<(), DbError> {
        if self.status.stopped.load(Ordering::Acquire) {
            return Err(stopped());
        }
        let began = self.status.group_began_ms.load(Ordering::Acquire);
        if began != 0 {
            let open_ms = self.status.now_ms().saturating_sub(began);
            if Duration::from_millis(open_ms) > self.stuck_after {
                return Err(DbError::WriterDown(format!(
                    "the group-commit writer has been stuck in one transaction for {} s",
                    open_ms / 1000
                )));
            }
        }
        Ok(())
    }

    /// The job rows this writer's connection has read, for writes that read a job (reports):
    /// pass it into the write. The writer forgets them after any rollback.
    pub fn jobs(&self) -> Arc<JobCache> {
        self.jobs.clone()
    }

    /// The disk's refusal of the last commit, while no commit has succeeded since.
    pub fn storage_fault(&self) -> Option<StorageFault> {
        *self
            .status
            .storage_fault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Ends the writer thread with a panic outside any write, as a bug in the writer itself
    /// would: for tests of what the service does then (see [`Writer::health`]).
    #[doc(hidden)]
    pub fn crash_for_tests(&self) {
        let _ = self.queue.try_send(Box::new(Crash));
    }
}

fn stopped() -> DbError {
    DbError::WriterDown("the group-commit writer thread has stopped".to_owned())
}

/// A job that panics outside the per-write guard (see [`Writer::crash_for_tests`]).
struct Crash;

impl Job for Crash {
    fn run(self: Box<Self>, _: &Connection) -> (bool, Finish) {
        panic!("the writer thread was crashed on purpose (crash_for_tests)");
    }

    fn abandon(self: Box<Self>, _: DbError) {}
}

fn run(
    mut conn: impl std::ops::DerefMut<Target = Connection>,
    work: Receiver<Work>,
    status: &Status,
    jobs: &JobCache,
) {
    // A write that must run alone, taken from the queue while a group was being gathered:
    // it begins the next group.
    let mut held: Option<Work> = None;
    // The connection's own `synchronous`, which every group but an unsynced write's has.
    let synced: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap_or(2);
    let mut level = synced;
    while let Some(first) = held.take().or_else(|| work.recv().ok()) {
        status
            .group_began_ms
            .store(status.now_ms(), Ordering::Release);
        let mode = first.mode();
        if mode == Mode::Between {
            let (_, finish) = first.run(&conn);
            // It must not write; should it have begun a transaction, the next group's
            // `BEGIN` would fail.
            if !conn.is_autocommit() {
                tracing::error!("work between two groups left a transaction open; rolled back");
                if let Err(e) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %e, "cannot roll back");
                }
            }
            status.group_began_ms.store(0, Ordering::Release);
            finish(None);
            continue;
        }
        let mut group = vec![first];
        while !mode.alone() && group.len() < GROUP_MAX {
            match work.try_recv() {
                Ok(more) if more.mode().alone() => {
                    held = Some(more);
                    break;
                }
                Ok(more) => group.push(more),
                Err(_) => break,
            }
        }
        let wanted = if mode == Mode::AloneUnsynced {
            SYNCHRONOUS_NORMAL
        } else {
            synced
        };
        if level != wanted {
            match conn.pragma_update(None, "synchronous", wanted) {
                Ok(()) => level = wanted,
                // An unsynced write may be committed synced; the others never unsynced.
                Err(e) if wanted == synced => {
                    tracing::error!(error = %e, "cannot make the commits wait for the disk again");
                    let error = DbError::Unavailable(format!(
                        "cannot make the commits wait for the disk again: {e}"
                    ));
                    for work in group {
                        work.abandon(copy(&error));
                    }
                    status.group_began_ms.store(0, Ordering::Release);
                    continue;
                }
                Err(e) => tracing::warn!(error = %e, "an unsynced write is committed synced"),
            }
        }
        commit_group(&mut conn, group, status, jobs);
        status.group_began_ms.store(0, Ordering::Release);
    }
}

fn commit_group(conn: &mut Connection, group: Vec<Work>, status: &Status, jobs: &JobCache) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::warn!(error = %e, "cannot begin a group transaction");
            let error = DbError::from(e);
            if let DbError::Storage(fault) = error {
                status.set_storage_fault(Some(fault));
            }
            status.group_began_ms.store(0, Ordering::Release);
            for work in group {
                // Answer without running: the caller may retry (503).
                work.abandon(copy(&error));
            }
            return;
        }
    };
    // A group of one write (a tick's chunk, always; a report when they come one at a time)
    // needs no savepoint: should the write fail, the whole transaction is rolled back. A
    // savepoint would make SQLite keep the original of every page the write changes in a
    // statement journal, a temporary file past 64 KiB: a tick's chunk of 1,000 jobs wrote
    // as much there as to the WAL.
    if group.len() == 1 {
        if let Some(work) = group.into_iter().next() {
            let (ok, finish) = work.run(&tx);
            if !ok {
                jobs.forget();
                if let Err(e) = tx.rollback() {
                    tracing::error!(error = %e, "cannot roll back a failed write");
                }
                if !conn.is_autocommit() {
                    if let Err(e) = conn.execute_batch("ROLLBACK") {
                        tracing::error!(error = %e, "cannot roll back a failed write");
                    }
                }
                status.group_began_ms.store(0, Ordering::Release);
                finish(None);
                return;
            }
            let committed = tx.commit();
            answer(conn, committed, vec![finish], status, jobs);
        }
        return;
    }
    let mut finishes: Vec<Finish> = Vec::with_capacity(group.len());
    let mut works = group.into_iter();
    while let Some(work) = works.next() {
        // Prepared once (the connection's statement cache), not parsed per report.
        if let Err(e) = run_cached(&tx, "SAVEPOINT item") {
            tracing::error!(error = %e, "cannot open a savepoint");
            work.abandon(DbError::from(e));
            continue;
        }
        let (ok, finish) = work.run(&tx);
        if !ok && tx.is_autocommit() {
            // SQLite rolled the whole transaction back, not just this write: a statement
            // with no statement journal to undo it alone (an entry's insert, migration 0019)
            // met a disk that failed or filled up. The writes before it are undone, and
            // each after it would commit on its own outside the group: none of them runs.
            jobs.forget();
            status.group_began_ms.store(0, Ordering::Release);
            finish(None);
            let error = DbError::Unavailable(
                "a write grouped with it failed and its transaction was rolled back; \
                 nothing of it is stored"
                    .to_owned(),
            );
            tracing::error!(
                "a failed write rolled its whole group back: none of its writes is stored"
            );
            for finish in finishes {
                finish(Some(copy(&error)));
            }
            for work in works {
                work.abandon(copy(&error));
            }
            return;
        }
        let closed = if ok {
            run_cached(&tx, "RELEASE item")
        } else {
            jobs.forget();
            tx.execute_batch("ROLLBACK TO item; RELEASE item")
        };
        if let Err(e) = closed {
            tracing::error!(error = %e, "cannot close a savepoint");
        }
        finishes.push(finish);
    }
    let committed = tx.commit();
    answer(conn, committed, finishes, status, jobs);
}

/// Answers the writes of a group once its commit has succeeded or failed.
fn answer(
    conn: &mut Connection,
    committed: rusqlite::Result<()>,
    finishes: Vec<Finish>,
    status: &Status,
    jobs: &JobCache,
) {
    // The group is over before anyone hears of it: a health check made right after a
    // caller's answer must not find the group still open.
    status.group_began_ms.store(0, Ordering::Release);
    match committed {
        Ok(()) => {
            status.set_storage_fault(None);
            for finish in finishes {
                finish(None);
            }
        }
        Err(e) => {
            jobs.forget();
            tracing::error!(error = %e, "group commit failed: none of its writes is stored");
            let error = DbError::from(e);
            if let DbError::Storage(fault) = error {
                status.set_storage_fault(Some(fault));
            }
            // The failed commit's rollback may have failed too: the next group must not
            // find a transaction still open.
            if !conn.is_autocommit() {
                if let Err(e) = conn.execute_batch("ROLLBACK") {
                    tracing::error!(error = %e, "cannot roll back the failed group");
                }
            }
            for finish in finishes {
                finish(Some(copy(&error)));
            }
        }
    }
}

/// Runs one statement without parameters through the connection's statement cache.
fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The same error for each caller of a group (rusqlite's errors are not `Clone`).
fn copy(error: &DbError) -> DbError {
    match error {
        DbError::Busy => DbError::Busy,
        DbError::Storage(fault) => DbError::Storage(*fault),
        DbError::WriterDown(reason) => DbError::WriterDown(reason.clone()),
        DbError::WritePanicked => DbError::WritePanicked,
        DbError::Query(e) => DbError::Unavailable(format!("group commit failed: {e}")),
        DbError::Unavailable(reason) => DbError::Unavailable(reason.clone()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn writer(stuck_after: Duration) -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);")
            .unwrap();
        let writer = Writer::start_with(Box::new(conn), stuck_after).unwrap();
        (dir, writer)
    }

    async fn insert(writer: &Writer, x: i64) -> Result<(), DbError> {
        writer
            .write(move |conn| {
                conn.execute("INSERT INTO t (x) VALUES (?1)", [x])?;
                Ok::<_, DbError>(())
            })
            .await
    }

    async fn count(writer: &Writer) -> i64 {
        writer
            .write(|conn| {
                Ok::<_, DbError>(conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?)
            })
            .await
            .unwrap()
    }

    /// What runs between two groups finds no transaction open, and the writes queued
    /// before it committed.
    #[tokio::test]
    async fn work_between_groups_runs_outside_any_transaction_after_the_writes_before_it() {
        let (_dir, writer) = writer(STUCK_AFTER);
        let before = insert(&writer, 1);
        let between = writer.between_groups(|conn| {
            let count: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
            Ok::<_, DbError>((conn.is_autocommit(), count))
        });
        // Polled in order: the write is queued first.
        let (inserted, between) = tokio::join!(before, between);
        inserted.unwrap();
        let (outside, seen) = between.unwrap();
        assert!(outside, "ran inside a transaction");
        assert_eq!(seen, 1, "ran before the write queued before it");
        insert(&writer, 2).await.unwrap();
        assert_eq!(count(&writer).await, 2);
    }

    /// Work between groups that fails, panics, or leaves a transaction open answers its
    /// caller, and the writes after it commit alone: nothing it began is kept.
    #[tokio::test]
    async fn failed_work_between_groups_leaves_nothing_behind_and_the_writer_goes_on() {
        let (_dir, writer) = writer(STUCK_AFTER);
        insert(&writer, 1).await.unwrap();

        let failed = writer
            .between_groups(|_| -> Result<(), DbError> {
                Err(DbError::Unavailable("refused by the upkeep".to_owned()))
            })
            .await;
        assert!(matches!(failed, Err(DbError::Unavailable(_))), "{failed:?}");

        let panicked = writer
            .between_groups(|_| -> Result<(), DbError> { panic!("a bug in the upkeep") })
            .await;
        assert!(
            matches!(panicked, Err(DbError::WritePanicked)),
            "{panicked:?}"
        );

        let left_open = writer
            .between_groups(|conn| {
                conn.execute_batch("BEGIN; INSERT INTO t (x) VALUES (2);")?;
                Ok::<_, DbError>(())
            })
            .await;
        assert!(left_open.is_ok(), "{left_open:?}");

        insert(&writer, 3).await.unwrap();
        assert_eq!(
            count(&writer).await,
            2,
            "the row of the transaction left open is rolled back"
        );
        assert!(writer.health().is_ok());
    }

    #[tokio::test]
    async fn a_panicking_write_is_rolled_back_alone_and_the_writer_goes_on() {
        let (_dir, writer) = writer(STUCK_AFTER);
        insert(&writer, 1).await.unwrap();
        let panicked = writer
            .write(|conn| -> Result<(), DbError> {
                conn.execute("INSERT INTO t (x) VALUES (2)", [])?;
                panic!("a bug in one write");
            })
            .await;
        assert!(
            matches!(panicked, Err(DbError::WritePanicked)),
            "{panicked:?}"
        );
        insert(&writer, 3).await.unwrap();
        assert_eq!(
            count(&writer).await,
            2,
            "the panicking write's row is rolled back"
        );
        assert!(writer.health().is_ok());
    }

    /// A group of one write runs without a savepoint: its failure rolls back the whole
    /// transaction, and the writer goes on.
    #[tokio::test]
    async fn a_failing_write_alone_leaves_none_of_its_rows_and_the_next_writes_commit() {
        let (_dir, writer) = writer(STUCK_AFTER);
        insert(&writer, 1).await.unwrap();
        let failed = writer
            .write_alone(|conn| -> Result<(), DbError> {
                conn.execute("INSERT INTO t (x) VALUES (2)", [])?;
                conn.execute("INSERT INTO t (x) VALUES (3)", [])?;
                Err(DbError::Unavailable(
                    "refused by the write itself".to_owned(),
                ))
            })
            .await;
        assert!(matches!(failed, Err(DbError::Unavailable(_))), "{failed:?}");
        insert(&writer, 4).await.unwrap();
        assert_eq!(count(&writer).await, 2, "rows 2 and 3 are rolled back");
        assert!(writer.health().is_ok());
    }

    #[tokio::test]
    async fn a_writer_thread_that_died_is_reported_and_refuses_writes() {
        let (_dir, writer) = writer(STUCK_AFTER);
        insert(&writer, 1).await.unwrap();
        writer.crash_for_tests();
        let refused = insert(&writer, 2).await;
        assert!(
            matches!(refused, Err(DbError::WriterDown(_))),
            "{refused:?}"
        );
        assert!(matches!(writer.health(), Err(DbError::WriterDown(_))));
    }

    /// A rolled-back write can move `job_changes` back to a count the cache saw with other
    /// rows; the next change brings the count to that value again. The cache must not take
    /// the rolled-back row for the new one.
    #[tokio::test]
    async fn the_job_cache_never_serves_a_row_that_a_rollback_undid() {
        let (_dir, db) = crate::db::testing::migrated();
        let writer = Writer::start(db.writer_conn().unwrap()).unwrap();
        let set_min_size =
            |size: i64| format!("UPDATE jobs SET min_size_bytes = {size} WHERE id = 1");
        let read = |sql: Option<String>, fail: bool| {
            let jobs = writer.jobs();
            writer.write(move |conn| {
                if let Some(sql) = sql {
                    conn.execute_batch(&sql)?;
                }
                let size = jobs.get(conn, 1)?.map(|job| job.min_size_bytes);
                if fail {
                    return Err(DbError::Unavailable("undone on purpose".to_owned()));
                }
                Ok(size)
            })
        };
        let insert = crate::db::testing::INSERT_JOB.to_owned();
        assert_eq!(read(Some(insert), false).await.unwrap(), Some(1));

        let undone = read(Some(set_min_size(5)), true).await;
        let after = read(Some(set_min_size(7)), false).await.unwrap();

        assert!(matches!(undone, Err(DbError::Unavailable(_))), "{undone:?}");
        assert_eq!(after, Some(7), "the row the rollback undid was served");
        let paused = read(
            Some("UPDATE jobs SET is_active = 0 WHERE id = 1".to_owned()),
            false,
        );
        assert_eq!(paused.await.unwrap(), Some(7));
        let jobs = writer.jobs();
        let active = writer
            .write(move |conn| Ok::<_, DbError>(jobs.get(conn, 1)?.map(|job| job.is_active)))
            .await
            .unwrap();
        assert_eq!(active, Some(false), "a paused job is read as paused");
        assert_eq!(
            read(Some("DELETE FROM jobs WHERE id = 1".to_owned()), false)
                .await
                .unwrap(),
            None,
            "a deleted job is gone"
        );
    }

    /// A write whose failure makes SQLite roll the whole group transaction back (a full
    /// disk, here a full database: `max_page_count`) leaves every write of its group
    /// answered with an error and none of their rows stored; the writes after it in the
    /// group are not run, so none commits on its own while its caller hears of a failure.
    #[tokio::test]
    async fn a_write_that_rolls_its_whole_group_back_fails_every_write_of_the_group() {
        let (_dir, writer) = writer(STUCK_AFTER);
        insert(&writer, 0).await.unwrap();
        let busy = writer.write(|_| {
            std::thread::sleep(Duration::from_millis(200));
            Ok::<_, DbError>(())
        });
        let group = async {
            // Queued while the first group runs: the next group, in this order.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let fills = writer.write(|conn| -> Result<(), DbError> {
                let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
                conn.pragma_update(None, "max_page_count", pages)?;
                let full = conn.execute("INSERT INTO t (x) VALUES (zeroblob(1000000))", []);
                conn.pragma_update(None, "max_page_count", 1_073_741_823)?;
                full?;
                Ok(())
            });
            tokio::join!(insert(&writer, 1), fills, insert(&writer, 2))
        };
        let (busy, (before, full, after)) = tokio::join!(busy, group);
        busy.unwrap();
        assert!(
            matches!(full, Err(DbError::Storage(StorageFault::Full))),
            "{full:?}"
        );
        assert!(before.is_err(), "the write before it was rolled back");
        assert!(after.is_err(), "the write after it was not run");
        assert_eq!(count(&writer).await, 1, "only the row of before the group");
        insert(&writer, 3).await.unwrap();
        assert_eq!(count(&writer).await, 2);
        assert!(writer.health().is_ok());
    }

    #[tokio::test]
    async fn a_write_alone_runs_in_a_group_of_its_own_between_the_writes_around_it() {
        use std::sync::atomic::AtomicBool;
        let (_dir, writer) = writer(STUCK_AFTER);
        let busy = writer.write(|_| {
            std::thread::sleep(Duration::from_millis(200));
            Ok::<_, DbError>(())
        });
        let big_done = Arc::new(AtomicBool::new(false));
        let queued_behind = async {
            // Queued while the first group runs, in this order: before, big, after.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let done = big_done.clone();
            let before = async {
                insert(&writer, 1).await.unwrap();
                big_done.load(Ordering::Acquire)
            };
            let big = writer.write_alone(move |conn| {
                std::thread::sleep(Duration::from_millis(300));
                conn.execute("INSERT INTO t (x) VALUES (2)", [])?;
                done.store(true, Ordering::Release);
                Ok::<_, DbError>(())
            });
            let after = async {
                insert(&writer, 3).await.unwrap();
                big_done.load(Ordering::Acquire)
            };
            tokio::join!(before, big, after)
        };
        let (busy, (before, big, after)) = tokio::join!(busy, queued_behind);
        busy.unwrap();
        big.unwrap();
        assert!(
            !before,
            "the write queued before the big one does not wait for it"
        );
        assert!(after, "the write queued after the big one commits after it");
        assert_eq!(count(&writer).await, 3);
    }

    /// A tick's chunk is committed without waiting for the disk; the writes around it, a
    /// failed unsynced write's included, wait for it as the connection says.
    #[tokio::test]
    async fn an_unsynced_write_alone_commits_without_waiting_for_the_disk() {
        let (_dir, writer) = writer(STUCK_AFTER);
        let level = |conn: &Connection| -> Result<i64, DbError> {
            Ok(conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?)
        };
        let synced = writer.write(level).await.unwrap();
        let unsynced = writer
            .write_alone_unsynced(move |conn| {
                conn.execute("INSERT INTO t (x) VALUES (1)", [])?;
                level(conn)
            })
            .await
            .unwrap();
        let after = writer.write(level).await.unwrap();
        let failed = writer
            .write_alone_unsynced(|conn| -> Result<(), DbError> {
                conn.execute("INSERT INTO t (x) VALUES (2)", [])?;
                Err(DbError::Unavailable(
                    "refused by the write itself".to_owned(),
                ))
            })
            .await;
        let after_failed = writer.write_alone(level).await.unwrap();

        assert_eq!(synced, 2, "the test's connection commits with FULL");
        assert_eq!(unsynced, SYNCHRONOUS_NORMAL);
        assert_eq!((after, after_failed), (synced, synced));
        assert!(matches!(failed, Err(DbError::Unavailable(_))), "{failed:?}");
        assert_eq!(
            count(&writer).await,
            1,
            "the unsynced write's row is committed"
        );
    }

    #[tokio::test]
    async fn the_writer_counts_the_writes_handed_to_it_alone_or_not() {
        let (_dir, writer) = writer(STUCK_AFTER);
        let at_start = writer.submitted();

        insert(&writer, 1).await.unwrap();
        writer
            .write_alone(|conn| {
                conn.execute("INSERT INTO t (x) VALUES (2)", [])?;
                Ok::<_, DbError>(())
            })
            .await
            .unwrap();
        insert(&writer, 3).await.unwrap();
        writer
            .between_groups(|_| Ok::<_, DbError>(()))
            .await
            .unwrap();

        assert_eq!(at_start, 0);
        assert_eq!(
            writer.submitted(),
            3,
            "upkeep between groups counted as a write"
        );
    }

    #[tokio::test]
    async fn a_writer_stuck_in_one_transaction_is_reported() {
        let (_dir, writer) = writer(Duration::from_millis(200));
        let slow = writer.write(|_| {
            std::thread::sleep(Duration::from_millis(600));
            Ok::<_, DbError>(())
        });
        let probe = async {
            tokio::time::sleep(Duration::from_millis(400)).await;
            writer.health()
        };
        let (slow, stuck) = tokio::join!(slow, probe);
        slow.unwrap();
        assert!(matches!(stuck, Err(DbError::WriterDown(_))), "{stuck:?}");
        assert!(writer.health().is_ok(), "healthy again once the group ends");
    }
}
