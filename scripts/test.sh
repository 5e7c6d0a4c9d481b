#!/usr/bin/env bash
# The one command that proves mqgate: installs what the tests need beyond cargo
# (idempotently, cached) and runs every test of the workspace.
#
#   bash scripts/test.sh
#
set -euo pipefail
cd "$(dirname "$0")/.."

# Everything below runs bounded: each test binds 127.0.0.1 on ephemeral ports.
export RUST_BACKTRACE=1
# Fewer parallel test threads than cores keeps timing-sensitive network tests honest on 2 cores.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"

echo "== cargo test (workspace, all targets)"
cargo test --workspace --all-targets --locked
echo "== doc tests"
cargo test --workspace --doc --locked
