"""Decoded bytes of a gzip body we wrote (``cc-gzip-blocks``), block by block: a ``RangeFetch``.

Why: every block of our writer's one gzip member inflates alone (``formats.pgzip``), so a read of
decoded bytes ``[a, b)`` needs only the compressed bytes of the blocks covering it: one ranged GET
for a run of adjacent blocks, each block inflated straight into the run's buffer. Given to a
``prefetch.ObjectReader`` whose block size is the gzip block size, a reader block *is* a gzip block:
the mount's block cache, read-ahead and memory budget then work on inflated blocks exactly as on a
raw array's, and nothing decodes the whole array. Buffers come from ``allocate`` (the mount's
``BufferPool``, charged to the ``MemoryBudget``); the compressed bytes of a run in flight are
charged too while they inflate.

Invariants: the index was checked whole before this is made (``pgzip.parse_index``: a gzip header
holding only our subfield, agreeing with the metadata, lengths tiling the body, each within deflate's
bounds). A block is served only if it inflates alone to exactly its length and ends as the writer
ends blocks (``pgzip.inflate_block_into``: a full-flush marker, or the final block). On the first
one that does not, ``on_bad`` is told once and every read of this fetch goes to ``fallback`` (the
serial whole decode, which checks the body's CRC-32 and length), as a forged index does at open.
A block that does inflate to its place but not to the CRC-32 its index gives (version 2 indexes)
fails the read it serves with ``pgzip.BlockCrcError`` (``EIO``, naming the object and the block):
its bytes or its index are damaged, and nothing can tell which, so no values are served for it;
other blocks still are.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cachetools import LRUCache

from ..formats import pgzip
from .budget import MemoryBudget

log = logging.getLogger(__name__)

Buffer = bytes | bytearray | memoryview


class BlockInflate:
    """``fetch(start, end)`` -> decoded bytes ``[start, end)`` of the array, through the block ``index``.

    ``fetch_body(start, end)``: compressed bytes ``[start, end)`` of the pinned body (one ranged GET).
    ``allocate(n)``: a writable buffer of ``n`` bytes for decoded bytes. ``first``: the body's first
    bytes if someone already fetched them (the mount's lookup does): block 0 is inflated from them
    when they hold it, without a GET. ``name``: the object, as error messages name it.
    """

    def __init__(self, index: pgzip.Index, nbytes: int, fetch_body: Callable[[int, int], Buffer],
                 allocate: Callable[[int], memoryview], fallback: Callable[[int, int], Buffer],
                 on_bad: Callable[[str], None], *, first: Buffer | None = None,
                 budget: MemoryBudget | None = None, name: str = ""):
        self.name = name
        self.blocks = index.blocks
        self.block_size = self.blocks[0].out_end - self.blocks[0].out_start
        self.nbytes = nbytes
        self.fetch_body = fetch_body
        self.allocate = allocate
        self.fallback = fallback
        self.on_bad = on_bad
        self.budget = budget
        head = self.blocks[0].end
        self._first = bytes(memoryview(first)[:head]) if first is not None and len(first) >= head else None
        self._lock = threading.Lock()
        self.broken = False
        self.inflated = 0  # blocks inflated (for tests and logs)
        self.fetched = 0  # compressed bytes fetched

    def __call__(self, start: int, end: int) -> Buffer:
        if not self.broken:
            try:
                return self._read(start, end)
            except ValueError as exc:
                with self._lock:
                    first_failure, self.broken = not self.broken, True
                if first_failure:
                    self.on_bad(str(exc))
        return self.fallback(start, end)

    def _compressed(self, lo: int, hi: int) -> Buffer:
        if self._first is not None and hi <= len(self._first):
            given, self._first = memoryview(self._first)[lo:hi], None  # used once: the cache keeps the result
            return given
        data = self.fetch_body(lo, hi)
        self.fetched += hi - lo
        return data

    def _read(self, start: int, end: int) -> Buffer:
        if not 0 <= start < end <= self.nbytes:
            raise ValueError(f"decoded bytes {start}-{end} lie outside the array's {self.nbytes}")
        first, last = start // self.block_size, (end - 1) // self.block_size
        lo, hi = self.blocks[first].start, self.blocks[last].end
        if self.budget is not None:
            self.budget.charge(hi - lo)
        try:
            data = memoryview(self._compressed(lo, hi))
            out = self.allocate(end - start)
            for i in range(first, last + 1):
                block = self.blocks[i]
                piece = data[block.start - lo : block.end - lo]
                final = i == len(self.blocks) - 1
                if start <= block.out_start and block.out_end <= end:  # the usual case: aligned runs
                    crc = pgzip.inflate_block_into(piece, out[block.out_start - start : block.out_end - start], final)
                    pgzip.check_block_crc(block, crc, i, self.name)
                else:  # a run cut inside a block: inflate it aside, keep the part asked for
                    whole = bytearray(block.out_end - block.out_start)
                    crc = pgzip.inflate_block_into(piece, memoryview(whole), final)
                    pgzip.check_block_crc(block, crc, i, self.name)
                    a, b = max(start, block.out_start), min(end, block.out_end)
                    out[a - start : b - start] = whole[a - block.out_start : b - block.out_start]
                self.inflated += 1
            return out
        finally:
            if self.budget is not None:
                self.budget.credit(hi - lo)


class Indexes:
    """The checked block indexes of the versions opened lately, so that a file opened again (``np.load``
    opens one three times) reads no header again; a version without a usable index is remembered too.
    Bounded by the blocks held (an index of the most blocks, 16,379, is ~2 MB of ``Block``s)."""

    def __init__(self, max_blocks: int = 2**16):
        self._lru: LRUCache[tuple[str, str], pgzip.Index | None] = LRUCache(
            maxsize=max_blocks, getsizeof=lambda index: 1 if index is None else len(index.blocks))
        self._lock = threading.Lock()

    def get(self, ident: tuple[str, str], load: Callable[[], pgzip.Index | None]) -> pgzip.Index | None:
        with self._lock:
            if ident in self._lru:
                return self._lru[ident]
        index = load()  # outside the lock: may be a GET; two opens at once both load, the same answer
        with self._lock:
            self._lru[ident] = index
        return index
