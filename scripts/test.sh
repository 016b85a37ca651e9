#!/usr/bin/env bash
# README's test command: set up whatever a fresh machine lacks, then run lint and the whole suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/provision.sh
source scripts/venv.sh test
"$PY" -m ruff check .
exec "$PY" -m pytest -q -p no:cacheprovider -rfEs -n "${CCFS_TEST_WORKERS:-0}" --dist loadgroup "$@"
