#!/usr/bin/env bash
# Whole-process figures (BENCHMARKS.md, benchmarks 4, 6 and 7): release build, interleaved runs.
#   PROCESS_RUNS=40 benches/process.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p graceful-benches --bins
target/release/process_figures
