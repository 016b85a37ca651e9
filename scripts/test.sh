#!/usr/bin/env bash
# README's test command: set up whatever a fresh machine lacks, then run lint, the type checker and the whole suite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/provision.sh
source scripts/venv.sh test
"$PY" -m ruff check .
"$PY" -m mypy  # files and strictness: [tool.mypy] in pyproject.toml
exec "$PY" -m pytest -q -p no:cacheprovider "$@"
