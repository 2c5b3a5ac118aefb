#!/usr/bin/env bash
# Builds the Rust core for wasm32 twice into web/wasm/: `simd` (simd128) and `relaxed` (simd128 +
# relaxed SIMD). The package picks the best one the JS engine validates at load time. Each build
# is stripped of its custom sections (function names, producers). binaryen's wasm-opt is not run:
# Debian's version (108) cannot read the final relaxed-SIMD opcodes, and on the simd128 build it
# saves 1% gzipped (5% raw) but breaks the module even with the features read from the module
# (`--detect-features`): its output exports `__wbindgen_externrefs` as the funcref table, so
# wasm-bindgen's start-up `table.set` throws.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
for flavor in simd relaxed; do
  case "$flavor" in
    simd) features="+simd128" ;;
    relaxed) features="+simd128,+relaxed-simd" ;;
  esac
  printf '\033[1;34m[build]\033[0m wasm engine (%s)\n' "$flavor" >&2
  # A target directory per flavour: different RUSTFLAGS would otherwise rebuild everything each time.
  # cargo, then wasm-bindgen (the CLI setup.sh pins to Cargo.lock's version): what `wasm-pack build
  # --target web` does, without installing wasm-pack on a fresh machine.
  target="$ROOT/target/wasm-$flavor"
  RUSTFLAGS="-C target-feature=$features" CARGO_TARGET_DIR="$target" \
    cargo build --quiet --release --lib --target wasm32-unknown-unknown -p tinyml-optimizer
  rm -rf "web/wasm/$flavor"
  wasm-bindgen --target web --out-dir "web/wasm/$flavor" --out-name tinyml_optimizer \
    "$target/wasm32-unknown-unknown/release/tinyml_optimizer.wasm"
  wasm="web/wasm/$flavor/tinyml_optimizer_bg.wasm"
  node scripts/strip-wasm.mjs "$wasm"
  printf '  %s bytes, %s gzipped\n' "$(wc -c < "$wasm")" "$(gzip -9c "$wasm" | wc -c)" >&2
done
