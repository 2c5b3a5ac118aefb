#!/usr/bin/env bash
# Runs every test: Rust (native), the same core tests in headless Chromium (wasm-pack), the
# TypeScript package and CLI, the web app in Chromium, and the conformance checks against LiteRT
# over ../shared/reference (skipped, loudly, where that folder does not exist).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh" --tests
cd "$ROOT"

step() { printf '\n\033[1;35m=== %s ===\033[0m\n' "$*"; }

step "Rust core, native (cargo test)"
cargo test --workspace --quiet

step "Rust core in headless Chromium (wasm-pack test, simd128)"
CHROMEDRIVER=/usr/bin/chromedriver RUSTFLAGS="-C target-feature=+simd128" CARGO_TARGET_DIR="$ROOT/target/wasm-test" \
  wasm-pack test --headless --chrome crate

step "TypeScript package and CLI (node --test)"
npm test --silent -w web

step "Web app in headless Chromium (playwright-core)"
node --test --test-reporter=spec tests/e2e/

step "Conformance against LiteRT over the reference models"
python3 tests/conformance/check_reference.py

step "Pruned models against LiteRT (fixtures and reference float models)"
python3 tests/conformance/check_pruning.py

printf '\n\033[1;32mall tests passed\033[0m\n'
