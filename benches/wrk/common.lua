-- Shared by the wrk scripts of benches/run.sh: prints one machine-readable line at the end.
--   wrk-result requests=… duration_us=… rps=… p50_us=… p99_us=… max_us=… status_errors=… socket_errors=…
-- `rps` is responses per second; status_errors counts answers outside 2xx/3xx.

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "wrk-result requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d max_us=%d status_errors=%d socket_errors=%d\n",
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), latency.max,
      e.status, e.connect + e.read + e.write + e.timeout))
end

-- The bearer token, from BENCH_TOKEN (none when empty, e.g. for /healthz).
function authorize()
   local token = os.getenv("BENCH_TOKEN")
   if token and token ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. token
   end
end

-- Each thread gets a distinct id (set in the thread's own Lua state), so that request
-- numbers `counter * 64 + id` never repeat across threads.
local next_id = 0
function setup(thread)
   thread:set("id", next_id)
   next_id = next_id + 1
end
