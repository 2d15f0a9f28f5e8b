-- An entry's insert without a statement journal. SQLite copies every page a statement
-- changes into a statement journal first, so as to undo that statement alone, when the
-- statement writes more than one table (an entry's insert runs the counter trigger) and one
-- of its steps may abort half-way: a constraint whose action is ABORT (the default of
-- `NOT NULL` and `CHECK`, and always that of an upsert's `DO UPDATE`), a trigger's
-- `RAISE(ABORT)`, an immediate foreign key. The tick's 50,000 inserts of `missing` entries
-- spent 9-16 % of its writer there.
--
-- Nothing of an insert can be left half-done without it. `db::entries::insert` says
-- `INSERT OR FAIL`, which its triggers' statements follow, and each step of it that can
-- fail comes before its first change: the job's trigger below, then the row's `NOT NULL`
-- and `CHECK`s. The counter trigger's upsert writes only values those checks have passed
-- and counts that never become NULL. Should the disk fail or fill up mid-statement, SQLite
-- rolls the whole transaction back, and the writer then answers every write of the group
-- with an error (`db::writer::commit_group`).

-- The job's check stops the statement before it changes anything: `FAIL` there is `ABORT`
-- without the journal.
DROP TRIGGER entries_of_a_job;
CREATE TRIGGER entries_of_a_job BEFORE INSERT ON entries
WHEN NOT EXISTS (SELECT 1 FROM jobs WHERE id = NEW.job_id)
BEGIN
    SELECT RAISE(FAIL, 'FOREIGN KEY constraint failed');
END;

DROP TRIGGER entries_moved_to_a_job;
CREATE TRIGGER entries_moved_to_a_job BEFORE UPDATE OF job_id ON entries
WHEN NOT EXISTS (SELECT 1 FROM jobs WHERE id = NEW.job_id)
BEGIN
    SELECT RAISE(FAIL, 'FOREIGN KEY constraint failed');
END;

-- The counters: their job kept as the entries' is since migration 0018 (the counter
-- trigger's insert checked the key against `jobs`: an immediate foreign key; the entry it
-- counts has just passed the same check), and no `NOT NULL` on the two counts the upsert
-- updates (an upsert's `DO UPDATE` checks those with ABORT whatever the statement says;
-- they are `n + 1` and `version + 1` of counts that start at 1). Taken out of the table's
-- definition in place, as migrations 0017 and 0018 did (how a row is stored does not
-- change).
PRAGMA writable_schema = ON;

UPDATE sqlite_schema SET sql = replace(replace(replace(sql,
    'job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,',
    'job_id INTEGER NOT NULL,'),
    'n INTEGER NOT NULL,', 'n INTEGER,'),
    'version INTEGER NOT NULL DEFAULT 0', 'version INTEGER DEFAULT 0')
WHERE type = 'table' AND name = 'entry_counts';

PRAGMA writable_schema = RESET;

-- The definition had the clauses as migrations 0005 and 0016 wrote them: stop here if one
-- is still there.
CREATE TEMP TABLE counts_checks_removed (removed CHECK (removed));
INSERT INTO counts_checks_removed
SELECT sql NOT LIKE '%REFERENCES%' AND sql NOT LIKE '%n INTEGER NOT NULL%' FROM sqlite_schema
WHERE type = 'table' AND name = 'entry_counts';
DROP TABLE counts_checks_removed;

-- The other connections read the schema again.
CREATE TABLE schema_moved (x);
DROP TABLE schema_moved;

-- A job's counters go with it, as its entries do.
DROP TRIGGER jobs_entries_deleted;
CREATE TRIGGER jobs_entries_deleted AFTER DELETE ON jobs BEGIN
    DELETE FROM entries WHERE job_id = OLD.id AND status <> 'missing';
    DELETE FROM entries WHERE job_id = OLD.id AND status = 'missing';
    DELETE FROM entry_counts WHERE job_id = OLD.id;
END;
