#!/usr/bin/env bash
# The one command that proves mqgate: installs what the tests need beyond cargo
# (idempotently, cached) and runs every test of the workspace, then every fuzz target briefly.
#
#   bash scripts/test.sh
#
# MQGATE_FUZZ_SECONDS=0 skips the fuzz smoke run (for a quick local loop).
set -euo pipefail
cd "$(dirname "$0")/.."

export RUST_BACKTRACE=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== test dependencies beyond cargo (installed once, then cached)"
if ! command -v mosquitto_pub >/dev/null 2>&1 || ! command -v mosquitto >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq mosquitto-clients mosquitto >/dev/null
fi
if ! python3 -c "import paho.mqtt" >/dev/null 2>&1; then
  python3 -m pip install --quiet "paho-mqtt>=2,<3"
fi
# The model service's official OpenAPI SDK, which tests/openapi_sdk.rs drives the HTTP API with.
if ! python3 -c "import alibabacloud_onsmqtt20200420" >/dev/null 2>&1; then
  python3 -m pip install --quiet "alibabacloud-onsmqtt20200420==1.7.1"
fi
# The broker's interop tests fail instead of skipping when a client is missing.
export MQGATE_REQUIRE_INTEROP=1

echo "== cargo test (workspace: unit, integration and doc tests)"
cargo test --workspace --all-targets --locked 2>&1 | tee -a "$log"
cargo test --workspace --doc --locked 2>&1 | tee -a "$log"

if [ "${MQGATE_FUZZ_SECONDS:-10}" != "0" ]; then
  echo "== fuzz smoke run"
  bash scripts/fuzz-smoke.sh
fi

# One closing line for the whole run (pipefail above already stopped on any failure).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
