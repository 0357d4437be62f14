# Sourced by the bench scripts (http.sh, serve.sh, grpc.sh, tls.sh, serve_heap.sh): the tools they
# need, where each side runs, how a run of interleaved pairs is summed up, and what one run of a
# server does.

# cpu_ns PID: CPU time so far of every thread of process PID, in ns (the scheduler's own count).
# On this shared machine a server often waits for a CPU, which moves its throughput more than
# its own work does; its CPU time per request measures that work alone.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }

# per_request BEFORE AFTER REQUESTS: CPU ns per request between two cpu_ns readings.
per_request() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {printf "%.0f", (b - a) / n}'; }

# The server gets CPU 0 and the load generator CPU 1, so that neither steals the other's core
# (tokio sizes its pool from the affinity: one worker). Unpinned where taskset is missing.
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  on_server_cpu=(taskset -c 0)
  on_load_cpu=(taskset -c 1)
else
  on_server_cpu=()
  on_load_cpu=()
fi

# need_tools PROGRAM:PACKAGE...: installs, from Debian's packages, those whose program is missing.
need_tools() {
  local pair missing=()
  for pair in "$@"; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
  fi
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# pair_ratio SUBJECT BASELINE: the ratio of one pair, 3 decimals.
pair_ratio() { awk -v s="$1" -v b="$2" 'BEGIN {printf "%.3f", s/b}'; }

# summarize LABEL SUBJECT_NAME BASELINE_NAME SUBJECT_ARRAY BASELINE_ARRAY RATIO_ARRAY (array names)
# [UNIT, default req/s]
summarize() {
  local -n _subject=$4 _baseline=$5 _ratios=$6
  local unit=${7:-req/s} sm bm sorted
  sm=$(median "${_subject[@]}"); bm=$(median "${_baseline[@]}")
  sorted=$(printf '%s\n' "${_ratios[@]}" | sort -g)
  awk -v label="$1" -v sn="$2" -v bn="$3" -v s="$sm" -v b="$bm" -v n="${#_ratios[@]}" -v unit="$unit" \
    -v med="$(median "${_ratios[@]}")" -v lo="$(head -1 <<<"$sorted")" -v hi="$(tail -1 <<<"$sorted")" \
    'BEGIN {printf "%s: %s median %.0f %s, %s median %.0f %s; ratio %s/%s of the medians %.3f; per pair (%d): median %.3f, spread %.3f-%.3f\n", label, sn, s, unit, bn, b, unit, sn, bn, s/b, n, med, lo, hi}'
}

# What a run of one server does, shared by the scripts that start a server per run (serve.sh,
# tls.sh). Each fails the script, with the tool's report, on anything but a clean run.
bench_fail() { echo "$(basename "$0"): $1" >&2; shift; printf '%s\n' "$@" >&2; exit 1; }

# start_server NAME BINARY [VAR=VALUE...]: starts BINARY with the variables on the server CPU and
# waits for its `LISTENING ADDRESS` line; sets server_pid and address.
server_pid=""
start_server() {
  local name=$1 binary=$2 out
  shift 2
  out=$(mktemp)
  env "$@" "${on_server_cpu[@]}" "$binary" > "$out" 2>/dev/null &
  server_pid=$!
  for _ in $(seq 1 500); do grep -q LISTENING "$out" && break; sleep 0.01; done
  address=$(awk '/LISTENING/ {print $2}' "$out")
  rm -f "$out"
  [ -n "$address" ] || bench_fail "$name did not start"
}

# stop_server NAME: SIGTERM, and a clean exit.
stop_server() {
  kill -TERM "$server_pid"
  wait "$server_pid" || bench_fail "$1 did not exit cleanly on SIGTERM"
  server_pid=""
}

# The server's CPU time so far (user + system, every thread), in clock ticks.
server_cpu_ticks() { awk '{print $14 + $15}' "/proc/$server_pid/stat"; }

# For `trap kill_server EXIT`: a failed check must not leave a server running.
kill_server() { if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; fi; }

# wrk_rate NAME WRK_ARGS...: requests/s, wrk on the load CPU.
wrk_rate() {
  local name=$1 report
  shift
  # A command substitution runs without `set -e`: each failure exits by itself.
  report=$("${on_load_cpu[@]}" wrk "$@") || bench_fail "wrk against $name failed:" "$report"
  # wrk prints these two lines only when something went wrong.
  if grep -qE 'Non-2xx|Socket errors' <<<"$report"; then bench_fail "wrk against $name:" "$report"; fi
  awk '/Requests\/sec/ {print $2}' <<<"$report"
}

# h2load_rate NAME H2LOAD_ARGS...: requests/s, h2load on the load CPU. With -D it stops at the
# deadline: requests still in flight then are "started", not failed.
h2load_rate() {
  local name=$1 report
  shift
  report=$("${on_load_cpu[@]}" h2load "$@") || bench_fail "h2load against $name failed:" "$report"
  if ! awk '
      /^requests:/ { seen++; succeeded = $8; if ($10 != 0 || $12 != 0 || $14 != 0 || $8 == 0) bad = 1 }
      /^status codes:/ { seen++; if ($3 != succeeded || $5 != 0 || $7 != 0 || $9 != 0) bad = 1 }
      END { exit (seen == 2 && !bad) ? 0 : 1 }' <<<"$report"; then
    bench_fail "h2load against $name had failed, errored or non-2xx requests:" "$report"
  fi
  awk '/^finished in/ {print $4}' <<<"$report"
}
