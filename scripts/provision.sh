#!/usr/bin/env bash
# System set-up shared by scripts/test.sh, scripts/demo.sh and the Vagrantfile:
# FUSE 3 (the mount) and the Python venv tooling. Installs only what is missing; needs root for apt.
set -euo pipefail

need=()
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
[ -e /usr/lib/x86_64-linux-gnu/libfuse3.so.3 ] || ls /usr/lib/*/libfuse3.so.3 >/dev/null 2>&1 || need+=(libfuse3-3)
command -v getfattr >/dev/null 2>&1 || need+=(attr)
command -v python3 >/dev/null 2>&1 || need+=(python3 python3-venv python3-pip)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if [ "${CCFS_TEST_TOOLS:-0}" = "1" ]; then  # tools the write tests drive through a --rw mount
  command -v rsync >/dev/null 2>&1 || need+=(rsync)
fi
if [ "${CCFS_PEERS:-0}" = "1" ]; then  # benchmark peers: s3fs-fuse and rclone
  command -v s3fs >/dev/null 2>&1 || need+=(s3fs)
  command -v rclone >/dev/null 2>&1 || need+=(rclone)
fi

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "provision: installing ${need[*]} with apt-get (updating the package lists first; a minute or two)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
    echo "provision: installed ${need[*]}"
  else
    echo "provision: please install: ${need[*]} (not root or no apt-get; continuing)" >&2
  fi
fi
if [ -e /dev/fuse ] && [ "$(id -u)" = "0" ]; then chmod 666 /dev/fuse || true; fi

# s3rver (npm, scripts/s3rver/: versions pinned by its package-lock.json): a second, independent S3
# implementation the store contract also runs against (tests/storage/test_s3rver_contract.py). Installed
# once, again only when the lock changes; without node and npm, or offline, those tests skip and say why.
s3rver_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/s3rver"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
  if [ ! -f "$s3rver_dir/node_modules/s3rver/bin/s3rver.js" ] \
     || [ "$s3rver_dir/package-lock.json" -nt "$s3rver_dir/node_modules/.package-lock.json" ]; then
    echo "provision: installing s3rver into scripts/s3rver/node_modules (npm ci)"
    (cd "$s3rver_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
      || echo "provision: could not install s3rver (offline?): its contract tests will be skipped" >&2
  fi
else
  echo "provision: node and npm are absent: the s3rver contract tests will be skipped (install nodejs and npm)" >&2
fi
