#!/usr/bin/env bash
# The whole thing in one command: builds the wasm package into www/pkg (installing the wasm
# target, wasm-bindgen-cli and wasm-pack if missing) and starts `ssecast serve`, which prints
# the URL to open. Arguments go to `ssecast serve`, e.g. `scripts/run.sh --addr 0.0.0.0:8080`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

step "wasm tools (the first run compiles wasm-bindgen-cli and wasm-pack: a few minutes)" ensure_wasm_tools
step "wasm package into www/pkg" wasm-pack --quiet build --release --target web --mode no-install --out-dir ../www/pkg wasm
log "starting ssecast serve (the first run compiles it)"
exec cargo run --quiet --release -p ssecast-server -- serve "$@"
