#!/usr/bin/env bash
# Retention and backup under load: a part of the benchmark suite that benches/run.sh runs
# after its HTTP rows, and that runs alone for these rows only:
#
#   benches/retention.sh            full size (~3 min after the release builds)
#   benches/retention.sh --smoke    tiny sizes, debug build (also BENCH_SMOKE=1)
#
# Seeds a database whose entries all ended 401 days ago (1,000 jobs, 1,000,000 entries;
# 5,000 in smoke mode), so that all but each job's latest success and failure are older
# than the default retention (400 days); inserted oldest first, as a live database's are. Starts `serve` on it with retention.keep_days = 400
# (the first pruning run starts right after the first tick) and at once sends unique reports
# with wrk: "reports while pruning". Then reads the pruning rate from the server's log line
# (`retention deleted … entries=N … elapsed_ms=T`), measures GET /healthz (the reference of
# the ratios), reports alone, and reports while `backup-monitor backup` copies the database
# again and again. Refused reports (any non-2xx answer) and socket errors are counted, not
# fatal: they are the measurement. Progress goes to stderr, markdown rows to stdout (with
# the table's header when run alone). Needs wrk and curl (benches/run.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."

bench_name=benches/retention.sh
# shellcheck source=benches/lib.sh
. benches/lib.sh
bench_options 17 "$@"

bench_build
jobs=1000 conns=32 keep_days=400
if [ "$smoke" = 1 ]; then
  duration=1s entries=5000
else
  duration=10s entries=1000000
fi
# benches/run.sh has built everything already and prints the header itself.
alone=1
[ "${BENCH_PART_OF_SUITE:-0}" = 1 ] && alone=0

for tool in wrk curl; do
  command -v "$tool" >/dev/null || die "$tool is missing (benches/run.sh installs it)"
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/backup-monitor-retention.XXXXXX")
server_pid= copier_pid=
cleanup() {
  for pid in $copier_pid $server_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ "$alone" = 1 ]; then
  say "build: ${build[*]}; cargo bench ${profile_args[*]} --no-run --bench seed"
  "${build[@]}" 2>"$tmp/build.log" || { cat "$tmp/build.log" >&2; die "the build failed"; }
  cargo bench "${profile_args[@]}" --no-run --bench seed 2>"$tmp/build.log" ||
    { cat "$tmp/build.log" >&2; die "the seed bench does not build"; }
fi

# --- seed: a history that ended 401 days ago ---------------------------------------------
db=$tmp/retention.db
say "seed: $jobs jobs, $entries entries, all of them over $keep_days days old"
"$bin" --database "$db" migrate 2>"$tmp/migrate.log" || { cat "$tmp/migrate.log" >&2; die "migrate failed"; }
BENCH_SEED_DB=$db BENCH_SEED_JOBS=$jobs BENCH_SEED_ENTRIES=$entries BENCH_SEED_SHIFT_DAYS=$((keep_days + 1)) \
  BENCH_SEED_TIME_ORDER=1 \
  cargo bench "${profile_args[@]}" --bench seed 2>"$tmp/seed.log" >"$tmp/seed.out" ||
  { cat "$tmp/seed.log" >&2; die "seeding failed"; }
sync
db_mib=$(du -m "$db" | cut -f1)

# --- the server, pruning from its start --------------------------------------------------
port=$(free_port)
url=http://127.0.0.1:$port
token=bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
say "start: $bin serve with retention.keep_days = $keep_days"
started_ns=$(date +%s%N)
env -u RUST_LOG BACKUP_MONITOR_ADMIN_TOKEN="$token" BACKUP_MONITOR_RETENTION_KEEP_DAYS=$keep_days \
  BACKUP_MONITOR_AUTH_RATE_LIMIT_PER_SECOND=1000000000 BACKUP_MONITOR_AUTH_RATE_LIMIT_BURST=1000000000 \
  "$bin" --database "$db" serve --bind "127.0.0.1:$port" 2>"$tmp/server.log" &
server_pid=$!
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" = 200 ]; do
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; die "the server exited"; }
  [ $(($(date +%s%N) - started_ns)) -lt 60000000000 ] || die "no 200 from /healthz within 60 s"
done

reports=(BENCH_TOKEN="$token" BENCH_JOBS="$jobs")
pruned_line() { grep 'retention deleted old entries' "$tmp/server.log" | head -1; }

# No settling here: the pruning run is what this row measures against.
measure pruning "$duration" report.lua /api/v1/entries/ "${reports[@]}" BENCH_RUN=1
overlap="pruning went on for the whole run"
[ -z "$(pruned_line)" ] || overlap="**pruning ended during the run**"

say "waiting for the pruning run to end"
until [ -n "$(pruned_line)" ]; do
  kill -0 "$server_pid" 2>/dev/null || { tail -20 "$tmp/server.log" >&2; die "the server exited"; }
  [ $(($(date +%s%N) - started_ns)) -lt 1800000000000 ] || die "pruning did not end within 30 min"
  sleep 0.5
done
line=$(pruned_line)
pruned=$(sed -n 's/.* entries=\([0-9]*\).*/\1/p' <<<"$line")
prune_ms=$(sed -n 's/.* elapsed_ms=\([0-9]*\).*/\1/p' <<<"$line")
prune_steps=$(sed -n 's/.* steps=\([0-9]*\).*/\1/p' <<<"$line")
[ -n "$pruned" ] && [ -n "$prune_ms" ] || die "cannot read the pruning log line: $line"
[ "$pruned" -ge $((entries - 2 * jobs)) ] || die "pruned only $pruned of $entries entries: $line"

settle
measure warmup "$duration" get.lua /healthz BENCH_TOKEN= >/dev/null
settle
measure healthz "$duration" get.lua /healthz BENCH_TOKEN=
settle
measure alone "$duration" report.lua /api/v1/entries/ "${reports[@]}" BENCH_RUN=2

# Copies, one after the other, for as long as the reports run.
settle
copies_log=$tmp/copies.log
: >"$copies_log"
(
  while [ ! -e "$tmp/stop" ]; do
    t0=$(date +%s%N)
    "$bin" --database "$db" backup --output "$tmp/copy.db" --force >>"$copies_log" 2>&1 || exit 1
    echo "took_ms=$((($(date +%s%N) - t0) / 1000000))" >>"$copies_log"
  done
) &
copier_pid=$!
measure backup "$duration" report.lua /api/v1/entries/ "${reports[@]}" BENCH_RUN=3
touch "$tmp/stop"
wait "$copier_pid" || { cat "$copies_log" >&2; die "backup failed"; }
copier_pid=
copies=$(grep -c '^took_ms=' "$copies_log" || true)
[ "$copies" -ge 1 ] || die "no copy finished: $(cat "$copies_log")"
copy_ms=$(sed -n 's/^took_ms=//p' "$copies_log" | awk '{ s += $1 } END { printf "%.0f", s / NR }')
copy_mib=$(du -m "$tmp/copy.db" | cut -f1)

kill "$server_pid"
wait "$server_pid" || true
server_pid=

# --- rows ----------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="${rps[healthz]}" 'BEGIN { printf "%.2f", a / b }'; }
report_row() { # key label
  local k=$1
  row "$2 (${refused[$k]} refused)" "$conns" "$(thousands "$(int "${rps[$k]}")") reports/s" \
    "$(ratio "${rps[$k]}")" "$(ms "${p50[$k]}")" "$(ms "${p99[$k]}")" "0 refused, p99 ≤ 50 ms" \
    "$(verdict "${refused[$k]} == 0 && ${p99[$k]} <= 50000")"
}

if [ "$alone" = 1 ]; then
  echo
  echo "## backup-monitor benchmarks: retention and backup$([ "$smoke" = 1 ] && echo ' (SMOKE: tiny sizes, debug build, numbers mean nothing)')"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk $duration per row, 2 threads."
  echo
  row "measurement" "conns" "rate" "÷ /healthz" "p50" "p99" "target" "verdict"
  row "---" "---:" "---:" "---:" "---:" "---:" "---" "---"
fi
# The ratios of the rows below are to this server's own /healthz.
row "GET /healthz (reference of the rows below: their server, after pruning)" "$conns" \
  "$(thousands "$(int "${rps[healthz]}")") req/s" "1.00" "$(ms "${p50[healthz]}")" "$(ms "${p99[healthz]}")" "" ""
report_row pruning "POST /api/v1/entries/ while pruning $(thousands "$pruned") old entries, from start; $overlap"
row "pruning: $(thousands "$pruned") entries of a $db_mib MiB database deleted in $(awk -v t="$prune_ms" 'BEGIN { printf "%.1f s", t / 1000 }') ($(thousands "$prune_steps") steps of ≤ 1,000 rows, the pauses between them included)" \
  "" "$(thousands "$(awk -v n="$pruned" -v t="$prune_ms" 'BEGIN { printf "%.0f", n / (t / 1000) }')") rows/s" \
  "" "" "" "" ""
report_row alone "POST /api/v1/entries/ on the same server, nothing else running"
report_row backup "POST /api/v1/entries/ while \`backup\` copies the database ($copies copies of $copy_mib MiB, $(thousands "$copy_ms") ms each with the integrity check)"
