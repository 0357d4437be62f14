#!/usr/bin/env bash
# graceful::serve against axum::serve on one axum hello world (src/bin/serve_hello.rs, settings in
# its header): requests/s on loopback over HTTP/1.1 keep-alive (wrk) and h2c (h2load), in
# interleaved pairs whose order alternates, medians and the graceful/axum ratio with the spread of
# per-pair ratios. Installs wrk and h2load (Debian's wrk, nghttp2-client) when missing. Fails on
# any non-2xx response or socket error.
#   SERVE_RUNS=9 SERVE_SECONDS=3 benches/serve.sh    (GRACEFUL_DEFAULTS=1: graceful's defaults)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/pairs.sh
need_tools wrk:wrk h2load:nghttp2-client
cargo build --release -p graceful-benches --bin serve_hello
binary="${CARGO_TARGET_DIR:-target}/release/serve_hello"
runs=${SERVE_RUNS:-9}
seconds=${SERVE_SECONDS:-3}

trap kill_server EXIT

# $1: graceful or axum. Sets h1 and h2 (requests/s) from one server process.
one_run() {
  start_server "SERVER=$1" "$binary" SERVER="$1"
  h1=$(wrk_rate "$1" -t1 -c32 -d"${seconds}s" "http://$address/")
  h2=$(h2load_rate "$1" -c32 -m10 -D "$seconds" "http://$address/")
  stop_server "SERVER=$1"
}

g1=(); a1=(); g2=(); a2=(); r1=(); r2=()
for i in $(seq 1 "$runs"); do
  if [ $((i % 2)) = 1 ]; then order=(graceful axum); else order=(axum graceful); fi
  for server in "${order[@]}"; do
    one_run "$server"
    if [ "$server" = graceful ]; then gh1=$h1; gh2=$h2; else ah1=$h1; ah2=$h2; fi
  done
  g1+=("$gh1"); a1+=("$ah1"); g2+=("$gh2"); a2+=("$ah2")
  r1+=("$(pair_ratio "$gh1" "$ah1")")
  r2+=("$(pair_ratio "$gh2" "$ah2")")
  printf 'pair %d (%s first): HTTP/1.1 graceful %s axum %s (%s) | h2c graceful %s axum %s (%s)\n' \
    "$i" "${order[0]}" "$gh1" "$ah1" "${r1[-1]}" "$gh2" "$ah2" "${r2[-1]}"
done

summarize "HTTP/1.1 (wrk -t1 -c32 -d${seconds}s)" graceful axum g1 a1 r1
summarize "h2c (h2load -c32 -m10 -D ${seconds})" graceful axum g2 a2 r2
