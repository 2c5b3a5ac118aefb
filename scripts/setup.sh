#!/usr/bin/env bash
# Set-up shared by scripts/start.sh and scripts/test.sh. Idempotent and cached: every step checks
# whether its result is already there, so a warm machine passes through in seconds and a fresh one
# gets everything installed and built.
#
#   scripts/setup.sh            toolchain, npm dependencies, wasm and TypeScript builds
#   scripts/setup.sh --tests    also the browser and Python tools the test suite uses
#
# On a fresh machine the installs (wasm-bindgen's CLI compiled from crates.io, npm, apt, pip) run in
# the background while the wasm engine compiles (scripts/bg.sh: their output is shown when they
# finish, and a failure stops the set-up).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/bg.sh

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[setup] %s\033[0m\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi
}

ensure_rust() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
  if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
    log "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
}

# wasm-bindgen's CLI must match the wasm-bindgen crate in Cargo.lock exactly. Prints the version to
# install, nothing if the installed one matches.
wasm_bindgen_wanted() {
  local want
  want=$(awk '/^name = "wasm-bindgen"$/{getline; gsub(/"/,"",$3); print $3; exit}' Cargo.lock)
  [ -n "$want" ] || die "wasm-bindgen not found in Cargo.lock"
  # (The same package gives wasm-bindgen-test-runner, which scripts/test.sh runs the wasm tests with.)
  if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$want" ] \
    || [ "$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $2}')" != "$want" ]; then
    echo "$want"
  fi
}

install_wasm_bindgen() {
  log "installing wasm-bindgen-cli $1 (a few minutes, once)"
  cargo install wasm-bindgen-cli --version "$1" --locked 2>/dev/null \
    || cargo install wasm-bindgen-cli --version "$1" --force
}

ensure_node() {
  command -v node >/dev/null || die "node not found: install Node.js 20 or newer"
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$major" -ge 20 ] || die "Node.js 20 or newer is needed (found $(node --version))"
}

npm_deps_stale() { [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; }

install_npm_deps() {
  log "installing npm dependencies"
  npm ci --no-audit --no-fund
}

# Debian packages the tests need and this machine lacks: chromium and chromium-driver (the browser
# tests), g++ (the firmware tests compile the generated TFLite Micro files).
apt_packages_missing() {
  local missing=()
  if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then missing+=(chromium chromium-driver); fi
  command -v g++ >/dev/null || missing+=(g++)
  echo "${missing[@]}"
}

install_apt_packages() {
  log "installing Debian's $*"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

python_deps_missing() {
  command -v python3 >/dev/null || die "python3 not found"
  ! python3 -c 'import ai_edge_litert, numpy, tflite_micro' 2>/dev/null
}

install_python_deps() {
  log "installing the LiteRT and TFLite Micro interpreters for cross-checks (pip)"
  python3 -m pip install --quiet --disable-pip-version-check -r tests/requirements.txt
}

# Content hash of everything a build depends on, to skip builds whose inputs did not change.
stamp_of() {
  find "$@" -type f -not -path '*/node_modules/*' -not -path '*/dist/*' -print0 2>/dev/null \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16
}

wasm_stamp() { stamp_of crate/src crate/Cargo.toml Cargo.lock Cargo.toml scripts/build-wasm.sh scripts/strip-wasm.mjs scripts/wasm-sections.mjs; }
wasm_up_to_date() { [ -f web/wasm/.stamp ] && [ "$(cat web/wasm/.stamp)" = "$(wasm_stamp)" ]; }

build_wasm() {
  if wasm_up_to_date; then
    log "wasm engine up to date"
    return
  fi
  scripts/build-wasm.sh
  wasm_stamp > web/wasm/.stamp
}

build_web() {
  local stamp
  stamp=$(stamp_of web/src web/tsconfig.json web/package.json web/wasm/.stamp)
  if [ -f web/dist/.stamp ] && [ "$(cat web/dist/.stamp)" = "$stamp" ]; then
    log "TypeScript package up to date"
    return
  fi
  log "building the TypeScript package"
  rm -rf web/dist
  npm run --silent build -w web
  echo "$stamp" > web/dist/.stamp
}

build_app() {
  local stamp
  # (stamp_of skips dist/ folders, so the package's own stamp is added by hand.)
  stamp=$({ stamp_of www/src www/index.html www/public www/vite.config.ts www/package.json tests/fixtures/cnn; cat web/dist/.stamp; } | sha256sum | cut -c1-16)
  if [ -f www/dist/.stamp ] && [ "$(cat www/dist/.stamp)" = "$stamp" ]; then
    log "web app up to date"
    return
  fi
  log "building the web app"
  # Vite does not type-check: tsc does, so an API change the app does not follow fails here.
  npx --no-install tsc -p www/tsconfig.json
  npx --no-install vite build www --logLevel warn
  echo "$stamp" > www/dist/.stamp
}

main() {
  local tests=0 bindgen apt
  [ "${1:-}" != "--tests" ] || tests=1
  ensure_rust
  ensure_node
  # The installs, in the background (each waited for before what needs it).
  bindgen=$(wasm_bindgen_wanted)
  [ -z "$bindgen" ] || bg_start wasm-bindgen-cli install_wasm_bindgen "$bindgen"
  ! npm_deps_stale || bg_start npm install_npm_deps
  if [ "$tests" = 1 ]; then
    apt=$(apt_packages_missing)
    # (In the background only as root: sudo may ask for a password.)
    # shellcheck disable=SC2086 # a list of package names
    if [ -n "$apt" ] && [ "$(id -u)" = 0 ]; then bg_start apt install_apt_packages $apt
    elif [ -n "$apt" ]; then install_apt_packages $apt; fi
    ! python_deps_missing || bg_start pip install_python_deps
  fi
  # The wasm engine compiles meanwhile; wasm-bindgen then needs its CLI, the rest node_modules.
  if [ -n "$bindgen" ]; then
    wasm_up_to_date || scripts/build-wasm.sh --compile-only
    bg_wait wasm-bindgen-cli
  fi
  [ -z "${BG_PID[npm]:-}" ] || bg_wait npm
  build_wasm
  build_web
  build_app
  [ -z "${BG_PID[apt]:-}" ] || bg_wait apt
  [ -z "${BG_PID[pip]:-}" ] || bg_wait pip
}

main "$@"
