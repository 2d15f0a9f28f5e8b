#!/usr/bin/env bash
# Reports during an all-due tick: a part of the benchmark suite that benches/run.sh runs
# after benches/retention.sh, and that runs alone for these rows only:
#
#   benches/tick.sh            full size (~5 min after the release builds, most of it seeding)
#   benches/tick.sh --smoke    tiny sizes, debug build (also BENCH_SMOKE=1)
#
# Seeds 100,000 daily jobs of 100 agents with 100 past reports each (10,000,000 entries;
# 500 jobs x 10 in smoke mode) through the tick bench (`BENCH_TICK_SEED_DB`), half of them
# with a report for the slot that falls due, every job *parked* (its next due time far
# ahead) so that the server's ticks pass over it. Starts `serve` on it with a tick every
# 20 s, measures GET /healthz (the reference of the ratios) and unique reports alone, then
# arms every job (`BENCH_TICK_ARM`: due at the next tick, as a job just created is) a few
# seconds before a tick and starts wrk a second before it: "reports during an all-due
# tick". The server's own scheduler runs that tick, its chunks through the group-commit
# writer between the reports; its log line (`tick found missing backups … chunks=N
# elapsed_ms=T`) says how long it took. Refused reports (any non-2xx answer) and socket
# errors are counted, not fatal: they are the measurement. Progress goes to stderr,
# markdown rows to stdout (with the table's header when run alone). Needs wrk and curl
# (benches/run.sh installs them).
#
# BENCH_TICK_KEEP=<file> keeps the seeded database there, and a later run takes a copy of it
# instead of seeding again while it is less than 20 hours old (its due slot must still be
# the jobs' latest) and of the layout asked for. BENCH_TICK_GROWN=1 seeds the entries as a
# live database grows (the tick bench's option: indexes updated row by row, their leaves
# part full) instead of packing the indexes at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

bench_name=benches/tick.sh
# shellcheck source=benches/lib.sh
. benches/lib.sh
bench_options 24 "$@"

bench_build
# BENCH_SERVER_BIN=<file>: serve with that binary instead of this tree's build (to compare
# two builds on the same seed); the tick bench that seeds and arms is still this tree's.
bin=${BENCH_SERVER_BIN:-$bin}
conns=32 report_jobs=1000 every=20
if [ "$smoke" = 1 ]; then
  duration=1s during=4 jobs=500 per_job=10
else
  duration=10s during=5 jobs=100000 per_job=100
fi
# The reports go to the first jobs (ids 1..N): as many as exist, 1,000 at most.
report_jobs=$((jobs < report_jobs ? jobs : report_jobs))
alone=1
[ "${BENCH_PART_OF_SUITE:-0}" = 1 ] && alone=0

for tool in wrk curl; do
  command -v "$tool" >/dev/null || die "$tool is missing (benches/run.sh installs it)"
done

bench_tmp tick

if [ "$alone" = 1 ]; then
  say "build: ${build[*]}; cargo bench ${profile_args[*]} --no-run --bench tick"
  "${build[@]}" 2>"$tmp/build.log" || { cat "$tmp/build.log" >&2; die "the build failed"; }
  cargo bench "${profile_args[@]}" --no-run --bench tick 2>"$tmp/build.log" ||
    { cat "$tmp/build.log" >&2; die "the tick bench does not build"; }
fi
tick_bench() { # env... : runs the tick bench binary with these variables
  env "$@" cargo bench "${profile_args[@]}" --bench tick 2>>"$tmp/bench.log" ||
    { cat "$tmp/bench.log" >&2; die "the tick bench failed ($*)"; }
}

# --- seed: every job parked, its due slot just past ----------------------------------------
db=$tmp/tick.db
keep=${BENCH_TICK_KEEP:-}
want_layout=packed
[ "${BENCH_TICK_GROWN:-0}" = 1 ] && want_layout=grown
if [ -n "$keep" ] && [ -f "$keep" ] && [ -f "$keep.out" ] &&
  grep -q " layout=$want_layout" "$keep.out" &&
  [ $(($(date +%s) - $(stat -c %Y "$keep"))) -lt 72000 ]; then
  say "seed: a copy of $keep"
  cp "$keep" "$db"
  cp "$keep.out" "$tmp/seed.out"
else
  say "seed: $jobs parked daily jobs x $per_job entries"
  "$bin" --database "$db" migrate 2>"$tmp/migrate.log" || { cat "$tmp/migrate.log" >&2; die "migrate failed"; }
  tick_bench BENCH_TICK_SEED_DB="$db" BENCH_JOBS="$jobs" BENCH_ENTRIES_PER_JOB="$per_job" >"$tmp/seed.out"
  if [ -n "$keep" ]; then
    cp "$db" "$keep"
    cp "$tmp/seed.out" "$keep.out"
  fi
fi
entries=$(sed -n 's/^result .* entries=\([0-9]*\).*/\1/p' "$tmp/seed.out")
[ -n "$entries" ] || die "no result line from the seed: $(cat "$tmp/seed.out")"
layout=$(sed -n 's/^result .* layout=\([a-z]*\).*/\1/p' "$tmp/seed.out")
sync

# --- the server, ticking every $every s ------------------------------------------------------
port=$(free_port)
url=http://127.0.0.1:$port
token=bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
say "start: $bin serve, a tick every $every s"
started_ns=$(date +%s%N)
env -u RUST_LOG BACKUP_MONITOR_ADMIN_TOKEN="$token" BACKUP_MONITOR_RETENTION_KEEP_DAYS=0 \
  BACKUP_MONITOR_SCHEDULER_TICK="*/$every * * * * *" \
  BACKUP_MONITOR_AUTH_RATE_LIMIT_PER_SECOND=1000000000 BACKUP_MONITOR_AUTH_RATE_LIMIT_BURST=1000000000 \
  "$bin" --database "$db" serve --bind "127.0.0.1:$port" 2>"$tmp/server.log" &
server_pid=$!
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" = 200 ]; do
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; die "the server exited"; }
  [ $(($(date +%s%N) - started_ns)) -lt 60000000000 ] || die "no 200 from /healthz within 60 s"
done

reports=(BENCH_TOKEN="$token" BENCH_JOBS="$report_jobs")

settle
measure warmup "$duration" get.lua /healthz BENCH_TOKEN= >/dev/null
settle
measure healthz "$duration" get.lua /healthz BENCH_TOKEN=
settle
measure alone "$duration" report.lua /api/v1/entries/ "${reports[@]}" BENCH_RUN=1
settle

# --- arm every job a few seconds before a tick, start wrk a second before it ---------------
now_ms() { echo $(($(date +%s%N) / 1000000)); }
period=$((every * 1000))
tick_at=$(( ($(now_ms) / period + 1) * period ))
# Arming 100,000 jobs takes 2-5 s (more while the seed's copy is still being written out):
# it starts 12 s before the tick, after the tick before (which passes over parked jobs).
arm_lead=12000
[ $((tick_at - $(now_ms))) -ge $((arm_lead + 2000)) ] || tick_at=$((tick_at + period))
sleep_until() { # epoch ms
  local left=$(($1 - $(now_ms)))
  [ "$left" -le 0 ] || sleep "$(awk -v ms="$left" 'BEGIN { printf "%.3f", ms / 1000 }')"
}
sleep_until $((tick_at - arm_lead))
say "arming $jobs jobs for the tick at $(date -u -d "@$((tick_at / 1000))" +%T)"
tick_bench BENCH_TICK_ARM="$db" >"$tmp/arm.out"
armed=$(sed -n 's/^result armed=\([0-9]*\).*/\1/p' "$tmp/arm.out")
[ "$armed" = "$jobs" ] || die "armed ${armed:-no} jobs, not $jobs: $(cat "$tmp/arm.out")"
[ "$(now_ms)" -lt $((tick_at - 1500)) ] || die "arming took too long: the tick would start before the reports"
sleep_until $((tick_at - 1000))
measure during "${during}s" report.lua /api/v1/entries/ "${reports[@]}" BENCH_RUN=2
ticked() { grep 'tick found missing backups' "$tmp/server.log" | head -1; }
overlap="the tick ended within the run"
[ -n "$(ticked)" ] || overlap="**the tick outlasted the run**"
until [ -n "$(ticked)" ]; do
  kill -0 "$server_pid" 2>/dev/null || { tail -20 "$tmp/server.log" >&2; die "the server exited"; }
  [ "$(now_ms)" -lt $((tick_at + 300000)) ] || die "no all-due tick within 5 min of arming"
  sleep 0.5
done
line=$(ticked)
tick_field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
missing=$(tick_field missing) chunks=$(tick_field chunks) tick_ms=$(tick_field elapsed_ms)
checked=$(tick_field jobs)
[ -n "$tick_ms" ] && [ -n "$chunks" ] || die "cannot read the tick's log line: $line"
[ "$checked" -ge "$jobs" ] || die "the tick checked $checked jobs, not $jobs: $line"

kill "$server_pid"
wait "$server_pid" || true
server_pid=

# --- rows ----------------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="${rps[healthz]}" 'BEGIN { printf "%.2f", a / b }'; }
report_row() { # key label target condition
  local k=$1
  row "$2 (${refused[$k]} refused)" "$conns" "$(thousands "$(int "${rps[$k]}")") reports/s" \
    "$(ratio "${rps[$k]}")" "$(ms "${p50[$k]}")" "$(ms "${p99[$k]}")" "$3" \
    "${4:+$(verdict "$4")}"
}

if [ "$alone" = 1 ]; then
  echo
  echo "## backup-monitor benchmarks: reports during an all-due tick$([ "$smoke" = 1 ] && echo ' (SMOKE: tiny sizes, debug build, numbers mean nothing)')"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); wrk $duration per row ($during s during the tick), 2 threads."
  echo
  row "measurement" "conns" "rate" "÷ /healthz" "p50" "p99" "target" "verdict"
  row "---" "---:" "---:" "---:" "---:" "---:" "---" "---"
fi
row "GET /healthz (reference of the rows below: their server, $(thousands "$jobs") jobs, $(thousands "$entries") entries, indexes ${layout:-packed})" "$conns" \
  "$(thousands "$(int "${rps[healthz]}")") req/s" "1.00" "$(ms "${p50[healthz]}")" "$(ms "${p99[healthz]}")" "" ""
report_row alone "POST /api/v1/entries/ on the same server, nothing else running" "" ""
report_row during "POST /api/v1/entries/ during an all-due tick over $(thousands "$jobs") jobs ($during s from 1 s before the tick; $overlap)" \
  "0 refused, p99 ≤ 50 ms" "${refused[during]} == 0 && ${p99[during]} <= 50000"
row "the all-due tick in the server, beside those reports: $(thousands "$checked") jobs, $(thousands "$missing") missing written in $chunks chunks" \
  "" "$(thousands "$tick_ms") ms" "" "" "" "" ""
