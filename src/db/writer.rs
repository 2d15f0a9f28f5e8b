//! Group commit for reports: one thread owns a connection and runs every queued write of a
//! moment in ONE transaction, each inside its own savepoint, then commits once (one fsync)
//! and only then answers each caller. Concurrent reports share a commit instead of queueing
//! one transaction each; a 201 still means the row is on disk (synchronous = FULL).

use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::DbError;

/// Writes merged into one transaction at most.
const GROUP_MAX: usize = 512;
/// Writes waiting at most; past that, callers get 503 + Retry-After.
const QUEUE_MAX: usize = 8192;

/// What a queued write leaves to do once the commit has (or has not) happened.
type Finish = Box<dyn FnOnce(Option<DbError>) + Send>;

/// A queued write.
trait Job: Send {
    /// Runs inside the shared transaction; says whether it succeeded.
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish);
    /// Answers the caller without running.
    fn abandon(self: Box<Self>, error: DbError);
}

struct Pending<T, E, F> {
    f: F,
    reply: oneshot::Sender<Result<T, E>>,
    span: tracing::Span,
}

impl<T, E, F> Job for Pending<T, E, F>
where
    T: Send + 'static,
    E: From<DbError> + Send + 'static,
    F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> (bool, Finish) {
        let Pending { f, reply, span } = *self;
        let result = span.in_scope(|| f(conn));
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
}

type Work = Box<dyn Job>;

#[derive(Clone)]
pub struct Writer {
    queue: SyncSender<Work>,
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
        let (queue, work) = sync_channel::<Work>(QUEUE_MAX);
        std::thread::Builder::new()
            .name("group-commit".to_owned())
            .spawn(move || run(conn, work))?;
        Ok(Self { queue })
    }

    /// Runs `f` in the next group transaction and answers once it is committed. An error
    /// from `f` rolls back only `f`'s own changes.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
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
        });
        match self.queue.try_send(work) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(DbError::Busy.into()),
            Err(TrySendError::Disconnected(_)) => {
                return Err(DbError::Unavailable("the writer thread has stopped".to_owned()).into())
            }
        }
        answer.await.map_err(|_| {
            E::from(DbError::Unavailable(
                "the writer thread dropped a write".to_owned(),
            ))
        })?
    }
}

fn run(mut conn: impl std::ops::DerefMut<Target = Connection>, work: Receiver<Work>) {
    while let Ok(first) = work.recv() {
        let mut group = vec![first];
        while group.len() < GROUP_MAX {
            match work.try_recv() {
                Ok(more) => group.push(more),
                Err(_) => break,
            }
        }
        commit_group(&mut conn, group);
    }
}

fn commit_group(conn: &mut Connection, group: Vec<Work>) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::warn!(error = %e, "cannot begin a group transaction");
            for work in group {
                // Answer without running: the caller may retry (503).
                work.abandon(DbError::Busy);
            }
            return;
        }
    };
    let mut finishes = Vec::with_capacity(group.len());
    for work in group {
        if let Err(e) = tx.execute_batch("SAVEPOINT item") {
            tracing::error!(error = %e, "cannot open a savepoint");
            work.abandon(DbError::Busy);
            continue;
        }
        let (ok, finish) = work.run(&tx);
        let closed = if ok {
            tx.execute_batch("RELEASE item")
        } else {
            tx.execute_batch("ROLLBACK TO item; RELEASE item")
        };
        if let Err(e) = closed {
            tracing::error!(error = %e, "cannot close a savepoint");
        }
        finishes.push((ok, finish));
    }
    match tx.commit() {
        Ok(()) => {
            for (_, finish) in finishes {
                finish(None);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "group commit failed");
            let busy = DbError::is_busy(&e);
            for (_, finish) in finishes {
                finish(Some(if busy {
                    DbError::Busy
                } else {
                    DbError::Unavailable(format!("group commit failed: {e}"))
                }));
            }
        }
    }
}
