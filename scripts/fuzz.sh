#!/usr/bin/env bash
# A fuzzing campaign over the hostile-input surface (crate/fuzz):
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      default: 600 s each, every target
#
# Targets: read_tflite (reader, writer, summary), run_model (engine, batch runs, evaluation),
# optimize_model (quantization and pruning of the mutated models), read_npy (.npy with 64- and
# 32-bit size arithmetic). Each runs at low priority (nice 19), one at a time, under an RSS limit
# (FUZZ_RSS_MB, default 1024: memory that grows past it is a finding, as are panics, overflow
# checks and inputs slower than FUZZ_TIMEOUT, default 30 s), in libFuzzer's fork mode so that it
# keeps going after a finding. Corpora (crate/fuzz/corpus/TARGET) are seeded from tests/fixtures and the crafted files
# of tests/hostile; findings go to crate/fuzz/artifacts/TARGET. At the end it prints executions,
# findings and time per target.
#
# cargo fuzz needs nightly Rust: this script installs the nightly toolchain (minimal profile) and
# cargo-fuzz into target/fuzz-tools for itself only; the main set-up never uses either.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

SECONDS_PER="${1:-600}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(read_tflite read_npy run_model optimize_model)
RSS_MB="${FUZZ_RSS_MB:-1024}"
# Slower inputs are findings too; generous, since nice 19 on a loaded machine can starve a run.
TIMEOUT="${FUZZ_TIMEOUT:-30}"
TOOLS="$ROOT/target/fuzz-tools"
FUZZ="$ROOT/crate/fuzz"

log() { printf '\033[1;34m[fuzz]\033[0m %s\n' "$*" >&2; }

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  log "installing the nightly toolchain (minimal profile), for cargo fuzz only"
  rustup toolchain install nightly --profile minimal
fi
if [ ! -x "$TOOLS/bin/cargo-fuzz" ]; then
  log "installing cargo-fuzz into $TOOLS (a few minutes, once)"
  cargo +nightly install cargo-fuzz --locked --root "$TOOLS"
fi
export PATH="$TOOLS/bin:$PATH"

HOSTILE="$ROOT/target/fuzz/hostile"
mkdir -p "$HOSTILE"
python3 tests/hostile/make_hostile.py "$HOSTILE" >/dev/null 2>&1 \
  || log "tests/hostile/make_hostile.py did not run (python3 with numpy and flatbuffers): fixtures only"

# A new corpus starts from the fixtures and the crafted hostile files small enough to mutate quickly.
seed() {
  local dir="$FUZZ/corpus/$1"
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || return 0
  local ext=tflite
  [ "$1" = read_npy ] && ext=npy
  find tests/fixtures "$HOSTILE" -name "*.$ext" -size -32k -exec cp {} "$dir/" \;
}

log "building the targets (nightly, debug assertions on)"
(cd "$ROOT/crate" && nice -n 19 cargo +nightly fuzz build --sanitizer none -a)

declare -A EXECS FINDINGS TIMES
for t in "${TARGETS[@]}"; do
  seed "$t"
  mkdir -p "$FUZZ/artifacts/$t"
  before=$(find "$FUZZ/artifacts/$t" -type f | wc -l)
  log "$t: ${SECONDS_PER}s, RSS limit ${RSS_MB} MB"
  out="$ROOT/target/fuzz/$t.log"
  mkdir -p "$(dirname "$out")"
  start=$(date +%s)
  # -a: debug assertions, so integer overflow panics (wasm32's 32-bit sizes are the point).
  (cd "$ROOT/crate" && nice -n 19 cargo +nightly fuzz run --sanitizer none -a "$t" "$FUZZ/corpus/$t" -- \
    -rss_limit_mb="$RSS_MB" -malloc_limit_mb="$RSS_MB" -timeout="$TIMEOUT" -max_len=32768 \
    -max_total_time="$SECONDS_PER" -fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 \
    -artifact_prefix="$FUZZ/artifacts/$t/" -print_final_stats=1) >"$out" 2>&1 || true
  TIMES[$t]=$(($(date +%s) - start))
  # Fork mode reports "#N: cov: ... oom/timeout/crash: a/b/c" lines; the last one has the totals.
  last=$(grep -E '^#[0-9]+: cov:' "$out" | tail -1 || true)
  EXECS[$t]=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"${last:-#0:}")
  FINDINGS[$t]=$(($(find "$FUZZ/artifacts/$t" -type f | wc -l) - before))
  log "$t: ${EXECS[$t]} executions, ${FINDINGS[$t]} new findings (${last#*oom/timeout/crash: })"
done

total=0
printf '\n%-16s %14s %10s %9s\n' target executions findings seconds
for t in "${TARGETS[@]}"; do
  printf '%-16s %14s %10s %9s\n' "$t" "${EXECS[$t]}" "${FINDINGS[$t]}" "${TIMES[$t]}"
  total=$((total + ${EXECS[$t]:-0}))
done
printf '%-16s %14s\n' total "$total"
printf 'CPU: %s; %s\n' "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" "$(date -u +%Y-%m-%d)"
