#!/usr/bin/env bash
# The reports rows of benches/run.sh alone, and where the server's CPU goes during them:
#
#   benches/ingest.sh [BINARY...]
#
# Seeds a database as run.sh does (1,000 jobs, 1,000,000 entries; once, kept in
# $BENCH_INGEST_DIR, default target dir's `ingest-bench/`, and copied afresh for each
# server), then for each binary (default: the release build) starts `serve` on a copy with
# run.sh's settings (INFO logging to a file, rate limiter off, no pruning) and runs, at 32
# connections, 10 s each: /healthz (after a 10 s warm-up), reports (after a 10 s warm-up of
# the same script), /healthz again. Several binaries are measured one after the other, so
# that a before/after pair shares the machine's state; BENCH_ROUNDS=n alternates them n
# times. Prints one line per row, and the server's CPU per report by thread (tokio workers,
# the group-commit writer, the log writer, the rest) from /proc/PID/task/*/stat.
#
# BENCH_INGEST_SCHED=<file> records the scheduler's events of the whole machine (`perf sched
# record -a`) for 4 s of each reports row, from 3 s after its start (so BENCH_DURATION of
# 8 s or more), into <file>.N (N counts the rows; each row's line names its file; a
# relative <file> is taken from the project's root), to read with `perf sched latency` or
# `perf sched timehist`: how long the server's threads wait for a core. Needs perf.
#
# Needs wrk, curl and a release build (cargo build --release; cargo bench --no-run --bench
# seed for the first seed).
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-target}
work=${BENCH_INGEST_DIR:-$target_dir/ingest-bench}
duration=${BENCH_DURATION:-10s}
rounds=${BENCH_ROUNDS:-1}
conns=32 jobs=1000
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("$target_dir/release/backup-monitor")

bench_name=benches/ingest.sh
# shellcheck source=benches/lib.sh
. benches/lib.sh
for tool in wrk curl; do
  command -v "$tool" >/dev/null || die "$tool is missing (benches/run.sh installs it)"
done
if [ -n "${BENCH_INGEST_SCHED:-}" ]; then
  command -v perf >/dev/null || die "BENCH_INGEST_SCHED needs perf"
fi
sched_runs=0 sched_pid=
mkdir -p "$work"
seeded=$work/seeded.db
if [ ! -f "$seeded" ]; then
  say "seed: $jobs jobs, 1,000,000 entries into $seeded"
  "${bins[0]}" --database "$seeded" migrate 2>"$work/migrate.log" || die "migrate failed"
  BENCH_SEED_DB=$seeded BENCH_SEED_JOBS=$jobs BENCH_SEED_ENTRIES=1000000 \
    cargo bench --bench seed >&2 2>"$work/seed.log" || die "seed failed: see $work/seed.log"
  sync
fi

server_pid=
cleanup() {
  if [ -n "$sched_pid" ] && kill -0 "$sched_pid" 2>/dev/null; then
    pkill -INT -P "$sched_pid" 2>/dev/null || true
    kill "$sched_pid" 2>/dev/null || true
  fi
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# CPU ticks of the server, then of its threads summed by kind: total tokio writer logger
# (tokio's workers and its blocking pool share a name; a thread that ended since counts in
# the total only).
cpu() {
  local pid=$1 t comm ticks w=0 g=0 l=0 all
  all=$(awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$pid/stat")
  for t in /proc/"$pid"/task/*; do
    comm=$(cat "$t/comm" 2>/dev/null) || continue
    ticks=$(awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "$t/stat" 2>/dev/null) || continue
    case $comm in
      tokio-r*) w=$((w + ticks)) ;;
      group-commit) g=$((g + ticks)) ;;
      log-writer) l=$((l + ticks)) ;;
    esac
  done
  echo "$all $w $g $l"
}

load() { # label script path [env...]
  local label=$1 script=$2 path=$3 out line
  shift 3
  settle
  out=$(env "$@" wrk -t 2 -c "$conns" -d "$duration" --timeout 10s -s "benches/wrk/$script" "$url$path") ||
    { echo "$out" >&2; die "wrk failed"; }
  line=$(grep '^wrk-result' <<<"$out") || die "no wrk-result line"
  [[ $line == *" status_errors=0 socket_errors=0" ]] || die "$label: errors: $line"
  echo "$line"
}
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

measure() { # binary
  local bin=$1 db=$work/bench.db port token url h1 r h2 before after
  rm -f "$db" "$db-wal" "$db-shm"
  cp "$seeded" "$db"
  sync
  port=$(free_port)
  token=bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  url=http://127.0.0.1:$port
  BACKUP_MONITOR_ADMIN_TOKEN=$token BACKUP_MONITOR_AUTH_RATE_LIMIT_PER_SECOND=1000000000 \
    BACKUP_MONITOR_AUTH_RATE_LIMIT_BURST=1000000000 BACKUP_MONITOR_RETENTION_KEEP_DAYS=0 \
    env -u RUST_LOG "$bin" --database "$db" serve --bind "127.0.0.1:$port" 2>"$work/server.log" &
  server_pid=$!
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" = 200 ]; do
    kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.log" >&2; die "the server exited"; }
    sleep 0.05
  done
  load warmup get.lua /healthz BENCH_TOKEN= >/dev/null
  settle
  local hb ha
  hb=$(cpu "$server_pid")
  h1=$(load healthz get.lua /healthz BENCH_TOKEN=)
  ha=$(cpu "$server_pid")
  load warmup report.lua /api/v1/entries/ BENCH_TOKEN="$token" BENCH_JOBS=$jobs BENCH_RUN=1 >/dev/null
  settle
  before=$(cpu "$server_pid")
  local sched_file=
  if [ -n "${BENCH_INGEST_SCHED:-}" ]; then
    sched_runs=$((sched_runs + 1))
    sched_file=$BENCH_INGEST_SCHED.$sched_runs
    (sleep 3 && exec perf sched record -a -q -o "$sched_file" -- sleep 4) \
      >/dev/null 2>"$work/perf-sched.log" &
    sched_pid=$!
  fi
  r=$(load reports report.lua /api/v1/entries/ BENCH_TOKEN="$token" BENCH_JOBS=$jobs BENCH_RUN=2)
  after=$(cpu "$server_pid")
  if [ -n "$sched_pid" ]; then
    wait "$sched_pid" || { cat "$work/perf-sched.log" >&2; die "perf sched record failed"; }
    sched_pid=
    say "scheduler events of this reports row: $sched_file"
  fi
  h2=$(load healthz2 get.lua /healthz BENCH_TOKEN=)
  kill "$server_pid"
  wait "$server_pid" || true
  server_pid=
  local n hz
  n=$(field requests "$r")
  hz=$(getconf CLK_TCK)
  awk -v bin="$bin" -v h1="$(field rps "$h1")" -v h2="$(field rps "$h2")" -v r="$(field rps "$r")" \
    -v p50="$(field p50_us "$r")" -v p99="$(field p99_us "$r")" -v hp99="$(field p99_us "$h1")" \
    -v n="$n" -v hz="$hz" -v before="$before" -v after="$after" -v hb="$hb" -v ha="$ha" \
    -v hn="$(field requests "$h1")" -v lines="$(wc -l <"$work/server.log")" \
    -v load="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
      split(before, b, " "); split(after, a, " ")
      us = 1e6 / hz / n
      printf "%s: healthz %.0f/s (p99 %.2f ms) | reports %.0f/s = %.2f x healthz, p50 %.2f ms, p99 %.2f ms | healthz after %.0f/s | load %s\n",
        bin, h1, hp99 / 1000, r, r / h1, p50 / 1000, p99 / 1000, h2, load
      printf "   server CPU per report: %.1f us in all; tokio threads %.1f us, group-commit %.1f us, log-writer %.1f us; %d log lines in all\n",
        (a[1] - b[1]) * us, (a[2] - b[2]) * us, (a[3] - b[3]) * us, (a[4] - b[4]) * us, lines
      split(hb, c, " "); split(ha, d, " ")
      printf "   server CPU per /healthz: %.1f us\n", (d[1] - c[1]) * 1e6 / hz / hn
    }'
}

for _ in $(seq "$rounds"); do
  for bin in "${bins[@]}"; do
    measure "$bin"
  done
done
