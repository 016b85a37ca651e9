"""One byte budget for the data of all files being written through a mount, and the part buffers
they share.

Why: each file being streamed holds a few parts (``settings.PARTS_PER_FILE`` of the part size) and a
small file holds its bytes until its one PUT; a hundred ``cp`` at once must not hold a hundred of
those. ``take`` waits, bounded (``WriteSettings.memory_wait``), while other files hold the budget,
then fails with ``ENOMEM``: a write that cannot be given memory fails, it is never staged on disk
by surprise. A file alone is always let through (a budget smaller than one file's need would
otherwise refuse every write), so the budget may be exceeded by one file's need at most.

Part buffers (``parts.PartBuffers``, one pool per part size) are the mount's, not a file's: the next
file fills the buffers the last one sent (no fresh pages to fault in and zero per part). The pool
keeps at most the budget's worth of buffers (at least one file's), and is emptied ``keep_idle``
seconds after the last file gave its memory back with no file taking any since: an idle daemon
holds no part buffers.
"""

from __future__ import annotations

import errno
import threading
import time

from .parts import PartBuffers

#: seconds the shared part buffers outlive the last file written (a loop of ``np.save`` reuses them)
KEEP_IDLE = 60.0


class WriteMemory:
    """Bytes held by files being written (``used``) against ``limit``; the part buffers they share."""

    def __init__(self, limit: int, wait: float, keep_idle: float = KEEP_IDLE):
        self.limit = max(0, int(limit))
        self.wait = wait
        self.keep_idle = keep_idle
        self.used = 0
        self.peak = 0
        self._room = threading.Condition()
        self._pools: dict[int, PartBuffers] = {}
        #: counts every ``take``: an emptying timer finding it changed knows a file came meanwhile
        self._takes = 0
        self._emptying: threading.Timer | None = None

    def take(self, nbytes: int, what: str, own: int = 0) -> None:
        """Hold ``nbytes`` more for ``what`` (a key, for the error), which holds ``own`` already: at
        once if they fit or nothing else is held; else wait for room at most ``wait`` seconds, then
        ``OSError(ENOMEM)``."""
        deadline = time.monotonic() + self.wait
        with self._room:
            self._takes += 1
            while self.used > own and self.used + nbytes > self.limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OSError(errno.ENOMEM, f"{what}: no memory for writing ({self.used >> 20} MiB of "
                                                f"{self.limit >> 20} MiB held by files being written; "
                                                f"waited {self.wait:.0f} s)")
                self._room.wait(left)
            self.used += nbytes
            self.peak = max(self.peak, self.used)

    def give(self, nbytes: int) -> None:
        """``nbytes`` taken before are free again."""
        if nbytes <= 0:
            return
        with self._room:
            self.used -= nbytes
            self._room.notify_all()
            if self.used <= 0 and self._pools:
                self._empty_later(self._takes)

    def part_buffers(self, size: int, per_file: int) -> PartBuffers:
        """The mount's pool of ``size``-byte part buffers, keeping at most the budget's worth of them
        and at least ``per_file`` (one file's)."""
        with self._room:
            pool = self._pools.get(size)
            if pool is None:
                pool = self._pools[size] = PartBuffers(size, max(per_file, self.limit // max(1, size)))
            pool.most = max(pool.most, per_file)
            return pool

    def _empty_later(self, takes: int) -> None:
        if self._emptying is not None:
            self._emptying.cancel()
        self._emptying = threading.Timer(self.keep_idle, self._empty_if_idle, args=(takes,))
        self._emptying.daemon = True
        self._emptying.name = "cc-write-buffers"
        self._emptying.start()

    def _empty_if_idle(self, takes: int) -> None:
        """Forget the pools if no file took memory since ``takes`` and none holds any."""
        with self._room:
            if self._takes != takes or self.used > 0:
                return
            pools, self._pools = list(self._pools.values()), {}
            self._emptying = None
        for pool in pools:
            pool.clear()
