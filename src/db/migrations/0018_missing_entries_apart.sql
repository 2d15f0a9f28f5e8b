-- The `missing` entries in an index of their own. Every late job's `missing` entry was
-- inserted into `entries_identical`, keyed by job first: one leaf of each job's part of the
-- file read and rewritten per entry, 50,000 leaves for an all-due tick over 100,000 jobs
-- (its inserts were 30 % of the tick's writer, and most of its WAL). `entries_identical` now
-- holds every entry but the `missing` ones (a partial index), and `entries_missing` the
-- `missing` ones, with the same key: a job's entries are still unique on (time, status,
-- hash), since the two never share a status. `entries_missing` is a small part of the
-- entries, so the tick's inserts go to few leaves, most of them in the cache.
--
-- A query that reads `entries_identical` names it and carries the literal term
-- `status <> 'missing'` (SQLite uses a partial index only for a query whose WHERE implies
-- its own); one that needs a job's `missing` entries too reads both, merged by time (see
-- `db::entries::JOB_ENTRIES`).
DROP INDEX entries_identical;
CREATE UNIQUE INDEX entries_identical ON entries (job_id, backup_timestamp_us, status, ifnull(backup_hash, ''))
    WHERE status <> 'missing';
CREATE UNIQUE INDEX entries_missing ON entries (job_id, backup_timestamp_us, status, ifnull(backup_hash, ''))
    WHERE status = 'missing';

-- A job's newest entry of a status, recomputed from the index that holds that status.
DROP TRIGGER entries_newest_deleted;
CREATE TRIGGER entries_newest_deleted AFTER DELETE ON entries
WHEN OLD.status <> 'missing' AND OLD.backup_timestamp_us >= (
    SELECT last_us FROM entry_counts WHERE job_id = OLD.job_id AND status = OLD.status
)
BEGIN
    UPDATE entry_counts SET last_us = (
        SELECT max(backup_timestamp_us) FROM entries INDEXED BY entries_identical
        WHERE job_id = OLD.job_id AND status = OLD.status AND status <> 'missing'
    ) WHERE job_id = OLD.job_id AND status = OLD.status;
END;
CREATE TRIGGER entries_newest_missing_deleted AFTER DELETE ON entries
WHEN OLD.status = 'missing' AND OLD.backup_timestamp_us >= (
    SELECT last_us FROM entry_counts WHERE job_id = OLD.job_id AND status = 'missing'
)
BEGIN
    UPDATE entry_counts SET last_us = (
        SELECT max(backup_timestamp_us) FROM entries INDEXED BY entries_missing
        WHERE job_id = OLD.job_id AND status = 'missing'
    ) WHERE job_id = OLD.job_id AND status = 'missing';
END;

-- The entries' job, kept by triggers instead of a foreign key. SQLite looks a deleted job's
-- entries up for the key's `ON DELETE CASCADE` with no term on the status, so it can use
-- neither partial index: deleting a job would read the whole table (10,000,000 rows) while
-- every report waited. The triggers do what the key did: an entry of no job is refused with
-- the key's own message, and a job's entries go with it, each index read for its own.
-- The key's clause is taken out of the table's definition in place, as migration 0017 did
-- for its `CHECK`s (how a row is stored does not change).
PRAGMA writable_schema = ON;

UPDATE sqlite_schema SET sql = replace(sql,
    'job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,',
    'job_id INTEGER NOT NULL,')
WHERE type = 'table' AND name = 'entries';

PRAGMA writable_schema = RESET;

-- The definition had the clause as migration 0008 wrote it: stop here if it is still there.
CREATE TEMP TABLE key_removed (removed CHECK (removed));
INSERT INTO key_removed SELECT sql NOT LIKE '%REFERENCES%' FROM sqlite_schema
WHERE type = 'table' AND name = 'entries';
DROP TABLE key_removed;

CREATE TABLE schema_moved (x);
DROP TABLE schema_moved;

CREATE TRIGGER entries_of_a_job BEFORE INSERT ON entries
WHEN NOT EXISTS (SELECT 1 FROM jobs WHERE id = NEW.job_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;

CREATE TRIGGER entries_moved_to_a_job BEFORE UPDATE OF job_id ON entries
WHEN NOT EXISTS (SELECT 1 FROM jobs WHERE id = NEW.job_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed');
END;

CREATE TRIGGER jobs_entries_deleted AFTER DELETE ON jobs BEGIN
    DELETE FROM entries WHERE job_id = OLD.id AND status <> 'missing';
    DELETE FROM entries WHERE job_id = OLD.id AND status = 'missing';
END;
