#!/usr/bin/env bash
# Builds everything that is not built yet and serves the web app on http://localhost:4173
# (PORT=... to change). The sample model and data are one click away on the first screen.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
port="${PORT:-4173}"
printf '\n\033[1;32mtinyml-optimizer app: http://localhost:%s/\033[0m  (Ctrl-C to stop)\n\n' "$port"
exec npx --no-install vite preview www --port "$port" --strictPort --host 127.0.0.1
