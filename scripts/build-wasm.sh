#!/usr/bin/env bash
# Builds the Rust core for wasm32 into web/wasm/, in two SIMD flavours: `simd` (simd128) and
# `relaxed` (simd128 + relaxed SIMD); the package picks the best one the JS engine validates at load
# time:
#   web/wasm/{simd,relaxed}/        the full engine (inference, quantize, prune, train, evaluate, ...)
# With `--core`, also:
#   web/wasm/core/{simd,relaxed}/   the inference-only core (`--no-default-features`: read a model,
#                                   run, profile, benchmark), under half the full engine's download.
#                                   Only its .wasm is kept: its exports are a subset of the full
#                                   engine's, with the same imports, so the full build's glue
#                                   (web/wasm/simd/tinyml_optimizer.js) loads it (web/test/core.test.mjs).
#                                   The package does not load it yet, so setup does not build it.
# Each build is stripped of its custom sections (function names, producers). binaryen's wasm-opt is
# not run: Debian's version (108) cannot read the final relaxed-SIMD opcodes, and on the simd128
# build it saves 1% gzipped (5% raw) but breaks the module even with the features read from the
# module (`--detect-features`): its output exports `__wbindgen_externrefs` as the funcref table, so
# wasm-bindgen's start-up `table.set` throws. (npm's binaryen 132 reads both builds and keeps them
# working, but its -O3 or -Oz save only 1.5% gzipped.)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# build FLAVOR OUT_DIR [CARGO_ARGS...]
build() {
  local flavor=$1 out=$2 features
  shift 2
  case "$flavor" in
    simd) features="+simd128" ;;
    relaxed) features="+simd128,+relaxed-simd" ;;
  esac
  printf '\033[1;34m[build]\033[0m wasm engine (%s)\n' "$out" >&2
  # A target directory per flavour: different RUSTFLAGS would otherwise rebuild everything each
  # time. (The full engine and the core share it: only the crate itself differs between them.)
  # cargo, then wasm-bindgen (the CLI setup.sh pins to Cargo.lock's version): what `wasm-pack build
  # --target web` does, without installing wasm-pack on a fresh machine.
  local target="$ROOT/target/wasm-$flavor"
  RUSTFLAGS="-C target-feature=$features" CARGO_TARGET_DIR="$target" \
    cargo build --quiet --release --lib --target wasm32-unknown-unknown -p tinyml-optimizer "$@"
  rm -rf "web/wasm/$out"
  wasm-bindgen --target web --out-dir "web/wasm/$out" --out-name tinyml_optimizer \
    "$target/wasm32-unknown-unknown/release/tinyml_optimizer.wasm"
  local wasm="web/wasm/$out/tinyml_optimizer_bg.wasm"
  node scripts/strip-wasm.mjs "$wasm"
  printf '  %s bytes, %s gzipped\n' "$(wc -c < "$wasm")" "$(gzip -9c "$wasm" | wc -c)" >&2
}

for flavor in simd relaxed; do
  build "$flavor" "$flavor"
  if [ "${1:-}" = "--core" ]; then
    build "$flavor" "core/$flavor" --no-default-features
    find "web/wasm/core/$flavor" -type f -not -name tinyml_optimizer_bg.wasm -delete
  fi
done
