#!/usr/bin/env bash
# Benchmark 11: where HAProxy's health checks start to fail a healthy service on a starved CPU.
# Two healthy instances of src/bin/restart_service.rs (the mixed harness's service, debug build as
# the tests run it) behind HAProxy with the harness's checks (`inter 100ms fall 2 rise 1`, GET
# /readyz), under stress-ng CPU hogs at the service's own priority; wrk loads HAProxy's frontend.
# Each run counts the DOWN transitions of the two servers (`chkdown` of the stats page), the
# failed checks (`chkfail`) and the clients' non-2xx answers (503: both servers down at once).
# A third dimension: each instance in a cgroup v1 of its own under a CPU quota (a pod at its CPU
# limit), `none` for no cgroup. Runs interleave: each round goes through every quota, hog count
# and `timeout check`.
#   CHECK_SECONDS=10 CHECK_ROUNDS=2 CHECK_HOGS="0 2 4 8" CHECK_TIMEOUTS="none 100 250 500 1000 2000"
#   CHECK_QUOTAS="none" (e.g. "none 25000 10000": µs of CPU per 100 ms period)
#   (hogs default to 0, nproc, 2×nproc, 4×nproc; `none` is no `timeout check`, i.e. inter)
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/pairs.sh
need_tools stress-ng:stress-ng haproxy:haproxy wrk:wrk
CARGO_INCREMENTAL=0 cargo build -p graceful-tests-integration --bin restart_service
service="${CARGO_TARGET_DIR:-target}/debug/restart_service"
n=$(nproc)
seconds=${CHECK_SECONDS:-10}
rounds=${CHECK_ROUNDS:-2}
read -r -a hog_counts <<<"${CHECK_HOGS:-0 $n $((2 * n)) $((4 * n))}"
read -r -a timeouts <<<"${CHECK_TIMEOUTS:-none 100 250 500 1000 2000}"
read -r -a quotas <<<"${CHECK_QUOTAS:-none}"
W=/var/lib/graceful-haproxy-bench
CGROUP=/sys/fs/cgroup/cpu/graceful-haproxy-bench
rm -rf "$W" && mkdir -p "$W"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
pids=()
hogs_pid=""
cleanup() {
  local pid
  for pid in "${pids[@]}" $hogs_pid; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}" $hogs_pid; do wait "$pid" 2>/dev/null || true; done
  for slot in a b; do [ ! -d "$CGROUP/$slot" ] || rmdir "$CGROUP/$slot" || true; done
  [ ! -d "$CGROUP" ] || rmdir "$CGROUP" || true
  rm -rf "$W"
}
trap cleanup EXIT

# The two instances, healthy all along: started once, unstarved.
ports=()
for name in a b; do
  port=$(free_port)
  env LISTEN_ADDR="127.0.0.1:$port" DATABASE_URL="sqlite://$W/$name.db" GRACEFUL_PRE_STOP=1s \
    "$service" >"$W/$name.out" 2>&1 &
  pids+=($!)
  ports+=("$port")
  for _ in $(seq 300); do grep -q listening "$W/$name.out" && break; sleep 0.1; done
  grep -q listening "$W/$name.out" || bench_fail "instance $name did not start" "$(cat "$W/$name.out")"
done

# limit QUOTA: both instances into cgroups of their own with QUOTA µs per 100 ms, or back to the
# root cgroup for `none`.
limit() {
  local slot i=0
  for slot in a b; do
    if [ "$1" = none ]; then
      echo "${pids[$i]}" >/sys/fs/cgroup/cpu/cgroup.procs
    else
      mkdir -p "$CGROUP/$slot"
      echo 100000 >"$CGROUP/$slot/cpu.cfs_period_us"
      echo "$1" >"$CGROUP/$slot/cpu.cfs_quota_us"
      echo "${pids[$i]}" >"$CGROUP/$slot/cgroup.procs"
    fi
    i=$((i + 1))
  done
}

# run QUOTA HOGS TIMEOUT: one run; prints `quota hogs timeout down failed_checks sent non_2xx`.
run() {
  local quota=$1 hogs=$2 timeout=$3 front stats check_line haproxy_pid report csv
  front=$(free_port)
  stats=$(free_port)
  check_line=""
  [ "$timeout" = none ] || check_line="    timeout check ${timeout}ms"
  cat >"$W/haproxy.cfg" <<EOF
global
    maxconn 1000
defaults
    mode http
    retries 0
    timeout connect 1s
    timeout client 30s
    timeout server 30s
$check_line
frontend web
    bind 127.0.0.1:$front
    default_backend services
backend services
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    server a 127.0.0.1:${ports[0]} check inter 100ms fall 2 rise 1
    server b 127.0.0.1:${ports[1]} check inter 100ms fall 2 rise 1
listen stats
    bind 127.0.0.1:$stats
    stats enable
    stats uri /stats
EOF
  haproxy -db -f "$W/haproxy.cfg" >/dev/null 2>&1 &
  haproxy_pid=$!
  pids+=("$haproxy_pid")
  # Both UP before the load: a bounded poll of HAProxy's own view.
  for _ in $(seq 300); do
    [ "$(curl -s "http://127.0.0.1:$stats/stats;csv" | awk -F, '$1 == "services" && ($2 == "a" || $2 == "b") && $18 ~ /^UP/' | wc -l)" = 2 ] && break
    sleep 0.1
  done
  report=$(wrk -t 1 -c 4 -d "${seconds}s" "http://127.0.0.1:$front/readyz" 2>&1) || true
  csv=$(curl -s "http://127.0.0.1:$stats/stats;csv")
  kill -TERM "$haproxy_pid" 2>/dev/null || true
  wait "$haproxy_pid" 2>/dev/null || true
  pids=("${pids[@]:0:2}")
  # wrk failed outright: no count to give.
  grep -q 'requests in' <<<"$report" || bench_fail "wrk against HAProxy failed:" "$report"
  # Columns: 22 chkfail, 23 chkdown (the servers' rows).
  awk -F, -v quota="$quota" -v hogs="$hogs" -v timeout="$timeout" \
    -v sent="$(awk '/requests in/ {print $1}' <<<"$report")" \
    -v non2xx="$(awk '/Non-2xx/ {print $5}' <<<"$report")" \
    '$1 == "services" && ($2 == "a" || $2 == "b") {fail += $22; down += $23}
     END {printf "%s %s %s %d %d %d %d\n", quota, hogs, timeout, down, fail, sent, non2xx + 0}' <<<"$csv"
}

results="$W/results"
: >"$results"
echo "haproxy_checks: $seconds s a run, $rounds rounds, quotas ${quotas[*]} µs/100 ms, hogs ${hog_counts[*]} (nproc $n), timeout check ${timeouts[*]} ms, inter 100ms fall 2 rise 1"
for round in $(seq "$rounds"); do
  for quota in "${quotas[@]}"; do
  limit "$quota"
  for hogs in "${hog_counts[@]}"; do
    hogs_pid=""
    if [ "$hogs" -gt 0 ]; then
      stress-ng --cpu "$hogs" --timeout 0 --quiet &
      hogs_pid=$!
    fi
    for timeout in "${timeouts[@]}"; do
      run "$quota" "$hogs" "$timeout" >>"$results"
      echo "  round $round: quota hogs timeout down failed_checks sent non_2xx = $(tail -n 1 "$results")"
    done
    if [ -n "$hogs_pid" ]; then kill -TERM "$hogs_pid"; wait "$hogs_pid" 2>/dev/null || true; hogs_pid=""; fi
  done
  done
done

echo "haproxy_checks summary (sums over $rounds rounds of $seconds s; DOWN transitions / failed checks / 503s of sent):"
awk '{k = $1 " " $2 " " $3; if (!(k in seen)) {seen[k] = 1; order[++n] = k}
      down[k] += $4; fail[k] += $5; sent[k] += $6; bad[k] += $7}
     END {printf "  %6s %5s %8s %6s %13s %12s %8s\n", "quota", "hogs", "timeout", "DOWN", "failed checks", "sent", "503";
          for (i = 1; i <= n; i++) {split(order[i], p, " ");
            printf "  %6s %5s %8s %6d %13d %12d %8d\n", p[1], p[2], p[3], down[order[i]], fail[order[i]], sent[order[i]], bad[order[i]]}}' "$results"
