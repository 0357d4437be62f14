#!/usr/bin/env bash
# graceful::serve against axum::serve (src/bin/serve_hello.rs), by the server's CPU time per
# request rather than by throughput: both servers run at once on CPU 0, each loaded by its own
# wrk (then h2load) on CPU 1 for the same seconds, so that whatever else runs on the machine
# (other builds, a neighbour's VM stealing the CPU) weighs on both alike. On a shared 2-core
# machine, runs taken one after the other (serve.sh) move by ±10% and more; these by about ±2%.
# Which server starts first alternates. Prints, per run and as medians with their spread, the
# ratio axum/graceful of the CPU ns per request: above 1, graceful does less work per request.
#   SERVE_RUNS=15 SERVE_SECONDS=3 benches/serve_cpu.sh
#   GRACEFUL_DEFAULTS=1: graceful's defaults (GRACEFUL_H2_PINGS=off: all but its HTTP/2 pings)
#   SERVE_HELLO=path: another build of serve_hello for the graceful side (a before/after), whose
#   own axum side is not used.
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/pairs.sh
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v h2load >/dev/null 2>&1 || missing+=(nghttp2-client)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
cargo build --release -p graceful-benches --bin serve_hello
binary="${CARGO_TARGET_DIR:-target}/release/serve_hello"
graceful_binary=${SERVE_HELLO:-$binary}
runs=${SERVE_RUNS:-15}
seconds=${SERVE_SECONDS:-3}

pids=()
# A failed check must not leave a server running.
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
fail() { echo "serve_cpu.sh: $1" >&2; shift; printf '%s\n' "$@" >&2; exit 1; }

# start NAME BINARY: starts a server (SERVER=NAME) on the server CPU; sets pid and address.
start() {
  local out
  out=$(mktemp)
  SERVER=$1 "${on_server_cpu[@]}" "$2" > "$out" 2>/dev/null &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 500); do grep -q LISTENING "$out" && break; sleep 0.01; done
  address=$(awk '/LISTENING/ {print $2}' "$out")
  rm -f "$out"
  [ -n "$address" ] || fail "SERVER=$1 did not start"
}

# load TOOL: runs TOOL (wrk or h2load) against both servers at once; sets gc and ac, the CPU ns
# per request of graceful and of axum.
load() {
  local g0 a0 g_out a_out g_load a_load g_n a_n
  g_out=$(mktemp); a_out=$(mktemp)
  g0=$(cpu_ns "$g_pid"); a0=$(cpu_ns "$a_pid")
  if [ "$1" = wrk ]; then
    "${on_load_cpu[@]}" wrk -t1 -c32 -d"${seconds}s" "http://$g_address/" > "$g_out" & g_load=$!
    "${on_load_cpu[@]}" wrk -t1 -c32 -d"${seconds}s" "http://$a_address/" > "$a_out" & a_load=$!
  else
    "${on_load_cpu[@]}" h2load -c32 -m10 -D "$seconds" "http://$g_address/" > "$g_out" & g_load=$!
    "${on_load_cpu[@]}" h2load -c32 -m10 -D "$seconds" "http://$a_address/" > "$a_out" & a_load=$!
  fi
  wait "$g_load" "$a_load"
  gc=$(cpu_ns "$g_pid"); ac=$(cpu_ns "$a_pid")
  if [ "$1" = wrk ]; then
    # wrk prints these two lines only when something went wrong.
    if grep -qE 'Non-2xx|Socket errors' "$g_out" "$a_out"; then fail "wrk:" "$(cat "$g_out" "$a_out")"; fi
    g_n=$(awk '/requests in/ {print $1}' "$g_out"); a_n=$(awk '/requests in/ {print $1}' "$a_out")
  else
    for out in "$g_out" "$a_out"; do
      awk '
        /^requests:/ { seen++; succeeded = $8; if ($10 != 0 || $12 != 0 || $14 != 0 || $8 == 0) bad = 1 }
        /^status codes:/ { seen++; if ($3 != succeeded || $5 != 0 || $7 != 0 || $9 != 0) bad = 1 }
        END { exit (seen == 2 && !bad) ? 0 : 1 }' "$out" || fail "h2load had failed, errored or non-2xx requests:" "$(cat "$out")"
    done
    g_n=$(awk '/^requests:/ {print $8}' "$g_out"); a_n=$(awk '/^requests:/ {print $8}' "$a_out")
  fi
  rm -f "$g_out" "$a_out"
  gc=$(per_request "$g0" "$gc" "$g_n"); ac=$(per_request "$a0" "$ac" "$a_n")
}

gc1=(); ac1=(); gc2=(); ac2=(); rc1=(); rc2=()
for i in $(seq 1 "$runs"); do
  pids=()
  if [ $((i % 2)) = 1 ]; then
    start graceful "$graceful_binary"; g_pid=$pid; g_address=$address
    start axum "$binary"; a_pid=$pid; a_address=$address
    first=graceful
  else
    start axum "$binary"; a_pid=$pid; a_address=$address
    start graceful "$graceful_binary"; g_pid=$pid; g_address=$address
    first=axum
  fi
  load wrk; gc1+=("$gc"); ac1+=("$ac"); rc1+=("$(pair_ratio "$ac" "$gc")")
  load h2load; gc2+=("$gc"); ac2+=("$ac"); rc2+=("$(pair_ratio "$ac" "$gc")")
  kill -TERM "$g_pid" "$a_pid"
  wait "$g_pid" || fail "graceful did not exit cleanly on SIGTERM"
  wait "$a_pid" || fail "axum did not exit cleanly on SIGTERM"
  printf 'run %d (%s first): CPU ns per request, HTTP/1.1 graceful %s axum %s (%s) | h2c graceful %s axum %s (%s)\n' \
    "$i" "$first" "${gc1[-1]}" "${ac1[-1]}" "${rc1[-1]}" "${gc2[-1]}" "${ac2[-1]}" "${rc2[-1]}"
done
pids=()

summarize_cpu "HTTP/1.1 (wrk -t1 -c32 -d${seconds}s, at once)" graceful axum gc1 ac1 rc1
summarize_cpu "h2c (h2load -c32 -m10 -D ${seconds}, at once)" graceful axum gc2 ac2 rc2
