-- A version of each job's entries of each status, kept beside its count by the same
-- triggers: `entry_counts.version` moves with every insert and every delete of such an entry
-- (an insert and a delete together leave the count as it was, never the version). The
-- group-commit writer remembers each job's latest successes, which every report of a success
-- compares its size and hash with (`db::jobs::JobCache::previous_successes`): reading them
-- again was a walk of ten rows per report, 14 % of the writer's time at 1,000,000 entries.
-- It trusts what it remembers only while the version it read with them is the version now,
-- whichever connection or process inserted or deleted a success since.
ALTER TABLE entry_counts ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

-- Any start will do (only a change is looked at): the count is one that needs no history.
UPDATE entry_counts SET version = n;

DROP TRIGGER entries_counted;
CREATE TRIGGER entries_counted AFTER INSERT ON entries BEGIN
    INSERT INTO entry_counts (job_id, status, n, last_us, version)
    VALUES (NEW.job_id, NEW.status, 1, NEW.backup_timestamp_us, 1)
    ON CONFLICT (job_id, status) DO UPDATE SET n = n + 1, version = version + 1,
        last_us = CASE WHEN last_us >= excluded.last_us THEN last_us ELSE excluded.last_us END;
END;

DROP TRIGGER entries_uncounted;
CREATE TRIGGER entries_uncounted AFTER DELETE ON entries BEGIN
    UPDATE entry_counts SET n = n - 1, version = version + 1
    WHERE job_id = OLD.job_id AND status = OLD.status;
END;
