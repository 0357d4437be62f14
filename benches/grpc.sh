#!/usr/bin/env bash
# Unary gRPC throughput: the Greeter's SayHello under graceful::serve against tonic's own server
# (benches/src/bin/grpc_hello.rs), h2load on loopback, interleaved pairs, medians and the ratio.
# Installs nghttp2-client (Debian: h2load, nghttp) when missing.
#   GRPC_RUNS=9 GRPC_SECONDS=3 benches/grpc.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/pairs.sh
if ! command -v h2load >/dev/null 2>&1 || ! command -v nghttp >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nghttp2-client
fi
cargo build --release -p graceful-benches --bin grpc_hello
binary=${CARGO_TARGET_DIR:-target}/release/grpc_hello
runs=${GRPC_RUNS:-9}
seconds=${GRPC_SECONDS:-3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One length-prefixed message, uncompressed: flag 0, length 7 (big-endian), then
# HelloRequest{name: "world"} (field 1, wire type 2: 0x0a, length 5, the bytes).
printf '\000\000\000\000\007\012\005world' > "$work/request"
path=/greeter.Greeter/SayHello # proto package `greeter`, service `Greeter`
headers=(-H 'content-type: application/grpc' -H 'te: trailers')

start_server() { # $1: graceful or tonic; sets pid and address
  local out="$work/server-$1.out"
  : > "$out" # exists before the server writes to it, for the polling below
  SERVER=$1 "${on_server_cpu[@]}" "$binary" > "$out" 2>"$work/server-$1.err" &
  pid=$!
  address=""
  for _ in $(seq 1 500); do
    address=$(awk '/LISTENING/ {print $2}' "$out")
    [ -n "$address" ] && return 0
    sleep 0.01
  done
  echo "grpc.sh: SERVER=$1 did not print LISTENING" >&2
  kill -TERM "$pid" 2>/dev/null || true
  return 1
}

stop_server() {
  kill -TERM "$pid"
  wait "$pid" || true
}

# h2load judges calls by HTTP status; a failed call is still 200 with a non-zero grpc-status in
# its trailers. So each side answers one call first, read in full by nghttp.
check_trailers() { # $1: graceful or tonic
  local out="$work/nghttp-$1.out"
  start_server "$1" || return 1
  timeout 10 nghttp -nv "${headers[@]}" -d "$work/request" "http://$address$path" > "$out" 2>&1 || true
  stop_server
  if ! grep -aq ':status: 200' "$out" || ! grep -aEq 'grpc-status: 0[[:space:]]*$' "$out"; then
    echo "grpc.sh: SERVER=$1 did not answer SayHello with :status 200 and grpc-status 0:" >&2
    cat "$out" >&2
    return 1
  fi
  echo "SERVER=$1: SayHello answered, grpc-status: 0"
}

one_run() { # $1: graceful or tonic; prints requests per second
  local out="$work/h2load-$1.out" bad
  start_server "$1" || return 1
  "${on_load_cpu[@]}" h2load -c16 -m16 -D "$seconds" "${headers[@]}" -d "$work/request" "http://$address$path" \
    > "$out" 2>&1 || true
  stop_server
  # Any failed, errored or timed-out request, any non-2xx, or nothing succeeded.
  bad=$(awk '
    /^requests:/ { seen++; if ($8 + 0 == 0 || $10 + 0 > 0 || $12 + 0 > 0 || $14 + 0 > 0) bad = 1 }
    /^status codes:/ { seen++; if ($5 + 0 > 0 || $7 + 0 > 0 || $9 + 0 > 0) bad = 1 }
    END { print (seen == 2 && !bad) ? 0 : 1 }' "$out")
  if [ "$bad" != 0 ]; then
    echo "grpc.sh: h2load against SERVER=$1 reported failures:" >&2
    cat "$out" >&2
    return 1
  fi
  awk '/^finished in/ {print $4}' "$out"
}

check_trailers graceful
check_trailers tonic

graceful=(); tonic=(); ratios=()
for i in $(seq 1 "$runs"); do
  # Alternate who goes first, so that a drift in the machine's speed does not favour one side.
  if [ $((i % 2)) = 1 ]; then
    g=$(one_run graceful); t=$(one_run tonic); first=graceful
  else
    t=$(one_run tonic); g=$(one_run graceful); first=tonic
  fi
  graceful+=("$g"); tonic+=("$t")
  ratio=$(pair_ratio "$g" "$t")
  ratios+=("$ratio")
  echo "pair $i ($first first): graceful $g req/s, tonic $t req/s, ratio $ratio"
done
summarize "unary SayHello (h2load -c16 -m16 -D ${seconds})" graceful tonic graceful tonic ratios
