#!/usr/bin/env bash
# Runs every test: Rust (native), the same core tests in headless Chromium (wasm-bindgen-test), the
# TypeScript package and CLI, the web app in Chromium, and the conformance checks against LiteRT
# and TFLite Micro over ../shared/reference (skipped, loudly, where that folder does not exist).
#
# The Python conformance checks (single-threaded, a few minutes) run in the background while the
# Rust tests compile and run: their output is printed at the end, with each check's duration, and a
# failure fails the run (scripts/bg.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" --tests
cd "$ROOT"
source scripts/bg.sh

# Each step prints the time the previous one took (CI must stay under 30 minutes in all).
LAST=$SECONDS
step() {
  printf '\n\033[1;35m=== %s ===\033[0m (previous step: %d s, total %d s)\n' "$*" $((SECONDS - LAST)) "$SECONDS"
  LAST=$SECONDS
}

# The three checks one after the other, each step with its own duration (step's "previous step"
# counts from the last step of this background lane).
conformance() {
  LAST=$SECONDS
  step "Conformance against LiteRT over the reference models"
  python3 tests/conformance/check_reference.py

  step "Pruned models against LiteRT (fixtures and reference float models)"
  python3 tests/conformance/check_pruning.py

  step "Conformance against TFLite Micro: int8 outputs and predicted tensor arenas"
  python3 tests/conformance/check_tflm.py
  printf '\n(last conformance check: %d s)\n' $((SECONDS - LAST))
}
bg_start conformance conformance

step "Rust core, native (cargo test)"
cargo test --workspace --quiet

# A test runs on the page's main thread; the runner's default 20 s per poll is too short for the
# training tests on a loaded 2-core machine.
export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-600}"

# cargo test with wasm-bindgen's runner as the wasm32 runner: what `wasm-pack test --headless
# --chrome` does, without the extra dev-profile build of the library it starts with (3 min here).
# The runner drives headless Chromium through $CHROMEDRIVER.
export CHROMEDRIVER=/usr/bin/chromedriver CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
wasm_test() { cargo test --target wasm32-unknown-unknown -p tinyml-optimizer "$@"; }

step "Rust core in headless Chromium (wasm-bindgen-test, simd128)"
RUSTFLAGS="-C target-feature=+simd128" CARGO_TARGET_DIR="$ROOT/target/wasm-test" wasm_test --lib --tests

# The relaxed-SIMD build has its own int8 GEMM (i32x4.relaxed_dot_i8x16_i7x16_add): its kernel
# tests and the bit-exactness of the fixture int8 models against LiteRT, in the browser.
step "Relaxed-SIMD build in headless Chromium (kernels and int8 fixtures)"
RUSTFLAGS="-C target-feature=+simd128,+relaxed-simd" CARGO_TARGET_DIR="$ROOT/target/wasm-test-relaxed" \
  wasm_test --lib --test fixtures

step "TypeScript package and CLI (node --test)"
npm test --silent -w web

step "Example projects on the packed package: Node, Vite, webpack 5, a CDN (tests/examples)"
node tests/examples/run.mjs

step "Web app in headless Chromium (playwright-core)"
node --test --test-reporter=spec tests/e2e/

step "Conformance checks (Python, in the background since the first step)"
bg_wait conformance

printf '\n\033[1;32mall tests passed\033[0m (last step: %d s, total %d s)\n' $((SECONDS - LAST)) "$SECONDS"
