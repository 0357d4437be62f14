#!/usr/bin/env bash
# HTTPS: graceful::serve(..).tls(..) against axum-server with rustls, both on ring, serving one axum
# hello world (src/bin/serve_hello.rs with TLS_CERT and TLS_KEY; settings in
# src/bin/shared/server_under_test.rs) with an ECDSA P-256 certificate made here. Per server
# process: requests/s over HTTP/1.1 keep-alive (wrk, no ALPN), over HTTP/2 chosen by ALPN (h2load),
# and full handshakes/s (wrk sending `Connection: close`: the server closes after each response
# and wrk opens a new connection, with a new SSL object and no session, so every request costs a
# full handshake). Interleaved pairs whose order alternates, medians, and the graceful/axum-server
# ratio with the spread of per-pair ratios; each also per second of the server's CPU time (from
# /proc), the cost of a request, which the other load on a shared machine moves less than the
# rate. Installs wrk, h2load and openssl when missing.
#   TLS_RUNS=9 TLS_SECONDS=4 benches/tls.sh    (GRACEFUL_DEFAULTS=1: graceful's defaults)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/pairs.sh
source benches/certificates.sh
need_tools wrk:wrk h2load:nghttp2-client openssl:openssl
cargo build --release -p graceful-benches --bin serve_hello
binary="${CARGO_TARGET_DIR:-target}/release/serve_hello"
runs=${TLS_RUNS:-9}
seconds=${TLS_SECONDS:-4}
certificates=$(mktemp -d)
trap 'kill_server; rm -rf "$certificates"' EXIT
make_certificates "$certificates"

clk_tck=$(getconf CLK_TCK)

# costed RATE_FUNCTION NAME ARGS...: the rate (requests/s) of one load against the running server,
# and its requests per second of the server's CPU time.
costed() {
  local rate before after
  before=$(server_cpu_ticks)
  rate=$("$@")
  after=$(server_cpu_ticks)
  awk -v r="$rate" -v s="$seconds" -v t=$((after - before)) -v hz="$clk_tck" \
    'BEGIN {printf "%s %.0f", r, (t > 0 ? r * s * hz / t : 0)}'
}

loads=(http1 http2 handshakes)
# $1: graceful or axum-server. Sets result[LOAD] ("RATE PER_CPU_SECOND") from one server process.
declare -A result
one_run() {
  start_server "SERVER=$1" "$binary" SERVER="$1" \
    TLS_CERT="$certificates/leaf.crt" TLS_KEY="$certificates/leaf.key"
  result[http1]=$(costed wrk_rate "$1" -t1 -c32 -d"${seconds}s" "https://$address/")
  result[http2]=$(costed h2load_rate "$1" -c32 -m10 -D "$seconds" "https://$address/")
  result[handshakes]=$(costed wrk_rate "$1" -t1 -c32 -d"${seconds}s" -H "Connection: close" \
    "https://$address/")
  stop_server "SERVER=$1"
}

# Per load and metric (rate, cpu): each side's values and the per-pair ratios.
for load in "${loads[@]}"; do
  for metric in rate cpu; do
    declare -a "g_${load}_${metric}=()" "a_${load}_${metric}=()" "r_${load}_${metric}=()"
  done
done
for i in $(seq 1 "$runs"); do
  if [ $((i % 2)) = 1 ]; then order=(graceful axum-server); else order=(axum-server graceful); fi
  declare -A graceful_run axum_run
  for server in "${order[@]}"; do
    one_run "$server"
    for load in "${loads[@]}"; do
      if [ "$server" = graceful ]; then graceful_run[$load]=${result[$load]}; else axum_run[$load]=${result[$load]}; fi
    done
  done
  line="pair $i (${order[0]} first)"
  for load in "${loads[@]}"; do
    read -r g_rate g_cpu <<<"${graceful_run[$load]}"
    read -r a_rate a_cpu <<<"${axum_run[$load]}"
    declare -n g_r="g_${load}_rate" a_r="a_${load}_rate" r_r="r_${load}_rate"
    declare -n g_c="g_${load}_cpu" a_c="a_${load}_cpu" r_c="r_${load}_cpu"
    g_r+=("$g_rate"); a_r+=("$a_rate"); r_r+=("$(pair_ratio "$g_rate" "$a_rate")")
    g_c+=("$g_cpu"); a_c+=("$a_cpu"); r_c+=("$(pair_ratio "$g_cpu" "$a_cpu")")
    line+=" | $load graceful $g_rate axum-server $a_rate (${r_r[-1]}; per CPU-s ${r_c[-1]})"
    unset -n g_r a_r r_r g_c a_c r_c
  done
  echo "$line"
done

label() {
  case $1 in
    http1) echo "HTTPS/1.1 (wrk -t1 -c32 -d${seconds}s)" ;;
    http2) echo "HTTP/2 over TLS (h2load -c32 -m10 -D ${seconds})" ;;
    handshakes) echo "full handshakes (wrk -t1 -c32 -d${seconds}s, Connection: close)" ;;
  esac
}
for load in "${loads[@]}"; do
  summarize "$(label "$load")" graceful axum-server "g_${load}_rate" "a_${load}_rate" "r_${load}_rate"
  summarize "$(label "$load"), per server CPU-second" graceful axum-server \
    "g_${load}_cpu" "a_${load}_cpu" "r_${load}_cpu" "req/CPU-s"
done
