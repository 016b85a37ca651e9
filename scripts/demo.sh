#!/usr/bin/env bash
# README's main command: start a local S3 endpoint on loopback with sample arrays, mount it with
# ccfs, show ls / a shell glob / np.load(mmap_mode='r'), then unmount and stop the endpoint.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
echo "demo: checking the system packages the mount needs (fuse3, attr, python3-venv)" >&2
bash scripts/provision.sh
echo "demo: preparing the Python environment in ${CCFS_VENV:-.venv} (made and installed the first time)" >&2
source scripts/venv.sh "server,sparse"
echo "demo: running ccfs demo" >&2
exec "$(dirname "$PY")/ccfs" demo "$@"
