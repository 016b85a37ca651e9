#!/usr/bin/env bash
# Refresh the install locks in requirements/, then run the whole suite on them.
#
# Why: pyproject.toml keeps version ranges for people who depend on the library, but a fresh machine
# resolving those ranges gets whatever was released last night (moto 5.2.6 once broke a passing suite
# that way). scripts/venv.sh (so the demo, the tests and CI) installs with the lock of the running
# Python as pip constraints, so every machine gets exactly what the suite last passed on.
#
# What: for each supported Python (SUPPORTED below), one constraints file per environment:
#   requirements/py3.X.txt            the project with every extra (any extra installs a subset of it)
#   requirements/compat040-py3.X.txt  the side venv of tests/compat (cottoncandy 0.4.0)
#   requirements/s3fs-py3.X.txt       the side venv of tests/refs/test_refs_s3fs.py
# resolved by uv (installed into a throw-away venv) for Linux on x86_64, the platform the mount runs on;
# constraints only narrow what pip picks, so the same files serve other platforms' packages too.
#
# When: after changing a dependency range in pyproject.toml or a tests/**/requirements-*.txt, and on
# purpose from time to time to take new releases (then read the diff of requirements/ and commit the
# locks only when the suite passes). Usage: bash scripts/lock.sh [--keep] [--no-test]
#   --keep: every version already locked stays as it is; only packages new to the locks (a dependency
#           just added to pyproject.toml) are resolved, so adding one does not also take new releases.
set -euo pipefail
keep=0; test_after=1
for arg in "$@"; do
  case "$arg" in
    --keep) keep=1 ;;
    --no-test) test_after=0 ;;
    *) echo "lock: unknown argument $arg (usage: lock.sh [--keep] [--no-test])" >&2; exit 2 ;;
  esac
done
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
SUPPORTED=(3.10 3.11 3.12 3.13)
tools="$(mktemp -d)"
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install -q uv
uv=("$tools/venv/bin/uv" pip compile -q --python-platform x86_64-unknown-linux-gnu --no-header --annotation-style line)
for version in "${SUPPORTED[@]}"; do
  header="# Locked by scripts/lock.sh for Python $version; pip constraints (scripts/venv.sh). Do not edit by hand."
  compile() {  # OUTPUT INPUT [uv options...]
    local out="$1"; shift
    local pins=()
    if [ "$keep" = 1 ] && [ -f "$out" ]; then  # the lock's own pins as constraints (pip's line apart)
      grep -v -e '^#' -e '^pip==' "$out" | sed 's/ *#.*//' > "$tools/pins.txt"
      pins=(-c "$tools/pins.txt")
    fi
    { echo "$header"; "${uv[@]}" --python-version "$version" "$@" "${pins[@]}" \
        | sed -E 's/, -c [^ ,]*pins\.txt//; s/via -c [^ ,]*pins\.txt, /via /'; } > "$out.new"
    mv "$out.new" "$out"
  }
  # pip and setuptools are locked too: venv.sh upgrades pip, and setuptools builds the editable install
  compile "requirements/py$version.txt" pyproject.toml --all-extras
  if [ "$keep" = 1 ] && old_pip="$(git show "HEAD:requirements/py$version.txt" 2>/dev/null | grep '^pip==')"; then
    echo "$old_pip" >> "requirements/py$version.txt"
  else
    echo "pip==$("$tools/venv/bin/python" -m pip index versions pip 2>/dev/null | sed -n 's/^pip (\(.*\))$/\1/p')" \
      >> "requirements/py$version.txt"
  fi
  compile "requirements/compat040-py$version.txt" tests/compat/requirements-040.txt
  # the s3fs reader's zarr 3 needs Python >= 3.11: no lock (nor a working side venv) on 3.10
  if [ "$version" != 3.10 ]; then
    compile "requirements/s3fs-py$version.txt" tests/refs/requirements-s3fs.txt
  fi
done
echo "lock: wrote $(ls requirements/*.txt | wc -l) files in requirements/"
if [ "$test_after" = 1 ]; then
  exec bash scripts/test.sh
fi
