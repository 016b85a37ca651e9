"""Issue 26 Targets, faults through a real ``--rw`` mount (the rig's fault proxy in front of the local
S3 server).

Streamed files (``np.save``): a part reset before it reaches the server and an outage before or in
the middle of an upload each make the write fail with EIO, leave no object and, once the endpoint is
back, no in-progress multipart upload. (A 500 on CompleteMultipartUpload and a reset of every
UploadPart's answer are in ``test_writes_stream.py``.)

Staged files (``np.load(mmap_mode='r+')`` rows changed, then ``memmap.flush()``: the fsync commit
point): a refused CompleteMultipartUpload (500: EIO; 403 AccessDenied: EACCES), a reset mid-UploadPart
and an outage during the commit each make ``flush()`` fail with that errno, log one line naming the
key, keep the stored version intact and leave no upload."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import mmap
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from ccfs.mount import daemon_pid
from cottoncandy.cache.folder import process_alive
from cottoncandy.config import Settings
from cottoncandy.storage.s3 import S3Account
from cottoncandy.testing.faultproxy import FaultRule
from tests.conftest import BUCKET
from tests.mount.test_writes_stream import npy_bytes
from tests.mountutil import ccfs, mounted, needs_fuse, rw, uploads, within

pytestmark = [needs_fuse, pytest.mark.fuse]

MiB = 2**20


def no_uploads_left(endpoint_url: str, within: float = 40.0) -> list[dict[str, object]]:
    """The in-progress uploads once the daemon's patient clean-up (30 s) has had its chance."""
    deadline = time.monotonic() + within
    while (left := uploads(endpoint_url)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return left


def logged(mountpoint: Path, text: str) -> Callable[[], bool]:
    """Whether the daemon of ``mountpoint`` has logged a line holding ``text`` (its log file is
    ``mountutil.mounted``'s, next to the mountpoint)."""
    log = mountpoint.parent / f"{mountpoint.name}.log"
    return lambda: log.exists() and any(text in line for line in log.read_text().splitlines())


def test_a_part_reset_before_the_server_fails_np_save(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every UploadPart's connection is reset before the server sees it (the part is lost mid-send)."""
    with mounted(BUCKET, tmp_path, *rw(fault_proxy.endpoint_url), expect_errors=True) as m:
        fault_proxy.set_rules([FaultRule("reset", methods=("PUT",), query="partNumber", forward=False)])
        with pytest.raises(OSError) as caught:
            np.save(m / "lost.npy", np.ones(40 * MiB // 8))
        fault_proxy.clear()
        assert caught.value.errno == errno.EIO
        assert "lost.npy" not in os.listdir(m)
    assert cci.glob("*") == []
    assert no_uploads_left(cci.settings.endpoint_url) == []
    assert any("lost" in line for line in mounted.last_errors)  # type: ignore[attr-defined]


def test_an_outage_before_np_save_fails_it(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with mounted(BUCKET, tmp_path, *rw(fault_proxy.endpoint_url), expect_errors=True) as m:
        os.listdir(m)  # the root is listed before the endpoint goes away
        fault_proxy.outage(20)
        with pytest.raises(OSError) as caught:
            np.save(m / "dark.npy", np.ones(40 * MiB // 8))
        assert caught.value.errno == errno.EIO
        fault_proxy.clear()
        assert "dark.npy" not in os.listdir(m)
    assert cci.glob("*") == []
    assert no_uploads_left(cci.settings.endpoint_url) == []


def test_an_outage_mid_upload_fails_the_write_or_close(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Parts are out when the endpoint goes away for 12 s: a later write() or the close() fails with
    EIO (never success), the file never shows, and the daemon's abort (retried for 30 s) lands once
    the endpoint is back, so no upload is left."""
    data = npy_bytes(np.ones(80 * MiB // 8))
    errors: list[int] = []
    with mounted(BUCKET, tmp_path, *rw(fault_proxy.endpoint_url), expect_errors=True) as m:
        fd = os.open(m / "cut.npy", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for start in range(0, len(data), MiB):
                if start == 40 * MiB:  # parts are out: the proxy has seen the first UploadPart
                    assert within(30, lambda: fault_proxy.counts.get("PUT", 0) >= 1), fault_proxy.counts
                    fault_proxy.outage(12)
                os.write(fd, data[start:start + MiB])
        except OSError as exc:
            errors.append(exc.errno or 0)
        finally:
            try:
                os.close(fd)
            except OSError as exc:
                errors.append(exc.errno or 0)
        assert errors and set(errors) == {errno.EIO}, errors
        assert "cut.npy" not in os.listdir(m)
    assert cci.glob("*") == []
    assert no_uploads_left(cci.settings.endpoint_url) == []


# --- staged files: the fsync commit point ------------------------------------------------------

ROWS = np.arange(2 * MiB, dtype="<f8").reshape(-1, 1024)  # 16 MiB: a commit of sent and copied parts


def etag(endpoint_url: str, key: str) -> str | None:
    return S3Account(Settings(endpoint_url=endpoint_url)).store(BUCKET).head(key).etag


def staged_rw(endpoint_url: str, tmp_path: Path) -> list[str]:
    return [*rw(endpoint_url), "--cache-dir", str(tmp_path / "cache")]


def refused_fsync(cci, fault_proxy, tmp_path: Path, rules: list[FaultRule], outage: float = 0.0) -> int:  # type: ignore[no-untyped-def]
    """Change rows of the stored array ``f`` through an ``r+`` memmap and ``flush()`` it with ``rules``
    set (and an outage of ``outage`` seconds from then): the errno ``flush()`` failed with.
    The rules (and the outage) stay until the file's last release has retried and been refused too:
    its log line is waited for (up to 30 s), so a late release never commits once they are gone; then
    the stored version must be the one from before, and no upload left."""
    cci.upload_raw_array("f", ROWS, compression=False)
    before = etag(cci.settings.endpoint_url, "f")
    with mounted(BUCKET, tmp_path, *staged_rw(fault_proxy.endpoint_url, tmp_path), expect_errors=True) as m:
        array = np.load(m / "f.npy", mmap_mode="r+")
        array[10] = -1.0
        array[1500:1510] = -2.0
        fault_proxy.set_rules(rules)
        if outage:
            fault_proxy.outage(outage)
        try:
            array.flush()
        except OSError as exc:
            code = exc.errno or 0
        else:
            code = 0
        del array  # the last release tries again, and is refused again (logged)
        assert within(30, logged(m, "release /f.npy failed")), "the release's retry was not refused"
        fault_proxy.clear()
    np.testing.assert_array_equal(cci.download_raw_array("f"), ROWS)  # the old version, intact
    assert etag(cci.settings.endpoint_url, "f") == before
    assert no_uploads_left(cci.settings.endpoint_url) == []
    assert any("s3://test-bucket/f" in line for line in mounted.last_errors), mounted.last_errors  # type: ignore[attr-defined]
    assert not list((tmp_path / "cache" / "writes").glob("staged-*"))  # given up, nothing left staged
    return code


@pytest.mark.parametrize(("mode", "code"), [("error500", errno.EIO), ("policy", errno.EACCES)],
                         ids=["500", "403-AccessDenied"])
def test_a_refused_complete_fails_a_staged_fsync(cci, fault_proxy, tmp_path: Path, mode: str, code: int) -> None:  # type: ignore[no-untyped-def]
    rules = [FaultRule(mode, methods=("POST",), query="uploadId")]
    assert refused_fsync(cci, fault_proxy, tmp_path, rules) == code


def test_a_reset_mid_part_fails_a_staged_fsync(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Every sent part's connection is reset after 1 MiB of its body (UploadPartCopy carries none)."""
    rules = [FaultRule("reset", methods=("PUT",), query="partNumber", after=MiB, forward=False)]
    assert refused_fsync(cci, fault_proxy, tmp_path, rules) == errno.EIO


def test_an_outage_during_a_staged_commit_fails_its_fsync(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The endpoint goes away for 12 s once the changed rows are in the page cache: the flush's pages
    reach the daemon (local: the rows' stretches were fetched when they were read), and the commit that
    follows, all of it during the outage, finds no endpoint. (An outage asked for once the proxy had
    delayed the commit's first part took effect only after the commit ended, in a trial: no test.)"""
    assert refused_fsync(cci, fault_proxy, tmp_path, [], outage=12.0) == errno.EIO


# --- unmounting while a staged file is still open (its last RELEASE not yet come) ----------------

def push_pages(fd: int) -> None:
    """Write a mapping's dirty pages to the daemon without an fsync (no commit point): what the kernel's
    own writeback does, asked for now (``sync_file_range``: write and wait)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.sync_file_range(fd, ctypes.c_int64(0), ctypes.c_int64(0), 7) != 0:
        raise OSError(ctypes.get_errno(), "sync_file_range")


@contextlib.contextmanager
def mapped_rows(path: Path) -> Iterator[np.ndarray]:
    """``path`` mapped ``r+`` (an open descriptor and a shared mapping) for as long as the block runs;
    closing them on a mount that is gone may fail (ENOTCONN): ignored."""
    file = open(path, "r+b")  # noqa: SIM115 - held open across the unmount on purpose
    memory = mmap.mmap(file.fileno(), 0)
    try:
        yield np.frombuffer(memory, dtype="<f8", offset=128).reshape(-1, 1024)
    finally:
        with contextlib.suppress(BufferError, OSError, ValueError):
            memory.close()
        with contextlib.suppress(OSError):
            file.close()


def wait_gone(pid: int, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_alive(pid), f"the daemon {pid} did not exit"


@pytest.mark.parametrize("how", ["sigterm", "ccfs-umount", "lazy"])
def test_unmount_stores_a_staged_file_still_mapped(cci, tmp_path: Path, how: str) -> None:  # type: ignore[no-untyped-def]
    """A program holds an ``r+`` mapping whose changed rows reached the daemon (no fsync yet) when the
    daemon gets SIGTERM, or ``ccfs umount`` finds the mount busy, or the mount is detached lazily and
    the program then exits: the object has the rows afterwards, and nothing stays staged or kept."""
    cci.upload_raw_array("u", ROWS, compression=False)
    expected = ROWS.copy()
    expected[10] = -1.0
    expected[1500:1510] = -2.0
    with mounted(BUCKET, tmp_path, *staged_rw(cci.settings.endpoint_url, tmp_path), expect_errors=True) as m:
        pid = daemon_pid(str(m), timeout=10)
        assert pid is not None
        with mapped_rows(m / "u.npy") as rows:
            rows[10] = -1.0
            rows[1500:1510] = -2.0
            with open(m / "u.npy", "rb") as other:
                push_pages(other.fileno())
            if how == "sigterm":
                os.kill(pid, signal.SIGTERM)
                wait_gone(pid)
            elif how == "ccfs-umount":  # busy: detached, its daemon told to stop (SIGTERM)
                assert "was busy" in ccfs("umount", str(m)).stderr
                wait_gone(pid)
            else:
                subprocess.run(["fusermount3", "-u", "-z", str(m)], check=True)
            del rows
        wait_gone(pid)
    np.testing.assert_array_equal(cci.download_raw_array("u"), expected)
    assert no_uploads_left(cci.settings.endpoint_url) == []
    writes = tmp_path / "cache" / "writes"
    assert not list(writes.glob("staged-*")) and not list(writes.glob("kept/*"))
    assert mounted.last_errors == []  # type: ignore[attr-defined]


def test_a_commit_refused_at_unmount_is_kept_and_stored_by_the_next_mount(cci, fault_proxy, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM while a changed mapping is held and every CompleteMultipartUpload is refused (403): the
    unmount's commit fails (one ERROR naming the key), the staged file is kept under --cache-dir, the
    object is as it was; the next --rw mount with that --cache-dir stores it, and keeps nothing."""
    cci.upload_raw_array("k", ROWS, compression=False)
    expected = ROWS.copy()
    expected[3] = 7.0
    with mounted(BUCKET, tmp_path, *staged_rw(fault_proxy.endpoint_url, tmp_path), expect_errors=True) as m:
        pid = daemon_pid(str(m), timeout=10)
        assert pid is not None
        with mapped_rows(m / "k.npy") as rows:
            rows[3] = 7.0
            with open(m / "k.npy", "rb") as other:
                push_pages(other.fileno())
            fault_proxy.set_rules([FaultRule("policy", methods=("POST",), query="uploadId")])
            os.kill(pid, signal.SIGTERM)
            wait_gone(pid)
            del rows
    fault_proxy.clear()
    errors = mounted.last_errors  # type: ignore[attr-defined]
    assert any("s3://test-bucket/k" in line and "not stored at unmount" in line for line in errors), errors
    np.testing.assert_array_equal(cci.download_raw_array("k"), ROWS)
    kept = tmp_path / "cache" / "writes" / "kept"
    assert len(list(kept.glob("*.json"))) == 1 and len(list(kept.glob("*.data"))) == 1
    assert no_uploads_left(cci.settings.endpoint_url) == []
    with mounted(BUCKET, tmp_path, *staged_rw(cci.settings.endpoint_url, tmp_path)) as m:
        np.testing.assert_array_equal(cci.download_raw_array("k"), expected)  # stored before the mount served
        np.testing.assert_array_equal(np.load(m / "k.npy"), expected)
    assert list(kept.iterdir()) == []
