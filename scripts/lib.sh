# Shared by scripts/test.sh and scripts/run.sh: idempotent installers (each skips what is
# present) and a step runner. Sourced, not run.

log() { printf '\n==> %s\n' "$*" >&2; }

# Runs a named step, printing its name and how long it took.
step() {
  local name=$1 start=$SECONDS
  shift
  log "$name"
  "$@"
  printf '    (%s: %ss)\n' "$name" "$((SECONDS - start))" >&2
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  log "installing ${missing[*]} from Debian"
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null
  # A first install of chromium can fail inside dpkg and succeed on a retry.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q "${missing[@]}" >/dev/null ||
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q -f "${missing[@]}" >/dev/null
}

ensure_wasm_target() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown ||
    rustup target add wasm32-unknown-unknown
}

# The wasm-bindgen version the wasm crate pins, read from Cargo.lock so the CLI never drifts.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_wasm_tools() {
  ensure_wasm_target
  local want
  want=$(wasm_bindgen_version)
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    log "installing wasm-bindgen-cli $want (first time only: a few minutes)"
    # No --locked: its lock file wants a crate version the registry mirror lacks.
    cargo install wasm-bindgen-cli --version "$want"
  fi
  if [ "$(wasm-pack --version 2>/dev/null | awk '{print $2}')" != "0.15.1" ]; then
    log "installing wasm-pack 0.15.1 (first time only: a few minutes)"
    cargo install wasm-pack --version 0.15.1 --locked
  fi
}

ensure_chromium() {
  apt_install chromium chromium-driver
}

ensure_cargo_fuzz() {
  command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
}

# sseclient-py, the Python SSE client clients/tests/retry.rs runs, in a virtualenv under
# target/ (pinned; reinstalled only when the version differs).
SSECLIENT_PY_VERSION=1.9.0
SSECLIENT_PY_VENV=target/sse-clients-venv
ensure_sseclient_py() {
  local have
  have=$("$SSECLIENT_PY_VENV/bin/python" -c \
    'import importlib.metadata as m; print(m.version("sseclient-py"))' 2>/dev/null || true)
  [ "$have" = "$SSECLIENT_PY_VERSION" ] && return 0
  log "installing sseclient-py $SSECLIENT_PY_VERSION into $SSECLIENT_PY_VENV"
  python3 -m venv "$SSECLIENT_PY_VENV"
  "$SSECLIENT_PY_VENV/bin/pip" install --quiet --disable-pip-version-check \
    "sseclient-py==$SSECLIENT_PY_VERSION"
}
