"""One byte budget for the data of all files being written through a mount.

Why: each file being streamed holds a few parts (``settings.PARTS_PER_FILE`` of the part size) and a
small file holds its bytes until its one PUT; a hundred ``cp`` at once must not hold a hundred of
those. ``take`` waits, bounded (``WriteSettings.memory_wait``), while other files hold the budget,
then fails with ``ENOMEM``: a write that cannot be given memory fails, it is never staged on disk
by surprise. A file alone is always let through (a budget smaller than one file's need would
otherwise refuse every write), so the budget may be exceeded by one file's need at most.
"""

from __future__ import annotations

import errno
import threading
import time


class WriteMemory:
    """Bytes held by files being written (``used``) against ``limit``."""

    def __init__(self, limit: int, wait: float):
        self.limit = max(0, int(limit))
        self.wait = wait
        self.used = 0
        self.peak = 0
        self._room = threading.Condition()

    def take(self, nbytes: int, what: str, own: int = 0) -> None:
        """Hold ``nbytes`` more for ``what`` (a key, for the error), which holds ``own`` already: at
        once if they fit or nothing else is held; else wait for room at most ``wait`` seconds, then
        ``OSError(ENOMEM)``."""
        deadline = time.monotonic() + self.wait
        with self._room:
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
