#!/usr/bin/env bash
# Side-by-side benchmark: mqgate against Mosquitto and rumqttd on this machine (loopback).
#
#   benches/compare.sh [--quick] [--reps N] [--out DIR] [--only REGEX] [--tuned] [--trace-off]
#   benches/compare.sh --durable [--quick] [--reps N] [--out DIR]
#   benches/compare.sh --amqp [--quick] [--reps N] [--out DIR] [--only REGEX]
#   benches/compare.sh --v5 [--quick] [--reps N] [--out DIR] [--only REGEX] [--tuned]
#
# --only runs just the scenarios whose arguments match REGEX (grep -E), e.g. 'fan-in'.
#
# Every broker runs as shipped: its default settings, with only what it takes to run here
# (a loopback listener, anonymous access; rumqttd's connection count raised for the 10 k-client
# scenarios). --tuned adds, beside them, "mqgate-tuned" (an in-flight window of 100, which is
# mqgate's default since it measured better) and "mosquitto-tuned" (TCP_NODELAY on); the summary shows them
# but never compares mqgate with them. --trace-off adds "mqgate-notrace-tuned" (mqgate as
# shipped but with message trace off, which is on by default): the cost of trace is the
# difference between it and "mqgate" (e.g. --trace-off --only 'fan-in --qos 1').
#
# Installs the peers if missing (Mosquitto from Debian with apt-get, rumqttd 0.20 with
# cargo install into .cache/peers), builds mqgate and mqgate-bench in release, then for each
# repetition runs every scenario against each broker in turn, each run on a freshly started
# broker (so RSS numbers are not left over from the previous scenario). Prints the medians
# and the ratio of mqgate to the best peer; raw JSON lines stay in the output directory.
# Every process this script starts is stopped on exit.
#
# --durable runs the durable scenario instead (docs/offline-messages.md): per broker and repetition, on a
# fresh data directory, `mqgate-bench durable --phase fill` (1000 persistent sessions
# subscribe and leave, 4 publishers send 64 B QoS 1 messages spread over them; the
# acknowledged ones are written down), the size of the data files, SIGKILL, a start on the
# same data, `--phase drain` (acknowledged messages that do not come back are `acked_lost`).
# mqgate uses redb (benches/peers/mqgate-durable.toml); Mosquitto runs with `persistence
# true` as shipped otherwise (it snapshots every autosave_interval, 1800 s, and on a clean
# shutdown).
#
# --amqp compares the cloud SDK endpoint (docs/cloud-sdk-backends.md) with RabbitMQ, both
# driven by the generator's own AMQP 0-9-1 client with the SDK's calls: confirmed publishes
# per second (4 connections, one confirm-mode channel each, a window of 1 = the SDK's own
# pattern, and 64) and acknowledged deliveries per second to 4 consumers of the queue
# `parent` (prefetch 64) while 4 feeders fill it (mqgate: MQTT QoS 1 devices publishing to
# `parent/dev/x`; RabbitMQ: AMQP publishes to the exchange `parent/dev/x` bound to the queue,
# which the generator declares). Installs Debian's rabbitmq-server if missing and runs it as
# shipped (no config file, no plugins), without systemd, as a private node on a loopback port
# with its data and logs under the output directory; mqgate runs
# benches/peers/mqgate-amqp.toml. Each run gets a freshly started broker.
#
# --v5 runs the fan-in and fan-out scenarios of the default run (QoS 0 and 1 as they are
# there) twice against each broker, with `--mqtt 3.1.1` and with `--mqtt 5` (MQTT 5 clients:
# CONNECT at level 5, Receive Maximum = the generator's in-flight window for QoS 1
# publishers, Session Expiry 0, Topic Alias Maximum 0, v5 SUBSCRIBE and PUBLISH; the QoS 1
# window shrinks to the Receive Maximum the broker announces), so the summary shows the
# mqgate/best-peer ratio of each protocol side by side (MQTT 5 scenarios end in " mqtt5").
# --only matches the arguments including --mqtt, e.g. --only 'fan-in.*--mqtt 5'. The peers
# are the default run's: Mosquitto, whose default listener speaks MQTT 5 as shipped, and
# rumqttd, which serves MQTT 5 on a listener of its own (v5.1 in benches/peers/rumqttd.toml;
# checked to deliver every message of these scenarios over MQTT 5). The QoS 1 windows follow
# the brokers' Receive Maximum: mqgate announces 1024 (it announced 100, its in-flight window,
# before 2026-12-07), Mosquitto 20, rumqttd no lower limit, so the generator's 256 hold
# against mqgate and rumqttd as in the 3.1.1 runs; the report's broker_receive_maximum says so.
# RUMQTTD=PATH runs that rumqttd binary instead of the cached release build.
#
# PROFILE=dev builds and runs debug binaries: only to check the script itself, its numbers
# are not results.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
QUICK=0
REPS=3
OUT=""
ONLY=""
DURABLE=0
AMQP=0
TUNED=0
TRACE_OFF=0
V5=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK=1; REPS=1 ;;
    --durable) DURABLE=1 ;;
    --amqp) AMQP=1 ;;
    --v5) V5=1 ;;
    --reps) REPS="$2"; shift ;;
    --out) OUT="$2"; shift ;;
    --only) ONLY="$2"; shift ;;
    --tuned) TUNED=1 ;;
    --trace-off) TRACE_OFF=1 ;;
    -h|--help) sed -n '2,61p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
if [ $V5 -eq 1 ] && [ $((DURABLE + AMQP)) -gt 0 ]; then
  echo "--v5 runs fan-in and fan-out: it does not combine with --durable or --amqp" >&2
  exit 2
fi
OUT=${OUT:-target/bench-compare/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"
PEERS="$ROOT/.cache/peers"
MQGATE_PORT=18831    # also in benches/peers/mqgate.toml
MOSQUITTO_PORT=18832 # also in benches/peers/mosquitto.conf
RUMQTTD_PORT=18833   # also in benches/peers/rumqttd.toml
RUMQTTD_V5_PORT=18847 # rumqttd's MQTT 5 listener, also in benches/peers/rumqttd.toml
MQGATE_DURABLE_PORT=18835 # also in benches/peers/mqgate-durable.toml
MOSQUITTO_DURABLE_PORT=18837 # also in benches/peers/mosquitto-durable.conf
MQGATE_TUNED_PORT=18838 # also in benches/peers/mqgate-tuned.toml
MOSQUITTO_TUNED_PORT=18839 # also in benches/peers/mosquitto-tuned.conf
MQGATE_NOTRACE_PORT=18845 # also in benches/peers/mqgate-notrace-tuned.toml
MQGATE_AMQP_PORT=18841 # also in benches/peers/mqgate-amqp.toml
MQGATE_AMQP_MQTT_PORT=18843 # also in benches/peers/mqgate-amqp.toml
RABBITMQ_PORT=18842

say() { printf '== %s\n' "$*" >&2; }

# ---- peers -------------------------------------------------------------------------------
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
RABBITMQ_BIN=/usr/lib/rabbitmq/bin
if [ $AMQP -eq 1 ] && [ ! -x "$RABBITMQ_BIN/rabbitmq-server" ]; then
  say "installing rabbitmq-server (apt-get)"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq rabbitmq-server >/dev/null
  # Debian's package starts a node of its own where a service manager runs; ours is private.
fi
if [ $AMQP -eq 0 ] && ! command -v mosquitto >/dev/null 2>&1; then
  say "installing mosquitto (apt-get)"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq mosquitto >/dev/null
fi
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)

RUMQTTD="${RUMQTTD:-$PEERS/bin/rumqttd}"
if [ $DURABLE -eq 0 ] && [ $AMQP -eq 0 ] && [ ! -x "$RUMQTTD" ]; then
  say "installing rumqttd 0.20.0 into $PEERS (cargo install, cached)"
  if ! cargo install rumqttd --version 0.20.0 --no-default-features --locked --root "$PEERS" \
      >"$OUT/rumqttd-install.log" 2>&1; then
    # Its lock file pins metrics 0.22.1, which newer rustc versions refuse (E0521).
    say "rumqttd --locked build failed (see $OUT/rumqttd-install.log); retrying without --locked"
    cargo install rumqttd --version 0.20.0 --no-default-features --root "$PEERS" \
      >>"$OUT/rumqttd-install.log" 2>&1 || true
  fi
fi
BROKERS="mqgate mosquitto"
if [ -x "$RUMQTTD" ] && [ $AMQP -eq 0 ]; then
  BROKERS="$BROKERS rumqttd"
else
  [ $AMQP -eq 0 ] && say "rumqttd could not be built here: continuing without it"
fi
[ $TUNED -eq 1 ] && BROKERS="$BROKERS mqgate-tuned mosquitto-tuned"
[ $TRACE_OFF -eq 1 ] && BROKERS="$BROKERS mqgate-notrace-tuned"

# ---- ours --------------------------------------------------------------------------------
PROFILE=${PROFILE:-release}
say "building mqgate and mqgate-bench ($PROFILE)"
cargo build --profile "$PROFILE" -q -p mqgate-broker -p mqgate-bench
TARGET_DIR="$ROOT/target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"
BENCH="$TARGET_DIR/mqgate-bench"
MQGATE="$TARGET_DIR/mqgate"

# ---- broker lifecycle --------------------------------------------------------------------
BROKER_PID=""
stop_broker() {
  if [ -n "$BROKER_PID" ]; then
    kill -"${1:-TERM}" "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
  fi
}
trap stop_broker EXIT INT TERM

port_of() {
  case "$1" in
    mqgate) echo $MQGATE_PORT ;;
    mosquitto) echo $MOSQUITTO_PORT ;;
    rumqttd) echo $RUMQTTD_PORT ;;
    mqgate-durable) echo $MQGATE_DURABLE_PORT ;;
    mosquitto-durable) echo $MOSQUITTO_DURABLE_PORT ;;
    mqgate-tuned) echo $MQGATE_TUNED_PORT ;;
    mqgate-notrace-tuned) echo $MQGATE_NOTRACE_PORT ;;
    mosquitto-tuned) echo $MOSQUITTO_TUNED_PORT ;;
  esac
}

# start_broker NAME [DATA_DIR]: the -durable names keep their state in DATA_DIR.
start_broker() {
  local log="$OUT/$1.log"
  case "$1" in
    mqgate)
      "$MQGATE" --config benches/peers/mqgate.toml \
        --data-dir "$OUT/mqgate-data" >>"$log" 2>&1 &
      ;;
    mqgate-tuned)
      "$MQGATE" --config benches/peers/mqgate-tuned.toml \
        --data-dir "$OUT/mqgate-data" >>"$log" 2>&1 &
      ;;
    mqgate-notrace-tuned)
      "$MQGATE" --config benches/peers/mqgate-notrace-tuned.toml \
        --data-dir "$OUT/mqgate-data" >>"$log" 2>&1 &
      ;;
    mosquitto) "$MOSQUITTO" -c benches/peers/mosquitto.conf >>"$log" 2>&1 & ;;
    mosquitto-tuned) "$MOSQUITTO" -c benches/peers/mosquitto-tuned.conf >>"$log" 2>&1 & ;;
    rumqttd) "$RUMQTTD" -q -c benches/peers/rumqttd.toml >>"$log" 2>&1 & ;;
    mqgate-durable)
      RUST_LOG=warn "$MQGATE" --config benches/peers/mqgate-durable.toml --data-dir "$2" \
        >>"$log" 2>&1 &
      ;;
    mosquitto-durable)
      # The committed config plus where this run keeps its snapshot, writable by the user
      # Mosquitto drops to when started as root.
      { cat benches/peers/mosquitto-durable.conf; echo "persistence_location $2/"; } \
        > "$2/mosquitto.conf"
      chmod a+rwx "$2"
      "$MOSQUITTO" -c "$2/mosquitto.conf" >>"$log" 2>&1 &
      ;;
  esac
  BROKER_PID=$!
  local port; port=$(port_of "$1")
  # A durable broker restores its store before it listens: give it up to a minute.
  local tries=100; [[ "$1" == *-durable ]] && tries=1200
  # rumqttd opens its MQTT 5 listener beside the 3.1.1 one: --v5 waits for both.
  local ports=("$port"); [[ "$1" == rumqttd && $V5 -eq 1 ]] && ports+=("$RUMQTTD_V5_PORT")
  for port in "${ports[@]}"; do
    local open=0
    for _ in $(seq "$tries"); do
      if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then open=1; break; fi
      sleep 0.05
    done
    [ $open -eq 1 ] || { say "$1 did not open port $port (see $log)"; return 1; }
  done
  return 0
}

machine() {
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpu: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
  echo "kernel: $(uname -r)"
  echo "disk: $(df -T "$OUT" | awk 'NR==2 {print $2}') under $OUT"
  if [ $AMQP -eq 1 ]; then
    echo "brokers: mqgate $(git rev-parse --short HEAD), rabbitmq-server $(dpkg-query -W -f '${Version}' rabbitmq-server 2>/dev/null || echo '?')"
  else
    echo "brokers: mqgate $(git rev-parse --short HEAD), $("$MOSQUITTO" -h 2>/dev/null | head -1), rumqttd $([ -x "$RUMQTTD" ] && echo 0.20.0 || echo absent)"
  fi
  echo "mode: $([ $QUICK -eq 1 ] && echo quick || echo full)$([ $DURABLE -eq 1 ] && echo ', durable')$([ $AMQP -eq 1 ] && echo ', amqp')$([ $V5 -eq 1 ] && echo ', v5 (fan-in and fan-out over MQTT 3.1.1 and 5)'), $REPS repetition(s), profile $PROFILE"
}

# ---- durable -----------------------------------------------------------------------------
if [ $DURABLE -eq 1 ]; then
  trap 'stop_broker KILL' EXIT INT TERM
  MESSAGES=$([ $QUICK -eq 1 ] && echo 100000 || echo 500000)
  machine | tee "$OUT/machine.txt" >&2
  data_bytes() { find "$1" -type f \( -name '*.redb' -o -name '*.db' \) -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }
  durable_phase() { # BROKER PHASE ACKED_FILE [RESULTS_FILE]
    "$BENCH" durable --phase "$2" --acked-file "$3" --target 127.0.0.1:"$(port_of "$1-durable")" \
      --label "$1" --broker-pid "$BROKER_PID" --messages "$MESSAGES" --clients 1000 \
      --publishers 4 --seconds 120 >>"${4:-$RESULTS}" 2>>"$OUT/runs.log" \
      || say "$2 failed (see $OUT/runs.log)"
    tail -n 1 "$OUT/runs.log" | cut -c1-200 >&2
  }
  for rep in $(seq "$REPS"); do
    for broker in mqgate mosquitto; do
      data="$OUT/$broker-data-$rep"; acked="$OUT/$broker-acked-$rep.txt"; mkdir -p "$data"
      start_broker "$broker-durable" "$data" || { stop_broker KILL; continue; }
      say "rep $rep/$REPS $broker: fill"
      durable_phase "$broker" fill "$acked"
      bytes=$(data_bytes "$data"); stored=$(wc -l < "$acked" 2>/dev/null || echo 0)
      echo "{\"broker\":\"$broker\",\"data_bytes\":$bytes,\"acked\":$stored}" >> "$OUT/disk.jsonl"
      say "$broker: $bytes bytes of data files for $stored acknowledged messages; SIGKILL"
      stop_broker KILL
      start_broker "$broker-durable" "$data" || { stop_broker KILL; continue; }
      say "rep $rep/$REPS $broker: drain"
      durable_phase "$broker" drain "$acked"
      stop_broker TERM
    done
  done
  # Bytes per stored message as each broker keeps them after a clean shutdown (Mosquitto
  # writes its snapshot then): one more fill each, not counted in the medians.
  for broker in mqgate mosquitto; do
    data="$OUT/$broker-data-clean"; mkdir -p "$data"
    start_broker "$broker-durable" "$data" || { stop_broker KILL; continue; }
    say "$broker: fill, then a clean shutdown"
    durable_phase "$broker" fill "$OUT/$broker-acked-clean.txt" "$OUT/clean.jsonl"
    stop_broker TERM
    bytes=$(data_bytes "$data"); stored=$(wc -l < "$OUT/$broker-acked-clean.txt" 2>/dev/null || echo 0)
    echo "{\"broker\":\"$broker\",\"data_bytes\":$bytes,\"acked\":$stored,\"clean\":true}" >> "$OUT/disk.jsonl"
  done
  "$BENCH" summarize --ours mqgate "$RESULTS" | tee "$OUT/summary.md"
  python3 - "$OUT/disk.jsonl" <<'PY' | tee -a "$OUT/summary.md"
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
for broker in ("mqgate", "mosquitto"):
    for clean, when in ((False, "while running, before the SIGKILL"), (True, "after a clean shutdown")):
        per = [r["data_bytes"] / r["acked"] for r in rows
               if r["broker"] == broker and r["acked"] and r.get("clean", False) == clean]
        if per:
            print(f"{broker}: median {statistics.median(per):.0f} bytes of data files per stored message, {when}")
PY
  say "raw results: $RESULTS; summary: $OUT/summary.md"
  exit 0
fi

# ---- amqp: the cloud SDK endpoint against RabbitMQ -----------------------------------------
if [ $AMQP -eq 1 ]; then
  # A private RabbitMQ node: its own name, port, data, logs, plugins file and Erlang cookie
  # (HOME), started in the foreground script without systemd (as root the Debian wrapper in
  # /usr/sbin would switch to the rabbitmq user and its /var/lib directory).
  RABBIT_NODE="mqgate-bench-$$@localhost"
  RABBIT_DIR="$OUT/rabbitmq"
  rabbit_env() {
    env HOME="$RABBIT_DIR/home" RABBITMQ_NODENAME="$RABBIT_NODE" \
      RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$RABBITMQ_PORT \
      RABBITMQ_DIST_PORT=$((RABBITMQ_PORT + 20000)) \
      RABBITMQ_MNESIA_BASE="$RABBIT_DIR/mnesia" RABBITMQ_LOG_BASE="$RABBIT_DIR/log" \
      RABBITMQ_PID_FILE="$RABBIT_DIR/rabbit.pid" \
      RABBITMQ_ENABLED_PLUGINS_FILE="$RABBIT_DIR/enabled_plugins" \
      RABBITMQ_CONF_ENV_FILE="$RABBIT_DIR/rabbitmq-env.conf" \
      RABBITMQ_CONFIG_FILE="$RABBIT_DIR/rabbitmq.conf" \
      RABBITMQ_ADVANCED_CONFIG_FILE="$RABBIT_DIR/advanced.config" "$@"
  }
  RABBIT_SCRIPT_PID=""
  # A port some other process holds would measure that process: refuse to start then.
  port_free() {
    if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then
      say "port $1 is in use by another process: not starting a broker there"
      return 1
    fi
  }
  start_rabbitmq() {
    port_free $RABBITMQ_PORT || return 1
    rm -rf "$RABBIT_DIR/mnesia" "$RABBIT_DIR/rabbit.pid"
    mkdir -p "$RABBIT_DIR/home" "$RABBIT_DIR/log" "$RABBIT_DIR/mnesia"
    echo "[]." > "$RABBIT_DIR/enabled_plugins"
    : > "$RABBIT_DIR/rabbitmq-env.conf"
    rabbit_env "$RABBITMQ_BIN/rabbitmq-server" >>"$OUT/rabbitmq.log" 2>&1 &
    RABBIT_SCRIPT_PID=$!
    # Booting Erlang and RabbitMQ takes seconds: wait for the AMQP port, then the pid file
    # names the Erlang VM, whose CPU and memory the generator reads.
    for _ in $(seq 1200); do
      if (exec 3<>/dev/tcp/127.0.0.1/$RABBITMQ_PORT) 2>/dev/null && [ -s "$RABBIT_DIR/rabbit.pid" ]; then
        BROKER_PID=$(cat "$RABBIT_DIR/rabbit.pid")
        return 0
      fi
      kill -0 "$RABBIT_SCRIPT_PID" 2>/dev/null || break
      sleep 0.1
    done
    say "rabbitmq did not open port $RABBITMQ_PORT (see $OUT/rabbitmq.log, $RABBIT_DIR/log)"
    stop_rabbitmq
    return 1
  }
  stop_rabbitmq() {
    if [ -n "$RABBIT_SCRIPT_PID" ]; then
      rabbit_env "$RABBITMQ_BIN/rabbitmqctl" -n "$RABBIT_NODE" stop >>"$OUT/rabbitmq.log" 2>&1 \
        || kill "$RABBIT_SCRIPT_PID" 2>/dev/null || true
      wait "$RABBIT_SCRIPT_PID" 2>/dev/null || true
      # The VM itself, should the script have gone first.
      [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null || true
      RABBIT_SCRIPT_PID=""; BROKER_PID=""
    fi
  }
  start_mqgate_amqp() {
    port_free $MQGATE_AMQP_PORT && port_free $MQGATE_AMQP_MQTT_PORT || return 1
    # A fresh store for every run, as RabbitMQ gets a fresh node directory: no queue or
    # compaction left from an earlier scenario.
    rm -rf "$OUT/mqgate-amqp-data"
    "$MQGATE" --config benches/peers/mqgate-amqp.toml --data-dir "$OUT/mqgate-amqp-data" \
      >>"$OUT/mqgate.log" 2>&1 &
    BROKER_PID=$!
    for _ in $(seq 100); do
      if (exec 3<>/dev/tcp/127.0.0.1/$MQGATE_AMQP_PORT) 2>/dev/null; then return 0; fi
      sleep 0.05
    done
    say "mqgate did not open port $MQGATE_AMQP_PORT (see $OUT/mqgate.log)"
    stop_broker
    return 1
  }
  # Erlang starts its port mapper (epmd) as a daemon that outlives the node: stop it at the
  # end if this script brought it up (epmd refuses while other nodes are registered with it).
  EPMD_WAS_UP=0
  command -v epmd >/dev/null 2>&1 && epmd -names >/dev/null 2>&1 && EPMD_WAS_UP=1
  finish_amqp() {
    stop_broker; stop_rabbitmq
    if [ $EPMD_WAS_UP -eq 0 ] && command -v epmd >/dev/null 2>&1; then epmd -kill >/dev/null 2>&1 || true; fi
  }
  trap finish_amqp EXIT INT TERM

  if [ $QUICK -eq 1 ]; then
    M=50000; M_W1=10000; SECS=15
  else
    M=400000; M_W1=100000; SECS=60
  fi
  AMQP_SCENARIOS=(
    # The SDK's own pattern: each send waits for its confirm.
    "--scenario publish --publishers 4 --window 1 --payload 64 --messages $M_W1"
    "--scenario publish --publishers 4 --window 64 --payload 64 --messages $M"
    "--scenario publish --publishers 4 --window 64 --payload 1024 --messages $M"
    "--scenario consume --consumers 4 --prefetch 64 --publishers 4 --window 64 --payload 64 --messages $M"
  )
  machine | tee "$OUT/machine.txt" >&2
  for rep in $(seq "$REPS"); do
    for scenario in "${AMQP_SCENARIOS[@]}"; do
      if [ -n "$ONLY" ] && ! grep -Eq -- "$ONLY" <<<"$scenario"; then continue; fi
      for broker in mqgate rabbitmq; do
        if [ $broker = mqgate ]; then
          start_mqgate_amqp || continue
          args=(--target 127.0.0.1:$MQGATE_AMQP_PORT --login sdk --instance post-cn-bench
            --access-key LTAI_bench --secret bench-secret
            --feed mqtt --mqtt-target 127.0.0.1:$MQGATE_AMQP_MQTT_PORT)
        else
          start_rabbitmq || continue
          args=(--target 127.0.0.1:$RABBITMQ_PORT --login plain --user guest --password guest
            --vhost / --declare --feed amqp)
        fi
        say "rep $rep/$REPS $broker: $scenario"
        # shellcheck disable=SC2086
        "$BENCH" amqp "${args[@]}" --label "$broker" --broker-pid "$BROKER_PID" \
          --seconds "$SECS" $scenario >>"$RESULTS" 2>>"$OUT/runs.log" \
          || say "run failed (see $OUT/runs.log)"
        tail -n 1 "$OUT/runs.log" | cut -c1-200 >&2
        if [ $broker = mqgate ]; then stop_broker; else stop_rabbitmq; fi
      done
    done
  done
  "$BENCH" summarize --ours mqgate "$RESULTS" | tee "$OUT/summary.md"
  say "raw results: $RESULTS; summary: $OUT/summary.md"
  exit 0
fi

# ---- scenarios ---------------------------------------------------------------------------
if [ $QUICK -eq 1 ]; then
  M=200000; M1K=100000; FANOUT=5000; TOPICS=2000; TOPIC_MSGS=50000; WILD_MSGS=50000
  LAT=20000; LAT_SLOW=5000; CONNS=2000; SECS=10; SECS_SETUP=20
else
  M=1000000; M1K=400000; FANOUT=20000; TOPICS=10000; TOPIC_MSGS=200000; WILD_MSGS=200000
  LAT=50000; LAT_SLOW=10000; CONNS=10000; SECS=25; SECS_SETUP=45
fi
SCENARIOS=(
  "--scenario fan-in --qos 0 --payload 64 --messages $M"
  "--scenario fan-in --qos 1 --payload 64 --messages $M"
  "--scenario fan-in --qos 0 --payload 1024 --messages $M1K"
  "--scenario fan-in --qos 1 --payload 1024 --messages $M1K"
  "--scenario fan-out --qos 0 --messages $FANOUT"
  "--scenario many-topics --qos 0 --clients $TOPICS --messages $TOPIC_MSGS"
  "--scenario p2p --qos 0 --clients $TOPICS --messages $TOPIC_MSGS"
  "--scenario wildcard --qos 0 --clients 10000 --messages $WILD_MSGS"
  # One publisher at a fixed rate to one subscriber: the latency a device sees at low load.
  "--scenario latency --qos 0 --rate 1000 --messages $LAT_SLOW"
  "--scenario latency --qos 1 --rate 1000 --messages $LAT_SLOW"
  "--scenario latency --qos 0 --rate 10000 --messages $LAT"
  "--scenario latency --qos 1 --rate 10000 --messages $LAT"
  # Handshakes in flight from several loopback source addresses (1 000 clients per address).
  # 64 stays under Mosquitto's listen backlog (100); 100 and 512 do not, as a fleet
  # reconnecting after an outage does not: SYNs a backlog drops come back after 1 s, and the
  # connect p99 shows it.
  "--scenario connections --clients $CONNS --handshakes 64"
  "--scenario connections --clients $CONNS --handshakes 100"
  "--scenario connections --clients $CONNS --handshakes 512"
)

# --v5: the fan-in and fan-out scenarios above, each over 3.1.1 and over MQTT 5.
if [ $V5 -eq 1 ]; then
  V5_SCENARIOS=()
  for scenario in "${SCENARIOS[@]}"; do
    case "$scenario" in
      *fan-in*|*fan-out*)
        V5_SCENARIOS+=("$scenario --mqtt 3.1.1" "$scenario --mqtt 5") ;;
    esac
  done
  SCENARIOS=("${V5_SCENARIOS[@]}")
fi

machine | tee "$OUT/machine.txt" >&2

for rep in $(seq "$REPS"); do
  for scenario in "${SCENARIOS[@]}"; do
    if [ -n "$ONLY" ] && ! grep -Eq -- "$ONLY" <<<"$scenario"; then continue; fi
    for broker in $BROKERS; do
      # P2P addresses are an mqgate feature; the peers' number is many-topics.
      if [[ "$scenario" == *p2p* && "$broker" != mqgate* ]]; then continue; fi
      start_broker "$broker" || { stop_broker; continue; }
      say "rep $rep/$REPS $broker: $scenario"
      # shellcheck disable=SC2086
      # rumqttd sleeps 1 ms after each accept, so its 10 k-client setups need the longer bound.
      secs=$SECS
      [[ "$scenario" == *clients\ 10000* || "$scenario" == *clients\ $TOPICS* ]] && secs=$SECS_SETUP
      port=$(port_of "$broker")
      [[ "$broker" == rumqttd && "$scenario" == *"--mqtt 5"* ]] && port=$RUMQTTD_V5_PORT
      "$BENCH" run --target 127.0.0.1:"$port" --label "$broker" \
        --broker-pid "$BROKER_PID" --seconds "$secs" $scenario >>"$RESULTS" 2>>"$OUT/runs.log" \
        || say "run failed (see $OUT/runs.log)"
      tail -n 1 "$OUT/runs.log" | cut -c1-200 >&2
      stop_broker
    done
  done
done

"$BENCH" summarize --ours mqgate "$RESULTS" | tee "$OUT/summary.md"
"$BENCH" chart --out "$OUT" --label "$(sed -n 's/^date: //p' "$OUT/machine.txt") · $(basename "$OUT")" "$RESULTS" \
  || say "no charts (see above)"
say "raw results: $RESULTS; summary: $OUT/summary.md; charts: $OUT/*.svg"
