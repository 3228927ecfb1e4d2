#!/usr/bin/env bash
# One publish reaching every subscriber of a cluster: a redis-server on a free loopback port,
# NODES `ssecast serve --redis` nodes, and one `ssecast-bench` generator per node with SUBS
# subscribers each (a process's open-file limit bounds one generator, so the generators
# share one clock with --clock-base-unix-us). One generator publishes RATE events per second
# to its node; every generator times every event it receives. Prints each generator's JSON
# line and a summary (99% of all deliveries took at most the largest per-node p99, as each
# node's did). Loopback only; every run is bounded; it stops what it started.
#
#   bench/cluster.sh                    # 5 nodes x 19,000 subscribers
#   NODES=3 SUBS=2000 bench/cluster.sh  # smaller
#   BIN=path/to/ssecast BENCH=path/to/ssecast-bench bench/cluster.sh
#
# Installs redis-server, jq and curl from Debian when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

nodes=${NODES:-5}
subs=${SUBS:-19000}
rate=${RATE:-1}
window=${WINDOW:-20}
# Generators connect at the same time on a shared machine: gently.
connect_rate=${CONNECT_RATE:-1000}
apt_install redis-server jq curl
if [ -z "${BIN:-}" ] || [ -z "${BENCH:-}" ]; then
  log "building ssecast and ssecast-bench (release)"
  cargo build --release -p ssecast-server -p ssecast-bench --quiet
fi
BIN=${BIN:-target/release/ssecast}
BENCH=${BENCH:-target/release/ssecast-bench}

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ulimit -n "$(ulimit -Hn)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >"$work/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.1
done

urls=()
for i in $(seq "$nodes"); do
  "$BIN" serve --addr 127.0.0.1:0 --redis "redis://127.0.0.1:$redis_port" --tick 0 \
    --max-subscribers $((subs + 100)) --queue 64 >"$work/node$i.out" 2>"$work/node$i.err" &
  pids+=($!)
  for _ in $(seq 100); do
    [ -s "$work/node$i.out" ] && break
    sleep 0.1
  done
  urls+=("$(sed -n 's/^listening on //p' "$work/node$i.out")")
done
log "redis on $redis_port; nodes: ${urls[*]}"

base=$(($(date +%s%6N) - 1000000))
connect=$((subs / connect_rate + 15))
gens=()
generator() { # generator I ARGS...: one `ssecast-bench` on node I
  local i=$1 url=${urls[$(($1 - 1))]}
  shift
  "$BENCH" --url "$url/events?topic=bench" --publish-url "$url/publish?topic=bench" \
    --subscribers "$subs" --connect-rate "$connect_rate" --clock-base-unix-us "$base" \
    --drain 5s --json --label "node$i" \
    "$@" >"$work/gen$i.json" 2>"$work/gen$i.err" &
  gens+=($!)
  pids+=($!)
}
# Subscribers of every node but the last first, timing whatever arrives...
for i in $(seq $((nodes - 1))); do
  generator "$i" --rate 0 --warmup 0s --duration "$((2 * connect + window + 20))s"
done
# ...and once they are all connected, the last node's, whose generator publishes.
for i in $(seq $((nodes - 1))); do
  url=${urls[$((i - 1))]}
  for _ in $(seq $((connect * 10))); do
    n=$(curl -s "$url/metrics" | sed -n 's/^ssecast_subscribers //p')
    [ "${n:-0}" -ge "$subs" ] && break
    sleep 0.1
  done
  log "node$i: ${n:-0} subscribers"
done
generator "$nodes" --rate "$rate" --warmup 2s --duration "${window}s"
for pid in "${gens[@]}"; do wait "$pid" || true; done

for i in $(seq "$nodes"); do
  if [ ! -s "$work/gen$i.json" ]; then
    echo "generator $i printed nothing:" >&2
    cat "$work/gen$i.err" >&2
    exit 1
  fi
  cat "$work/gen$i.json"
done
jq -s '{
  nodes: length,
  subscribers: (map(.connected) | add),
  published: (.[-1].published.ok),
  received: (map(.received) | add),
  expected: ((map(.connected) | add) * .[-1].published.ok),
  gaps: (map(.gaps) | add),
  latency_samples: (map(.latency.count // 0) | add),
  latency_p50_ms_per_node: map(.latency.p50_ms),
  latency_p99_ms_per_node: map(.latency.p99_ms),
  latency_p99_ms_all_at_most: (map(.latency.p99_ms) | max),
  latency_max_ms_per_node: map(.latency.max_ms)
}' "$work"/gen*.json
