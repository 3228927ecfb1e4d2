#!/usr/bin/env bash
# Runs the README's nginx and Caddy recipes as written (browser-test/proxies.mjs extracts
# them from README.md) against real nginx and Caddy from Debian, with Chromium's and Node's
# EventSource through them and ssecast restarted behind them. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

apt_install nginx caddy chromium openssl
cargo build --quiet -p ssecast-server
npm ci --prefix browser-test --no-audit --no-fund --silent
out=$(node --test browser-test/proxies.mjs 2>&1) || { printf '%s\n' "$out"; exit 1; }
printf '%s\n' "$out" | grep -E '^(ok|not ok|# (pass|fail))'
# Some must pass and none be skipped (a run of none is a failure too).
printf '%s\n' "$out" | awk '
  /^# (pass|skipped|todo|cancelled) / { n[$2] = $3 }
  END { if (n["pass"] < 2 || n["skipped"] + n["todo"] + n["cancelled"] > 0) exit 1 }' ||
  { echo "the proxy tests did not all run" >&2; exit 1; }
