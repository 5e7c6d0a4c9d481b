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
# The AMQP 0-9-1 clients crates/amqp/tests/interop.rs speaks the cloud SDKs' sequence with:
# RabbitMQ's Java client (the one the Java SDK wraps) with a JDK to compile against it, Go's
# streadway/amqp package (the one the Go SDK wraps) with Go, and pika.
if ! command -v javac >/dev/null 2>&1 || [ ! -f /usr/share/java/amqp-client.jar ] \
    || ! command -v go >/dev/null 2>&1 || [ ! -d /usr/share/gocode/src/github.com/streadway/amqp ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq default-jdk-headless librabbitmq-client-java \
    golang-go golang-github-streadway-amqp-dev >/dev/null
fi
if ! python3 -c "import pika" >/dev/null 2>&1; then
  python3 -m pip install --quiet "pika>=1.3,<2"
fi
# The model service's official OpenAPI SDK, which tests/openapi_sdk.rs drives the HTTP API with.
if ! python3 -c "import alibabacloud_onsmqtt20200420" >/dev/null 2>&1; then
  python3 -m pip install --quiet "alibabacloud-onsmqtt20200420==1.7.1"
fi
# The RocketMQ bridge's and the cluster's tests need a real RocketMQ: the Rust implementation of its name server
# and broker (crates.io `rocketmq-namesrv` and `rocketmq-broker` 1.0.0, which speak the same
# protocol as the Java servers), built once (about 5.5 minutes) and cached.
rocketmq_root="${MQGATE_ROCKETMQ_ROOT:-$HOME/.cache/mqgate/rocketmq}"
export MQGATE_ROCKETMQ_BIN="$rocketmq_root/bin"
if [ ! -x "$MQGATE_ROCKETMQ_BIN/rocketmq-namesrv-rust" ] || [ ! -x "$MQGATE_ROCKETMQ_BIN/rocketmq-broker-rust" ]; then
  cargo install --debug --locked rocketmq-namesrv@1.0.0 rocketmq-broker@1.0.0 --root "$rocketmq_root"
fi
# ...run inside a network namespace with only a loopback interface: outside one, the name
# server and the broker advertise and connect to the host's external address; inside,
# everything stays on 127.0.0.1 and nothing reaches the network. Created once; `ip` comes with
# iproute2.
if ! command -v ip >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq iproute2 >/dev/null
fi
netns="${MQGATE_NETNS:-mqgate-test}"
ip netns add "$netns" 2>/dev/null || true   # exists already, or `ip netns exec` below says why
ip netns exec "$netns" ip link set lo up
# The operator console's browser test (crates/broker/tests/console_browser.rs): Debian's
# Chromium and its WebDriver server.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
fi
# ...and Debian's Firefox ESR with Mozilla's WebDriver server, geckodriver, built once from
# crates.io (about 3 minutes) and cached.
if ! command -v firefox-esr >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq firefox-esr >/dev/null
fi
geckodriver_root="${MQGATE_GECKODRIVER_ROOT:-$HOME/.cache/mqgate/geckodriver}"
if [ ! -x "$geckodriver_root/bin/geckodriver" ]; then
  cargo install --locked geckodriver@0.37.1 --root "$geckodriver_root"
fi
export PATH="$geckodriver_root/bin:$PATH"
# The broker's interop tests fail instead of skipping when a client is missing.
export MQGATE_REQUIRE_INTEROP=1

echo "== cargo test (workspace: unit, integration and doc tests)"
cargo test --workspace --all-targets --locked 2>&1 | tee -a "$log"
cargo test --workspace --doc --locked 2>&1 | tee -a "$log"

# In the workspace run above the bridge and cluster tests said they skip (not in the namespace); here they
# run in it, against the servers, and fail if anything is missing. Built above: no network.
echo "== RocketMQ bridge and cluster tests (inside network namespace $netns)"
ip netns exec "$netns" cargo test --offline --locked -p mqgate-broker --test rocketmq_bridge 2>&1 | tee -a "$log"
ip netns exec "$netns" cargo test --offline --locked -p mqgate-broker --test cluster 2>&1 | tee -a "$log"

if [ "${MQGATE_FUZZ_SECONDS:-10}" != "0" ]; then
  echo "== fuzz smoke run"
  bash scripts/fuzz-smoke.sh
fi

# One closing line for the whole run (pipefail above already stopped on any failure).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
     END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
