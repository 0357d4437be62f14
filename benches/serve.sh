#!/usr/bin/env bash
# graceful::serve against axum::serve on one axum hello world (src/bin/serve_hello.rs, settings in
# its header): requests/s on loopback over HTTP/1.1 keep-alive (wrk) and h2c (h2load), in
# interleaved pairs whose order alternates, medians and the graceful/axum ratio with the spread of
# per-pair ratios; and the server's CPU time per request, the steadier figure when other work
# shares the machine. Installs wrk and h2load (Debian's wrk, nghttp2-client) when missing. Fails
# on any non-2xx response or socket error.
#   SERVE_RUNS=9 SERVE_SECONDS=3 benches/serve.sh    (GRACEFUL_DEFAULTS=1: graceful's defaults)
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
runs=${SERVE_RUNS:-9}
seconds=${SERVE_SECONDS:-3}

server_pid=""
# A failed check must not leave a server running.
cleanup() { if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT
fail() { echo "serve.sh: $1" >&2; shift; printf '%s\n' "$@" >&2; exit 1; }

# $1: graceful or axum. Sets h1 and h2 (requests/s), c1 and c2 (server CPU ns per request) from
# one server process.
one_run() {
  local out address report before
  out=$(mktemp)
  SERVER=$1 "${on_server_cpu[@]}" "$binary" > "$out" 2>/dev/null &
  server_pid=$!
  for _ in $(seq 1 500); do grep -q LISTENING "$out" && break; sleep 0.01; done
  address=$(awk '/LISTENING/ {print $2}' "$out")
  rm -f "$out"
  [ -n "$address" ] || fail "SERVER=$1 did not start"

  before=$(cpu_ns "$server_pid")
  report=$("${on_load_cpu[@]}" wrk -t1 -c32 -d"${seconds}s" "http://$address/")
  c1=$(per_request "$before" "$(cpu_ns "$server_pid")" "$(awk '/requests in/ {print $1}' <<<"$report")")
  # wrk prints these two lines only when something went wrong.
  if grep -qE 'Non-2xx|Socket errors' <<<"$report"; then fail "wrk against $1:" "$report"; fi
  h1=$(awk '/Requests\/sec/ {print $2}' <<<"$report")

  # -D stops at the deadline: requests still in flight then are "started", not failed.
  before=$(cpu_ns "$server_pid")
  report=$("${on_load_cpu[@]}" h2load -c32 -m10 -D "$seconds" "http://$address/")
  c2=$(per_request "$before" "$(cpu_ns "$server_pid")" "$(awk '/^requests:/ {print $8}' <<<"$report")")
  if ! awk '
      /^requests:/ { seen++; succeeded = $8; if ($10 != 0 || $12 != 0 || $14 != 0 || $8 == 0) bad = 1 }
      /^status codes:/ { seen++; if ($3 != succeeded || $5 != 0 || $7 != 0 || $9 != 0) bad = 1 }
      END { exit (seen == 2 && !bad) ? 0 : 1 }' <<<"$report"; then
    fail "h2load against $1 had failed, errored or non-2xx requests:" "$report"
  fi
  h2=$(awk '/^finished in/ {print $4}' <<<"$report")
  kill -TERM "$server_pid"
  wait "$server_pid" || fail "SERVER=$1 did not exit cleanly on SIGTERM"
  server_pid=""
}

g1=(); a1=(); g2=(); a2=(); r1=(); r2=(); gc1=(); ac1=(); gc2=(); ac2=(); rc1=(); rc2=()
for i in $(seq 1 "$runs"); do
  if [ $((i % 2)) = 1 ]; then order=(graceful axum); else order=(axum graceful); fi
  for server in "${order[@]}"; do
    one_run "$server"
    if [ "$server" = graceful ]; then gh1=$h1; gh2=$h2; gc1+=("$c1"); gc2+=("$c2")
    else ah1=$h1; ah2=$h2; ac1+=("$c1"); ac2+=("$c2"); fi
  done
  g1+=("$gh1"); a1+=("$ah1"); g2+=("$gh2"); a2+=("$ah2")
  r1+=("$(pair_ratio "$gh1" "$ah1")")
  r2+=("$(pair_ratio "$gh2" "$ah2")")
  rc1+=("$(pair_ratio "${ac1[-1]}" "${gc1[-1]}")")
  rc2+=("$(pair_ratio "${ac2[-1]}" "${gc2[-1]}")")
  printf 'pair %d (%s first): HTTP/1.1 graceful %s axum %s (%s; CPU/request %s ns, %s ns: %s) | h2c graceful %s axum %s (%s; CPU/request %s ns, %s ns: %s)\n' \
    "$i" "${order[0]}" "$gh1" "$ah1" "${r1[-1]}" "${gc1[-1]}" "${ac1[-1]}" "${rc1[-1]}" \
    "$gh2" "$ah2" "${r2[-1]}" "${gc2[-1]}" "${ac2[-1]}" "${rc2[-1]}"
done

summarize "HTTP/1.1 (wrk -t1 -c32 -d${seconds}s)" graceful axum g1 a1 r1
summarize "h2c (h2load -c32 -m10 -D ${seconds})" graceful axum g2 a2 r2
summarize_cpu "HTTP/1.1" graceful axum gc1 ac1 rc1
summarize_cpu "h2c" graceful axum gc2 ac2 rc2
