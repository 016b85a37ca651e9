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
