-- DESIGN §12: every job has a secret ping key (128 random bits, hex: URL-safe), the
-- credential of its healthchecks-compatible ping URL. Existing jobs get one here.
ALTER TABLE jobs ADD COLUMN ping_key TEXT NULL;
UPDATE jobs SET ping_key = lower(hex(randomblob(16))) WHERE ping_key IS NULL;
CREATE UNIQUE INDEX jobs_ping_key ON jobs (ping_key);
