#!/usr/bin/env bash
# Benchmark 3: an axum hello world on axum::serve with and without graceful::TrackLayer under wrk
# on loopback, interleaved pairs whose order alternates, throughput ratio. Installs wrk (Debian
# package) when missing. VARIANT=2 and 3 are diagnostics (src/bin/http_hello.rs).
#   HTTP_RUNS=9 HTTP_SECONDS=3 benches/http.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/pairs.sh
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk
fi
cargo build --release -p graceful-benches --bin http_hello
binary="${CARGO_TARGET_DIR:-target}/release/http_hello"
runs=${HTTP_RUNS:-9}
seconds=${HTTP_SECONDS:-3}

one_run() { # $1: the TRACKED value (empty: the bare router); prints requests per second
  local out pid address report
  out=$(mktemp)
  TRACKED=$1 "${on_server_cpu[@]}" "$binary" > "$out" 2>/dev/null &
  pid=$!
  for _ in $(seq 1 500); do grep -q LISTENING "$out" && break; sleep 0.01; done
  address=$(awk '/LISTENING/ {print $2}' "$out")
  report=$("${on_load_cpu[@]}" wrk -t1 -c32 -d"${seconds}s" "http://$address/")
  if grep -qE 'Non-2xx|Socket errors' <<<"$report"; then echo "$report" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$report"
  kill -TERM "$pid"; wait "$pid" || true
  rm -f "$out"
}

plain=(); tracked=(); ratios=()
for i in $(seq 1 "$runs"); do
  if [ $((i % 2)) = 1 ]; then
    p=$(one_run ""); t=$(one_run "${VARIANT:-1}"); first=bare
  else
    t=$(one_run "${VARIANT:-1}"); p=$(one_run ""); first=tracked
  fi
  plain+=("$p"); tracked+=("$t"); ratios+=("$(pair_ratio "$t" "$p")")
  echo "pair $i ($first first): bare $p, tracked $t, ratio ${ratios[-1]}"
done
summarize "wrk -t1 -c32 -d${seconds}s, TRACKED=${VARIANT:-1}" tracked bare tracked plain ratios
