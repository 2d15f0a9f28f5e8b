-- DESIGN §14, retention: deleting an entry looks for the alerts that point at it (the
-- foreign key's ON DELETE SET NULL); without this index each delete would read every alert.
-- (Numbered 0009: 0008 is the runs and content checks' migration, which rebuilds `alerts`.)
CREATE INDEX IF NOT EXISTS alerts_entry ON alerts (entry_id);
-- alert_jobs (0008) points at entries too: the same reason.
CREATE INDEX IF NOT EXISTS alert_jobs_entry ON alert_jobs (entry_id);
