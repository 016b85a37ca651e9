#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install the project with EXTRAS, at the
# locked versions of requirements/py3.X.txt for the venv's Python (scripts/lock.sh writes them), so a
# fresh machine installs exactly what the suite last passed on. Without a lock for this Python the
# install resolves pyproject.toml's ranges, and says so.
# Usage: source scripts/venv.sh EXTRAS   ->  sets $PY to the venv's python and $CCFS_LOCK to the lock used
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CCFS_VENV:-$root/.venv}"
extras="${1:-test}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
PY="$venv/bin/python"
version="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
CCFS_LOCK="$root/requirements/py$version.txt"
stamp="$venv/.installed-$extras"
if [ ! -f "$CCFS_LOCK" ]; then
  echo "venv: no lock for Python $version in requirements/ (locked: $(cd "$root/requirements" && ls py3.*.txt | tr '\n' ' '));" \
       "installing the newest releases pyproject.toml allows" >&2
  CCFS_LOCK=""
fi
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ] || { [ -n "$CCFS_LOCK" ] && [ "$CCFS_LOCK" -nt "$stamp" ]; }; then
  echo "venv: installing the project with [$extras] into $venv${CCFS_LOCK:+ at the versions of ${CCFS_LOCK#"$root"/}} (a few minutes the first time)" >&2
  if [ -n "$CCFS_LOCK" ]; then
    # PIP_CONSTRAINT reaches the isolated build environment too (setuptools for the editable install)
    PIP_CONSTRAINT="$CCFS_LOCK" "$PY" -m pip install -q "pip==$(sed -n 's/^pip==\([^ ]*\).*/\1/p' "$CCFS_LOCK")"
    PIP_CONSTRAINT="$CCFS_LOCK" "$PY" -m pip install -q -e "$root[$extras]"
  else
    "$PY" -m pip install -q --upgrade pip >/dev/null
    "$PY" -m pip install -q -e "$root[$extras]"
  fi
  touch "$stamp"
fi
# the venv is the one in use, whatever the caller had activated (IPython, for one, warns when
# VIRTUAL_ENV names another venv than the running Python's, and a test turned that warning into a failure)
VIRTUAL_ENV="$venv"
export PY CCFS_LOCK VIRTUAL_ENV
