#!/usr/bin/env bash
# Runs the same workloads against `ssecast serve`, nginx + nchan and the floor (`ssecast-bench
# --serve-floor`: one write() per subscriber per event, no HTTP library, no queue) in one run,
# each server pinned to CPU 0 and the load generator (`ssecast-bench`) to CPU 1, and
# prints a markdown table with ratios. The publish workloads (P0 P1 P2 P1j P1w P3n P1n P4d P4dn) measure
# the other side, `ssecast-bench publish`: acknowledged publishes per second over 16
# keep-alive connections with 20 subscribers listening, every acknowledged event counted at
# every subscriber, against ssecast and nginx + nchan (not the floor), in a table of their
# own; P1w is the same load from wrk (`bench/publish.lua`) to show both tools agree.
# Loopback only; every run is bounded; it stops what it started.
#
#   bench/compare.sh               # every workload (W1-W4, P0-P4dn) at full size (over 8 min)
#   bench/compare.sh quick         # the same shapes, smaller and shorter (~3 min)
#   bench/compare.sh full W3a W4   # only these workloads
#   bench/compare.sh quick P1 P2   # only the publish workloads P1 and P2
#   SERVERS="ssecast floor" bench/compare.sh full W2   # only some servers
#   RESULTS=out.jsonl bench/compare.sh         # also keep every JSON line
#   BASELINE=7a6d683 SERVERS="ssecast baseline" bench/compare.sh full W1 W2   # before and after
#   SERVERS="ssecast mercure mercure_template" bench/compare.sh full W2 W3a W3b   # Mercure cost
#
# BASELINE=REV builds ssecast at git revision REV (in a temporary worktree, release, its own
# target directory under target/baseline/) and runs it as the server `baseline`, so a change
# is measured beside the code before it in one run; the tables then compare ssecast with it.
#
# Installs nginx, libnginx-mod-nchan, jq and wrk from Debian when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

mode=${1:-full}
case $mode in
full | quick) ;;
*)
  echo "usage: $0 [full|quick] [W1 W2 W3a W3b W4 P0 P1 P2 P1j P1w P3n P1n P4d P4dn ...]" >&2
  exit 2
  ;;
esac
shift || true
only=("$@")
servers=${SERVERS:-ssecast nchan floor}
# Frames a subscriber may have queued in ssecast: deep enough that a burst is not dropped.
queue=${QUEUE:-1024}
# In the publish workloads tens of thousands of events a second reach each subscriber, so a
# generator descheduled for 25 ms would see drops at 1024: ssecast gets a queue as deep as
# nchan's buffering (which has no per-subscriber bound), so the delivery check measures the
# server, not the policy. 20 subscribers x 65536 frames is at most ~10 MB of queue.
pqueue=${PQUEUE:-65536}
ssecast_queue=$queue

if [ "$(nproc)" -lt 2 ]; then
  echo "$0: needs 2 CPUs (server on CPU 0, load generator on CPU 1)" >&2
  exit 2
fi
apt_install nginx libnginx-mod-nchan jq wrk
log "building ssecast and ssecast-bench (release)"
cargo build --release -p ssecast-server -p ssecast-bench --quiet
bin=target/release/ssecast
baseline_bin=""
if [ -n "${BASELINE:-}" ]; then
  rev=$(git rev-parse --short "$BASELINE")
  tree=target/baseline/src-$rev
  if [ ! -d "$tree" ]; then
    git worktree add --detach "$tree" "$rev" >/dev/null
  fi
  log "building ssecast at $rev (release) as the baseline"
  (cd "$tree" && CARGO_TARGET_DIR=../target-$rev cargo build --release -p ssecast-server --quiet)
  baseline_bin=target/baseline/target-$rev/release/ssecast
fi
bench=target/release/ssecast-bench

work=$(mktemp -d)
durable=
results=$work/results.jsonl
results_pub=$work/publish.jsonl
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
server_pid=""  # the process to kill (ssecast, or nginx's master)
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "${RESULTS:-}" ]; then cat "$results" "$results_pub" 2>/dev/null >"$RESULTS" || true; fi
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

# Sets server_pid, measured_pid, sub_url and pub_url. $1: the binary (this tree's by default).
start_ssecast() {
  local out=$work/ssecast.out extra=()
  : >"$out"
  # The durable workloads: a fresh --data-dir on $work's filesystem for every server.
  if [ -n "$durable" ]; then
    rm -rf "$work/data"
    extra=(--data-dir "$work/data")
  fi
  SSECAST_LOG=warn "${prio[@]}" taskset -c 0 "${1:-$bin}" serve --addr 127.0.0.1:0 --tick 0 \
    --queue "$ssecast_queue" --overflow drop-newest --max-subscribers 20000 --threads 1 \
    "${extra[@]}" >"$out" 2>>"$work/ssecast.err" &
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

# ssecast serving the same load through its Mercure hub: every subscriber on
# /.well-known/mercure with one exact topic selector (`mercure`) or one URI template
# (`mercure_template`), the events published to a topic both match.
start_mercure() { start_mercure_with "%2Fbooks%2F1"; }
start_mercure_template() { start_mercure_with "%2Fbooks%2F%7Bid%7D"; }
# start_mercure_with SELECTOR (percent-encoded)
start_mercure_with() {
  start_ssecast
  sub_url="${sub_url%/events}/.well-known/mercure?topic=$1"
  pub_url="$pub_url?topic=/books/1"
}

# ssecast at $BASELINE.
start_baseline() {
  [ -n "$baseline_bin" ] || {
    echo "the server baseline needs BASELINE=REV" >&2
    return 1
  }
  start_ssecast "$baseline_bin"
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

# selected NAME: the workload NAME (its first word) is asked for, or nothing is.
selected() {
  [ ${#only[@]} -eq 0 ] || [[ " ${only[*]} " == *" ${1%% *} "* ]]
}

# run_workload NAME BENCH-ARGS...: the workload against each server, a fresh server each time.
run_workload() {
  local name=$1
  shift
  selected "$name" || return 0
  ssecast_queue=$queue
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

# run_publish NAME SERVERS PUBLISH-ARGS...: `ssecast-bench publish` against each of SERVERS
# that $SERVERS allows, a fresh server each time.
run_publish() {
  local name=$1 allowed=$2 kind
  shift 2
  selected "$name" || return 0
  ssecast_queue=$pqueue
  for server in $servers; do
    [[ " $allowed baseline " == *" $server "* ]] || continue
    "start_$server"
    kind=${server/baseline/ssecast}
    log "$name on $server: ssecast-bench publish $*"
    "${prio[@]}" taskset -c 1 timeout 600 "$bench" publish --url "$pub_url" --subscribe-url "$sub_url" \
      --target-kind "$kind" --server-pid "$measured_pid" --server-cpu 0 --label "$server|$name" --json "$@" |
      tail -1 | tee -a "$results_pub" >&2 || echo "{\"label\":\"$server|$name\",\"error\":true}" >>"$results_pub"
    stop_server
    sleep 2
  done
}

# CPU ticks (user + system) of process $1; the names of ssecast and nginx hold no space.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# CPU 0's busy and total ticks (busy: user nice system irq softirq steal).
core0() { awk '$1 == "cpu0" { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# run_wrk NAME SECONDS SUBSCRIBERS: wrk -t1 -c16 posting bench/publish.lua's event for SECONDS
# while ssecast-bench holds SUBSCRIBERS subscribers (no publisher of its own) and counts what
# they receive; one JSON line per server in the publish table's terms.
run_wrk() {
  local name=$1 secs=$2 subs=$3 gen_pid out=$work/wrk.out gen=$work/wrk-subscribers.json
  selected "$name" || return 0
  ssecast_queue=$pqueue
  for server in $servers; do
    [[ " ssecast nchan baseline " == *" $server "* ]] || continue
    "start_$server"
    log "$name on $server: wrk -t1 -c16 -d${secs}s --latency -s bench/publish.lua $pub_url"
    "${prio[@]}" taskset -c 1 timeout 600 "$bench" --url "$sub_url" --rate 0 --subscribers "$subs" \
      --warmup 0s --duration "$((secs + 2))s" --drain 0 --server-pid "$measured_pid" --server-cpu 0 \
      --json >"$gen" &
    gen_pid=$!
    sleep 1 # 20 subscribers connect in milliseconds; wrk starts once they listen
    local t0 c0 s0 t1 c1 s1
    t0=$(date +%s.%N) c0=$(core0) s0=$(ticks "$measured_pid")
    "${prio[@]}" taskset -c 1 timeout 600 wrk -t1 -c16 -d"${secs}s" --latency -s bench/publish.lua "$pub_url" >"$out" || true
    t1=$(date +%s.%N) c1=$(core0) s1=$(ticks "$measured_pid")
    wait "$gen_pid" || true
    # wrk prints latencies as 1.23ms, 456.00us or 1.02s.
    jq -n --arg name "$server|$name" --rawfile wrk "$out" --slurpfile gen "$gen" --argjson subs "$subs" \
      --argjson secs "$(echo "$t1 - $t0" | bc)" --argjson server_ticks "$((s1 - s0))" \
      --argjson core "[${c0% *}, ${c0#* }, ${c1% *}, ${c1#* }]" '
      def ms: capture("(?<v>[0-9.]+)(?<u>[a-z]+)") | (.v | tonumber) * ({"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[.u]);
      def line(re): [$wrk | splits("\n") | select(test(re))][0];
      (line("requests in") | capture("(?<n>[0-9]+) requests") | .n | tonumber) as $n |
      {
        "label": $name, "mode": "wrk",
        "publishes_per_sec": (line("^Requests/sec") | capture("(?<r>[0-9.]+)") | .r | tonumber),
        "requests_per_sec": (line("^Requests/sec") | capture("(?<r>[0-9.]+)") | .r | tonumber),
        "requests": {
          "sent": $n,
          "non_2xx": ((line("Non-2xx") // "0") | capture("(?<x>[0-9]+)$") | .x | tonumber),
          "errors": (line("Socket errors") // "none")
        },
        "ack_latency": {
          "p50_ms": (line("^ +50%") | split(" ") | map(select(. != "")) | .[1] | ms),
          "p99_ms": (line("^ +99%") | split(" ") | map(select(. != "")) | .[1] | ms),
          "max_ms": (line("^ +Latency ") | split(" ") | map(select(. != "")) | .[3] | ms)
        },
        "connected": $gen[0].connected,
        # The server and its core over the time wrk ran, as ssecast-bench measures them.
        "server": { "cpu_cores": ($server_ticks / 100 / $secs),
                    "cpu_us_per_publish": (if $n > 0 then $server_ticks / 100 * 1e6 / $n else null end) },
        "server_core_us_per_publish":
          (if $n > 0 and $core[3] > $core[1] then ($core[2] - $core[0]) / ($core[3] - $core[1]) * $secs * 1e6 / $n else null end),
        "server_core_other":
          (if $core[3] > $core[1] then ($core[2] - $core[0]) / ($core[3] - $core[1]) - $server_ticks / 100 / $secs else null end),
        "deliveries": { "expected": ($n * $subs), "received": $gen[0].received,
                        "shortfall": ([($n * $subs) - $gen[0].received, 0] | max) }
      }' | tee -a "$results_pub" >&2 || echo "{\"label\":\"$server|$name\",\"error\":true}" >>"$results_pub"
    stop_server
    sleep 2
  done
}

if [ "$mode" = full ]; then
  n=10000 n_sat=1000 n_scale=19000 window=10s pwindow=10
else
  n=200 n_sat=100 n_scale=500 window=3s pwindow=3
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

# Publishing: 16 keep-alive connections, small text events (`<seq> <send µs>`), 20
# subscribers, every acknowledged event counted at each of them.
pcommon=(--connections 16 --subscribers 20 --warmup 1s --duration "${pwindow}s" --drain 10s)
# What the publish path alone takes, with nobody to deliver to.
run_publish "P0 ingress: 16 connections, text, no subscribers" "ssecast nchan" \
  --pipeline 1 --body text --connections 16 --subscribers 0 --warmup 1s --duration "${pwindow}s"
run_publish "P1 publish: 16 connections, text, 20 subscribers" "ssecast nchan" \
  --pipeline 1 --body text "${pcommon[@]}"
run_publish "P2 pipelined: 16 connections x 16 in flight, text, 20 subscribers" "ssecast nchan" \
  --pipeline 16 --body text "${pcommon[@]}"
run_publish "P1j JSON: 16 connections, JSON, 20 subscribers" "ssecast" \
  --pipeline 1 --body json "${pcommon[@]}"
run_wrk "P1w wrk: wrk -t1 -c16 -d${pwindow}s, text, 20 subscribers" "$pwindow" 20
run_publish "P3n NDJSON: 16 connections, batches of 10, 20 subscribers" "ssecast" \
  --pipeline 1 --body ndjson --batch 10 "${pcommon[@]}"
run_publish "P1n NDJSON: 16 connections, batches of 100, 20 subscribers" "ssecast" \
  --pipeline 1 --body ndjson --batch 100 "${pcommon[@]}"

# Durable publishing: --data-dir, each POST answered after the fdatasync that holds it (group
# commit). Beside it, what the disk alone does: write + fdatasync of 64 B records, one after
# the other, for 3 s, on the same filesystem.
disk_alone=
if selected P4d || selected P4dn; then
  disk_alone=$(python3 -c '
import os, sys, time
path = os.path.join(sys.argv[1], "fsync-probe")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
n, end = 0, time.monotonic() + 3
while time.monotonic() < end:
    os.write(fd, b"x" * 64)
    os.fdatasync(fd)
    n += 1
os.close(fd)
os.unlink(path)
print(round(n / 3))
' "$work")
  log "the disk alone: $disk_alone write+fdatasync/s"
fi
durable=1
run_publish "P4d durable: --data-dir, 16 connections, text, 20 subscribers" "ssecast" \
  --pipeline 1 --body text "${pcommon[@]}"
run_publish "P4dn durable: --data-dir, 64 connections, text, 20 subscribers" "ssecast" \
  --pipeline 1 --body text --connections 64 --subscribers 20 --warmup 1s --duration "${pwindow}s" --drain 10s
durable=

# The tables: one row per workload and figure, a column per server, ratios = ssecast / peer.
# table RESULTS FIGURES: FIGURES is a jq array of [name, path, decimals].
table() {
  local results=$1 figures=$2 header="| workload | figure |" rule="| --- | --- |" peer
  for server in $servers; do
    header="$header $(name "$server") |"
    rule="$rule ---: |"
  done
  for peer in $servers; do
    [ "$peer" = ssecast ] && continue
    header="$header ssecast / $(name "$peer") |"
    rule="$rule ---: |"
  done
  echo
  echo "$header"
  echo "$rule"
  jq -rs --arg servers "$servers" "def figures: $figures; $(cat <<'JQ'
    def num(d): if . == null then "-" elif (. | type) != "number" then tostring else (. * pow(10; d) | round / pow(10; d) | tostring) end;
    def ratio(a; b): if a == null or b == null or (a | type) != "number" or (b | type) != "number" or b == 0 then "-" else (a / b * 100 | round / 100 | tostring) end;
    ($servers | split(" ") | map(select(. != ""))) as $names |
    group_by(.label | split("|")[1]) | .[] |
    . as $runs |
    ($names | map(. as $n | ($runs | map(select(.label | startswith($n + "|")))[0] // {}) | figures)) as $cols |
    ($names | index("ssecast")) as $me |
    (.[0].label | split("|")[1]) as $w |
    range(0; $cols[0] | length) as $i |
    select([$cols[][$i][1]] | any(. != null)) |
    "| \(if $i == 0 then $w else "" end) | \($cols[0][$i][0]) |" +
      ([$cols[] | .[$i][2] as $d | " \(.[$i][1] | num($d)) |"] | join("")) +
      ([range(0; $names | length) | select(. != $me) as $k |
        " \(if $me == null then "-" else ratio($cols[$me][$i][1]; $cols[$k][$i][1]) end) |"] | join(""))
JQ
)" "$results"
}

name() {
  case $1 in
  nchan) echo "nginx + nchan" ;;
  baseline) echo "ssecast at ${BASELINE:-?}" ;;
  mercure) echo "Mercure, exact topic" ;;
  mercure_template) echo "Mercure, URI template" ;;
  *) echo "$1" ;;
  esac
}

if [ -s "$results" ]; then
  table "$results" '[
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
  ]'
fi
if [ -s "$results_pub" ]; then
  table "$results_pub" '[
    ["publishes/s (acknowledged events)", .publishes_per_sec, 0],
    ["requests/s (2xx)", .requests_per_sec, 0],
    ["non-2xx answers", .requests.non_2xx, 0],
    ["requests unanswered", .requests.unanswered, 0],
    ["ack latency p50 (ms)", .ack_latency.p50_ms, 2],
    ["ack latency p99 (ms)", .ack_latency.p99_ms, 2],
    ["ack latency max (ms)", .ack_latency.max_ms, 2],
    ["subscribers connected", .connected, 0],
    ["deliveries expected (acknowledged x subscribers)", .deliveries.expected, 0],
    ["deliveries received", .deliveries.received, 0],
    ["deliveries missing", .deliveries.shortfall, 0],
    ["delivery latency p99 (ms)", .delivery_latency.p99_ms, 2],
    ["server CPU µs per publish", .server.cpu_us_per_publish, 2],
    ["CPU 0 µs per publish (whole core)", .server_core_us_per_publish, 2],
    ["CPU 0 busy outside the server (cores)", .server_core_other, 2],
    ["load generator CPU (cores)", .client_cpu_cores, 2],
    ["valid run", .valid, 0]
  ]'
fi
echo
echo "Command: \`bench/compare.sh $mode${only[*]:+ ${only[*]}}\` at ssecast $(git describe --always --dirty 2>/dev/null || echo '?') (ssecast serve --queue $queue --overflow drop-newest --threads 1, --queue $pqueue in the publish workloads${prio[*]:+; servers and generator under ${prio[*]}})."
[ -z "$disk_alone" ] || echo "The disk alone (P4d, P4dn): $disk_alone write+fdatasync/s of 64 B records, one after the other, on the filesystem of the --data-dir."
echo "Load average (1, 5, 15 min) before: $load_before; after: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Measured $(date -u +%Y-%m-%d) on $(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $(uname -sr); nginx $(nginx -v 2>&1 | sed 's#.*/##'), nchan $(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)."
