"""An LRU of fixed-size, aligned blocks, bounded in bytes, with one fetch in flight per block.

Like fsspec's caches it is given a fetch function, not a store, and it counts hits and misses.
Blocks are keyed by ``(key, etag, index)``: bytes of two versions of an object can never mix.
A caller that finds a block being fetched waits for that fetch instead of issuing its own
(``singleflight``; a waiter whose fetch failed fetches again itself).
With a ``MemoryBudget`` it also evicts, oldest first, while the memory really held (blocks are
views of whole runs, and runs in flight count too) is over the budget, not only its own count.
A block whose fetch failed (after the store's own retries) answers that failure at once for
``FAILED_FOR`` seconds (``failure``): the kernel asks again for a READ that failed (a read-ahead
request, then the reader's page), and each new attempt waited out the whole retry bound again (a
body stalled midway failed a read after 2 x 12 s instead of 12).
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future

from cachetools import LRUCache

from ..singleflight import SingleFlight
from .budget import MemoryBudget

BlockId = Hashable
#: seconds a failed block's error is answered again without a new fetch
FAILED_FOR = 5.0
#: failures remembered at most (expired ones are dropped first)
FAILED_MAX = 4096


def remembered(exc: BaseException) -> bool:
    """Failures worth answering again: the store's (``OSError``), not a reader's interrupt."""
    return isinstance(exc, OSError) and not isinstance(exc, InterruptedError)


class BlockCache:
    def __init__(self, capacity: int, budget: MemoryBudget | None = None):
        self.capacity = max(0, int(capacity))
        self.budget = budget
        self._lru: LRUCache[BlockId, bytes] = LRUCache(maxsize=max(1, self.capacity), getsizeof=len)
        self._lock = threading.Lock()
        self._inflight: SingleFlight[BlockId, bytes] = SingleFlight(self._lock)
        self.hits = 0
        self.misses = 0
        self.fetched_bytes = 0
        #: block -> (when, errno, message) of its last failed fetch (no traceback: it would pin buffers)
        self._failed: dict[BlockId, tuple[float, int, str]] = {}

    @property
    def size(self) -> int:
        with self._lock:
            return int(self._lru.currsize)

    def get(self, ident: BlockId) -> bytes | None:
        with self._lock:
            data = self._lru.get(ident)
            if data is not None:
                self.hits += 1
            return data

    def contains(self, ident: BlockId) -> bool:
        with self._lock:
            return ident in self._lru or self._inflight.waiting(ident) is not None

    def discard(self, idents: Sequence[BlockId]) -> None:
        """Forget these blocks (those cached; fetches in flight finish normally)."""
        with self._lock:
            for ident in idents:
                self._lru.pop(ident, None)

    def _store(self, ident: BlockId, data: bytes) -> None:
        if len(data) <= self.capacity:
            self._lru[ident] = data

    def _fit_budget(self) -> None:
        """Evict oldest blocks while the budget is exceeded (a run's buffer is freed, and credited,
        when its last block goes). Called with the lock held."""
        if self.budget is None or not self.budget.over():
            return
        self.budget.reclaim()  # idle buffers first: they hold no data a reader comes for
        while self.budget.over() and self._lru:
            self._lru.popitem()

    def claim(self, idents: Sequence[BlockId]) -> tuple[int, list[Future[bytes]]]:
        """Reserve the first contiguous stretch of ``idents`` that is neither cached nor being fetched.

        Blocks somebody else has are skipped at the front; the stretch ends at the next such block.
        Returns (index of the stretch in ``idents``, one future per claimed block); the caller must
        ``fulfil`` or ``fail`` them.
        """
        claimed: list[Future[bytes]] = []
        skip = 0
        with self._lock:
            for ident in idents:
                taken = ident in self._lru or self._inflight.waiting(ident) is not None
                if taken:
                    if claimed:
                        break
                    skip += 1
                    continue
                claimed.append(self._inflight.claim(ident))
        return skip, claimed

    def fulfil(self, idents: Sequence[BlockId], blocks: Sequence[bytes], futures: Sequence[Future[bytes]]) -> None:
        with self._lock:
            self.misses += len(idents)
            for ident, data in zip(idents, blocks):
                self._keep(ident, data)
                self._inflight.release(ident)
            self._fit_budget()
        for fut, data in zip(futures, blocks):
            fut.set_result(data)

    def fail(self, idents: Sequence[BlockId], futures: Sequence[Future[bytes]], exc: BaseException,
             remember: bool = True) -> None:
        """The fetch of ``idents`` failed; ``remember``: answer that failure again for ``FAILED_FOR``
        seconds (a fetch a reader waited for; not a read-ahead's)."""
        with self._lock:
            for ident in idents:
                self._inflight.release(ident)
            if remember:
                self._note_failure(idents, exc)
        for fut in futures:
            fut.set_exception(exc)

    def _keep(self, ident: BlockId, data: bytes) -> None:
        """Count a fetched block's bytes and cache it (lock held)."""
        self.fetched_bytes += len(data)
        self._failed.pop(ident, None)
        self._store(ident, data)

    def _note_failure(self, idents: Sequence[BlockId], exc: BaseException) -> None:
        """Remember a failed fetch of ``idents`` (lock held)."""
        if not isinstance(exc, OSError) or not remembered(exc):
            return
        failed = (time.monotonic(), exc.errno or errno.EIO, exc.strerror or str(exc))
        now = failed[0]
        if len(self._failed) + len(idents) > FAILED_MAX:
            self._failed = {k: v for k, v in self._failed.items() if now - v[0] < FAILED_FOR}
            if len(self._failed) + len(idents) > FAILED_MAX:
                self._failed.clear()
        for ident in idents:
            self._failed[ident] = failed

    def note_failure(self, idents: Sequence[BlockId], exc: BaseException) -> None:
        """A fetch of ``idents`` made outside ``claim``/``fail`` failed."""
        with self._lock:
            self._note_failure(idents, exc)

    def failure(self, ident: BlockId) -> OSError | None:
        """The error (a new one, same errno and text) a fetch of ``ident`` failed with less than
        ``FAILED_FOR`` seconds ago, or ``None``."""
        with self._lock:
            entry = self._failed.get(ident)
            if entry is None:
                return None
            if time.monotonic() - entry[0] >= FAILED_FOR:
                del self._failed[ident]
                return None
        return OSError(entry[1], entry[2])

    def get_or_fetch(self, ident: BlockId, fetch: Callable[[], bytes]) -> bytes:
        """The block, from memory, from a fetch already in flight, or by calling ``fetch`` once.
        A fetch in flight that fails (a prefetch, say) makes this caller fetch for itself."""

        def cached() -> bytes | None:
            data = self._lru.get(ident)
            if data is not None:
                self.hits += 1
            return data

        def keep(data: bytes) -> None:
            self.misses += 1
            self._keep(ident, data)
            self._fit_budget()

        return self._inflight.run(ident, fetch, cached=cached, keep=keep, share_failure=False)

    def waiting(self, ident: BlockId) -> Future[bytes] | None:
        with self._lock:
            return self._inflight.waiting(ident)
