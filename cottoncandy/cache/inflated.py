"""Our gzip bodies (``cc-gzip-blocks``) as a table of stretches: each block of the index is one.

Why: every block of our writer's one gzip member inflates alone (``formats.pgzip``), starting on a
byte with no window, so a read of decoded bytes ``[a, b)`` needs only the compressed bytes of the
blocks covering it. :class:`BlockTable` tells ``cache.stretches.StretchReader`` (the one reader of
gzip arrays in place, seek points included) where each block lies and how it inflates and is
checked. Given to a ``prefetch.ObjectReader`` whose block size is the gzip block size, a reader
block *is* a gzip block: the mount's block cache, read-ahead and memory budget then work on
inflated blocks exactly as on a raw array's, and nothing decodes the whole array.

Invariants: the index was checked whole before a table is made (``pgzip.parse_index``: a gzip
header holding only our subfield, agreeing with the metadata, lengths tiling the body, each within
deflate's bounds). A block is served only if it inflates alone to exactly its length and ends as the
writer ends blocks (``pgzip.inflate_block_into``: a full-flush marker, or the final block); one that
does not raises ``ValueError``, which sends the reader to its fallback (the serial whole decode,
which checks the body's CRC-32 and length), as a forged index does at open. A block that does
inflate to its place but not to the CRC-32 its index gives (version 2 indexes) raises
``pgzip.BlockCrcError`` (``EIO``, naming the object and the block): its bytes or its index are
damaged, and nothing can tell which, so no values are served for it; other blocks still are.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from cachetools import LRUCache

from ..formats import pgzip


class _Taken:
    """A sink for ``pgzip.inflate_block_into`` that keeps the inflater's bytes instead of copying them."""

    def __init__(self, size: int):
        self.size = size
        self.data = b""

    def __len__(self) -> int:
        return self.size

    def __setitem__(self, where: slice, data: bytes) -> None:
        self.data = data


class BlockTable:
    """The blocks of a checked ``index`` of an array of ``nbytes`` bytes, as stretches. ``name``: the
    object, as error messages name it."""

    def __init__(self, index: pgzip.Index, nbytes: int, name: str = ""):
        self.blocks = index.blocks
        self.nbytes = nbytes
        self.span = self.blocks[0].out_end - self.blocks[0].out_start  # the block size
        self.aligned = True  # the mount's reader blocks are these blocks
        self.name = name

    def __len__(self) -> int:
        return len(self.blocks)

    def bounds(self, i: int) -> tuple[int, int, int, int]:
        block = self.blocks[i]
        return block.start, block.end, block.out_start, block.out_end

    def index_of(self, pos: int) -> int:
        return pos // self.span

    def inflate(self, i: int, data: memoryview) -> bytes:
        block = self.blocks[i]
        out = _Taken(block.out_end - block.out_start)
        crc = pgzip.inflate_block_into(data, out, i == len(self.blocks) - 1)
        pgzip.check_block_crc(block, crc, i, self.name)
        return out.data


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
