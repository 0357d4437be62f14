#!/usr/bin/env bash
# Benchmark 8: axum hello world with and without graceful::TrackLayer under wrk on loopback,
# interleaved runs, throughput ratio. Installs wrk (Debian package) when missing.
#   HTTP_RUNS=5 HTTP_SECONDS=3 benches/http.sh
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk
fi
cargo build --release -p graceful-benches --bin http_hello
runs=${HTTP_RUNS:-5}
seconds=${HTTP_SECONDS:-3}

one_run() { # $1: empty or TRACKED=1; prints requests per second
  local out pid address
  out=$(mktemp)
  env $1 target/release/http_hello > "$out" 2>/dev/null &
  pid=$!
  for _ in $(seq 1 500); do grep -q LISTENING "$out" && break; sleep 0.01; done
  address=$(awk '/LISTENING/ {print $2}' "$out")
  wrk -t1 -c32 -d"${seconds}s" "http://$address/" | awk '/Requests\/sec/ {print $2}'
  kill -TERM "$pid"; wait "$pid" || true
  rm -f "$out"
}

plain=(); tracked=()
for _ in $(seq 1 "$runs"); do
  plain+=("$(one_run "")")
  tracked+=("$(one_run TRACKED=${VARIANT:-1})")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
p=$(median "${plain[@]}"); t=$(median "${tracked[@]}")
echo "plain requests/s:   ${plain[*]} (median $p)"
echo "tracked requests/s: ${tracked[*]} (median $t)"
awk -v t="$t" -v p="$p" 'BEGIN {printf "throughput ratio tracked/plain: %.3f\n", t/p}'
