-- Expected backup jobs and the entries reported for them.
-- Instants are whole microseconds since the Unix epoch (UTC).
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    database_name TEXT NOT NULL,
    agent_id_responsible TEXT NOT NULL,
    company_name TEXT NOT NULL,
    city TEXT NOT NULL,
    expected_hour_utc INTEGER NOT NULL CHECK (expected_hour_utc BETWEEN 0 AND 23),
    expected_minute_utc INTEGER NOT NULL CHECK (expected_minute_utc BETWEEN 0 AND 59),
    backup_frequency TEXT NOT NULL CHECK (backup_frequency IN ('hourly', 'daily', 'weekly', 'monthly')),
    final_storage_path_template TEXT NOT NULL,
    expected_weekday INTEGER NOT NULL DEFAULT 0 CHECK (expected_weekday BETWEEN 0 AND 6),
    expected_day_of_month INTEGER NOT NULL DEFAULT 1 CHECK (expected_day_of_month BETWEEN 1 AND 31),
    grace_minutes INTEGER NOT NULL CHECK (grace_minutes BETWEEN 1 AND 1440),
    is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    notify_emails TEXT NOT NULL DEFAULT '[]',
    -- Lateness is counted for slots due after this instant: creation, the last
    -- re-activation or the last change of schedule.
    schedule_anchor_us INTEGER NOT NULL,
    created_at_us INTEGER NOT NULL,
    updated_at_us INTEGER NOT NULL
);
CREATE INDEX jobs_company_name ON jobs (company_name);
CREATE INDEX jobs_city ON jobs (city);
CREATE INDEX jobs_agent ON jobs (agent_id_responsible);
CREATE INDEX jobs_active ON jobs (is_active);

CREATE TABLE entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('success', 'failed', 'missing')),
    backup_timestamp_us INTEGER NOT NULL,
    backup_hash TEXT,
    backup_size_bytes INTEGER CHECK (backup_size_bytes IS NULL OR backup_size_bytes >= 0),
    error_message TEXT,
    created_at_us INTEGER NOT NULL
);
-- A job's entries in a time window, and its listing newest first (the rowid breaks ties).
CREATE INDEX entries_job_time ON entries (job_id, backup_timestamp_us);
-- The global listing, newest first, with or without a status filter.
CREATE INDEX entries_time ON entries (backup_timestamp_us);
CREATE INDEX entries_status_time ON entries (status, backup_timestamp_us);
-- An identical repeated report is the same entry; this also allows one `missing` per slot.
CREATE UNIQUE INDEX entries_identical ON entries (job_id, backup_timestamp_us, status, ifnull(backup_hash, ''));
