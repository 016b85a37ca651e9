"""One request where a HEAD and the first block's GET were two: lookups that keep the first block.

Why: opening a file whose metadata is not cached (or older than ``--attr-ttl``) cost a HEAD (its
name, size and version come from the metadata) and then a ranged GET of its first block: two round
trips, 44 ms on a remote-like endpoint. A GET's answer carries the same headers as a HEAD's (ETag,
size in ``Content-Range``, user metadata), so ``ProbingStore.head`` asks for the object's first
block instead (``ObjectStore.read_start``) and keeps those bytes in ``FirstBlocks``, keyed by
(key, ETag); the open that follows takes them as its reader's first block, so its first read sends
nothing. The ``.npy`` header of a stored ``.npy`` object is in those bytes, and a raw array's
header is made from the metadata: ``np.load(path, mmap_mode='r')`` needs no second request.

Only single-object HEADs go this way (a lookup, the revalidation of a stale file): a folder's
HEADs (``head_many``, a listing) stay HEADs, so ``ls -l`` of thousands of files moves no data.
Kept blocks are bounded in count and bytes; one not taken by an open is dropped oldest first.
An object whose body reads just failed (``read_failed``: no answer in time, after the store's
attempts) is looked up with a plain HEAD for ``PLAIN_HEAD_FOR`` seconds: the kernel revalidates a
file's attributes before asking again for a READ that failed, and a probe whose body stalled as the
read's did kept that stat waiting out the whole retry bound (12 s) for headers a HEAD gives at once.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from ..storage.base import ObjectInfo, ObjectStore
from ..storage.wrapper import WrapperStore

Allocate = Callable[[int], memoryview]
#: seconds after a failed read of an object during which its lookups are plain HEADs
PLAIN_HEAD_FOR = 30.0


class FirstBlocks:
    """First blocks fetched with an object's metadata, waiting for the open that follows (bounded)."""

    def __init__(self, max_bytes: int, max_count: int = 64):
        self.max_bytes = max(0, int(max_bytes))
        self.max_count = max(1, int(max_count))
        self._lock = threading.Lock()
        self._blocks: OrderedDict[tuple[str, str], memoryview] = OrderedDict()
        self._bytes = 0
        self.kept = 0
        self.taken = 0

    def keep(self, key: str, etag: str, data: memoryview) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._blocks.pop((key, etag), None)
            self._bytes -= len(old) if old is not None else 0
            self._blocks[(key, etag)] = data
            self._bytes += len(data)
            self.kept += 1
            while self._blocks and (self._bytes > self.max_bytes or len(self._blocks) > self.max_count):
                _, dropped = self._blocks.popitem(last=False)
                self._bytes -= len(dropped)

    def take(self, key: str, etag: str) -> memoryview | None:
        """The kept first bytes of that version (once: they go to the caller's cache)."""
        with self._lock:
            data = self._blocks.pop((key, etag), None)
            if data is not None:
                self._bytes -= len(data)
                self.taken += 1
            return data

    def __len__(self) -> int:
        with self._lock:
            return len(self._blocks)


class ProbingStore(WrapperStore):
    """``store``, whose single-object ``head`` is a GET of the first ``probe_size`` bytes kept in
    ``blocks``; every other call goes to ``store`` unchanged (``WrapperStore``)."""

    def __init__(self, store: ObjectStore, blocks: FirstBlocks, probe_size: int, allocate: Allocate | None = None):
        super().__init__(store)
        self.blocks = blocks
        self.probe_size = int(probe_size)
        self.allocate = allocate or (lambda n: memoryview(bytearray(n)))
        self._failing: dict[str, float] = {}  # key -> when a read of its body last failed
        self._failing_lock = threading.Lock()

    def read_failed(self, key: str) -> None:
        """A read of ``key``'s body got no answer in time: its next lookups are HEADs for a while."""
        now = time.monotonic()
        with self._failing_lock:
            if len(self._failing) >= 1024:
                self._failing = {k: t for k, t in self._failing.items() if now - t < PLAIN_HEAD_FOR}
            self._failing[key] = now

    def _plain(self, key: str) -> bool:
        with self._failing_lock:
            when = self._failing.get(key)
            if when is not None and time.monotonic() - when >= PLAIN_HEAD_FOR:
                del self._failing[key]
                when = None
        return when is not None

    def head(self, key: str) -> ObjectInfo:
        if self._plain(key):
            return self.inner.head(key)
        buffer = self.allocate(self.probe_size)
        info, n = self.inner.read_start(key, buffer)
        if n:  # a small object's bytes are copied out: its view would pin the whole probe buffer
            self.blocks.keep(key, info.etag, buffer[:n] if 2 * n >= len(buffer) else memoryview(bytes(buffer[:n])))
        return info
