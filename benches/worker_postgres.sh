#!/usr/bin/env bash
# Benchmark 8: jobs per second of examples/worker_postgres with no-op jobs against the same loop
# on plain #[tokio::main] (tests-integration/src/bin/plain_worker_postgres.rs), on a private
# PostgreSQL (scripts/postgres, destroyed at exit), interleaved pairs whose order alternates.
# The worker gets CPU 0, PostgreSQL CPU 1; commits do not wait for the disk
# (synchronous_commit = off), so that the worker's own cost is not hidden behind fsync.
#   PG_RUNS=9 PG_JOBS=20000 PG_CONCURRENCY=8 benches/worker_postgres.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source benches/pairs.sh
cargo build --release -p graceful-tests-integration --bin worker_postgres --bin plain_worker_postgres
release="${CARGO_TARGET_DIR:-target}/release"
runs=${PG_RUNS:-9}
jobs=${PG_JOBS:-20000}
concurrency=${PG_CONCURRENCY:-8}

name=graceful-pg-bench
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
trap 'scripts/postgres destroy "$name" 2>/dev/null || true' EXIT
scripts/postgres destroy "$name" 2>/dev/null
url=$(scripts/postgres start "$name" "$port" 2>/dev/null | tail -n 1)
sql() { psql -qAtX "$url" -c "$1"; }
sql "ALTER SYSTEM SET synchronous_commit = off"
sql "SELECT pg_reload_conf()" >/dev/null
if [ ${#on_load_cpu[@]} -gt 0 ]; then
  # Backends fork from the postmaster and inherit its CPU; the ones already running move too.
  postmaster=$(head -n 1 "/var/lib/$name/data/postmaster.pid")
  for pid in "$postmaster" $(cat "/proc/$postmaster/task/$postmaster/children"); do
    taskset -cp 1 "$pid" >/dev/null 2>&1 || true # one may have exited since
  done
fi

one_run() { # $1: the binary; prints jobs per second
  local out pid
  sql "DROP TABLE IF EXISTS jobs, effects, leases" # the worker makes them afresh: every run alike
  out=$(mktemp)
  DATABASE_URL=$url CONCURRENCY=$concurrency "${on_server_cpu[@]}" "$release/$1" 2>"$out" &
  pid=$!
  for _ in $(seq 1 500); do grep -q ready "$out" && break; sleep 0.01; done
  grep -q ready "$out" || { cat "$out" >&2; exit 1; }
  sql "INSERT INTO jobs (duration_ms) SELECT 0 FROM generate_series(1, $jobs)"
  for _ in $(seq 1 6000); do
    [ "$(sql "SELECT count(*) FROM jobs WHERE state <> 'done'")" = 0 ] && break
    sleep 0.1
  done
  kill -TERM "$pid"; wait "$pid" || true
  rm -f "$out"
  # From the first lease to the last completion, timed by PostgreSQL: start-up is not counted.
  sql "SELECT CASE WHEN count(*) = $jobs AND count(DISTINCT job_id) = $jobs
                   THEN round(count(*) / extract(epoch FROM max(at) - (SELECT min(at) FROM leases)))
                   ELSE -1 END FROM effects"
}

plain=(); graceful=(); ratios=()
for i in $(seq 1 "$runs"); do
  if [ $((i % 2)) = 1 ]; then
    p=$(one_run plain_worker_postgres); g=$(one_run worker_postgres); first=plain
  else
    g=$(one_run worker_postgres); p=$(one_run plain_worker_postgres); first=graceful
  fi
  if [ "$p" = -1 ] || [ "$g" = -1 ]; then echo "a run did not do every job exactly once" >&2; exit 1; fi
  plain+=("$p"); graceful+=("$g"); ratios+=("$(pair_ratio "$g" "$p")")
  echo "pair $i ($first first): plain $p, graceful $g jobs/s, ratio ${ratios[-1]}"
done
summarize "$jobs no-op jobs, concurrency $concurrency" graceful plain graceful plain ratios |
  sed 's/req\/s/jobs\/s/g'
