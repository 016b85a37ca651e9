#!/usr/bin/env bash
# README's test command: set up whatever a fresh machine lacks, then lint, type-check and run the whole suite.
#
# The suite runs in two phases. First the tests marked ``alone`` (tests/faults/test_bounds.py: how fast a
# stalled or signalled reader is let go, the daemon's peak memory), with nothing else running, since CPU
# starvation is not what they measure (run right after the parallel phase, three SIGINT cases once timed
# out; alone on a fresh machine they pass). Then everything else on CCFS_TEST_WORKERS pytest-xdist workers
# (default 3: most tests wait on a server, a mount or a subprocess, so 3 keep two cores busy; 0 runs them
# in this process); real mounts and fault-proxy tests stay on one worker, one after another
# (tests/conftest.py SERIAL_GROUPS).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
CCFS_TEST_TOOLS=1 bash scripts/provision.sh  # also rsync, which tests/mount/test_writes_tools.py runs
source scripts/venv.sh test
"$PY" -m ruff check .
"$PY" -m mypy  # files and strictness: [tool.mypy] in pyproject.toml
pytest=("$PY" -m pytest -q -p no:cacheprovider -rfEs)
alone=0
"${pytest[@]}" -m alone "$@" || alone=$?
status=0
"${pytest[@]}" -n "${CCFS_TEST_WORKERS:-3}" --dist loadgroup -m "not alone" "$@" || status=$?
# 5 = "no test selected", which a phase may answer when arguments pick tests of the other phase only
if [ "$status" -eq 5 ] && [ "$alone" -eq 5 ]; then exit 5; fi
for code in "$status" "$alone"; do
  if [ "$code" -ne 0 ] && [ "$code" -ne 5 ]; then exit "$code"; fi
done
