#!/usr/bin/env bash
# Outflow throughput MQTT -> RocketMQ through the bridge, next to the RocketMQ client alone.
# Starts the Rust RocketMQ name server and broker (installed by scripts/test.sh into
# ~/.cache/mqgate/rocketmq) in a loopback-only network namespace, with the test configs of
# crates/broker/tests/rocketmq/, runs the `rocketmq_outflow` example there (release), stops them.
#
# FLUSH=ASYNC_FLUSH measures with RocketMQ acknowledging before its disk flush.
#   benches/rocketmq_outflow.sh [--messages N] [--publishers P] [--payload B] [--in-flight 1,16,64]
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${MQGATE_ROCKETMQ_BIN:-$HOME/.cache/mqgate/rocketmq/bin}"
netns="${MQGATE_NETNS:-mqgate-test}"
ip netns add "$netns" 2>/dev/null || true
ip netns exec "$netns" ip link set lo up
cargo build --release --locked -p mqgate-broker --example rocketmq_outflow

# In memory: the 1.0.0 broker will not start on a file system over 90 % full.
dir=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
# shellcheck source=benches/rocketmq_servers.sh
. benches/rocketmq_servers.sh
start_rocketmq "$dir" "${FLUSH:-SYNC_FLUSH}"
ip netns exec "$netns" target/release/examples/rocketmq_outflow --name-server 127.0.0.1:9876 "$@"
