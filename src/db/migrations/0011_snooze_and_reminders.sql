-- DESIGN §13: snooze (a job's alerts are recorded but not sent until a time, e.g. during
-- maintenance) and reminders (a `reminder` alert every N minutes while a job stays bad).
ALTER TABLE jobs ADD COLUMN snoozed_until_us INTEGER NULL;
ALTER TABLE jobs ADD COLUMN snooze_reason TEXT NULL;
ALTER TABLE jobs ADD COLUMN repeat_every_minutes INTEGER NULL
    CHECK (repeat_every_minutes IS NULL OR repeat_every_minutes BETWEEN 1 AND 10080);
CREATE INDEX jobs_repeating ON jobs (id) WHERE repeat_every_minutes IS NOT NULL;
-- An alert queued while its job (or, for an agent alert, every job of the agent) was
-- snoozed: kept in the outbox, never sent.
ALTER TABLE alerts ADD COLUMN suppressed INTEGER NOT NULL DEFAULT 0 CHECK (suppressed IN (0, 1));
