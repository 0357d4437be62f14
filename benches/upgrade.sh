#!/usr/bin/env bash
# Upgrade cost (BENCHMARKS.md, benchmark 8): a plain start-up of upgrade_hello against an upgrade
# in place of the same binary (SIGUSR2 to the new process answering, and to the old one's exit).
# Release build.
#   UPGRADE_RUNS=40 benches/upgrade.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p graceful-benches --bin upgrade_hello --bin upgrade_figures
target/release/upgrade_figures
