-- Entry counts per job and status, kept by triggers, so that a listing's X-Total-Count
-- does not scan a million rows.
CREATE TABLE entry_counts (
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    status TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (job_id, status)
) WITHOUT ROWID;

INSERT INTO entry_counts (job_id, status, n)
SELECT job_id, status, count(*) FROM entries GROUP BY job_id, status;

CREATE TRIGGER entries_counted AFTER INSERT ON entries BEGIN
    INSERT INTO entry_counts (job_id, status, n) VALUES (NEW.job_id, NEW.status, 1)
    ON CONFLICT (job_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER entries_uncounted AFTER DELETE ON entries BEGIN
    UPDATE entry_counts SET n = n - 1 WHERE job_id = OLD.job_id AND status = OLD.status;
END;
