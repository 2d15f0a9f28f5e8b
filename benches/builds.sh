#!/usr/bin/env bash
# Compares builds of the server back to back (BENCHMARKS.md, "Both builds"):
#
#   benches/builds.sh [-r ROUNDS] [-d DURATION] BINARY...
#
# For each round, each binary in turn: a fresh empty database with 10 jobs, the server on a
# free loopback port, its idle RSS, then wrk with 32 connections on GET /healthz and on
# POST /api/v1/entries/ (benches/wrk/report.lua, one report per request). Alternating the
# binaries round after round spreads a noisy neighbour over all of them; the table gives
# each binary's median over the rounds, and every run is printed as it ends. Besides the
# rates it gives the CPU time the server spent per report (the whole process, and its
# group-commit thread, which runs every insert): on a busy machine the rates follow the
# neighbours, the CPU time per report much less.
# Needs wrk and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=3 duration=5s
while getopts r:d: opt; do
  case $opt in
    r) rounds=$OPTARG ;;
    d) duration=$OPTARG ;;
    *) exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: benches/builds.sh [-r ROUNDS] [-d DURATION] BINARY..." >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/backup-monitor-builds.XXXXXX")
server_pid=
cleanup() {
  [ -z "$server_pid" ] || { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
  rm -rf "$tmp"
}
trap cleanup EXIT

token=bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export BACKUP_MONITOR_ADMIN_TOKEN=$token
export BACKUP_MONITOR_AUTH_RATE_LIMIT_PER_SECOND=1000000000 BACKUP_MONITOR_AUTH_RATE_LIMIT_BURST=1000000000
export BACKUP_MONITOR_SCHEDULER_ENABLED=false

wrk_run() { # script url [env...] -> "rps p99_us requests"
  local script=$1 url=$2 line
  shift 2
  line=$(env "$@" wrk -t 2 -c 32 -d "$duration" --timeout 10s -s "benches/wrk/$script" "$url" | grep '^wrk-result')
  grep -q 'status_errors=0 socket_errors=0' <<<"$line" || { echo "errors: $line" >&2; exit 1; }
  sed -n 's/.*requests=\([^ ]*\) .* rps=\([^ ]*\).* p99_us=\([^ ]*\).*/\2 \3 \1/p' <<<"$line"
}
ticks() { awk '{ print $14 + $15 }' "$1"; } # utime + stime of a /proc stat file, in clock ticks
hz=$(getconf CLK_TCK)

printf 'load average before: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  for i in $(seq $#); do
    bin=${!i}
    rm -f "$tmp"/bench.db*
    port=$((20000 + RANDOM % 12000))
    env -u RUST_LOG "$bin" --database "$tmp/bench.db" serve --bind "127.0.0.1:$port" 2>"$tmp/server.log" &
    server_pid=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do
      kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; exit 1; }
      sleep 0.1
    done
    for n in $(seq 10); do
      curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/api/v1/jobs/" -H "Authorization: Bearer $token" \
        -H 'Content-Type: application/json' -d "{\"database_name\": \"db$n\", \"agent_id_responsible\": \"a\",
        \"company_name\": \"bench\", \"city\": \"c\", \"expected_hour_utc\": 2, \"expected_minute_utc\": 30,
        \"backup_frequency\": \"daily\", \"final_storage_path_template\": \"/b/{database_name}.dump\"}"
    done
    sleep 1
    rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$server_pid/status")
    wrk_run get.lua "http://127.0.0.1:$port/healthz" BENCH_TOKEN= >/dev/null # warm-up
    read -r h_rps h_p99 _ < <(wrk_run get.lua "http://127.0.0.1:$port/healthz" BENCH_TOKEN=)
    writer=$(grep -l '^group-commit$' /proc/"$server_pid"/task/*/comm | head -1)
    writer=${writer%/comm}/stat
    cpu0=$(ticks "/proc/$server_pid/stat") w0=$(ticks "$writer")
    read -r r_rps r_p99 r_n < <(wrk_run report.lua "http://127.0.0.1:$port/api/v1/entries/" \
      BENCH_TOKEN="$token" BENCH_JOBS=10 BENCH_RUN="$round")
    sleep 0.5 # the server finishes what the closed connections had sent
    cpu_us=$(awk -v t=$(($(ticks "/proc/$server_pid/stat") - cpu0)) -v n="$r_n" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    w_us=$(awk -v t=$(($(ticks "$writer") - w0)) -v n="$r_n" -v hz="$hz" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    kill "$server_pid"
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    echo "$i $h_rps $r_rps $r_p99 $rss $cpu_us $w_us" >>"$tmp/runs"
    printf 'round %d  %-40s healthz %6.0f/s  reports %6.0f/s  p99 %6.2f ms  CPU/report %5.1f µs (writer %5.1f)  idle RSS %5.1f MiB\n' \
      "$round" "$bin" "$h_rps" "$r_rps" "$(awk -v u="$r_p99" 'BEGIN { print u / 1000 }')" "$cpu_us" "$w_us" \
      "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')"
  done
done
printf 'load average after: %s\n\n' "$(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "| binary | size | idle RSS | /healthz | reports/s | report p99 | CPU per report (writer thread) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for i in $(seq $#); do
  bin=${!i}
  col() { awk -v i="$i" -v c="$1" '$1 == i { print $c }' "$tmp/runs" | median; }
  printf '| %s | %.1f MB | %.1f MiB | %s req/s | %s | %.2f ms | %s µs (%s µs) |\n' "$bin" \
    "$(awk -v b="$(stat -c %s "$bin")" 'BEGIN { print b / 1e6 }')" "$(awk -v k="$(col 5)" 'BEGIN { print k / 1024 }')" \
    "$(printf '%.0f' "$(col 2)")" "$(printf '%.0f' "$(col 3)")" "$(awk -v u="$(col 4)" 'BEGIN { print u / 1000 }')" \
    "$(col 6)" "$(col 7)"
done
