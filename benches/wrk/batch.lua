-- POST /api/v1/entries/batch: BENCH_BATCH_ROWS reports per request (default 1000, the
-- maximum), each unique, over BENCH_JOBS jobs.
dofile(debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "common.lua")
authorize()
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

local jobs = tonumber(os.getenv("BENCH_JOBS") or "1000")
local rows = tonumber(os.getenv("BENCH_BATCH_ROWS") or "1000")
-- 2020-01-01T00:00:00Z: clear of the single reports' timestamps (from a day ago), and in
-- the past: a report dated beyond the allowed clock skew is refused (DESIGN §9).
local base = 1577836800
local counter = 0

function request()
   counter = counter + 1
   local items = {}
   for r = 1, rows do
      local n = (counter * rows + r) * 64 + id
      items[r] = string.format(
         '{"expected_job_id":%d,"status":"success","backup_timestamp_utc":"%s",' ..
         '"backup_hash":"sha256:%s%08x%08x%08x","backup_size_bytes":%d}',
         n % jobs + 1, os.date("!%Y-%m-%dT%H:%M:%SZ", base + n),
         string.rep("e", 40), id, counter, r, 734003200 + r)
   end
   return wrk.format(nil, nil, nil, "[" .. table.concat(items, ",") .. "]")
end
