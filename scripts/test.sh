#!/usr/bin/env bash
# Runs every test in the repo, installing what it needs first (skipping what is present).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
export CARGO_TERM_COLOR=never

step "format" cargo fmt --all --check
step "clippy" cargo clippy --workspace --all-targets --quiet -- -D warnings
# HTTP/2 runs on smol: tokio is there for its I/O traits only, built without a runtime.
no_tokio_runtime() {
  if cargo tree -p ssecast-server -e features -i tokio | grep -E 'tokio feature "(rt|rt-multi-thread|time|net)"'; then
    echo "a tokio runtime feature is enabled in the server's dependencies" >&2
    return 1
  fi
}
step "no tokio runtime in the server" no_tokio_runtime
# The cluster tests start their own redis-server on a free loopback port; the HTTP/2 tests
# run curl, the restart tests systemd-socket-activate.
step "redis-server, curl and systemd's socket activation tool from Debian (for the server tests)" apt_install redis-server curl systemd
step "sseclient-py into a virtualenv under target/ (for clients/tests/retry.rs)" ensure_sseclient_py
step "tests (core, server over real sockets, other clients against it)" cargo test --workspace
step "core builds for wasm32" bash -c '. scripts/lib.sh; ensure_wasm_target; cargo build -p ssecast --target wasm32-unknown-unknown --quiet'
step "fuzz the decoder, the request path and publish bodies" scripts/fuzz.sh 120

# wasm-pack prints "test result: ok. N passed; ..." per test binary. A run of zero tests fails:
# `wasm-pack test --chrome` without WASM_BINDGEN_USE_BROWSER=1 exits 0 having run none.
wasm_tests() {
  local out passed
  out=$("$@" 2>&1) || { printf '%s\n' "$out"; return 1; }
  passed=$(printf '%s\n' "$out" | awk '/^test result: ok\./ { n += $4 } END { print n + 0 }')
  if [ "$passed" -eq 0 ]; then
    printf '%s\n' "$out"
    echo "no wasm test ran" >&2
    return 1
  fi
  echo "    $passed wasm tests passed"
}

# The module a page loads must not import from "env": that would mean the core (or a
# dependency) pulled in something wasm32-unknown-unknown cannot provide.
wasm_pkg() {
  wasm-pack --quiet build --release --target web --mode no-install --out-dir ../www/pkg wasm
  node -e '
    const fs = require("fs");
    const wasm = new WebAssembly.Module(fs.readFileSync("www/pkg/ssecast_wasm_bg.wasm"));
    const imports = WebAssembly.Module.imports(wasm);
    const modules = [...new Set(imports.map((i) => i.module))];
    console.log(`    ${imports.length} imports, from ${modules.join(", ") || "nothing"}`);
    const env = imports.filter((i) => i.module === "env").map((i) => i.name);
    if (env.length > 0) throw new Error(`the wasm module imports from "env": ${env.join(", ")}`);'
}

# node --test prints "# pass N", "# skipped N", ...: none may be skipped, some must pass.
browser_tests() {
  npm ci --prefix browser-test --no-audit --no-fund --silent
  local out status=0
  out=$(node --test browser-test/ 2>&1) || status=$?
  printf '%s\n' "$out"
  [ "$status" -eq 0 ] || return "$status"
  printf '%s\n' "$out" | awk '
    /^# (pass|skipped|todo|cancelled) / { n[$2] = $3 }
    END { if (n["pass"] == 0 || n["skipped"] + n["todo"] + n["cancelled"] > 0) exit 1 }' ||
    { echo "the browser test ran no test, or skipped some" >&2; return 1; }
}

step "wasm tools (the first run compiles wasm-bindgen-cli and wasm-pack)" ensure_wasm_tools
step "Chromium and chromedriver from Debian" ensure_chromium
step "wasm tests in Node" wasm_tests wasm-pack test --node --mode no-install wasm
step "wasm tests in headless Chromium" wasm_tests env WASM_BINDGEN_USE_BROWSER=1 wasm-pack test --headless --chrome --mode no-install wasm
step "wasm package into www/pkg, with no import from env" wasm_pkg
step "the demo page in headless Chromium" browser_tests
step "the README's proxy recipes behind real nginx and Caddy" scripts/proxies.sh
