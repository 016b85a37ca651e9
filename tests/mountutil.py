"""Real mounts for tests: mount in the background with the real CLI, always unmount."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cottoncandy.config import Settings
from cottoncandy.storage.s3 import S3Account
from tests.conftest import BUCKET, FUSE_ABSENT

HAVE_FUSE = os.path.exists("/dev/fuse")
needs_fuse = pytest.mark.skipif(not HAVE_FUSE, reason=FUSE_ABSENT)


def ccfs(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "ccfs", *args], capture_output=True, text=True, timeout=120)
    if check and result.returncode:
        raise AssertionError(f"ccfs {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result


def force_unmount(mountpoint: Path) -> None:
    if os.path.ismount(mountpoint):
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True)
        for _ in range(100):
            if not os.path.ismount(mountpoint):
                break
            time.sleep(0.05)


@contextmanager
def mounted(target: str, tmp_path: Path, *extra: str, expect_errors: bool = False) -> Iterator[Path]:
    """Mount ``target``; yield the mountpoint; unmount; fail if the daemon logged unexpected errors."""
    mountpoint = tmp_path / f"mnt{len(list(tmp_path.glob('mnt*')))}"
    mountpoint.mkdir()
    log = tmp_path / f"{mountpoint.name}.log"
    ccfs("mount", target, str(mountpoint), "--log-file", str(log), *extra)
    try:
        assert os.path.ismount(mountpoint)
        yield mountpoint
    finally:
        result = ccfs("umount", str(mountpoint), check=False)
        force_unmount(mountpoint)
        assert result.returncode == 0 or not os.path.ismount(mountpoint), result.stderr
    errors = [line for line in log.read_text().splitlines() if " ERROR " in line] if log.exists() else []
    if not expect_errors:
        assert errors == [], f"the daemon logged errors: {errors}"
    mounted.last_errors = errors  # type: ignore[attr-defined]


def rw(endpoint_url: str, *more: str, cache_dir: Path | None = None) -> list[str]:
    """The options of a ``--rw`` mount of the test bucket at ``endpoint_url`` (the server, or a fault proxy in
    front of it), with ``--cache-dir cache_dir`` when given, then ``more``."""
    cache = ["--cache-dir", str(cache_dir)] if cache_dir is not None else []
    return ["--endpoint-url", endpoint_url, "--rw", *cache, *more]


def uploads(endpoint_url: str) -> list[dict[str, object]]:
    """Multipart uploads in progress in the test bucket (an aborted or completed one is not listed)."""
    client = S3Account(Settings(endpoint_url=endpoint_url)).client
    try:
        return list(client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []))
    finally:
        client.close()


def within(seconds: float, condition: Callable[[], bool]) -> bool:
    """Whether ``condition()`` holds within ``seconds`` (polled; an ``OSError`` or ``KeyError`` it raises
    counts as not yet): a test waits for the state it describes, e.g. a commit at a RELEASE the kernel
    sends after ``close()`` returned, however loaded the machine, instead of sleeping a guess. Give a
    bound far above the usual wait: it is only reached when the state never comes."""
    deadline = time.monotonic() + seconds
    while True:
        with contextlib.suppress(OSError, KeyError):
            if condition():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


#: options of a mount whose GETs are counted read by read: a file's version, once confirmed, stays
#: trusted for the whole test (``--attr-ttl``), so a count holds what the reads fetched and never the
#: GET with which a read or open more than ``--attr-ttl`` (1 s by default) after the last confirmation
#: asks for the version again: on a loaded machine, or after ``read_ahead_settled``, such gaps happen
VERSION_KEPT = ("--attr-ttl", "3600")


def read_ahead_settled(s3, cache: Path | None = None, quiet: float = 1.0, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    """Wait (at most ``timeout`` seconds) until a mount's reads are over: the server's request log
    unchanged for ``quiet`` seconds and, with ``cache`` (a ``--cache-dir``), its block files too, none
    half written. Why: a read returns once its own bytes are in, while the reader goes on fetching
    the stretch after it in the background (read-ahead; the header's READ starts one too). A count
    of GETs taken then, or a log cleared then, splits that fetch between two counts; and an unmount
    cancels a run still arriving, so the next mount fetches that stretch again. Call it before
    counting (or clearing) the requests of reads just made, and before an unmount whose blocks a
    later mount is expected to find. ``s3`` is the ``s3`` fixture (anything with ``requests()``)."""
    def state() -> tuple[int, list[tuple[str, int]]]:
        files = []
        if cache is not None:
            for path in (cache / "blocks").glob("??/*"):
                with contextlib.suppress(FileNotFoundError):  # evicted or renamed into place meanwhile
                    files.append((path.name, path.stat().st_size))
        return len(s3.requests()), sorted(files)

    deadline, last = time.monotonic() + timeout, state()
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = state()
        if now == last and not any(name.startswith(".tmp-") for name, _ in now[1]):
            return
        last = now
    raise AssertionError(f"the mount's reads did not settle in {timeout:.0f} s")
