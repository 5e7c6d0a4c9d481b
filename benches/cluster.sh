#!/usr/bin/env bash
# A message that crosses between two cluster nodes, next to one that stays on one node.
#
# Starts the Rust RocketMQ name server and broker (installed by scripts/test.sh into
# ~/.cache/mqgate/rocketmq; its flushDiskType is RocketMQ's shipped default, ASYNC_FLUSH,
# unless FLUSH says otherwise) and two mqgate nodes (release build, benches/peers/mqgate.toml
# plus a [cluster] section and a data directory each), all in a loopback-only network
# namespace. Then, for every scenario and repetition, mqgate-bench runs it twice, alternating:
# "local" with publishers and subscribers on node a, "cross" with the subscribers on node a
# and the publishers on node b, so every message goes b -> RocketMQ -> a. Each run's
# broker figures (CPU, RSS) are node a's. Prints the medians, cross against local.
#
#   benches/cluster.sh [--reps N] [--out DIR]
# FLUSH=SYNC_FLUSH measures with RocketMQ acknowledging only after its disk flush.
set -euo pipefail
cd "$(dirname "$0")/.."

reps=3
out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--reps N] [--out DIR]" >&2; exit 2 ;;
  esac
done

bin="${MQGATE_ROCKETMQ_BIN:-$HOME/.cache/mqgate/rocketmq/bin}"
if [ ! -x "$bin/rocketmq-namesrv-rust" ] || [ ! -x "$bin/rocketmq-broker-rust" ]; then
  echo "no RocketMQ servers in $bin: run scripts/test.sh once (it installs them)" >&2
  exit 1
fi
netns="${MQGATE_NETNS:-mqgate-test}"
ip netns add "$netns" 2>/dev/null || true
ip netns exec "$netns" ip link set lo up
cargo build --release --locked -p mqgate-broker -p mqgate-bench

# RocketMQ in memory: the 1.0.0 broker will not start on a file system over 90 % full. The
# nodes' data directories go there too (their stores stay small in these runs).
dir=$(mktemp -d -p /dev/shm 2>/dev/null || mktemp -d)
out="${out:-$dir/results}"
mkdir -p "$out"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir/home" "$dir/broker-a" "$dir"/node-*/data
}
trap cleanup EXIT
# shellcheck source=benches/rocketmq_servers.sh
. benches/rocketmq_servers.sh
start_rocketmq "$dir" "${FLUSH:-ASYNC_FLUSH}"

# The two nodes: the shipped configuration plus the cluster section, with their own ports
# and data directories given on the command line.
node_pid=()
for n in a b; do
  case "$n" in a) mqtt=18831; ws=18834; http=18090 ;; b) mqtt=18841; ws=18844; http=18091 ;; esac
  mkdir -p "$dir/node-$n"
  { cat benches/peers/mqgate.toml
    printf '\n[cluster]\ninstance = "bench"\nname_server = "127.0.0.1:9876"\nnode_id = "%s"\n' "$n"
  } > "$dir/node-$n/mqgate.toml"
  ip netns exec "$netns" target/release/mqgate --config "$dir/node-$n/mqgate.toml" \
    --listen "127.0.0.1:$mqtt" --ws-listen "127.0.0.1:$ws" --http-listen "127.0.0.1:$http" \
    --data-dir "$dir/node-$n/data" >"$dir/node-$n/log" 2>&1 &
  pids+=($!)
  node_pid+=($!)
done
# /healthz says "peers alive: b" (plain text) once node b's heartbeats arrive.
healthy() { ip netns exec "$netns" curl -sf "http://127.0.0.1:$1/healthz" 2>/dev/null | grep -q "peers alive: .*\b$2\b"; }
# Both nodes up and each seeing the other (bounded: 60 s).
for _ in $(seq 600); do
  healthy 18090 b && healthy 18091 a && break
  sleep 0.1
done
healthy 18090 b && healthy 18091 a \
  || { echo "the nodes did not see each other; logs in $dir" >&2; tail -n 5 "$dir"/node-*/log >&2; exit 1; }
# `ip netns exec` runs the broker in its own process (it execs it): node a's pid.
pid_a="${node_pid[0]}"
[ "$(cat "/proc/$pid_a/comm")" = mqgate ] || { echo "node a's pid not found" >&2; exit 1; }

scenarios=(
  "--scenario latency --qos 0 --rate 1000 --messages 10000"
  "--scenario latency --qos 1 --rate 1000 --messages 10000"
  "--scenario fan-in --qos 0 --messages 400000"
  "--scenario fan-in --qos 1 --messages 200000"
)
bench=target/release/mqgate-bench
for rep in $(seq "$reps"); do
  for scenario in "${scenarios[@]}"; do
    for way in local cross; do
      extra=()
      [ "$way" = cross ] && extra=(--publish-to 127.0.0.1:18841)
      # shellcheck disable=SC2086
      ip netns exec "$netns" "$bench" run $scenario --seconds 120 --target 127.0.0.1:18831 \
        "${extra[@]}" --label "$way" --broker-pid "$pid_a" >>"$out/$way.jsonl" \
        || echo "run failed: $way $scenario (rep $rep)" >&2
    done
  done
done
"$bench" summarize --ours cross "$out/cross.jsonl" "$out/local.jsonl" | tee "$out/summary.md"
echo "results in $out"
