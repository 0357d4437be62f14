#!/usr/bin/env bash
# HTTPS: graceful::serve(..).tls(..) against axum-server with rustls, both on ring, serving one axum
# hello world (src/bin/serve_hello.rs with TLS_CERT and TLS_KEY; settings in
# src/bin/shared/server_under_test.rs) with an ECDSA P-256 certificate made here. Per server
# process: requests/s over HTTP/1.1 keep-alive (wrk, no ALPN), over HTTP/2 chosen by ALPN (h2load),
# and full handshakes/s (wrk sending `Connection: close`: the server closes after each response
# and wrk opens a new connection, with a new SSL object and no session, so every request costs a
# full handshake). Interleaved pairs whose order alternates, medians, and the graceful/axum-server
# ratio with the spread of per-pair ratios. Installs wrk, h2load and openssl when missing.
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

# $1: graceful or axum-server. Sets h1, h2 and hs (requests/s) from one server process.
one_run() {
  start_server "SERVER=$1" "$binary" SERVER="$1" \
    TLS_CERT="$certificates/leaf.crt" TLS_KEY="$certificates/leaf.key"
  h1=$(wrk_rate "$1" -t1 -c32 -d"${seconds}s" "https://$address/")
  h2=$(h2load_rate "$1" -c32 -m10 -D "$seconds" "https://$address/")
  hs=$(wrk_rate "$1" -t1 -c32 -d"${seconds}s" -H "Connection: close" "https://$address/")
  stop_server "SERVER=$1"
}

g1=(); a1=(); g2=(); a2=(); gs=(); as=(); r1=(); r2=(); rs=()
for i in $(seq 1 "$runs"); do
  if [ $((i % 2)) = 1 ]; then order=(graceful axum-server); else order=(axum-server graceful); fi
  for server in "${order[@]}"; do
    one_run "$server"
    if [ "$server" = graceful ]; then gh1=$h1; gh2=$h2; ghs=$hs; else ah1=$h1; ah2=$h2; ahs=$hs; fi
  done
  g1+=("$gh1"); a1+=("$ah1"); g2+=("$gh2"); a2+=("$ah2"); gs+=("$ghs"); as+=("$ahs")
  r1+=("$(pair_ratio "$gh1" "$ah1")")
  r2+=("$(pair_ratio "$gh2" "$ah2")")
  rs+=("$(pair_ratio "$ghs" "$ahs")")
  printf 'pair %d (%s first): HTTP/1.1 graceful %s axum-server %s (%s) | HTTP/2 graceful %s axum-server %s (%s) | handshakes graceful %s axum-server %s (%s)\n' \
    "$i" "${order[0]}" "$gh1" "$ah1" "${r1[-1]}" "$gh2" "$ah2" "${r2[-1]}" "$ghs" "$ahs" "${rs[-1]}"
done

summarize "HTTPS/1.1 (wrk -t1 -c32 -d${seconds}s)" graceful axum-server g1 a1 r1
summarize "HTTP/2 over TLS (h2load -c32 -m10 -D ${seconds})" graceful axum-server g2 a2 r2
summarize "full handshakes (wrk -t1 -c32 -d${seconds}s, Connection: close)" graceful axum-server gs as rs
