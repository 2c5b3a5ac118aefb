#!/usr/bin/env bash
# Builds the Rust core for wasm32 twice into web/wasm/: `simd` (simd128) and `relaxed` (simd128 +
# relaxed SIMD). The package picks the best one the JS engine validates at load time. Each build
# is then optimized with binaryen's wasm-opt where that version can read it (Debian's binaryen
# predates the final relaxed-SIMD opcodes and leaves that build as it is), and stripped of its
# custom sections (names, producers).
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
  RUSTFLAGS="-C target-feature=$features" CARGO_TARGET_DIR="$ROOT/target/wasm-$flavor" \
    wasm-pack --quiet build crate --release --target web --no-pack \
    --out-dir "../web/wasm/$flavor" --out-name tinyml_optimizer
  # wasm-pack writes a catch-all .gitignore, which would also hide the files from `npm pack`.
  rm -f "web/wasm/$flavor/.gitignore" "web/wasm/$flavor/package.json" "web/wasm/$flavor/README.md"
  wasm="web/wasm/$flavor/tinyml_optimizer_bg.wasm"
  if command -v wasm-opt >/dev/null; then
    if wasm-opt -O3 --enable-simd --enable-relaxed-simd --enable-bulk-memory --enable-sign-ext \
      --enable-nontrapping-float-to-int --enable-mutable-globals --strip-debug --strip-producers \
      "$wasm" -o "$wasm.opt" 2>/dev/null; then
      mv "$wasm.opt" "$wasm"
    else
      rm -f "$wasm.opt"
      printf '  (wasm-opt %s cannot read this build; left unoptimized)\n' "$(wasm-opt --version | awk '{print $3}')" >&2
    fi
  fi
  node scripts/strip-wasm.mjs "$wasm"
  printf '  %s bytes, %s gzipped\n' "$(wc -c < "$wasm")" "$(gzip -9c "$wasm" | wc -c)" >&2
done
