"""``ccfs.mounts.daemons_serving``, the last resort of ``ccfs umount`` for a daemon that does not
answer: it must find the daemon of this mountpoint and never another folder's daemon of the same
relative name (it may be sent SIGTERM, then SIGKILL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ccfs import mounts
from tests.mountutil import needs_fuse

pytestmark = [needs_fuse]


def test_a_relative_mountpoint_is_resolved_where_its_daemon_started(tmp_path: Path) -> None:
    started_in = tmp_path / "here"
    (started_in / "mnt").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere" / "mnt"
    elsewhere.mkdir(parents=True)
    # looks like a daemon started as `ccfs mount b mnt` in `here`: holds /dev/fuse, then leaves its folder
    code = "import os, time  # ccfs\nfd = os.open('/dev/fuse', os.O_RDWR)\nos.chdir('/')\ntime.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code, "mount", "b", "mnt"], cwd=started_in,
                             env={**os.environ, "PWD": str(started_in)})
    try:
        deadline = time.monotonic() + 10
        while child.pid not in mounts.daemons_serving(str(started_in / "mnt")):
            assert time.monotonic() < deadline, "the daemon of here/mnt was not found"
            time.sleep(0.05)
        assert child.pid not in mounts.daemons_serving(str(elsewhere))
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("pwd", [None, ""])
def test_without_the_folder_it_started_in_a_relative_name_matches_nothing(tmp_path: Path, pwd: str | None) -> None:
    (tmp_path / "mnt").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PWD"}
    if pwd is not None:
        env["PWD"] = pwd
    code = "import os, time  # ccfs\nfd = os.open('/dev/fuse', os.O_RDWR)\ntime.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", code, "mount", "b", "mnt"], cwd=tmp_path, env=env)
    try:
        time.sleep(0.5)
        assert child.pid not in mounts.daemons_serving(str(tmp_path / "mnt"))
    finally:
        child.kill()
        child.wait()
