//! A consistent copy of a database that may be in use, through SQLite's online backup API.
//!
//! The copy is taken from one snapshot: the source connection holds a read transaction for
//! the whole copy, so the pages copied in one step and the next belong to the same state of
//! the database. In WAL mode a reader blocks no writer: the service goes on storing reports
//! meanwhile (they are not in the copy), and its checkpoints cannot pass the snapshot until
//! the copy ends, so the `-wal` file may grow for that long. Without the held snapshot,
//! every commit of the service would restart the copy from its first page.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

/// What a finished copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub pages: i64,
    pub page_size: i64,
    /// The schema version (`PRAGMA user_version`) of the copy, i.e. of the source.
    pub schema_version: i64,
}

/// How long a step may keep finding the source or the copy locked before the copy fails.
const LOCKED_FOR_AT_MOST: Duration = Duration::from_secs(30);

/// Copies the database at `source` into `target`, an empty file that the caller created
/// (the copy keeps its permissions), `pages_per_step` pages at a time; after each step it
/// flushes the copy to disk and pauses as long as the step and the flush took (at least a
/// millisecond), so a copy never takes more than half of the disk and a core from the
/// service. Then the copy is switched to a
/// rollback journal (one self-contained file, no `-wal` beside it) and must pass SQLite's
/// integrity check.
pub fn copy(source: &Path, target: &Path, pages_per_step: i32) -> anyhow::Result<Copied> {
    anyhow::ensure!(
        source.is_file(),
        "database {} does not exist",
        source.display()
    );
    let src = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open database {}", source.display()))?;
    src.busy_timeout(super::BUSY_TIMEOUT)?;
    // The snapshot: a read transaction, begun by a read, held until the copy is done.
    src.execute_batch("BEGIN")?;
    let version: i64 = src
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .with_context(|| format!("cannot read database {}", source.display()))?;
    anyhow::ensure!(
        version > 0,
        "{} is not a backup-monitor database (it has no schema version): check --database",
        source.display()
    );
    let mut dst = Connection::open(target)
        .with_context(|| format!("cannot open the copy {}", target.display()))?;
    // The copy's pages go to disk step by step: a few hundred megabytes left to the end would
    // be flushed all at once, and the service's own fsyncs (ext4 commits its journal for
    // every file) would wait behind them.
    let flushed = std::fs::File::open(target)
        .with_context(|| format!("cannot open the copy {}", target.display()))?;
    {
        let backup = Backup::new(&src, &mut dst).context("cannot start the copy")?;
        let mut locked_since: Option<Instant> = None;
        loop {
            let started = Instant::now();
            match backup.step(pages_per_step).context("the copy failed")? {
                StepResult::Done => break,
                StepResult::More => locked_since = None,
                // Only while a write is being committed to the source through another
                // connection opening its WAL: try again shortly.
                _ => {
                    let since = *locked_since.get_or_insert(started);
                    anyhow::ensure!(
                        since.elapsed() < LOCKED_FOR_AT_MOST,
                        "the copy failed: the database stayed locked for {} s",
                        LOCKED_FOR_AT_MOST.as_secs()
                    );
                }
            }
            flushed
                .sync_data()
                .with_context(|| format!("cannot write the copy {}", target.display()))?;
            std::thread::sleep(started.elapsed().max(Duration::from_millis(1)));
        }
    }
    src.execute_batch("COMMIT")?;
    drop(src);
    let mode: String = dst.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))?;
    anyhow::ensure!(
        mode == "delete",
        "cannot take the copy out of WAL mode (journal mode {mode})"
    );
    let problems: Vec<String> = {
        let mut stmt = dst.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    anyhow::ensure!(
        problems == ["ok"],
        "the copy failed SQLite's integrity check: {}",
        problems
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    );
    let copied = Copied {
        pages: dst.query_row("PRAGMA page_count", [], |r| r.get(0))?,
        page_size: dst.query_row("PRAGMA page_size", [], |r| r.get(0))?,
        schema_version: dst.query_row("PRAGMA user_version", [], |r| r.get(0))?,
    };
    dst.close()
        .map_err(|(_, e)| e)
        .context("cannot close the copy")?;
    Ok(copied)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn database(dir: &Path, rows: i64) -> std::path::PathBuf {
        let path = dir.join("source.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA user_version = 3;
             CREATE TABLE t (x INTEGER, pad TEXT);",
        )
        .unwrap();
        for x in 0..rows {
            conn.execute("INSERT INTO t VALUES (?1, printf('%.500c', 'x'))", [x])
                .unwrap();
        }
        path
    }

    fn count(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_copy_taken_while_another_connection_writes_is_the_snapshot_it_began_with() {
        let dir = tempfile::tempdir().unwrap();
        let source = database(dir.path(), 2000);
        let target = dir.path().join("copy.db");
        std::fs::File::create(&target).unwrap();
        // A writer commits row after row for as long as the copy runs (one page a step).
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writing = {
            let (source, stop) = (source.clone(), stop.clone());
            std::thread::spawn(move || {
                let conn = Connection::open(&source).unwrap();
                conn.busy_timeout(Duration::from_secs(5)).unwrap();
                let mut written = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    conn.execute("INSERT INTO t VALUES (-1, 'late')", [])
                        .unwrap();
                    written += 1;
                }
                written
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        let (done, copied) = std::sync::mpsc::channel();
        {
            let (source, target) = (source.clone(), target.clone());
            std::thread::spawn(move || done.send(copy(&source, &target, 1)));
        }
        let copied = copied
            .recv_timeout(Duration::from_secs(60))
            .expect("the copy never ends: is every commit restarting it?")
            .unwrap();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let written = writing.join().unwrap();
        assert!(written > 0, "the writer was never blocked out");
        let in_copy = count(&target);
        assert!(
            (2000..2000 + written).contains(&in_copy),
            "the copy holds {in_copy} rows: a snapshot between the 2000 first and the {} last",
            2000 + written
        );
        assert_eq!(copied.schema_version, 3);
        assert!(copied.pages > 100, "{copied:?}");
        let mode: String = Connection::open(&target)
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete", "one self-contained file");
    }

    #[test]
    fn a_file_that_is_not_a_backup_monitor_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("copy.db");
        let text = dir.path().join("notes.txt");
        std::fs::write(&text, "not a database at all, just some text").unwrap();
        let empty = dir.path().join("empty.db");
        Connection::open(&empty)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        for (source, expected) in [
            (dir.path().join("nothing.db"), "does not exist"),
            (text, "cannot read database"),
            (empty, "not a backup-monitor database"),
        ] {
            let err = format!("{:#}", copy(&source, &target, 100).unwrap_err());
            assert!(err.contains(expected), "{}: {err}", source.display());
        }
    }
}
