#!/usr/bin/env bash
# Runs every test in the repo, installing what it needs first (skipping what is present).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export CARGO_TERM_COLOR=never RUST_LIB_BACKTRACE=0

step "format" cargo fmt --all --check
step "clippy" cargo clippy --workspace --all-targets --quiet -- -D warnings
step "tests (core and server, over real sockets)" cargo test --workspace
step "core builds for wasm32" sh -c '. scripts/lib.sh; ensure_wasm_target; cargo build -p ssecast --target wasm32-unknown-unknown --quiet'
step "fuzz the decoder" scripts/fuzz.sh 60
