-- Each job's newest entry of each status, kept beside its count by the same triggers:
-- `entry_counts.last_us`, the largest `backup_timestamp_us` of the job's entries of that
-- status (NULL when it has none). Whether a job was reported in a slot's window, or an agent
-- heard from since some instant, is then known from this one small row in the common cases
-- (the newest report before the window, or in it) instead of a seek into the job's part of
-- `entries_identical`: the all-due tick asked that 150,000 times over 100,000 jobs, each a
-- leaf read from the OS (`db::status::reported_in`, `db::status::agent_heard_since`).
-- Exact, not a hint: an insert raises it, a delete of the newest entry of its status
-- recomputes it from the index (rare: retention keeps each job's latest success and
-- failure, and deletes old entries).
ALTER TABLE entry_counts ADD COLUMN last_us INTEGER;

UPDATE entry_counts SET last_us = (
    SELECT max(backup_timestamp_us) FROM entries INDEXED BY entries_identical
    WHERE entries.job_id = entry_counts.job_id AND entries.status = entry_counts.status
);

DROP TRIGGER entries_counted;
CREATE TRIGGER entries_counted AFTER INSERT ON entries BEGIN
    INSERT INTO entry_counts (job_id, status, n, last_us)
    VALUES (NEW.job_id, NEW.status, 1, NEW.backup_timestamp_us)
    ON CONFLICT (job_id, status) DO UPDATE SET n = n + 1,
        last_us = CASE WHEN last_us >= excluded.last_us THEN last_us ELSE excluded.last_us END;
END;

CREATE TRIGGER entries_newest_deleted AFTER DELETE ON entries
WHEN OLD.backup_timestamp_us >= (
    SELECT last_us FROM entry_counts WHERE job_id = OLD.job_id AND status = OLD.status
)
BEGIN
    UPDATE entry_counts SET last_us = (
        SELECT max(backup_timestamp_us) FROM entries INDEXED BY entries_identical
        WHERE job_id = OLD.job_id AND status = OLD.status
    ) WHERE job_id = OLD.job_id AND status = OLD.status;
END;
