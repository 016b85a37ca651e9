"""One byte budget for the block data a reader holds: cached blocks, runs in flight, idle buffers.

Why: the block cache counted only the blocks it held, by their own length. But a block is a view
of the run it came with (8 MiB by default), which stays alive while any of its blocks does; runs
being fetched, runs prefetched for readers that have not come for them yet, and idle pooled
buffers were counted nowhere. Eight readers streaming large files kept a daemon with
``--cache-size 256M`` at ~720 MB. Here every fetch buffer is charged when it is allocated and
credited when it is freed (``BufferPool`` does both), so ``used`` is the memory really held, and
the cache evicts until it fits (``BlockCache``).

Prefetch is the part that can be refused: bytes fetched ahead of a reader are reserved here
(``reserve_ahead``) and stay reserved until the reader passes them, seeks away, or closes. At
most ``ahead_limit`` bytes (half the budget) are reserved for all readers together, so what was
fetched ahead still fits in the cache when the reader arrives: the alternative, seen with 8
readers and a 64M cache, was prefetched blocks evicted before use and fetched again, one block
per kernel READ.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class MemoryBudget:
    """Bytes held (``used``) against a ``limit``; bytes reserved ahead for readers against ``ahead_limit``."""

    def __init__(self, limit: int, ahead_share: float = 0.5):
        self.limit = max(0, int(limit))
        self.ahead_limit = int(self.limit * ahead_share)
        self._lock = threading.Lock()
        self._used = 0
        self._ahead = 0
        self.peak = 0
        self.refused_ahead = 0  # prefetch runs not started for want of room
        #: what can give memory back without losing data (idle pooled buffers), asked before any
        #: cached block is evicted (``reclaim``)
        self._reclaimers: list[Callable[[], None]] = []

    @property
    def used(self) -> int:
        return self._used

    @property
    def ahead(self) -> int:
        return self._ahead

    def over(self) -> int:
        """Bytes held beyond the limit (0 when within it)."""
        return max(0, self._used - self.limit)

    def charge(self, nbytes: int) -> None:
        """A buffer was allocated (never refused: a read the kernel is waiting for must go on)."""
        with self._lock:
            self._used += nbytes
            self.peak = max(self.peak, self._used)

    def credit(self, nbytes: int) -> None:
        """A buffer was freed."""
        with self._lock:
            self._used -= nbytes

    def reserve_ahead(self, nbytes: int) -> bool:
        """Room for ``nbytes`` fetched ahead of a reader, or ``False`` (then do not prefetch them)."""
        with self._lock:
            if self._ahead + nbytes > self.ahead_limit:
                self.refused_ahead += 1
                return False
            self._ahead += nbytes
            return True

    def release_ahead(self, nbytes: int) -> None:
        """A reader passed, abandoned or closed bytes it had reserved ahead."""
        if nbytes > 0:
            with self._lock:
                self._ahead = max(0, self._ahead - nbytes)

    def add_reclaimer(self, reclaim: Callable[[], None]) -> None:
        """``reclaim()`` frees memory held for reuse only (it credits what it frees)."""
        self._reclaimers.append(reclaim)

    def reclaim(self) -> None:
        """Ask the reclaimers, in order, while over the limit: memory held idle goes before a cached
        block (an idle 8 MiB fetch buffer is worth less than 8 MiB of blocks a reader comes for)."""
        for reclaim in self._reclaimers:
            if not self.over():
                return
            reclaim()
