"""Where staged files live: sparse files in a private folder, all of them capped by one byte budget.

Why: a file written out of order (a shared mmap, ``O_RDWR``, an append) cannot be streamed; its bytes
wait on local disk until a commit point (``staged``). Disks fill up when nothing bounds that (s3fs-fuse
#2694), so every byte a staged file holds is charged here first and a write beyond
``--write-cache-size`` is ``ENOSPC``, not a full disk. Holes cost nothing: a file is charged for the
bytes it holds (written or fetched), not for its size.

Invariants: the folder is private (``cache.private``: 0700 folders, files created 0600 with
``O_NOFOLLOW``); it is ``--cache-dir``'s ``writes`` subfolder, else a temporary folder of its own,
removed by ``close``; a file's name is never a user's path (a counter), so no name leaks or clashes.
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
import tempfile
import threading
from pathlib import Path

from ..cache.folder import process_alive
from ..cache.private import private_folder, private_subfolder

#: the default cap of all staged bytes of a mount (``--write-cache-size``)
DEFAULT_WRITE_CACHE = 16 * 2**30


class StagingArea:
    """A private folder of sparse files and the budget of bytes they may hold (module docstring)."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None = None, limit: int = DEFAULT_WRITE_CACHE):
        self.limit = limit
        self._temporary = cache_dir is None
        if cache_dir is None:
            self.folder = Path(tempfile.mkdtemp(prefix="ccfs-writes-"))  # mkdtemp makes it 0700
        else:
            self.folder = private_subfolder(private_folder(cache_dir), "writes")
            self.sweep()  # what a killed daemon staged here is gone with it (never uploaded)
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self.used = 0
        #: the most bytes held at once (reported at unmount and by the bench)
        self.peak = 0

    def create(self) -> tuple[int, Path]:
        """A new empty private file opened read-write: its descriptor and path."""
        path = self.folder / f"staged-{os.getpid()}-{next(self._names)}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        return fd, path

    def charge(self, nbytes: int, what: str) -> None:
        """Reserve ``nbytes`` more; ``ENOSPC`` (nothing reserved) when that passes the limit."""
        if nbytes <= 0:
            return
        with self._lock:
            if self.used + nbytes > self.limit:
                raise OSError(errno.ENOSPC, f"{what}: the write cache is full ({self.used >> 20} MiB of "
                                            f"--write-cache-size {self.limit >> 20} MiB staged)")
            self.used += nbytes
            self.peak = max(self.peak, self.used)

    def refund(self, nbytes: int) -> None:
        with self._lock:
            self.used = max(0, self.used - nbytes)

    def close(self) -> None:
        """Remove the temporary folder made for this mount (a ``--cache-dir``'s files are removed by
        their owners as they finish; what a killed daemon left is removed at the next mount)."""
        if self._temporary:
            shutil.rmtree(self.folder, ignore_errors=True)

    def sweep(self) -> int:
        """Remove files a daemon no longer running left behind (under ``--cache-dir``): how many."""
        removed = 0
        for path in self.folder.glob("staged-*-*"):
            pid = path.name.split("-")[1]
            if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
                path.unlink(missing_ok=True)
                removed += 1
        return removed
