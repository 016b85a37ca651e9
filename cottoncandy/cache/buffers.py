"""Fetch buffers of one size, reused once nothing refers to them any more.

Why: a sequential read fetches 8 MiB runs. A fresh buffer for each costs the kernel a page fault
and a zeroed page per 4 KiB when the socket first writes into it, and freeing it an ``munmap``
with TLB shootdowns: profiled at about a fifth of the daemon's CPU on a cold sequential read.
A buffer handed out here is a numpy view of a pooled base array; when the last view of it (block
cache entries, a FUSE reply in progress) is gone, a ``weakref.finalize`` puts the base back.
Only buffers of exactly the pool's size (or one of ``sizes``: the run sizes a stream's tuning may
pick) are pooled, each size apart, so a small fetch never pins a large buffer; idle buffers hold at
most ``keep`` times the pool's size in all.
Every buffer handed out, pooled or not, and every idle one is charged to the ``MemoryBudget``
from its allocation until it is freed: that is what the block cache's eviction looks at. Idle
buffers go first when the budget is over (``shrink``, and no buffer is kept idle then): with
``--cache-size 64M`` three idle 8 MiB runs were half the budget, and the cache evicted read-ahead
blocks not yet read to make room for them.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable

import numpy as np

from .budget import MemoryBudget


class BufferPool:
    def __init__(self, size: int, keep: int, budget: MemoryBudget | None = None, sizes: Iterable[int] = ()):
        """``size``: bytes per pooled buffer; ``keep``: how many idle buffers of that size to hold at
        most (in bytes: ``keep * size`` across all sizes); ``sizes``: other sizes pooled too;
        ``budget``: charged for every buffer alive (handed out or idle)."""
        self.size = int(size)
        self.budget = budget
        self.keep = max(0, int(keep))
        self.sizes = frozenset({self.size, *(int(n) for n in sizes)})
        self._idle_by_size: dict[int, list[np.ndarray]] = {}
        self._idle_bytes = 0
        self._lock = threading.Lock()
        self.created = 0
        self.reused = 0
        if budget is not None:
            budget.add_reclaimer(self.shrink)

    @property
    def idle(self) -> int:
        with self._lock:
            return sum(len(idle) for idle in self._idle_by_size.values())

    def take(self, nbytes: int) -> memoryview:
        """A writable buffer of ``nbytes`` (contents undefined; the caller fills it)."""
        if nbytes not in self.sizes or self.keep == 0:
            array = np.empty(nbytes, dtype=np.uint8)
            if self.budget is not None:
                self.budget.charge(nbytes)
                weakref.finalize(array, self.budget.credit, nbytes)
            return memoryview(array)  # type: ignore[arg-type]  # numpy's stubs: a Buffer on 3.12+ only
        with self._lock:
            idle = self._idle_by_size.get(nbytes)
            base = idle.pop() if idle else None
            if base is None:
                self.created += 1
            else:
                self.reused += 1
                self._idle_bytes -= nbytes
        if base is None:
            base = np.empty(nbytes, dtype=np.uint8)
            if self.budget is not None:  # credited when the base is freed, not when it idles here
                self.budget.charge(nbytes)
                weakref.finalize(base, self.budget.credit, nbytes)
        view = base[:]  # its own object: it dies when the last memoryview of it does
        weakref.finalize(view, self._give_back, base)
        return memoryview(view)  # type: ignore[arg-type]  # numpy's stubs: a Buffer on 3.12+ only

    def _give_back(self, base: np.ndarray) -> None:
        if self.budget is not None and self.budget.over():
            return  # freed now (credited): memory is short, blocks come first
        with self._lock:
            if self._idle_bytes + base.nbytes <= self.keep * self.size:
                self._idle_by_size.setdefault(base.nbytes, []).append(base)
                self._idle_bytes += base.nbytes

    def shrink(self) -> None:
        """Free idle buffers while the budget is over its limit (``MemoryBudget.reclaim``)."""
        while self.budget is not None and self.budget.over():
            with self._lock:
                sizes = [size for size, idle in self._idle_by_size.items() if idle]
                if not sizes:
                    return
                base = self._idle_by_size[max(sizes)].pop()
                self._idle_bytes -= base.nbytes
            del base  # the last reference: freed, and credited by its finalizer

    def clear(self) -> None:
        with self._lock:
            self._idle_by_size.clear()
            self._idle_bytes = 0
