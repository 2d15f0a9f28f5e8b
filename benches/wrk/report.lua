-- POST /api/v1/entries/: one report per request, never an idempotent repeat. The job id
-- cycles over BENCH_JOBS jobs (ids 1..N). Timestamps start a day before the script loads and
-- advance a millisecond per request, so they land at the recent end of each job's history as
-- real reports do; the hash carries BENCH_RUN (a warm-up and the measured run differ) and
-- the thread and request numbers, so no two requests are the same report.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")
authorize()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local jobs = tonumber(os.getenv("BENCH_JOBS") or "1000")
local run = tonumber(os.getenv("BENCH_RUN") or "0")
local base = os.time() - 86400
local counter = 0

function request()
   counter = counter + 1
   local n = counter * 64 + id
   local ms = n % 1000
   local body = string.format(
      '{"expected_job_id":%d,"status":"success","backup_timestamp_utc":"%s.%03dZ",' ..
      '"backup_hash":"sha256:%s%08x%08x%08x","backup_size_bytes":%d}',
      n % jobs + 1, os.date("!%Y-%m-%dT%H:%M:%S", base + (n - ms) / 1000), ms,
      string.rep("f", 40), run, id, counter, 734003200 + n)
   return wrk.format(nil, nil, nil, body)
end
