"""Mounts the way admins run them: ``mount -t fuse.ccfs``, ``mount -a`` from an fstab, owner and
mode options, ``ccfs refresh`` and SIGHUP. Real mount(8), real FUSE mounts, the local S3 server."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BUCKET
from tests.mountutil import ccfs, force_unmount, mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]

#: mount(8) looks for helpers in /sbin (and /sbin/fs.d, /sbin/fs), not on PATH
SBIN_HELPER = Path("/sbin/mount.fuse.ccfs")


def our_helper() -> Path:
    """The ``mount.fuse.ccfs`` console script of this environment."""
    found = Path(sys.executable).parent / "mount.fuse.ccfs"
    if not found.is_file():
        pytest.skip("mount.fuse.ccfs is not installed in this environment (pip install -e .)")
    return found


@pytest.fixture(scope="module")
def mount_helper() -> Iterator[Path]:
    """``/sbin/mount.fuse.ccfs`` pointing at this environment's script for this module's tests, then
    removed. Made once for the module: a full run twice saw the link gone while a test's mount(8) ran
    it (not explained; only this fixture removes it), so it is no longer removed and made between tests."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root and util-linux mount(8)")
    script = our_helper()
    if SBIN_HELPER.exists() or SBIN_HELPER.is_symlink():
        if SBIN_HELPER.resolve() != script.resolve():
            pytest.skip(f"another {SBIN_HELPER} is installed; not replacing it")
        yield SBIN_HELPER
        return
    # made under a private name and renamed into place: a link that appeared meanwhile (another run
    # of these tests) is replaced by an equal one instead of failing with EEXIST
    private = SBIN_HELPER.with_name(f".{SBIN_HELPER.name}.{os.getpid()}")
    private.unlink(missing_ok=True)
    private.symlink_to(script)
    os.replace(private, SBIN_HELPER)
    try:
        yield SBIN_HELPER
    finally:
        if SBIN_HELPER.is_symlink() and SBIN_HELPER.resolve() == script.resolve():
            SBIN_HELPER.unlink(missing_ok=True)


def system(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(args)}: {result.stdout}{result.stderr}"
    return result


def umount(mountpoint: Path) -> None:
    try:
        system("umount", str(mountpoint))
    finally:
        force_unmount(mountpoint)
    assert not os.path.ismount(mountpoint)


def assert_owner_and_modes(m: Path, uid: int, gid: int, folder_mode: int, file_mode: int) -> None:
    for path, mode in ((m, folder_mode), (m / "d", folder_mode), (m / "d" / "a.npy", file_mode)):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, mode), path


@pytest.fixture
def bucket_with_array(cci) -> np.ndarray:  # type: ignore[no-untyped-def]
    array = np.arange(12.0).reshape(3, 4)
    cci.upload_raw_array("d/a", array)
    return array


def test_mount_t_fuse_ccfs_with_options(s3, mount_helper: Path, bucket_with_array: np.ndarray,  # type: ignore[no-untyped-def]
                                        tmp_path: Path) -> None:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    options = (f"endpoint_url={s3.endpoint_url},cache_size=64M,uid=1234,gid=2345,umask=027,"
               f"log_file={tmp_path / 'ccfs.log'},rw,_netdev,nofail,x-systemd.automount,defaults")
    system("mount", "-t", "fuse.ccfs", BUCKET, str(mountpoint), "-o", options)
    try:
        assert os.path.ismount(mountpoint)  # mount(8) returned once the mount was up
        assert_owner_and_modes(mountpoint, 1234, 2345, 0o550, 0o440)
        assert np.array_equal(np.load(mountpoint / "d" / "a.npy"), bucket_with_array)
    finally:
        umount(mountpoint)
    assert "mounting s3://test-bucket" in (tmp_path / "ccfs.log").read_text()


def test_mount_a_from_a_temporary_fstab(s3, mount_helper: Path, bucket_with_array: np.ndarray,  # type: ignore[no-untyped-def]
                                        tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "skipped"
    first.mkdir()
    second.mkdir()
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "# a comment\n"
        f"{BUCKET} {first} fuse.ccfs endpoint_url={s3.endpoint_url},metadata_ttl=60,umask=022,_netdev,nofail 0 0\n"
        f"s3://{BUCKET}/d {second} fuse.ccfs endpoint_url={s3.endpoint_url},noauto 0 0\n")
    system("mount", "-a", "-T", str(fstab))
    try:
        assert os.path.ismount(first) and not os.path.ismount(second)  # noauto: left to the admin
        assert np.array_equal(np.load(first / "d" / "a.npy"), bucket_with_array)
        assert_owner_and_modes(first, os.getuid(), os.getgid(), 0o555, 0o444)
        system("mount", "-T", str(fstab), str(second))  # by its mountpoint, as `mount /mnt/x` with /etc/fstab
        try:
            assert np.array_equal(np.load(second / "a.npy"), bucket_with_array)
        finally:
            umount(second)
    finally:
        umount(first)


def test_a_bad_option_fails_the_mount_with_its_name(s3, mount_helper: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    result = subprocess.run(["mount", "-t", "fuse.ccfs", BUCKET, str(mountpoint), "-o",
                             f"endpoint_url={s3.endpoint_url},umask=99"], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "umask" in result.stderr and not os.path.ismount(mountpoint)


def daemon_pid(mountpoint: Path) -> int:
    """The pid of the ccfs daemon serving ``mountpoint`` (its command line names it)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"ccfs" in b" ".join(argv) and b"mount" in argv and str(mountpoint).encode() in argv \
                and int(entry.name) != os.getpid():
            return int(entry.name)
    raise AssertionError(f"no ccfs daemon for {mountpoint}")


def test_refresh_and_sighup_show_new_uploads_within_the_ttl(cci, s3, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CCFS_TELL_MOUNTS", "0")  # as if written on another machine (tests/mount/test_changes.py)
    cci.upload_raw_array("d/a", np.arange(3.0))
    with mounted(BUCKET, tmp_path, "--endpoint-url", s3.endpoint_url, "--metadata-ttl", "600") as m:
        assert sorted(os.listdir(m / "d")) == ["a.npy"]
        cci.upload_raw_array("d/b", np.arange(4.0))
        assert sorted(os.listdir(m / "d")) == ["a.npy"]  # the listing is trusted for 600 s
        done = ccfs("refresh", str(m), "d")
        assert sorted(os.listdir(m / "d")) == ["a.npy", "b.npy"], done.stdout
        assert np.array_equal(np.load(m / "d" / "b.npy"), np.arange(4.0))

        cci.upload_raw_array("d/new/c", np.arange(5.0))  # a folder not shown yet: its parent is refreshed
        assert "new" not in os.listdir(m / "d")
        ccfs("refresh", str(m), "d/new/c.npy")
        assert np.array_equal(np.load(m / "d" / "new" / "c.npy"), np.arange(5.0))

        assert sorted(os.listdir(m)) == ["d"]  # the root listed again (a refresh of d dropped it too)
        cci.upload_raw_array("top", np.arange(2.0))
        assert "top.npy" not in os.listdir(m)
        os.kill(daemon_pid(m), signal.SIGHUP)  # everything, and the mount stays up
        log = tmp_path / "mnt0.log"
        deadline = time.monotonic() + 30
        while "refreshed every folder" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "top.npy" in os.listdir(m) and os.path.ismount(m)


def test_refresh_of_something_not_a_ccfs_mount_says_so(tmp_path: Path) -> None:
    result = ccfs("refresh", str(tmp_path), check=False)
    assert result.returncode != 0 and "is not a ccfs mount" in result.stderr


def test_uid_gid_umask_as_ccfs_mount_flags(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("d/a", np.arange(3.0))
    with mounted(BUCKET, tmp_path, "--endpoint-url", s3.endpoint_url, "--uid", "4321", "--gid", "5432",
                 "--umask", "077") as m:
        assert_owner_and_modes(m, 4321, 5432, 0o500, 0o400)
        assert np.array_equal(np.load(m / "d" / "a.npy"), np.arange(3.0))  # root reads it still
