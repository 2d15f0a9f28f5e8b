#!/usr/bin/env bash
# Growth: what a database of 10,000,000 entries costs on disk, how fast the service starts on
# it, and how much memory the service holds after hours' worth of load. A part of the
# benchmark suite (benches/run.sh runs it last) that also runs alone:
#
#   benches/growth.sh            full size (~12 min after the release build)
#   benches/growth.sh --smoke    tiny sizes, debug build (also BENCH_SMOKE=1)
#
# Seeds 10,000 jobs and 10,000,000 entries (as benches/seed.rs does: 97 % successes with a
# hash and a size, 1 % failures with a message, 2 % missing; inserted oldest first, as a live
# database's are) and reads the file's bytes per entry. Starts `serve` on it once to settle
# it, then three times with a warm page cache and once after dropping the kernel's caches
# (as root; "cold" is a reboot), and times each start to the first 200 of /healthz. Then
# runs six "hours" of load on one server, each: 10 s of unique reports over the 10,000 jobs
# at 32 connections (as many as the server takes, tens of thousands: more than an hour of
# 10,000 hourly jobs reporting their start and their end), and an hour's reads: 60 scrapes
# of /metrics (one a minute), 120 GET /api/v1/status (a dashboard open all hour, refreshing
# every 30 s) and 120 pages of /api/v1/entries/. VmRSS after each hour shows whether memory
# settles or grows. The bytes each stored report adds come from the file's size before and
# after the hours (each time checkpointed). Retention is off on this server (keep_days = 0):
# the seed reaches 900 days back, and pruning would run during the load.
# Progress goes to stderr, markdown rows to stdout (with the table's header when run alone).
set -euo pipefail
cd "$(dirname "$0")/.."

bench_name=benches/growth.sh
# shellcheck source=benches/lib.sh
. benches/lib.sh
bench_options 21 "$@"

bench_build
conns=32 hours=6 starts=3
if [ "$smoke" = 1 ]; then
  duration=1s jobs=50 entries=5000 scrapes=2 polls=3
else
  duration=10s jobs=10000 entries=10000000 scrapes=60 polls=120
fi
alone=1
[ "${BENCH_PART_OF_SUITE:-0}" = 1 ] && alone=0

for tool in wrk curl; do
  command -v "$tool" >/dev/null || die "$tool is missing (benches/run.sh installs it)"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/backup-monitor-growth.XXXXXX")
server_pid=
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=
}
cleanup() {
  stop_server
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ "$alone" = 1 ]; then
  say "build: ${build[*]}; cargo bench ${profile_args[*]} --no-run --bench seed"
  "${build[@]}" 2>"$tmp/build.log" || { cat "$tmp/build.log" >&2; die "the build failed"; }
  cargo bench "${profile_args[@]}" --no-run --bench seed 2>"$tmp/build.log" ||
    { cat "$tmp/build.log" >&2; die "the seed bench does not build"; }
fi

# --- seed ------------------------------------------------------------------------------
db=$tmp/growth.db
say "seed: $jobs jobs, $entries entries"
"$bin" --database "$db" migrate 2>"$tmp/migrate.log" || { cat "$tmp/migrate.log" >&2; die "migrate failed"; }
BENCH_SEED_DB=$db BENCH_SEED_JOBS=$jobs BENCH_SEED_ENTRIES=$entries BENCH_SEED_TIME_ORDER=1 \
  cargo bench "${profile_args[@]}" --bench seed 2>"$tmp/seed.log" >"$tmp/seed.out" ||
  { cat "$tmp/seed.log" >&2; die "seeding failed"; }
seeded=$(sed -n 's/^result .* entries=\([0-9]*\).*/\1/p' "$tmp/seed.out")
[ -n "$seeded" ] || die "no result line from the seed: $(cat "$tmp/seed.out")"
sync
# The file alone: the seed leaves no write-ahead log behind.
bytes() { stat -c %s "$db"; }
seeded_bytes=$(bytes)

# --- the server --------------------------------------------------------------------------
port=$(free_port)
url=http://127.0.0.1:$port
token=bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
# Starts the server and waits for its first 200; leaves the milliseconds it took in $took_ms.
start_server() {
  local started_ns
  started_ns=$(date +%s%N)
  env -u RUST_LOG BACKUP_MONITOR_ADMIN_TOKEN="$token" BACKUP_MONITOR_RETENTION_KEEP_DAYS=0 \
    BACKUP_MONITOR_AUTH_RATE_LIMIT_PER_SECOND=1000000000 BACKUP_MONITOR_AUTH_RATE_LIMIT_BURST=1000000000 \
    "$bin" --database "$db" serve --bind "127.0.0.1:$port" 2>>"$tmp/server.log" &
  server_pid=$!
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" = 200 ]; do
    kill -0 "$server_pid" 2>/dev/null || { tail -20 "$tmp/server.log" >&2; die "the server exited"; }
    [ $(($(date +%s%N) - started_ns)) -lt 120000000000 ] || die "no 200 from /healthz within 120 s"
  done
  took_ms=$((($(date +%s%N) - started_ns) / 1000000))
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# The first start after the seed notes each job's next due time (the seed leaves it unset),
# a write over every job that a running database did long ago: not timed.
start_server
say "first start (notes each job's next due time, not timed): $took_ms ms"
stop_server
# Warm starts: the file's pages are in the kernel's cache (the seed just wrote them).
: >"$tmp/starts"
for i in $(seq "$starts"); do
  start_server
  say "start $i (warm): $took_ms ms"
  echo "$took_ms" >>"$tmp/starts"
  stop_server
done
warm_ms=$(median <"$tmp/starts")
# A cold start, as after a reboot: only root may drop the kernel's caches.
cold_ms=
if [ -w /proc/sys/vm/drop_caches ] && { sync && echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
  start_server
  cold_ms=$took_ms
  say "start (cold, caches dropped): $cold_ms ms"
  stop_server
fi

# --- hours of load -----------------------------------------------------------------------
start_server
sleep 1
kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$server_pid/status"; }
idle_rss_kib=$(kib VmRSS)
auth=(-H "Authorization: Bearer $token")
total_entries() {
  curl -sf -o /dev/null -D - "${auth[@]}" "$url/api/v1/entries/?limit=1" |
    tr -d '\r' | awk 'tolower($1) == "x-total-count:" { print $2 }'
}
# One curl for an hour's reads, on one connection: a config file of url/output pairs.
reads=$tmp/reads.curl
{
  echo "header = \"Authorization: Bearer $token\""
  echo "fail"
  echo "silent"
  for i in $(seq "$polls"); do
    [ "$i" -le "$scrapes" ] && printf 'url = "%s/metrics"\noutput = "/dev/null"\n' "$url"
    printf 'url = "%s/api/v1/status"\noutput = "/dev/null"\n' "$url"
    printf 'url = "%s/api/v1/entries/?limit=100"\noutput = "/dev/null"\n' "$url"
  done
} >"$reads"
checkpointed_bytes() { # the file after a checkpoint: stop the server, open and close the file
  stop_server
  "$bin" --database "$db" migrate 2>>"$tmp/migrate.log" || die "migrate failed"
  bytes
}

# What one dashboard refresh and one Prometheus scrape cost over every job (best of 5, since
# the first is cold).
once_ms() { # path
  for _ in 1 2 3 4 5; do
    curl -sf -o /dev/null -w '%{time_total}\n' "${auth[@]}" "$url$1" || die "GET $1 failed"
  done | sort -n | head -1 | awk '{ printf "%.1f", $1 * 1000 }'
}
status_ms=$(once_ms /api/v1/status)
metrics_ms=$(once_ms /metrics)
before_entries=$(total_entries)
[ "$before_entries" = "$seeded" ] || die "the server counts ${before_entries:-no} entries, not the $seeded seeded"
before_bytes=$(checkpointed_bytes)
start_server
rss_after=() reports_total=0 reads_ms_total=0
for hour in $(seq "$hours"); do
  out=$(env BENCH_TOKEN="$token" BENCH_JOBS="$jobs" BENCH_RUN="$hour" \
    wrk -t 2 -c "$conns" -d "$duration" --timeout 10s -s benches/wrk/report.lua "$url/api/v1/entries/") ||
    { echo "$out" >&2; die "wrk failed"; }
  line=$(grep '^wrk-result' <<<"$out") || { echo "$out" >&2; die "no wrk-result line"; }
  field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  [ "$(field status_errors)" = 0 ] && [ "$(field socket_errors)" = 0 ] ||
    { tail -20 "$tmp/server.log" >&2; die "errors during the reports: $line"; }
  reports_total=$((reports_total + $(field requests)))
  t0=$(date +%s%N)
  curl --config "$reads" || die "a read failed (curl exit $?)"
  reads_ms_total=$((reads_ms_total + ($(date +%s%N) - t0) / 1000000))
  rss_after+=("$(kib VmRSS)")
  say "hour $hour: $(field requests) reports, VmRSS $(kib VmRSS) kB"
done
peak_rss_kib=$(kib VmHWM)
after_entries=$(total_entries)
stored=$((after_entries - before_entries))
[ "$stored" -ge "$reports_total" ] || die "only $stored new entries for $reports_total reports"
after_bytes=$(checkpointed_bytes)

# --- rows ----------------------------------------------------------------------------------
per() { awk -v b="$1" -v n="$2" 'BEGIN { printf "%.0f bytes", b / n }'; }

if [ "$alone" = 1 ]; then
  echo
  echo "## backup-monitor benchmarks: growth$([ "$smoke" = 1 ] && echo ' (SMOKE: tiny sizes, debug build, numbers mean nothing)')"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk $duration per hour, 2 threads."
  echo
  row "measurement" "conns" "rate" "÷ /healthz" "p50" "p99" "target" "verdict"
  row "---" "---:" "---:" "---:" "---:" "---:" "---" "---"
fi
gib() { awk -v b="$1" 'BEGIN { printf (b >= 1073741824 ? "%.2f GiB" : "%.0f MiB"), (b >= 1073741824 ? b / 1073741824 : b / 1048576) }'; }
row "database bytes per entry: $(thousands "$seeded") seeded entries over $(thousands "$jobs") jobs in $(gib "$seeded_bytes") (indexes built at once)" \
  "" "$(per "$seeded_bytes" "$seeded")" "" "" "" "" ""
row "database bytes per entry added by reports: $(thousands "$stored") reports through the API grew the file by $(gib $((after_bytes - before_bytes)))" \
  "" "$(per $((after_bytes - before_bytes)) "$stored")" "" "" "" "" ""
row "start → first 200 of /healthz ($(thousands "$seeded") entries, $(thousands "$jobs") jobs), page cache warm, median of $starts" \
  "" "$warm_ms ms" "" "" "" "" ""
if [ -n "$cold_ms" ]; then
  row "start → first 200 of /healthz, same database, kernel caches dropped first (as after a reboot)" \
    "" "$cold_ms ms" "" "" "" "" ""
fi
row "one GET /api/v1/status over $(thousands "$jobs") jobs (each job's state, as the dashboard reads it), best of 5" \
  "1" "$status_ms ms" "" "" "" "" ""
row "one GET /metrics over $(thousands "$jobs") jobs (a Prometheus scrape), best of 5" "1" "$metrics_ms ms" "" "" "" "" ""
row "idle RSS (VmRSS 1 s after start, $(thousands "$seeded") entries)" "" "$(mib "$idle_rss_kib")" "" "" "" "" ""
row "RSS after each of $hours hours of load ($(thousands "$reports_total") reports in all, and each hour $scrapes scrapes of /metrics, $polls of /api/v1/status, $polls list pages; reads $(thousands $((reads_ms_total / hours))) ms per hour)" \
  "" "$(for k in "${rss_after[@]}"; do printf '%s · ' "$(mib "$k")"; done | sed 's/ · $//')" "" "" "" "" ""
# The first hour fills the page caches (the writer's 32 MiB, the readers'): memory settles
# when it grows by less than 5 % from the second hour to the last.
row "RSS growth from the second hour to the last (the first fills the page caches)" "" \
  "$(awk -v a="${rss_after[1]}" -v b="${rss_after[$((hours - 1))]}" 'BEGIN { printf "%+.1f MiB", (b - a) / 1024 }')" \
  "" "" "" "settles: < 5 %" "$(verdict "${rss_after[$((hours - 1))]} - ${rss_after[1]} < 0.05 * ${rss_after[1]}")"
row "peak RSS (VmHWM over the $hours hours)" "" "$(mib "$peak_rss_kib")" "" "" "" "" ""
