-- The scheduler's progress per job, and the alert outbox.

-- The due time of the last slot the scheduler has evaluated for this job (microseconds).
ALTER TABLE jobs ADD COLUMN evaluated_until_us INTEGER NOT NULL DEFAULT 0;

-- Alerts waiting to be delivered, or delivered. One per (job, kind, slot).
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('late', 'failed', 'recovered')),
    slot_us INTEGER NOT NULL,
    -- The entry that caused it: the `missing`, `failed` or `success` entry.
    entry_id INTEGER REFERENCES entries (id) ON DELETE SET NULL,
    created_at_us INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- When delivery may next be tried; moved forward while a sender holds it (a lease)
    -- and after a failure (backoff).
    next_attempt_us INTEGER NOT NULL,
    sent_at_us INTEGER,
    last_error TEXT,
    UNIQUE (job_id, kind, slot_us)
);
CREATE INDEX alerts_undelivered ON alerts (next_attempt_us) WHERE sent_at_us IS NULL;
CREATE INDEX alerts_job ON alerts (job_id, id);
