#!/usr/bin/env bash
# The benchmark suite of backup-monitor, in one command:
#
#   benches/run.sh            full run (~15 min with the release builds; numbers for BENCHMARKS.md)
#   benches/run.sh --smoke    every step at tiny sizes, 1 s of wrk each (CI; also BENCH_SMOKE=1)
#   benches/retention.sh      only the rows of retention and backup (run.sh runs it too)
#   benches/growth.sh         only the rows of growth: bytes per entry, start-up and RSS at
#                             10,000,000 entries (run.sh runs it too)
#   benches/tick.sh           only the rows of reports during an all-due tick (run.sh too)
#
# Builds the server, seeds a temporary database (1,000 jobs, 1,000,000 entries) through the
# crate's own migrations, starts the server on a free loopback port, drives it with wrk
# (Lua scripts in benches/wrk/), then runs benches/retention.sh (reports while pruning a
# million old entries and while `backup` copies the database, on a second server),
# benches/tick.sh (reports while a third server's scheduler runs a tick over 100,000 due
# jobs), the scheduler tick bench (100,000 jobs, 10,000,000 entries) and the divan
# microbenchmarks, and prints one markdown table. Every
# rate is also given as a ratio to GET /healthz measured in the same run, because this
# machine is shared: ratios survive a busy neighbour better than absolute numbers.
#
# The smoke mode uses the debug binary and the dev profile (what `cargo test` has already
# built), so that it costs CI seconds, not a release build; its numbers mean nothing and
# nothing is judged. No timing is asserted in either mode; a run fails only when something
# does not work (a non-2xx answer, a report stored as a repeat, a crashed server; in the
# rows of retention.sh and tick.sh refused reports are counted instead, being what they
# measure).
#
# Needs wrk and curl; installs them with apt-get when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

bench_name=benches/run.sh
# shellcheck source=benches/lib.sh
. benches/lib.sh
bench_options 27 "$@"

# The binary and its build (benches/lib.sh; cargo's builds go to CARGO_TARGET_DIR when set, as in fresh-ci).
bench_build
jobs=1000          # jobs the reports are spread over
conns=32           # connections of the ingestion and listing runs
batch_conns=4      # connections of the batch run
batch_rows=1000    # reports per batch (the API's maximum)
if [ "$smoke" = 1 ]; then
  duration=1s seed_entries=5000 tick_jobs=500 tick_per_job=10 tick_rounds=1
  micro_entries=5000 micro_args=(--test)
else
  duration=10s seed_entries=1000000 tick_jobs=100000 tick_per_job=100 tick_rounds=3
  micro_entries=1000000 micro_args=()
fi



# --- tools ---------------------------------------------------------------------------
need() { # command debian-package
  command -v "$1" >/dev/null && return
  [ "$(id -u)" = 0 ] || die "$1 is missing: apt-get install $2 (as root)"
  say "installing $2 (apt-get)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}
need wrk wrk
need curl curl

# --- build ---------------------------------------------------------------------------
bench_tmp bench

say "build: ${build[*]}; cargo bench ${profile_args[*]} --no-run (seed, tick, micro)"
"${build[@]}" 2>"$tmp/build.log" || { cat "$tmp/build.log" >&2; die "the build failed"; }
cargo bench "${profile_args[@]}" --no-run --bench seed --bench tick --bench micro 2>"$tmp/build.log" ||
  { cat "$tmp/build.log" >&2; die "the benches do not build"; }

# Runs one bench target; its stdout is shown and kept in $tmp/<name>.out.
bench() { # name [args...]
  local name=$1
  shift
  cargo bench "${profile_args[@]}" --bench "$name" -- "$@" 2>"$tmp/$name.log" | tee "$tmp/$name.out" >&2 ||
    { cat "$tmp/$name.log" >&2; die "bench $name failed"; }
}
# The value of key=… on the `result …` line of a bench's output.
result() { # name key
  sed -n "s/^result .* $2=\([^ ]*\).*/\1/p; s/^result $2=\([^ ]*\).*/\1/p" "$tmp/$1.out" | head -1
}

# --- seed ----------------------------------------------------------------------------
db=$tmp/bench.db
say "seed: $jobs jobs, $seed_entries entries"
"$bin" --database "$db" migrate 2>"$tmp/migrate.log" || { cat "$tmp/migrate.log" >&2; die "migrate failed"; }
BENCH_SEED_DB=$db BENCH_SEED_JOBS=$jobs BENCH_SEED_ENTRIES=$seed_entries bench seed
seeded=$(result seed entries)
deep_skip=$(result seed deep_skip)
job1_entries=$(result seed job1_entries)
job1_deep_skip=$(result seed job1_deep_skip)
# The seed wrote without syncing: flush it now, or the kernel's writeback of those pages
# would land in the middle of the measurements (stalling fsyncs and log writes).
sync

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# --- server --------------------------------------------------------------------------
port=$(free_port)
url=http://127.0.0.1:$port
token=bench_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export BACKUP_MONITOR_ADMIN_TOKEN=$token
export BACKUP_MONITOR_AUTH_RATE_LIMIT_PER_SECOND=1000000000
export BACKUP_MONITOR_AUTH_RATE_LIMIT_BURST=1000000000
# The seed reaches 900 days back: no pruning here, or the counts checked below would move
# (benches/retention.sh measures pruning on its own server).
export BACKUP_MONITOR_RETENTION_KEEP_DAYS=0

say "start: $bin serve --bind 127.0.0.1:$port"
started_ns=$(date +%s%N)
env -u RUST_LOG "$bin" --database "$db" serve --bind "127.0.0.1:$port" 2>"$tmp/server.log" &
server_pid=$!
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$url/healthz")" = 200 ]; do
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; die "the server exited"; }
  [ $(($(date +%s%N) - started_ns)) -lt 60000000000 ] || die "no 200 from /healthz within 60 s"
done
ready_ns=$(date +%s%N)
startup_ms=$(awk -v n=$((ready_ns - started_ns)) 'BEGIN { printf "%.0f", n / 1e6 }')
sleep 1
kib() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$server_pid/status"; }
idle_rss_kib=$(kib VmRSS)

auth=(-H "Authorization: Bearer $token")
total_entries() {
  curl -sf -o /dev/null -D - "${auth[@]}" "$url/api/v1/entries/?limit=1" |
    tr -d '\r' | awk 'tolower($1) == "x-total-count:" { print $2 }'
}
seen=$(total_entries) || true
[ "$seen" = "$seeded" ] || die "the server counts ${seen:-no} entries (X-Total-Count), not the $seeded seeded"

# --- load ----------------------------------------------------------------------------
declare -A rps p50 p99 conns_of
# Runs wrk; keeps requests/s and latencies under `key`. Any error answer stops the suite.
load() { # key connections script path [env...]
  local key=$1 c=$2 script=$3 path=$4 out line
  shift 4
  settle
  say "wrk -c $c -d $duration $path ($script)"
  out=$(env "$@" wrk -t "$((c < 2 ? c : 2))" -c "$c" -d "$duration" --timeout 10s \
    -s "benches/wrk/$script" "$url$path") || { echo "$out" >&2; die "wrk failed"; }
  line=$(grep '^wrk-result' <<<"$out") || { echo "$out" >&2; die "no wrk-result line"; }
  echo "   $line" >&2
  field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  [ "$(field status_errors)" = 0 ] && [ "$(field socket_errors)" = 0 ] ||
    { tail -20 "$tmp/server.log" >&2; die "$path: errors during the run: $line"; }
  rps[$key]=$(field rps) p50[$key]=$(field p50_us) p99[$key]=$(field p99_us) conns_of[$key]=$c
  requests_of=$(field requests)
}

# The listing pages: key, path and label. A deep page is reached by offset (`skip`) and,
# when the server hands out keyset cursors (`X-Next-Cursor`), by cursor at the same depth.
page_keys=()
declare -A page_path page_label
page() {
  page_keys+=("$1")
  page_path[$1]=$2 page_label[$1]=$3
}
cursor_at() { # listing-path depth: the cursor after the first `depth` entries
  curl -sf -o /dev/null -D - "${auth[@]}" "$url$1?limit=1&skip=$(($2 - 1))" |
    tr -d '\r' | awk 'tolower($1) == "x-next-cursor:" { print $2 }'
}
all=/api/v1/entries/ one=/api/v1/entries/by_job/1
page list "$all?limit=100" "GET $all?limit=100 ($(thousands "$seeded") entries)"
page deep "$all?limit=100&skip=$deep_skip" "… &skip=$(thousands "$deep_skip") (deep page by offset)"
cursor=$(cursor_at "$all" "$deep_skip")
[ -z "$cursor" ] ||
  page deep_cursor "$all?limit=100&cursor=$cursor" "… &cursor= at the same depth (keyset)"
page job "$one?limit=100" "GET $one?limit=100 ($(thousands "$job1_entries") entries)"
page job_deep "$one?limit=100&skip=$job1_deep_skip" "… &skip=$(thousands "$job1_deep_skip") (deep page by offset)"
cursor=$(cursor_at "$one" "$job1_deep_skip")
[ -z "$cursor" ] ||
  page job_deep_cursor "$one?limit=100&cursor=$cursor" "… &cursor= at the same depth (keyset)"
for k in "${page_keys[@]}"; do
  [ "$(curl -sf "${auth[@]}" "$url${page_path[$k]}" | grep -o '"id":' | wc -l)" = 100 ] ||
    die "${page_path[$k]} does not answer a page of 100 entries"
done

load warmup "$conns" get.lua /healthz BENCH_TOKEN= >/dev/null
load healthz "$conns" get.lua /healthz BENCH_TOKEN=
for k in "${page_keys[@]}"; do
  load "$k" "$conns" get.lua "${page_path[$k]}" BENCH_TOKEN="$token"
done
# The same pages one at a time: the latency a dashboard sees on an otherwise idle server.
for k in "${page_keys[@]}"; do
  load "$k.1" 1 get.lua "${page_path[$k]}" BENCH_TOKEN="$token"
done

# A warm-up first: the seeded indexes are freshly built, so packed full that the first
# inserts split pages everywhere; a live database is past that.
load warmup "$conns" report.lua /api/v1/entries/ BENCH_TOKEN="$token" BENCH_JOBS="$jobs" BENCH_RUN=1 \
  >/dev/null
before=$(total_entries)
load ingest "$conns" report.lua /api/v1/entries/ BENCH_TOKEN="$token" BENCH_JOBS="$jobs" BENCH_RUN=2
ingest_requests=$requests_of
stored=$(($(total_entries) - before))
[ "$stored" -ge "$ingest_requests" ] ||
  die "only $stored new entries for $ingest_requests reports: some were taken as repeats"

before=$(total_entries)
load batch "$batch_conns" batch.lua /api/v1/entries/batch \
  BENCH_TOKEN="$token" BENCH_JOBS="$jobs" BENCH_BATCH_ROWS="$batch_rows"
batch_requests=$requests_of
stored=$(($(total_entries) - before))
[ "$stored" -ge $((batch_requests * batch_rows)) ] ||
  die "only $stored new entries for $batch_requests batches of $batch_rows"

load healthz2 "$conns" get.lua /healthz BENCH_TOKEN=
loaded_rss_kib=$(kib VmHWM)

kill "$server_pid"
wait "$server_pid" || true
server_pid=

# --- retention and backup (benches/retention.sh, on its own server) ----------------------
say "retention and backup: benches/retention.sh"
retention_rows=$(BENCH_PART_OF_SUITE=1 BENCH_SMOKE=$smoke benches/retention.sh) ||
  die "benches/retention.sh failed"

# --- growth (benches/growth.sh: 10,000,000 entries, on its own server) --------------------
say "growth: benches/growth.sh"
growth_rows=$(BENCH_PART_OF_SUITE=1 BENCH_SMOKE=$smoke benches/growth.sh) ||
  die "benches/growth.sh failed"
# --- reports during an all-due tick (benches/tick.sh, on its own server) ------------------
say "reports during an all-due tick: benches/tick.sh"
tick_rows=$(BENCH_TICK_GROWN=1 BENCH_PART_OF_SUITE=1 BENCH_SMOKE=$smoke benches/tick.sh) ||
  die "benches/tick.sh failed"

# --- tick and microbenchmarks ----------------------------------------------------------
# The first tick after a VACUUM (indexes packed by CREATE INDEX: each missing entry splits
# its job's leaf), then the steady state of a live database (indexes grown report by
# report, their leaves part full), which the target row reads.
say "tick: $tick_jobs jobs x $tick_per_job entries, $tick_rounds rounds, indexes packed"
BENCH_JOBS=$tick_jobs BENCH_ENTRIES_PER_JOB=$tick_per_job BENCH_ROUNDS=$tick_rounds bench tick
cp "$tmp/tick.out" "$tmp/tick_packed.out"
say "tick: $tick_jobs jobs x $tick_per_job entries, $tick_rounds rounds, indexes grown"
BENCH_TICK_GROWN=1 BENCH_JOBS=$tick_jobs BENCH_ENTRIES_PER_JOB=$tick_per_job BENCH_ROUNDS=$tick_rounds bench tick
say "micro (divan)"
BENCH_MICRO_ENTRIES=$micro_entries bench micro "${micro_args[@]}"

# --- the table -------------------------------------------------------------------------
ratio() { awk -v a="$1" -v b="${rps[healthz]}" 'BEGIN { printf "%.2f", a / b }'; }
# verdict "awk condition" : met / missed, or nothing in smoke mode.
http_row() { # key label unit target condition
  local k=$1
  row "$2" "${conns_of[$k]}" "$(thousands "$(int "${rps[$k]}")") $3" "$(ratio "${rps[$k]}")" \
    "$(ms "${p50[$k]}")" "$(ms "${p99[$k]}")" "$4" "${5:+$(verdict "$5")}"
}

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || commit="$commit (with uncommitted changes)"
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mem=$(awk '$1 == "MemTotal:" { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
tick_entries=$(result tick entries)
h=${rps[healthz]}
list_p99=5000
echo
echo "## backup-monitor benchmarks$([ "$smoke" = 1 ] && echo ' (SMOKE: tiny sizes, debug build, numbers mean nothing)')"
echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $commit, $(nproc) cores ($cpu), $mem, load average before the load test: $load_before."
echo "Server: $bin, default logging to a file, database in $(df -PT "${TMPDIR:-/tmp}" | awk 'NR == 2 { print $2 }') temp dir; wrk $duration per row, 2 threads."
echo
row "measurement" "conns" "rate" "÷ /healthz" "p50" "p99" "target" "verdict"
row "---" "---:" "---:" "---:" "---:" "---:" "---" "---"
http_row healthz "GET /healthz (reference)" "req/s" "" ""
http_row ingest "POST /api/v1/entries/ (unique reports over $jobs jobs)" "reports/s" \
  "≥ 0.70 × /healthz, ≥ 20,000/s, p99 ≤ 5 ms" \
  "${rps[ingest]} >= 0.7 * $h && ${rps[ingest]} >= 20000 && ${p99[ingest]} <= 5000"
b_rows=$(awk -v r="${rps[batch]}" -v n="$batch_rows" 'BEGIN { print r * n }')
row "POST /api/v1/entries/batch ($batch_rows rows per request)" "$batch_conns" \
  "$(thousands "$(int "$b_rows")") rows/s" "$(ratio "$b_rows")" "$(ms "${p50[batch]}")" \
  "$(ms "${p99[batch]}")" "" ""
for k in "${page_keys[@]}"; do
  http_row "$k" "${page_label[$k]}" "req/s" "p99 ≤ 5 ms" "${p99[$k]} <= $list_p99"
done
for k in "${page_keys[@]}"; do
  http_row "$k.1" "${page_label[$k]}, one request at a time" "req/s" "p99 ≤ 5 ms" \
    "${p99[$k.1]} <= $list_p99"
done
http_row healthz2 "GET /healthz again, after the load (drift check)" "req/s" "" ""
row "start → first 200 of /healthz ($(thousands "$seeded") entries)" "" "$startup_ms ms" "" "" "" "" ""
row "idle RSS (VmRSS 1 s after start)" "" "$(mib "$idle_rss_kib")" "" "" "" "≤ 15 MiB" \
  "$(verdict "$idle_rss_kib <= 15 * 1024")"
row "loaded RSS (VmHWM after all the load)" "" "$(mib "$loaded_rss_kib")" "" "" "" "" ""
row "tick, all due: $(thousands "$tick_jobs") jobs, $(thousands "$tick_entries") entries (indexes $(result tick layout)), writes $(thousands "$(result tick missing)") missing + alerts in $(result tick chunks) chunks of ≤ $(thousands "$(result tick largest_chunk)") jobs" \
  "" "$(thousands "$(int "$(result tick due_ms)")") ms" "" "" "" "≤ 1.5 s" "$(verdict "$(result tick due_ms) <= 1500")"
row "tick, quiet (nothing new due), same database" "" "$(result tick quiet_ms) ms" "" "" "" \
  "≤ 20 ms" "$(verdict "$(result tick quiet_ms) <= 20")"
row "tick, all due, the first after a VACUUM (indexes $(result tick_packed layout): each missing entry splits its job's leaf), same sizes, in $(result tick_packed chunks) chunks" \
  "" "$(thousands "$(int "$(result tick_packed due_ms)")") ms" "" "" "" "" ""
echo "$retention_rows"
echo "$growth_rows"
echo "$tick_rows"
drift=$(awk -v a="$h" -v b="${rps[healthz2]}" 'BEGIN { d = (b - a) / a; printf "%.0f", (d < 0 ? -d : d) * 100 }')
if [ "$smoke" = 0 ] && [ "$drift" -gt 15 ]; then
  echo
  echo "WARNING: /healthz moved by $drift % between the start and the end: the machine was busy, rerun."
fi
