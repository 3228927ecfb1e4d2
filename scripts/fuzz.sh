#!/usr/bin/env bash
# Fuzzes the decoder for a bounded time: scripts/fuzz.sh [SECONDS] (default 60), two thirds on
# the `decode` target (arbitrary bytes, any chunking), one third on `roundtrip` (encode then
# decode). cargo-fuzz needs nightly features; RUSTC_BOOTSTRAP=1 lets stable provide them.
# A crash leaves its input in fuzz/artifacts/<target>/ and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

total=${1:-60}
decode_secs=$((total * 2 / 3))
roundtrip_secs=$((total - decode_secs))
[ "$decode_secs" -ge 1 ] && [ "$roundtrip_secs" -ge 1 ] || { echo "usage: $0 [SECONDS >= 2]" >&2; exit 2; }

ensure_cargo_fuzz
# libfuzzer-sys compiles libFuzzer, which is C++.
command -v c++ >/dev/null 2>&1 || apt_install g++
export RUSTC_BOOTSTRAP=1
cargo fuzz build
mkdir -p fuzz/target
for target in decode:$decode_secs roundtrip:$roundtrip_secs; do
  name=${target%%:*}
  log=fuzz/target/fuzz-$name.log
  mkdir -p "fuzz/corpus/$name"
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb bounds memory.
  if ! cargo fuzz run "$name" -- -max_total_time="${target##*:}" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $name failed: the crashing input is in fuzz/artifacts/$name/" >&2
    exit 1
  fi
  printf '    %s: %s runs in %ss, no crash\n' "$name" \
    "$(awk '/stat::number_of_executed_units/ { print $2 }' "$log")" "${target##*:}" >&2
done
