# Shared by the benchmark scripts (sourced, after `cd` to the project's root): messages, the
# command line, a free port, waiting for an idle server, and the markdown table's cells.
# A script sets `bench_name` (how its messages are signed) before sourcing this.

say() { printf '== %s\n' "$*" >&2; }
die() {
  printf '%s: %s\n' "$bench_name" "$*" >&2
  exit 1
}

# The command line every script takes: --smoke (or BENCH_SMOKE=1) sets smoke=1; --help prints
# the script's header comment, lines 2 to `help_last`.
bench_options() { # help_last args...
  local help_last=$1 arg
  shift
  smoke=${BENCH_SMOKE:-0}
  for arg in "$@"; do
    case $arg in
      --smoke) smoke=1 ;;
      -h | --help)
        sed -n "2,${help_last}p" "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
      *)
        echo "usage: $bench_name [--smoke]" >&2
        exit 2
        ;;
    esac
  done
  [ "$smoke" = 0 ] || smoke=1
}

# What the script runs and how to build it: in smoke mode the debug binary and the dev profile
# (what `cargo test` has built already), else the release build. Sets target_dir, bin,
# build (the command) and profile_args (for `cargo bench`).
bench_build() {
  target_dir=${CARGO_TARGET_DIR:-target}
  if [ "$smoke" = 1 ]; then
    profile_args=(--profile dev) bin="$target_dir/debug/backup-monitor" build=(cargo build)
  else
    profile_args=() bin="$target_dir/release/backup-monitor" build=(cargo build --release)
  fi
}

# A loopback port nothing listens on, below the kernel's ephemeral range (32768 and up), so
# that no outgoing connection (of wrk, of a test running beside) holds it when serve binds.
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  die "no free port found"
}

# A temporary directory in $tmp for this script, and a trap that stops the server
# ($server_pid, when set) and deletes the directory at exit.
bench_tmp() { # name
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/backup-monitor-$1.XXXXXX")
  server_pid=
  trap bench_cleanup EXIT
}
bench_cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}

# Runs wrk (2 threads, $conns connections) on $url$path for `duration` with
# benches/wrk/SCRIPT and the variables given, and keeps its rate, p50, p99 and refused
# requests (non-2xx answers and socket errors) under `key` in rps, p50, p99 and refused.
measure() { # key duration script path [env...]
  declare -gA rps p50 p99 refused
  local key=$1 d=$2 script=$3 path=$4 out line
  shift 4
  say "wrk -c $conns -d $d $path ($key)"
  out=$(env "$@" wrk -t 2 -c "$conns" -d "$d" --timeout 10s -s "benches/wrk/$script" "$url$path") ||
    { echo "$out" >&2; die "wrk failed"; }
  line=$(grep '^wrk-result' <<<"$out") || { echo "$out" >&2; die "no wrk-result line"; }
  echo "   $line" >&2
  field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
  rps[$key]=$(field rps) p50[$key]=$(field p50_us) p99[$key]=$(field p99_us)
  refused[$key]=$(($(field status_errors) + $(field socket_errors)))
}

# Waits until the server ($server_pid) is idle (under 10 % of a core for 200 ms, 10 s at
# most): wrk stops on time, but the server still finishes what the closed connections had
# sent, and a slow endpoint's leftovers would otherwise be timed in the next run.
settle() {
  local before after
  for _ in $(seq 50); do
    before=$(awk '{ print $14 + $15 }' "/proc/$server_pid/stat")
    sleep 0.2
    after=$(awk '{ print $14 + $15 }' "/proc/$server_pid/stat")
    [ $((after - before)) -gt 2 ] || return 0
  done
}

# The table's cells.
thousands() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
int() { awk -v x="$1" 'BEGIN { printf "%.0f", x }'; }
ms() { awk -v us="$1" 'BEGIN { printf (us < 10000 ? "%.2f ms" : "%.0f ms"), us / 1000 }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
# verdict "awk condition": met or missed, or "(smoke)" in smoke mode, which judges nothing.
verdict() {
  [ "$smoke" = 1 ] && { echo "(smoke)"; return; }
  awk "BEGIN { exit !($1) }" && echo "met" || echo "**missed**"
}
row() { printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$@"; }
