-- DESIGN §10: runs (a `started` entry, finished by the next report), content checks (a
-- success's `suspect_reason`), and alerts that belong to an agent rather than a job.
-- The entries and alerts tables are rebuilt (SQLite cannot change a CHECK constraint); the
-- migration runner turns foreign keys off around it, so nothing cascades.

-- A job's content-check and run settings.
ALTER TABLE jobs ADD COLUMN max_duration_minutes INTEGER NULL
    CHECK (max_duration_minutes IS NULL OR max_duration_minutes BETWEEN 1 AND 10080);
ALTER TABLE jobs ADD COLUMN min_size_bytes INTEGER NOT NULL DEFAULT 1 CHECK (min_size_bytes >= 0);
ALTER TABLE jobs ADD COLUMN size_drop_percent INTEGER NULL DEFAULT 50
    CHECK (size_drop_percent IS NULL OR size_drop_percent BETWEEN 1 AND 99);
ALTER TABLE jobs ADD COLUMN stale_hash_check INTEGER NOT NULL DEFAULT 1 CHECK (stale_hash_check IN (0, 1));

CREATE TABLE entries_v8 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    -- `log`: a ping's body kept as a log of the job (DESIGN §12); it says nothing of state.
    status TEXT NOT NULL CHECK (status IN ('success', 'failed', 'missing', 'started', 'log')),
    backup_timestamp_us INTEGER NOT NULL,
    backup_hash TEXT,
    backup_size_bytes INTEGER CHECK (backup_size_bytes IS NULL OR backup_size_bytes >= 0),
    error_message TEXT,
    created_at_us INTEGER NOT NULL,
    -- The run this report belongs to, as the agent named it (at most 64 characters).
    run_id TEXT,
    -- On a `success` or `failed` that finished a run: seconds since its `started` entry.
    duration_seconds INTEGER,
    -- On a `started` entry: when a report finished it (NULL while the run is open).
    finished_at_us INTEGER,
    -- On a `success` that failed a content check: why, in words.
    suspect_reason TEXT,
    -- What a ping's body said (its last 4096 characters), when it was not an error message.
    log TEXT
);
INSERT INTO entries_v8 (id, job_id, status, backup_timestamp_us, backup_hash,
    backup_size_bytes, error_message, created_at_us)
SELECT id, job_id, status, backup_timestamp_us, backup_hash, backup_size_bytes,
    error_message, created_at_us FROM entries;
DROP TABLE entries;
ALTER TABLE entries_v8 RENAME TO entries;
CREATE INDEX entries_job_time ON entries (job_id, backup_timestamp_us);
CREATE INDEX entries_time ON entries (backup_timestamp_us);
CREATE INDEX entries_status_time ON entries (status, backup_timestamp_us);
CREATE UNIQUE INDEX entries_identical ON entries (job_id, backup_timestamp_us, status, ifnull(backup_hash, ''));
-- The runs still open, for the scheduler's `hung` check and the status's `running_since`.
CREATE INDEX entries_open_runs ON entries (job_id, backup_timestamp_us)
    WHERE status = 'started' AND finished_at_us IS NULL;

CREATE TRIGGER entries_counted AFTER INSERT ON entries BEGIN
    INSERT INTO entry_counts (job_id, status, n) VALUES (NEW.job_id, NEW.status, 1)
    ON CONFLICT (job_id, status) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER entries_uncounted AFTER DELETE ON entries BEGIN
    UPDATE entry_counts SET n = n - 1 WHERE job_id = OLD.job_id AND status = OLD.status;
END;

CREATE TABLE alerts_v8 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The job, or NULL for an alert about an agent (`agent_silent`, `agent_back`).
    job_id INTEGER NULL REFERENCES jobs (id) ON DELETE CASCADE,
    -- The agent of an `agent_silent` or `agent_back` alert.
    agent_id TEXT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('late', 'failed', 'suspect', 'hung', 'recovered',
        'agent_silent', 'agent_back', 'reminder')),
    slot_us INTEGER NOT NULL,
    entry_id INTEGER REFERENCES entries (id) ON DELETE SET NULL,
    created_at_us INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_us INTEGER NOT NULL,
    sent_at_us INTEGER,
    last_error TEXT,
    CHECK ((job_id IS NULL) = (agent_id IS NOT NULL))
);
INSERT INTO alerts_v8 (id, job_id, kind, slot_us, entry_id, created_at_us, attempts,
    next_attempt_us, sent_at_us, last_error)
SELECT id, job_id, kind, slot_us, entry_id, created_at_us, attempts, next_attempt_us,
    sent_at_us, last_error FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_v8 RENAME TO alerts;
-- One alert per (job or agent, kind, slot).
CREATE UNIQUE INDEX alerts_once ON alerts (ifnull(job_id, 0), ifnull(agent_id, ''), kind, slot_us);
CREATE INDEX alerts_undelivered ON alerts (next_attempt_us) WHERE sent_at_us IS NULL;
CREATE INDEX alerts_job ON alerts (job_id, id);
CREATE INDEX alerts_agent ON alerts (agent_id, id) WHERE agent_id IS NOT NULL;

-- The jobs (and their late slots) an agent alert speaks for: those it named when it was
-- queued and those folded into it while it was open.
CREATE TABLE alert_jobs (
    alert_id INTEGER NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    slot_us INTEGER NOT NULL,
    entry_id INTEGER REFERENCES entries (id) ON DELETE SET NULL,
    PRIMARY KEY (alert_id, job_id, slot_us)
) WITHOUT ROWID;
CREATE INDEX alert_jobs_job ON alert_jobs (job_id);
