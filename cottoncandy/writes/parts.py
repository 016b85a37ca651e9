"""A streamed file's bytes packed into whole parts, in buffers reused from part to part.

Why: ``np.save`` of 1 GiB through the mount is 1,024 WRITEs of 1 MiB. Cut into parts by the store
(``put_chunks``), each byte was copied once more and each 16 MiB part was a new allocation: fresh
pages the kernel zero-fills on first touch and unmaps again after the send, 4,096 page faults and a
TLB shootdown per part (profiled: the daemon's system time was twice its user time). Here each WRITE
is copied once, into the part being filled; a full part is handed to the store as a
``storage.base.WholePart``, which ``put_chunks`` sends as it is; and the buffer of a part that has
been sent is filled again.

One pool serves every file a mount streams (``memory.WriteMemory.part_buffers``): a loop of ``np.save``
fills the buffers the file before it sent instead of faulting in (and zero-filling, then unmapping)
seven fresh 16 MiB buffers per file; the pool is emptied once no file has been written for a while.

Invariants: a buffer is filled again only when nothing but the pool refers to it (CPython's reference
count: the store's sender, a view of it, a queue, a generator or the filler of another file each hold
one while they may still read or fill it), so no byte is overwritten before it is sent; the check and
the hand-over happen under the pool's lock, so two files never take one buffer; the pool keeps at
most ``most`` buffers, so what it holds is bounded by the mount's write memory.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

from ..storage.base import Buffer, WholePart

#: references to a pooled buffer nobody else holds, as ``sys.getrefcount`` counts them inside
#: ``PartBuffers.take`` (3 up to CPython 3.13: the pool's list, the loop's name, and ``getrefcount``'s
#: own argument); measured on the running interpreter at import (``_refs_of_a_free_buffer``)
_ONLY_THE_POOL = 3


class PartBuffers:
    """Buffers of ``size`` bytes, at most ``most`` kept for reuse (module docstring)."""

    def __init__(self, size: int, most: int):
        self.size = size
        self.most = max(0, most)
        self._kept: list[WholePart] = []
        self._lock = threading.Lock()
        #: buffers made (not reused): what a test or the log can tell reuse by
        self.made = 0

    def take(self) -> WholePart:
        """A buffer of ``size`` bytes nobody else refers to: a kept one if one is free, else a new one
        (kept while fewer than ``most`` are). Its bytes are whatever it held before. Thread-safe: the
        buffer returned is referenced by the returning frame before the lock is let go."""
        with self._lock:
            for buffer in self._kept:
                if sys.getrefcount(buffer) == _ONLY_THE_POOL and len(buffer) == self.size:
                    return buffer
            self.made += 1
            buffer = WholePart(self.size)
            if len(self._kept) < self.most:
                self._kept.append(buffer)
            return buffer

    def clear(self) -> None:
        """Forget every kept buffer (those still being sent or filled go with their last holder)."""
        with self._lock:
            self._kept = []

    @property
    def kept(self) -> int:
        """Buffers kept for reuse now (free or in use)."""
        return len(self._kept)


class PartFiller:
    """Bytes as they arrive, packed into whole parts of ``buffers.size`` bytes."""

    def __init__(self, buffers: PartBuffers):
        self.buffers = buffers
        self._part: WholePart | None = None
        self._filled = 0

    def add(self, data: Buffer) -> Iterator[WholePart]:
        """Copy ``data`` into the part being filled; each part it fills, as it fills it (the caller
        hands it over before the next one is taken)."""
        view = memoryview(data).cast("B")
        while view:
            if self._part is None:
                self._part, self._filled = self.buffers.take(), 0
            take = min(len(self._part) - self._filled, len(view))
            # through a view of the part: ``bytearray[a:b] = memoryview`` first copies the memoryview
            # into a new bytearray (CPython), a fresh 1 MiB mapping per WRITE in the daemon (its
            # malloc maps every buffer over 256 KiB: ``cache.allocator``), faulted in page by page
            # and copied twice -- profiled as 80% of the daemon's page faults during np.save
            with memoryview(self._part) as target:
                target[self._filled : self._filled + take] = view[:take]
            self._filled += take
            view = view[take:]
            if self._filled == len(self._part):
                part, self._part = self._part, None
                yield part
                del part  # the pool may fill it again once its receiver is done with it

    def rest(self) -> memoryview | None:
        """The part being filled, as far as it is filled (``None``: nothing is); the filler is empty after."""
        part, filled, self._part = self._part, self._filled, None
        if part is None or not filled:
            return None
        return memoryview(part)[:filled]


def _refs_of_a_free_buffer() -> int:
    """What ``sys.getrefcount`` says of a kept buffer nobody else holds, measured the way
    ``PartBuffers.take`` measures it. The count depends on the interpreter: CPython 3.14 borrows
    references when it loads locals, so its counts are lower; a constant one too high there would
    let a buffer still being sent (one reference more) pass as free and be filled again."""
    probe = PartBuffers(1, 1)
    probe._kept.append(WholePart(1))
    with probe._lock:
        for buffer in probe._kept:
            return sys.getrefcount(buffer)
    raise AssertionError("unreachable: the probe holds one buffer")


_ONLY_THE_POOL = _refs_of_a_free_buffer()
