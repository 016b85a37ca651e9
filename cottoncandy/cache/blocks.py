"""An LRU of fixed-size, aligned blocks, bounded in bytes, with one fetch in flight per block.

Like fsspec's caches it is given a fetch function, not a store.
Blocks are keyed by ``(key, etag, index)``: bytes of two versions of an object can never mix.
A caller that finds a block being fetched waits for that fetch instead of issuing its own.
With a ``MemoryBudget`` it also evicts, oldest first, while the memory really held (blocks are
views of whole runs, and runs in flight count too) is over the budget, not only its own count.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future

from cachetools import LRUCache

from .budget import MemoryBudget

BlockId = Hashable


class BlockCache:
    def __init__(self, capacity: int, budget: MemoryBudget | None = None):
        self.capacity = max(0, int(capacity))
        self.budget = budget
        self._lru: LRUCache[BlockId, bytes] = LRUCache(maxsize=max(1, self.capacity), getsizeof=len)
        self._lock = threading.Lock()
        self._inflight: dict[BlockId, Future[bytes]] = {}

    @property
    def size(self) -> int:
        with self._lock:
            return int(self._lru.currsize)

    def get(self, ident: BlockId) -> bytes | None:
        with self._lock:
            return self._lru.get(ident)

    def contains(self, ident: BlockId) -> bool:
        with self._lock:
            return ident in self._lru or ident in self._inflight

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
        if self.budget is None:
            return
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
                taken = ident in self._lru or ident in self._inflight
                if taken:
                    if claimed:
                        break
                    skip += 1
                    continue
                fut: Future[bytes] = Future()
                self._inflight[ident] = fut
                claimed.append(fut)
        return skip, claimed

    def fulfil(self, idents: Sequence[BlockId], blocks: Sequence[bytes], futures: Sequence[Future[bytes]]) -> None:
        with self._lock:
            for ident, data in zip(idents, blocks):
                self._store(ident, data)
                self._inflight.pop(ident, None)
            self._fit_budget()
        for fut, data in zip(futures, blocks):
            fut.set_result(data)

    def fail(self, idents: Sequence[BlockId], futures: Sequence[Future[bytes]], exc: BaseException) -> None:
        with self._lock:
            for ident in idents:
                self._inflight.pop(ident, None)
        for fut in futures:
            fut.set_exception(exc)

    def get_or_fetch(self, ident: BlockId, fetch: Callable[[], bytes]) -> bytes:
        """The block, from memory, from a fetch already in flight, or by calling ``fetch`` once."""
        while True:
            with self._lock:
                data = self._lru.get(ident)
                if data is not None:
                    return data
                pending = self._inflight.get(ident)
                if pending is None:
                    mine: Future[bytes] = Future()
                    self._inflight[ident] = mine
            if pending is not None:
                try:
                    return pending.result()
                except Exception:
                    continue  # the other fetch failed: try ourselves (and raise our own error)
            try:
                data = fetch()
            except BaseException as exc:
                self.fail([ident], [mine], exc)
                raise
            self.fulfil([ident], [data], [mine])
            return data

    def waiting(self, ident: BlockId) -> Future[bytes] | None:
        with self._lock:
            return self._inflight.get(ident)
