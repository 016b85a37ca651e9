#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install the project with EXTRAS.
# Usage: source scripts/venv.sh EXTRAS   ->  sets $PY to the venv's python
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CCFS_VENV:-$root/.venv}"
extras="${1:-test}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
PY="$venv/bin/python"
stamp="$venv/.installed-$extras"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
  "$PY" -m pip install -q --upgrade pip >/dev/null
  "$PY" -m pip install -q -e "$root[$extras]"
  touch "$stamp"
fi
export PY
