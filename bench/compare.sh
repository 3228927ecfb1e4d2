#!/usr/bin/env bash
# Runs the same workloads against `ssecast serve`, nginx + nchan and the floor (`ssecast-bench
# --serve-floor`: one write() per subscriber per event, no HTTP library, no queue) in one run,
# each server pinned to CPU 0 and the load generator (`ssecast-bench`) to CPU 1, and
# prints a markdown table with ratios. Loopback only; every run is bounded; it stops what it
# started.
#
#   bench/compare.sh               # W1-W4 at full size (10,000-19,000 subscribers, ~4 min)
#   bench/compare.sh quick         # the same shapes with few subscribers (~1 min)
#   bench/compare.sh full W3a W4   # only these workloads
#   SERVERS="ssecast floor" bench/compare.sh full W2   # only some servers
#   RESULTS=out.jsonl bench/compare.sh         # also keep every JSON line
#
# Installs nginx and libnginx-mod-nchan from Debian when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

mode=${1:-full}
case $mode in
full | quick) ;;
*)
  echo "usage: $0 [full|quick] [W1 W2 W3a W3b W4 ...]" >&2
  exit 2
  ;;
esac
shift || true
only=("$@")
servers=${SERVERS:-ssecast nchan floor}
# Frames a subscriber may have queued in ssecast: deep enough that a burst is not dropped.
queue=${QUEUE:-1024}

if [ "$(nproc)" -lt 2 ]; then
  echo "$0: needs 2 CPUs (server on CPU 0, load generator on CPU 1)" >&2
  exit 2
fi
apt_install nginx libnginx-mod-nchan jq
log "building ssecast and ssecast-bench (release)"
cargo build --release -p ssecast-server -p ssecast-bench --quiet
bin=target/release/ssecast
bench=target/release/ssecast-bench

work=$(mktemp -d)
results=$work/results.jsonl
server_pid=""  # the process to kill (ssecast, or nginx's master)
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "${RESULTS:-}" ] && [ -f "$results" ]; then cp "$results" "$RESULTS"; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Both servers and the generator inherit this: subscribers are open files.
ulimit -n "$(ulimit -Hn)"

# Measured processes come first on their cores when other work shares the machine (as root;
# NICE=0 turns it off). It changes nothing between the servers: each gets the same.
prio=()
if [ "$(id -u)" -eq 0 ] && [ "${NICE:--10}" != 0 ]; then
  prio=(nice -n "${NICE:--10}")
fi

# A port nothing listens on (bounded tries).
free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 20000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# Waits (bounded) until something accepts on the port.
wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2
  return 1
}

# listening_url FILE: waits (up to 10 s) for the server's `listening on URL` line in FILE and
# prints the URL; fails if it never comes.
listening_url() {
  for _ in $(seq 1 100); do
    grep -q '^listening on ' "$1" && break
    sleep 0.1
  done
  local base
  base=$(sed -n 's/^listening on \(http:[^ ]*\).*/\1/p' "$1")
  [ -n "$base" ] && echo "$base"
}

# Sets server_pid, measured_pid, sub_url and pub_url.
start_ssecast() {
  local out=$work/ssecast.out
  : >"$out"
  RUST_LIB_BACKTRACE=0 SSECAST_LOG=warn "${prio[@]}" taskset -c 0 "$bin" serve --addr 127.0.0.1:0 --tick 0 \
    --queue "$queue" --overflow drop-newest --max-subscribers 20000 --threads 1 \
    >"$out" 2>>"$work/ssecast.err" &
  server_pid=$!
  measured_pid=$server_pid
  local base
  base=$(listening_url "$out") || {
    echo "ssecast did not start" >&2
    cat "$work/ssecast.err" >&2
    return 1
  }
  sub_url=$base/events
  pub_url=$base/publish
}

start_nchan() {
  local port dir=$work/nginx
  port=$(free_port)
  rm -rf "$dir" && mkdir -p "$dir"
  sed -e "s#@DIR@#$dir#g" -e "s#@PORT@#$port#g" -e "s#@NOFILE@#$(ulimit -Hn)#g" \
    -e "s#@CONNECTIONS@#$((2 * $(ulimit -Hn)))#g" bench/nchan.conf.in >"$dir/nginx.conf"
  "${prio[@]}" taskset -c 0 nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" &
  server_pid=$!
  wait_port "$port"
  # The one worker does the work: measure it, not the master.
  measured_pid=$(pgrep -P "$server_pid" | head -1)
  [ -n "$measured_pid" ] || {
    echo "nginx has no worker" >&2
    cat "$dir/error.log" >&2
    return 1
  }
  sub_url=http://127.0.0.1:$port/sub
  pub_url=http://127.0.0.1:$port/pub
}

start_floor() {
  local out=$work/floor.out
  : >"$out"
  "${prio[@]}" taskset -c 0 "$bench" --serve-floor 127.0.0.1:0 --floor-lifetime 10m >"$out" &
  server_pid=$!
  measured_pid=$server_pid
  local base
  base=$(listening_url "$out") || {
    echo "the floor server did not start" >&2
    return 1
  }
  sub_url=$base/events
  pub_url=$base/publish
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# run_workload NAME BENCH-ARGS...: the workload against each server, a fresh server each time.
run_workload() {
  local name=$1
  shift
  if [ ${#only[@]} -gt 0 ] && [[ " ${only[*]} " != *" ${name%% *} "* ]]; then
    return 0
  fi
  for server in $servers; do
    "start_$server"
    log "$name on $server: ssecast-bench $*"
    # The generator bounds itself; the timeout is a backstop.
    "${prio[@]}" taskset -c 1 timeout 600 "$bench" --url "$sub_url" --publish-url "$pub_url" \
      --server-pid "$measured_pid" --server-cpu 0 --label "$server|$name" --json "$@" |
      tail -1 | tee -a "$results" >&2 || echo "{\"label\":\"$server|$name\",\"error\":true}" >>"$results"
    stop_server
    # Let the closed connections' TIME_WAIT and the CPU settle between runs.
    sleep 2
  done
}

if [ "$mode" = full ]; then
  n=10000 n_sat=1000 n_scale=19000 window=10s
else
  n=200 n_sat=100 n_scale=500 window=3s
fi
common=(--connect-rate 4000 --warmup 2s --drain 3s)
run_workload "W1 idle: $n subscribers, 1 event / 2 s" \
  --subscribers "$n" --rate 0.5 --duration "$window" "${common[@]}"
run_workload "W2 fan-out: $n x 10 events/s" \
  --subscribers "$n" --rate 10 --duration "$window" "${common[@]}"
run_workload "W3a saturation: $n_sat x 1000 events/s" \
  --subscribers "$n_sat" --rate 1000 --duration "$window" "${common[@]}"
run_workload "W3b saturation: $n x 100 events/s" \
  --subscribers "$n" --rate 100 --duration "$window" "${common[@]}"
run_workload "W4 scale: $n_scale subscribers, 1 event/s" \
  --subscribers "$n_scale" --rate 1 --duration 3s --warmup 1s --connect-rate 4000 --drain 3s

# The table: one row per workload and figure; ratios = ssecast / peer.
echo
echo "| workload | figure | ssecast | nginx + nchan | floor | ssecast / nchan | ssecast / floor |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: |"
jq -rs '
  def num(d): if . == null then "-" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
  def ratio(a; b): if a == null or b == null or b == 0 then "-" else (a / b * 100 | round / 100 | tostring) end;
  def figures: [
    ["subscribers connected", .connected, 0],
    ["connect time (s)", .connect_secs, 2],
    ["publish rate achieved (/s)", .published.rate, 1],
    ["deliveries/s", .deliveries_per_sec, 0],
    ["drops", .drops, 0],
    ["latency p50 (ms)", .latency.p50_ms, 2],
    ["latency p99 (ms)", .latency.p99_ms, 2],
    ["latency max (ms)", .latency.max_ms, 2],
    ["fairness (min/max events)", .fairness, 3],
    ["server CPU µs per delivery", .server.cpu_us_per_delivery, 2],
    ["server + ksoftirqd/0 µs per delivery", .server.cpu_with_ksoftirqd_us_per_delivery, 2],
    ["CPU 0 µs per delivery (whole core)", .server_core_us_per_delivery, 2],
    ["CPU 0 busy outside the server (cores)", .server_core_other, 2],
    ["server KiB RSS per subscriber", .server.rss_per_subscriber_kib, 2],
    ["load generator CPU (cores)", .client_cpu_cores, 2]
  ];
  group_by(.label | split("|")[1]) | .[] |
  (map(select(.label | startswith("ssecast|")))[0] // {}) as $s |
  (map(select(.label | startswith("nchan|")))[0] // {}) as $c |
  (map(select(.label | startswith("floor|")))[0] // {}) as $f |
  (.[0].label | split("|")[1]) as $w |
  ($s | figures) as $sf | ($c | figures) as $cf | ($f | figures) as $ff |
  range(0; $sf | length) as $i |
  "| \(if $i == 0 then $w else "" end) | \($sf[$i][0]) | \($sf[$i][1] | num($sf[$i][2])) | \($cf[$i][1] | num($cf[$i][2])) | \($ff[$i][1] | num($ff[$i][2])) | \(ratio($sf[$i][1]; $cf[$i][1])) | \(ratio($sf[$i][1]; $ff[$i][1])) |"
' "$results"
echo
echo "Command: \`bench/compare.sh $mode${only[*]:+ ${only[*]}}\` at ssecast $(git describe --always --dirty 2>/dev/null || echo '?') (ssecast serve --queue $queue --overflow drop-newest --threads 1${prio[*]:+; servers and generator under ${prio[*]}})."
echo "Measured $(date -u +%Y-%m-%d) on $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -sr); nginx $(nginx -v 2>&1 | sed 's#.*/##'), nchan $(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null)."
