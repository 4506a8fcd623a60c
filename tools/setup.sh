#!/usr/bin/env bash
# Everything mcpship needs on a fresh machine, done once and skipped when already there:
# the npm packages (when package-lock.json changed since the last install), the stack binaries and
# the MCP conformance suite with its own Node 22 (a test tool, kept apart from the project), and the
# dashboard's static build (dashboard/dist, served at / by the API).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "[setup] installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi
bash tools/stack/install.sh
bash tools/conformance/install.sh
node --import tsx dashboard/build.ts
