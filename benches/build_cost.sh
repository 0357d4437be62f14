#!/usr/bin/env bash
# Benchmark 9: compile time of a crate with 200 #[graceful::tracked] fns and 20
# #[graceful::on_shutdown] hooks, against the same crate without the attributes. Dependencies
# are built once first; then each crate is rebuilt RUNS times (touching its source), interleaved.
#   RUNS=5 benches/build_cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/target/build-cost
runs=${RUNS:-5}
rm -rf "$work"; mkdir -p "$work"

generate() { # $1: name, $2: 1 with attributes, 0 without
  local dir=$work/$1
  mkdir -p "$dir/src"
  cat > "$dir/Cargo.toml" <<TOML
[package]
name = "$1"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
graceful = { path = "$root" }
[workspace]
TOML
  {
    echo "#![allow(dead_code)]"
    for i in $(seq 1 200); do
      [ "$2" = 1 ] && echo "#[graceful::tracked]"
      echo "pub async fn handler_$i(value: u64) -> u64 { value.wrapping_mul($i) }"
    done
    for i in $(seq 1 20); do
      [ "$2" = 1 ] && echo "#[graceful::on_shutdown(order = $i)]"
      echo "pub async fn hook_$i() -> Result<(), std::io::Error> { Ok(()) }"
    done
    echo "#[graceful::main]"
    echo "async fn main() { let _ = handler_1(1).await; }"
  } > "$dir/src/main.rs"
}

generate with_attributes 1
generate without_attributes 0
export CARGO_TARGET_DIR=$work/target
for crate in with_attributes without_attributes; do
  (cd "$work/$crate" && cargo build --quiet --offline 2>/dev/null || cargo build --quiet)
done
declare -A times
for _ in $(seq 1 "$runs"); do
  for crate in with_attributes without_attributes; do
    touch "$work/$crate/src/main.rs"
    start=$(date +%s%N)
    (cd "$work/$crate" && cargo build --quiet --offline)
    times[$crate]+="$(( ($(date +%s%N) - start) / 1000000 )) "
  done
done
median() { printf '%s\n' $1 | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
with=$(median "${times[with_attributes]}"); without=$(median "${times[without_attributes]}")
echo "with attributes (ms):    ${times[with_attributes]}(median $with)"
echo "without attributes (ms): ${times[without_attributes]}(median $without)"
awk -v w="$with" -v o="$without" 'BEGIN {printf "build ratio with/without: %.2f (+%d ms for 200 tracked fns and 20 hooks)\n", w/o, w-o}'
