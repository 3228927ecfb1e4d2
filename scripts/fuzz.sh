#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: scripts/fuzz.sh [SECONDS] (default 120), split as
# decode 30%, roundtrip 15%, request 35% (arbitrary bytes as a client connection, served in
# process), publish 20% (publish bodies through the route's parser). cargo-fuzz needs nightly
# features; RUSTC_BOOTSTRAP=1 lets stable provide them.
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

total=${1:-120}
[ "$total" -ge 8 ] 2>/dev/null || { echo "usage: $0 [SECONDS >= 8]" >&2; exit 2; }
decode_secs=$((total * 30 / 100))
roundtrip_secs=$((total * 15 / 100))
request_secs=$((total * 35 / 100))
publish_secs=$((total - decode_secs - roundtrip_secs - request_secs))

ensure_cargo_fuzz
# libfuzzer-sys compiles libFuzzer, which is C++.
command -v c++ >/dev/null 2>&1 || apt_install g++
export RUSTC_BOOTSTRAP=1
cargo fuzz build
mkdir -p fuzz/target
for target in decode:$decode_secs roundtrip:$roundtrip_secs request:$request_secs publish:$publish_secs; do
  name=${target%%:*}
  log=fuzz/target/fuzz-$name.log
  mkdir -p "fuzz/corpus/$name"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb bounds memory.
  dict=()
  # HTTP tokens let the request target reach past the head check quickly.
  [ "$name" = request ] && dict=(-dict="$PWD/fuzz/dict/http.dict")
  if ! cargo fuzz run "$name" -- -max_total_time="${target##*:}" -timeout=10 -rss_limit_mb=2048 "${dict[@]}" \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $name failed: the crashing input is in fuzz/artifacts/$name/" >&2
    exit 1
  fi
  printf '    %s: %s runs in %ss, no crash\n' "$name" \
    "$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")" "${target##*:}" >&2
done
