# Sourced by the throughput scripts (http.sh, serve.sh, grpc.sh): where each side runs, and how a
# run of interleaved pairs is summed up.

# The server gets CPU 0 and the load generator CPU 1, so that neither steals the other's core
# (tokio sizes its pool from the affinity: one worker). Unpinned where taskset is missing.
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
  on_server_cpu=(taskset -c 0)
  on_load_cpu=(taskset -c 1)
else
  on_server_cpu=()
  on_load_cpu=()
fi

# cpu_ns PID: CPU time so far of every thread of process PID, in ns (the scheduler's own count).
# On this shared machine a server often waits for a CPU, which moves its throughput more than
# its own work does; its CPU time per request measures that work alone.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}'; }

# per_request BEFORE AFTER REQUESTS: CPU ns per request between two cpu_ns readings.
per_request() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN {printf "%.0f", (b - a) / n}'; }

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# pair_ratio SUBJECT BASELINE: the ratio of one pair, 3 decimals.
pair_ratio() { awk -v s="$1" -v b="$2" 'BEGIN {printf "%.3f", s/b}'; }

# summarize_cpu LABEL SUBJECT_NAME BASELINE_NAME SUBJECT_ARRAY BASELINE_ARRAY RATIO_ARRAY: as
# summarize, for CPU ns per request; the ratios are baseline/subject, so that above 1 means the
# subject does less work per request, as a throughput ratio above 1 means it serves more.
summarize_cpu() {
  local -n _subject=$4 _baseline=$5 _ratios=$6
  local sorted
  sorted=$(printf '%s\n' "${_ratios[@]}" | sort -g)
  awk -v label="$1" -v sn="$2" -v bn="$3" -v s="$(median "${_subject[@]}")" -v b="$(median "${_baseline[@]}")" \
    -v n="${#_ratios[@]}" -v med="$(median "${_ratios[@]}")" -v lo="$(head -1 <<<"$sorted")" -v hi="$(tail -1 <<<"$sorted")" \
    'BEGIN {printf "%s: server CPU per request, %s median %.0f ns, %s median %.0f ns; ratio %s/%s of the medians %.3f; per pair (%d): median %.3f, spread %.3f-%.3f\n", label, sn, s, bn, b, bn, sn, b/s, n, med, lo, hi}'
}

# summarize LABEL SUBJECT_NAME BASELINE_NAME SUBJECT_ARRAY BASELINE_ARRAY RATIO_ARRAY (array names)
summarize() {
  local -n _subject=$4 _baseline=$5 _ratios=$6
  local sm bm sorted
  sm=$(median "${_subject[@]}"); bm=$(median "${_baseline[@]}")
  sorted=$(printf '%s\n' "${_ratios[@]}" | sort -g)
  awk -v label="$1" -v sn="$2" -v bn="$3" -v s="$sm" -v b="$bm" -v n="${#_ratios[@]}" \
    -v med="$(median "${_ratios[@]}")" -v lo="$(head -1 <<<"$sorted")" -v hi="$(tail -1 <<<"$sorted")" \
    'BEGIN {printf "%s: %s median %.0f req/s, %s median %.0f req/s; ratio %s/%s of the medians %.3f; per pair (%d): median %.3f, spread %.3f-%.3f\n", label, sn, s, bn, b, sn, bn, s/b, n, med, lo, hi}'
}
