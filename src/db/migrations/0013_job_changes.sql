-- A counter that moves with every change of a job's own fields (those `db::jobs::COLUMNS`
-- reads): the group-commit writer keeps the job rows it has read (`db::jobs::JobCache`) for
-- as long as it stands still. The scheduler's bookkeeping (`next_due_us`,
-- `evaluated_until_us`, `schedule_anchor_us`) is not a job's field and does not move it.
-- A migration that rebuilds `jobs` must create these triggers again (a test checks).
CREATE TABLE job_changes (n INTEGER NOT NULL);
INSERT INTO job_changes (n) VALUES (0);
CREATE TRIGGER jobs_changed_by_insert AFTER INSERT ON jobs BEGIN
    UPDATE job_changes SET n = n + 1;
END;
CREATE TRIGGER jobs_changed_by_delete AFTER DELETE ON jobs BEGIN
    UPDATE job_changes SET n = n + 1;
END;
CREATE TRIGGER jobs_changed_by_update AFTER UPDATE OF
    database_name, agent_id_responsible, company_name, city, expected_hour_utc, expected_minute_utc, backup_frequency, final_storage_path_template, expected_weekday, expected_day_of_month, grace_minutes, is_active, notify_emails, created_at_us, updated_at_us, schedule, timezone, max_duration_minutes, min_size_bytes, size_drop_percent, stale_hash_check, ping_key, snoozed_until_us, snooze_reason, repeat_every_minutes
    ON jobs BEGIN
    UPDATE job_changes SET n = n + 1;
END;
