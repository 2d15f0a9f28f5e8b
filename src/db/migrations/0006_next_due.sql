-- When each job next needs the scheduler: the due time of its next unevaluated slot. A tick
-- reads only the active jobs whose time has come (0: evaluate at the next tick).
ALTER TABLE jobs ADD COLUMN next_due_us INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_next_due ON jobs (next_due_us) WHERE is_active = 1;
