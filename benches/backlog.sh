#!/usr/bin/env bash
# Offline backlogs far larger than memory (docs/offline-messages.md):
#
#   benches/backlog.sh [--clients N] [--per-session M] [--payload B] [--drain-seconds S]
#                      [--out DIR] [--no-mosquitto]
#
# mqgate (release build, benches/peers/mqgate-backlog.toml: redb, shipped defaults) on a fresh
# data directory: N persistent sessions (default 10 000) subscribe and leave, 4 publishers
# send N x M distinct QoS 1 messages of B bytes (default 1 000 per session of 1 KiB: about
# 10 GiB), each acknowledged once stored (`mqgate-bench durable --phase fill`: ingest rate and
# the broker's peak RSS). Then the size of the store file, a SIGKILL, a start on the same data
# (start-up: from exec until the port accepts; RSS then), and all N clients reconnecting at
# once (`--phase drain`: deliveries per second, the broker's peak RSS, acknowledged messages
# lost), bounded by --drain-seconds (default 1 200: a drain cut short says timed out and
# counts what did not arrive as lost). Mosquitto, which keeps its queues in memory, then gets
# the same fill (unless --no-mosquitto). Every process started here is stopped on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CLIENTS=10000 PER=1000 PAYLOAD=1024 DRAIN_S=1200 OUT="" MOSQ=1
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) CLIENTS=$2; shift ;;
    --per-session) PER=$2; shift ;;
    --payload) PAYLOAD=$2; shift ;;
    --drain-seconds) DRAIN_S=$2; shift ;;
    --out) OUT=$2; shift ;;
    --no-mosquitto) MOSQ=0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
MESSAGES=$((CLIENTS * PER))
OUT=${OUT:-target/bench-backlog/$(date -u +%Y%m%dT%H%M%S)}
mkdir -p "$OUT"
say() { printf '== %s\n' "$*" >&2; }
say "building mqgate and mqgate-bench (release)"
cargo build --release -q -p mqgate-broker -p mqgate-bench
BENCH=target/release/mqgate-bench MQGATE=target/release/mqgate
PID=""
stop() { if [ -n "$PID" ]; then kill -"${1:-TERM}" "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; PID=""; fi; }
trap 'stop KILL' EXIT INT TERM
wait_port() { # PORT TRIES: until the port accepts, 0.05 s apart
  for _ in $(seq "$2"); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
  return 1
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
phase() { # PHASE PORT LABEL SECONDS
  "$BENCH" durable --phase "$1" --acked-file "$OUT/$3-acked.txt" --target 127.0.0.1:"$2" \
    --label "$3" --broker-pid "$PID" --messages "$MESSAGES" --clients "$CLIENTS" \
    --publishers 4 --payload "$PAYLOAD" --seconds "$4" >> "$OUT/results.jsonl" 2>> "$OUT/runs.log"
  tail -n 1 "$OUT/runs.log" | cut -c1-240 >&2
}
{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), mqgate $(git rev-parse --short HEAD)"
  echo "cpu: $(nproc) cores; memory: $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB; disk: $(df -T "$OUT" | awk 'NR==2 {print $2}')"
  echo "load: $CLIENTS sessions x $PER messages of $PAYLOAD B = $MESSAGES messages"
} | tee "$OUT/summary.txt" >&2

DATA="$OUT/mqgate-data"; mkdir -p "$DATA"
RUST_LOG=warn "$MQGATE" --config benches/peers/mqgate-backlog.toml --data-dir "$DATA" >> "$OUT/mqgate.log" 2>&1 &
PID=$!
wait_port 18838 200 || { say "mqgate did not start"; exit 1; }
say "mqgate: fill"
phase fill 18838 mqgate 7200
echo "store file after the fill: $(du -b "$DATA/mqgate.redb" | cut -f1) bytes; broker RSS $(rss_kb "$PID") kB" | tee -a "$OUT/summary.txt" >&2
stop KILL
START=$(date +%s.%N)
RUST_LOG=info "$MQGATE" --config benches/peers/mqgate-backlog.toml --data-dir "$DATA" >> "$OUT/mqgate-restart.log" 2>&1 &
PID=$!
wait_port 18838 6000 || { say "mqgate did not restart"; exit 1; }
echo "start-up after SIGKILL: $(echo "$(date +%s.%N) - $START" | bc) s until the port accepted; RSS then $(rss_kb "$PID") kB" | tee -a "$OUT/summary.txt" >&2
say "mqgate: drain (all sessions reconnect)"
phase drain 18838 mqgate "$DRAIN_S"
stop TERM

if [ "$MOSQ" -eq 1 ]; then
  MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
  "$MOSQUITTO" -c benches/peers/mosquitto-backlog.conf >> "$OUT/mosquitto.log" 2>&1 &
  PID=$!
  wait_port 18841 200 || { say "mosquitto did not start"; exit 1; }
  say "mosquitto: the same fill (queues in memory)"
  phase fill 18841 mosquitto 7200
  echo "mosquitto after the fill: RSS $(rss_kb "$PID") kB" | tee -a "$OUT/summary.txt" >&2
  stop TERM
fi
say "results: $OUT/results.jsonl; summary: $OUT/summary.txt"
