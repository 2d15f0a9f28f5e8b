-- `entries_job_time` (job_id, backup_timestamp_us) is a prefix of `entries_identical`
-- (job_id, backup_timestamp_us, status, hash): the job's entries in time order twice, in
-- two indexes keyed by job first, so every report and every `missing` entry dirtied a leaf
-- of each in its job's part of the file. One of them is enough: the queries by job read
-- `entries_identical` (named in their SQL, with a plan test each), which also answers their
-- status without reading the rows. Ties on a timestamp, ordered by id, are sorted in the
-- few rows that share it.
DROP INDEX IF EXISTS entries_job_time;
