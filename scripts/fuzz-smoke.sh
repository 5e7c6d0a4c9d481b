#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a short, bounded time (default 10 s each).
# Installs cargo-fuzz once (cached in ~/.cargo/bin). cargo-fuzz needs nightly features;
# RUSTC_BOOTSTRAP=1 enables them on the stable toolchain.
#
#   bash scripts/fuzz-smoke.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-${MQGATE_FUZZ_SECONDS:-10}}"
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "installing cargo-fuzz (once)"
  cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
cd fuzz
targets=$(cargo fuzz list)
# One build of every target up front (cargo fuzz build with no name builds them all).
cargo fuzz build >/dev/null 2>&1 || cargo fuzz build
for t in $targets; do
  # Findings would land in fuzz/artifacts/$t; a crash fails this script (and CI).
  out=$(cargo fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1) || {
    echo "$out" | tail -40
    echo "fuzz target $t FAILED"
    exit 1
  }
  echo "fuzz $t: $(echo "$out" | grep -Eo 'Done [0-9]+ runs in [0-9]+ second' | tail -1)"
done
