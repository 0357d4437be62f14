#!/usr/bin/env bash
# Server heap per idle connection and per in-flight request, graceful::serve against axum::serve
# on one axum Router, HTTP/1.1 and h2c (src/bin/serve_heap.rs: method and settings in its header).
# "graceful (defaults)" keeps graceful's header read timeout and HTTP/2 keep-alive pings, which the
# other rows have off (settings: src/bin/shared/server_under_test.rs). The HTTPS rows serve the same
# router through `Serve::tls` and through axum-server with rustls, on a certificate made here.
#   HEAP_CONNECTIONS=1000 benches/serve_heap.sh    (HEAP_TLS_ONLY=1: the HTTPS rows alone)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p graceful-benches --bin serve_heap
binary="${CARGO_TARGET_DIR:-target}/release/serve_heap"
n=${HEAP_CONNECTIONS:-1000}
# Past graceful's default max_connections the extra connections would wait unaccepted.
if [ "$n" -lt 1 ] || [ "$n" -gt 10000 ]; then
  echo "serve_heap.sh: HEAP_CONNECTIONS must be 1..10000" >&2; exit 1
fi
# Client and server each hold a descriptor per connection, plus their own few.
need=$((n + 256))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  ulimit -n "$need" || { echo "serve_heap.sh: cannot raise the fd limit to $need (hard: $(ulimit -Hn))" >&2; exit 1; }
fi

source benches/pairs.sh
source benches/certificates.sh
need_tools openssl:openssl
results=$(mktemp)
certificates=$(mktemp -d)
trap 'rm -rf "$results" "$certificates"' EXIT
make_certificates "$certificates"
tls=(TLS_CERT="$certificates/leaf.crt" TLS_KEY="$certificates/leaf.key" TLS_CA="$certificates/ca.crt")
measure() { # $1: row label; then environment for the server
  local label=$1 out; shift
  out=$(env "$@" "$binary") || { echo "serve_heap.sh: the $label run failed" >&2; exit 1; }
  awk -v label="$label" '/^RESULT/ {print label "\t" $0}' <<<"$out" >> "$results"
}
if [ -z "${HEAP_TLS_ONLY:-}" ]; then
  measure "graceful" SERVER=graceful
  measure "graceful (defaults)" SERVER=graceful GRACEFUL_DEFAULTS=1
  measure "axum" SERVER=axum
fi
measure "graceful, TLS" SERVER=graceful "${tls[@]}"
measure "graceful (defaults), TLS" SERVER=graceful GRACEFUL_DEFAULTS=1 "${tls[@]}"
measure "axum-server, TLS" SERVER=axum-server "${tls[@]}"

echo "server heap, $n connections, live bytes (allocated minus freed) per connection or request"
awk -F'\t' '
  function field(name,    i, parts) {
    for (i = 1; i <= NF2; i++) { split(words[i], parts, "="); if (parts[1] == name) return parts[2] }
  }
  BEGIN { printf "| %-24s | %-8s | %15s | %17s | %13s | %12s |\n", "server", "protocol", "idle connection", "in-flight request", "after release", "left, total"
          print "|--------------------------|----------|-----------------|-------------------|---------------|--------------|" }
  { NF2 = split($2, words, " ")
    printf "| %-24s | %-8s | %15s | %17s | %13s | %12s |\n", $1, words[2], field("idle_per_connection"),
      field("in_flight_per_request"), field("after_release_per_connection"), field("left_after_close") }
' "$results"
echo "after release: per connection, against the idle figure (expect about 0); left, total: after every connection closed, against before any opened"
