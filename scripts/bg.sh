# Background steps, sourced by scripts/setup.sh, build-wasm.sh and test.sh: independent steps run at
# the same time on a 2-core machine (a single-threaded link or a browser test next to a multi-crate
# compile), and none of them can fail silently.
#
#   bg_start NAME CMD...   runs CMD (a command or a shell function) in the background, its output
#                          (stdout and stderr) to a log
#   bg_wait NAME           waits for it, prints its output and how long it took; if it failed, says
#                          so and exits with its status
#
# Each step runs in its own process group (set -m), so a run that stops early (a failure in the
# foreground, Ctrl-C) ends the steps still running, with their children (cargo, rustc, browsers).
set -m
BG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/tinyml-bg.XXXXXX")
declare -A BG_PID=() BG_T0=()

bg_cleanup() {
  local name
  for name in "${!BG_PID[@]}"; do kill -- "-${BG_PID[$name]}" 2>/dev/null || true; done
  rm -rf "$BG_DIR"
}
trap bg_cleanup EXIT

bg_start() {
  local name=$1
  shift
  BG_T0[$name]=$SECONDS
  ("$@") >"$BG_DIR/$name.log" 2>&1 &
  BG_PID[$name]=$!
}

bg_wait() {
  local name=$1 rc=0
  wait "${BG_PID[$name]}" || rc=$?
  unset "BG_PID[$name]"
  cat "$BG_DIR/$name.log"
  if [ "$rc" != 0 ]; then
    printf '\033[1;31m[%s] FAILED (exit %d) after %d s\033[0m\n' "$name" "$rc" $((SECONDS - BG_T0[$name])) >&2
    exit "$rc"
  fi
  printf '\033[2m[%s] done in %d s (in the background)\033[0m\n' "$name" $((SECONDS - BG_T0[$name])) >&2
}
