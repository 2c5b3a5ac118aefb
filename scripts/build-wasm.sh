#!/usr/bin/env bash
# Builds the Rust code for wasm32 into web/wasm/, in two SIMD flavours: `simd` (simd128) and
# `relaxed` (simd128 + relaxed SIMD); the package picks the best one the JS engine validates at load
# time:
#   web/wasm/{simd,relaxed}/        the full engine (inference, quantize, prune, train, evaluate, ...)
#   web/wasm/core/{simd,relaxed}/   the inference-only core (`--no-default-features`: read a model,
#                                   its summary, run, profile, benchmark), under half the full
#                                   engine's download. The package starts on it and loads the full
#                                   engine when a call needs it (web/src/core-engine.ts). It keeps
#                                   its own glue (core/simd/tinyml_optimizer.js): a glue module holds
#                                   one instance, and the core and the full engine can share a thread.
# Each build is stripped of its custom sections (function names, producers). binaryen's wasm-opt is
# not run: Debian's version (108) cannot read the final relaxed-SIMD opcodes, and on the simd128
# build it saves 1% gzipped (5% raw) but breaks the module even with the features read from the
# module (`--detect-features`): its output exports `__wbindgen_externrefs` as the funcref table, so
# wasm-bindgen's start-up `table.set` throws. (npm's binaryen 132 reads both builds and keeps them
# working, but its -O3 or -Oz save only 1.5% gzipped.)
#
# The two flavours compile at the same time (two target directories): most of a cold build is the
# crate's own optimisation and the LTO link, each on one core, so two of them fill a 2-core machine.
# In each, the core compiles after the full engine (the dependencies are shared; only the crate
# itself and the link are built again). With `--compile-only`, only the full engine's compile
# (scripts/setup.sh compiles while it installs wasm-bindgen's CLI, then runs this script again,
# which finds that build fresh, runs wasm-bindgen, then compiles the core).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/bg.sh

COMPILE_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --compile-only) COMPILE_ONLY=1 ;;
    *) echo "usage: scripts/build-wasm.sh [--compile-only]" >&2; exit 2 ;;
  esac
done

# A target directory per flavour: different RUSTFLAGS would otherwise rebuild everything each time.
# (The full engine and the core share it: only the crate itself differs between them.)
target_of() { echo "$ROOT/target/wasm-$1"; }

# compile FLAVOR [CARGO_ARGS...]
compile() {
  local flavor=$1 features
  shift
  case "$flavor" in
    simd) features="+simd128" ;;
    relaxed) features="+simd128,+relaxed-simd" ;;
  esac
  RUSTFLAGS="-C target-feature=$features" CARGO_TARGET_DIR="$(target_of "$flavor")" \
    cargo build --quiet --release --lib --target wasm32-unknown-unknown -p tinyml-optimizer "$@"
}

# package FLAVOR OUT_DIR: wasm-bindgen on the target's .wasm (with the CLI setup.sh pins to
# Cargo.lock's version, what `wasm-pack build --target web` does, without installing wasm-pack on a
# fresh machine), then stripped.
package() {
  local flavor=$1 out=$2
  rm -rf "web/wasm/$out"
  wasm-bindgen --target web --out-dir "web/wasm/$out" --out-name tinyml_optimizer \
    "$(target_of "$flavor")/wasm32-unknown-unknown/release/tinyml_optimizer.wasm"
  local wasm="web/wasm/$out/tinyml_optimizer_bg.wasm"
  node scripts/strip-wasm.mjs "$wasm"
  printf '\033[1;34m[build]\033[0m wasm engine (%s): %s bytes, %s gzipped\n' \
    "$out" "$(wc -c < "$wasm")" "$(gzip -9c "$wasm" | wc -c)" >&2
}

# One flavour: the engine, then the core. Each is packaged before the next compile: the full engine
# and the core write the same target/.../tinyml_optimizer.wasm, and cargo does not keep both (the
# next compile of the other one builds and links the crate again).
flavor() {
  compile "$1"
  [ "$COMPILE_ONLY" = 0 ] || return 0
  package "$1" "$1"
  compile "$1" --no-default-features
  package "$1" "core/$1"
}

for f in simd relaxed; do bg_start "wasm-$f" flavor "$f"; done
for f in simd relaxed; do bg_wait "wasm-$f"; done
