-- DESIGN §11: a job may be scheduled by a 5-field cron expression read on the wall clock of
-- an IANA time zone. NULL keeps the seed's fields (frequency, hour, minute in UTC).
ALTER TABLE jobs ADD COLUMN schedule TEXT NULL;
ALTER TABLE jobs ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';
