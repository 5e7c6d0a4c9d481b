# Sourced by the benchmarks that need RocketMQ: `start_rocketmq DIR FLUSH` starts the Rust
# RocketMQ name server (127.0.0.1:9876) and broker (10911) that scripts/test.sh installs, with
# the test configs of crates/broker/tests/rocketmq/ and flushDiskType FLUSH, in the
# loopback-only network namespace $netns, their files under DIR; their pids are appended to
# the caller's `pids` array (the caller kills them). Expects $bin (the servers' directory).
start_rocketmq() {
  local dir="$1" flush="$2"
  mkdir -p "$dir/home"
  for f in namesrv broker; do
    sed "s#@DIR@#$dir#g; s#@NSPORT@#9876#; s#@PORT@#10911#; s#@HAPORT@#10912#" \
      "crates/broker/tests/rocketmq/$f.toml" | sed "s#SYNC_FLUSH#$flush#" > "$dir/$f.toml"
  done
  export ROCKETMQ_HOME="$dir/home" ROCKETMQ_SECURITY_PROFILE=development-insecure-loopback
  ip netns exec "$netns" "$bin/rocketmq-namesrv-rust" -c "$dir/namesrv.toml" \
    --bindAddress 127.0.0.1 --listenPort 9876 >"$dir/namesrv.log" 2>&1 &
  pids+=($!)
  sleep 1
  ip netns exec "$netns" "$bin/rocketmq-broker-rust" -c "$dir/broker.toml" -n 127.0.0.1:9876 \
    >"$dir/broker.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    grep -qs "started successfully" "$dir/broker.log" && return 0
    sleep 0.1
  done
  echo "the RocketMQ broker did not start; its log: $dir/broker.log" >&2
  return 1
}
