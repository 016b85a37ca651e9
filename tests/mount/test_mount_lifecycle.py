"""``ccfs umount`` unmounts ccfs mounts only, and cleans up one whose daemon was killed.

Real mounts: a tmpfs (as root) that must survive ``ccfs umount``, and a ccfs mount whose daemon
is SIGKILLed, leaving the kernel answering ENOTCONN, which ``ccfs umount`` must clear so that a
new mount works there again.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from ccfs import mounts
from tests.mountutil import ccfs, force_unmount, needs_fuse


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def _daemon_pid(mountpoint: Path) -> int:
    """The ccfs daemon serving ``mountpoint``: the process whose command line is that mount's."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"ccfs" in argv and b"mount" in argv and str(mountpoint).encode() in argv:
            found.append(int(entry))
    assert len(found) == 1, found
    return found[0]


def _wait_until_dead(pid: int) -> None:
    """Until the process is gone or a zombie (its /dev/fuse descriptor is closed either way)."""
    for _ in range(600):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} survived SIGKILL")


def test_umount_refuses_a_tmpfs_and_leaves_it_mounted(tmp_path: Path) -> None:
    target = tmp_path / "tmpfs"
    target.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "none", str(target)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        (target / "kept").write_text("still here")
        message = _one_line_error(ccfs("umount", str(target), check=False))
        assert "not a ccfs mount" in message and "tmpfs" in message
        assert os.path.ismount(target) and (target / "kept").read_text() == "still here"
        entry = mounts.mount_at(str(target))
        assert entry is not None and entry.fstype == "tmpfs"
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)
    assert not os.path.ismount(target)


def test_umount_of_a_plain_directory_says_not_mounted(tmp_path: Path) -> None:
    assert "is not mounted" in _one_line_error(ccfs("umount", str(tmp_path), check=False))


@needs_fuse
def test_mount_whose_daemon_was_killed_is_cleaned_by_umount(tmp_path: Path) -> None:
    import cottoncandy as cc

    data = tmp_path / "data"
    cc.get_interface(str(data), backend="local", verbose=False).upload_raw_array("a", np.arange(4.0))
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    ccfs("mount", str(data), str(mountpoint))
    try:
        entry = mounts.mount_at(str(mountpoint))
        assert entry is not None and entry.is_ccfs and entry.source == f"ccfs:{data}"
        pid = _daemon_pid(mountpoint)
        os.kill(pid, signal.SIGKILL)
        _wait_until_dead(pid)
        with pytest.raises(OSError) as dead:
            os.listdir(mountpoint)
        assert dead.value.errno in (errno.ENOTCONN, errno.ECONNABORTED)
        assert mounts.daemon_gone(str(mountpoint))

        message = _one_line_error(ccfs("mount", str(data), str(mountpoint), check=False))
        assert "daemon has stopped" in message and f"ccfs umount {mountpoint}" in message

        ccfs("umount", str(mountpoint))
        assert mounts.mount_at(str(mountpoint)) is None and os.listdir(mountpoint) == []

        ccfs("mount", str(data), str(mountpoint))
        assert np.array_equal(np.load(mountpoint / "a.npy"), np.arange(4.0))
        ccfs("umount", str(mountpoint))
        assert mounts.mount_at(str(mountpoint)) is None
    finally:
        force_unmount(mountpoint)
        if mounts.mount_at(str(mountpoint)) is not None:
            subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True)


def test_mountinfo_parsing_unescapes_and_takes_the_topmost_mount() -> None:
    text = ("22 1 0:21 / /proc rw - proc proc rw\n"
            "40 22 0:40 / /mnt/with\\040space ro - tmpfs none rw\n"
            "41 40 0:41 / /mnt/with\\040space ro,nosuid - fuse.ccfs ccfs:s3://b/p ro,user_id=0\n")
    entries = mounts.parse_mountinfo(text)
    assert [(e.mount_id, e.mountpoint, e.fstype, e.source) for e in entries][1:] == [
        (40, "/mnt/with space", "tmpfs", "none"), (41, "/mnt/with space", "fuse.ccfs", "ccfs:s3://b/p")]
    assert entries[2].is_ccfs and not entries[1].is_ccfs


def test_umount_returns_once_the_daemon_has_finished(tmp_path: Path) -> None:
    """The daemon writes the blocks its ``--cache-dir`` still has queued as it exits; ``ccfs umount``
    waits for that, so a remount right after finds them (the daemon says its pid at the root)."""
    import cottoncandy as cc

    data = tmp_path / "data"
    cc.get_interface(str(data), backend="local", verbose=False).upload_raw_array("a", np.arange(2.0**16))
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    ccfs("mount", str(data), str(mountpoint), "--cache-dir", str(tmp_path / "cache"))
    try:
        pid = int(os.getxattr(mountpoint, "user.cottoncandy.daemon-pid"))
        assert pid == _daemon_pid(mountpoint)
        assert "user.cottoncandy.daemon-pid" not in os.listxattr(mountpoint)
        assert np.array_equal(np.load(mountpoint / "a.npy"), np.arange(2.0**16))
        ccfs("umount", str(mountpoint))
        assert not mounts.process_alive(pid)
    finally:
        force_unmount(mountpoint)
