"""``mount -t fuse.ccfs`` before ``/sbin/mount.fuse.ccfs`` is linked: mount(8) then runs fuse3's generic
helper (``/sbin/mount.fuse3``), which runs the type's name as a program through ``/bin/sh -c``:
``ccfs SOURCE MOUNTPOINT -o OPTIONS``, found on the shell's PATH (mount(8) passes none; dash's default
holds /usr/local/bin and /usr/bin, where a system-wide ``pip install`` puts ``ccfs``). ``ccfs`` takes
that call as ``mount.fuse.ccfs`` would. Here fuse3's helper is run directly, with this environment's
``bin`` on its PATH, so no file outside the test's folders is written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUCKET
from tests.mountutil import force_unmount, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]

GENERIC_HELPER = shutil.which("mount.fuse3", path="/sbin:/usr/sbin") or "/sbin/mount.fuse3"


def test_fuse3s_generic_helper_runs_ccfs_as_its_subtype(s3, cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if os.geteuid() != 0 or not os.path.exists(GENERIC_HELPER):
        pytest.skip("needs root and fuse3's mount.fuse3")
    cci.upload_raw_array("d/a", np.arange(6.0))
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    env.pop("AWS_ENDPOINT_URL", None)
    # exactly what mount(8) runs for `mount -t fuse.ccfs BUCKET MNT -o endpoint_url=...` without the link
    result = subprocess.run([GENERIC_HELPER, BUCKET, str(mountpoint), "-o", f"rw,endpoint_url={s3.endpoint_url}",
                             "-t", "fuse.ccfs"], capture_output=True, text=True, env=env, timeout=120)
    try:
        assert result.returncode == 0, result.stderr
        assert np.array_equal(np.load(mountpoint / "d" / "a.npy"), np.arange(6.0))
    finally:
        subprocess.run([sys.executable, "-m", "ccfs", "umount", str(mountpoint)], capture_output=True, timeout=60)
        force_unmount(mountpoint)
    bad = subprocess.run([GENERIC_HELPER, BUCKET, str(mountpoint), "-o", f"umask=99,endpoint_url={s3.endpoint_url}",
                          "-t", "fuse.ccfs"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode != 0 and bad.stderr.startswith("ccfs: -o umask=99: "), bad.stderr
    assert len(bad.stderr.splitlines()) == 1 and not os.path.ismount(mountpoint)


def test_ccfs_commands_are_not_taken_for_a_mount(tmp_path: Path) -> None:
    """Only mount.fuse's call (SOURCE MOUNTPOINT and -o, SOURCE not a command) is a mount; a typo stays a typo."""
    result = subprocess.run([sys.executable, "-m", "ccfs", "mout", "bkt", str(tmp_path)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "No such command 'mout'" in result.stderr
    result = subprocess.run([sys.executable, "-m", "ccfs", "bkt", str(tmp_path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2 and "No such command 'bkt'" in result.stderr and not os.path.ismount(tmp_path)
