#!/usr/bin/env bash
# README's main command: start a local S3 endpoint on loopback with sample arrays, mount it with
# ccfs, show ls / a shell glob / np.load(mmap_mode='r'), then unmount and stop the endpoint.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/provision.sh
source scripts/venv.sh "server,sparse"
exec "$(dirname "$PY")/ccfs" demo "$@"
