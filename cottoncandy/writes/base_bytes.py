"""The bytes of the stored version a staged file started from, fetched and decoded by range.

Why: a staged file (``staged.StagedFile``) holds only what the program wrote and what it or a commit
needed of the stored version (its base). A raw body is read by byte range. A compressed one must be
decoded, but not necessarily whole: the library's gzip bodies carry a block index (``formats.pgzip``:
blocks that inflate alone, each with its CRC-32), so a range needs only the blocks holding it. Only
a body without blocks (0.4.0's gzip, zlib, bz2, lzma, Zstd, LZ4, or a gzip body of one block) is
decoded whole, and then only when its bytes are needed: at a read of a range not written, or at a
commit (a compressed body is always encoded again whole), never at open or at a WRITE.

One interface (``BaseBytes``) for the three, so the staged file has no codec branches:

* ``units(start, end, reading)``: the body range ``[start, end)`` widened to what is fetched at
  once (a raw body: aligned ``FETCH_BLOCK`` s for a read, the exact range for a commit; gzip blocks;
  the whole body);
* ``fetch(wanted, put)``: calls ``put(offset, data)`` with exactly the body's decoded bytes of each
  range of ``wanted`` (body offsets, sorted, disjoint); returns the stored bytes it fetched.

Costs (what a caller holds while ``fetch`` runs, beside ``put``'s own):

* raw: one ranged GET per ``RAW_PIECE`` (8 MiB) of ``wanted``, that piece in memory;
* gzip with a block index: one ranged GET per run of needed blocks, at most ``RUN_BYTES`` (16 MiB)
  of compressed bytes and as many decoded (blocks inflated ``INFLATE_WORKERS`` at once);
* a streamed codec without blocks: the whole body streamed once (1 MiB reads), the decoder's
  bounded output, nothing else;
* Zstd and LZ4 (decoded in one C call): the compressed body in memory, the decoded array in a
  private scratch file of the staging area (charged to ``--write-cache-size`` while it lives).

Every fetch is pinned to the base's ETag (``If-Match``); an object deleted since is ``ESTALE``. Work
over a whole body asks ``waits.check`` between pieces, so an interrupted FUSE request or a stopping
mount gives up (``GaveUp``: EINTR/EIO); what ``put`` received by then stays valid. A gzip block that
does not inflate to its place or to its index's CRC-32 sends this and every later fetch to the whole
decode, which checks the body's own CRC-32 and length (as the library reads such a body; logged once
naming the object and the block). A body that does not decode is ``EIO`` naming the object.
"""

from __future__ import annotations

import bisect
import errno
import logging
import mmap
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Protocol

from .. import waits
from ..arrays.gzip_blocks import block_index
from ..formats import codecs, pgzip
from ..formats.raw import ArraySpec
from ..storage.base import ObjectInfo, ObjectStore
from .staging import StagingArea

log = logging.getLogger("cottoncandy.writes")

#: a read of bytes not held fetches a raw base in aligned blocks of this size (the kernel asks
#: 128 KiB - 1 MiB at a time, so a sequential read costs one GET per block, not per READ)
FETCH_BLOCK = 2**20
#: most bytes of a raw body one GET brings into memory
RAW_PIECE = 8 * 2**20
#: most compressed bytes of gzip blocks one GET brings into memory, and most bytes they decode to
RUN_BYTES = 16 * 2**20
#: blocks of one run inflated at once
INFLATE_WORKERS = 2
#: bytes read at once from a body streamed through its decoder
STREAM_READ = 2**20

#: receives the base's bytes at a body offset
Put = Callable[[int, memoryview], None]


class BaseBytes(Protocol):
    """The base's body by range (see the module)."""

    @property
    def whole(self) -> bool:
        """Whether any range costs a decode of the whole body."""
        ...

    def units(self, start: int, end: int, reading: bool) -> tuple[int, int]:
        """``[start, end)`` widened to whole fetch units, within the body."""
        ...

    def fetch(self, wanted: list[tuple[int, int]], put: Put) -> int:
        """``put`` exactly the bytes of ``wanted``; the stored bytes fetched."""
        ...


def base_bytes(store: ObjectStore, info: ObjectInfo, spec: ArraySpec | None, origin: int,
               area: StagingArea) -> BaseBytes:
    """The reader of ``info``'s body: raw (``spec`` ``None`` or uncompressed), gzip by block (an index
    of two blocks or more, looked at on first use), else whole. ``origin``: where the body starts in
    the program's file (the ``.npy`` header's length), so reads align with the file's blocks."""
    if spec is None or spec.compression is None:
        return RawBody(store, info, origin)
    whole = WholeBody(store, info, spec, area)
    if codecs.record(spec.compression).blocks:
        return GzipBlocks(store, info, spec, whole)
    return whole


def _pinned(store: ObjectStore, info: ObjectInfo, read: Callable[[], None]) -> None:
    """``read()`` of the base; its deletion since it was seen is ``ESTALE``."""
    try:
        read()
    except FileNotFoundError as exc:
        raise OSError(errno.ESTALE, f"{store.describe(info.key)} was deleted since it was opened") from exc


class RawBody:
    """An uncompressed body: the bytes asked, by ranged GET."""

    whole = False

    def __init__(self, store: ObjectStore, info: ObjectInfo, origin: int = 0):
        self.store, self.info, self.origin = store, info, origin

    def units(self, start: int, end: int, reading: bool) -> tuple[int, int]:
        if not reading:
            return start, end
        first = start + self.origin
        start = first - first % FETCH_BLOCK - self.origin
        return max(0, start), min(self.info.size, -(-(end + self.origin) // FETCH_BLOCK) * FETCH_BLOCK - self.origin)

    def fetch(self, wanted: list[tuple[int, int]], put: Put) -> int:
        fetched = 0
        for a, b in wanted:
            for lo in range(a, b, RAW_PIECE):
                hi = min(b, lo + RAW_PIECE)
                buffer = memoryview(bytearray(hi - lo))
                _pinned(self.store, self.info, partial(self.store.readinto, self.info.key, lo, buffer,
                                                       if_match=self.info.etag))
                put(lo, buffer)
                fetched += hi - lo
        return fetched


class _Wanted:
    """A sink over the whole decoded body that passes on only the bytes of ``wanted``."""

    def __init__(self, nbytes: int, wanted: list[tuple[int, int]], put: Put):
        self.nbytes, self.wanted, self.put = nbytes, wanted, put
        self.starts = [a for a, _ in wanted]

    def __len__(self) -> int:
        return self.nbytes

    def __setitem__(self, where: slice, data: bytes | memoryview) -> None:
        lo = where.start or 0
        hi = lo + len(data)
        view = memoryview(data)
        i = max(0, bisect.bisect_right(self.starts, lo) - 1)
        while i < len(self.wanted) and self.wanted[i][0] < hi:
            a, b = max(lo, self.wanted[i][0]), min(hi, self.wanted[i][1])
            if a < b:
                self.put(a, view[a - lo : b - lo])
            i += 1


class WholeBody:
    """A compressed body without blocks: decoded whole, once per ``fetch``, keeping only ``wanted``."""

    whole = True

    def __init__(self, store: ObjectStore, info: ObjectInfo, spec: ArraySpec, area: StagingArea):
        assert spec.compression is not None
        self.store, self.info, self.spec, self.area = store, info, spec, area
        self.codec = codecs.record(spec.compression)
        self.name = store.describe(info.key)

    def units(self, start: int, end: int, reading: bool) -> tuple[int, int]:
        return 0, self.spec.nbytes

    def fetch(self, wanted: list[tuple[int, int]], put: Put) -> int:
        if not wanted:
            return 0
        log.info("%s: decoding the whole stored array (%s has no blocks) for %d of its %d bytes", self.name,
                 self.codec.id, sum(b - a for a, b in wanted), self.spec.nbytes)
        # what ``put`` or the check raised, raised again as it was: a stream decoder calls any failure
        # inside it a damaged body (ENOSPC from a full budget, EINTR from an interrupted request)
        raised: list[BaseException] = []

        def passed(at: int, data: memoryview) -> None:
            try:
                put(at, data)
            except BaseException as exc:
                raised.append(exc)
                raise

        sink = _Wanted(self.spec.nbytes, wanted, passed)
        try:
            if self.codec.stream_into is not None:
                _pinned(self.store, self.info, lambda: self._stream(sink, raised))
            else:
                self._declared(sink)
        except (codecs.CorruptBodyError, waits.GaveUp) as exc:
            if raised:
                raise raised[0] from None
            if isinstance(exc, waits.GaveUp):
                raise
            raise OSError(errno.EIO, f"{self.name}: {exc}") from exc
        return self.info.size

    def _stream(self, sink: _Wanted, raised: list[BaseException]) -> None:
        """The body through the codec's stream decoder, asking the check between reads (``raised``
        gets its ``GaveUp``)."""
        assert self.codec.stream_into is not None
        with self.store.open_read(self.info.key, if_match=self.info.etag) as stream:
            def chunks() -> Iterator[bytes]:
                while chunk := stream.read(STREAM_READ):
                    try:
                        waits.check()
                    except waits.GaveUp as exc:
                        raised.append(exc)
                        raise
                    yield chunk

            self.codec.stream_into(chunks(), sink)

    def _declared(self, sink: _Wanted) -> None:
        """Zstd, LZ4: the body in memory, decoded in one C call into a scratch file, then passed on."""
        nbytes = self.spec.nbytes
        body = bytearray(self.info.size)
        _pinned(self.store, self.info,
                lambda: self.store.readinto(self.info.key, 0, memoryview(body), if_match=self.info.etag))
        waits.check()
        self.area.charge(nbytes, f"{self.name}: decoding the stored array")
        fd, path = self.area.create()
        try:
            os.ftruncate(fd, nbytes)
            if nbytes:
                with mmap.mmap(fd, nbytes) as scratch:
                    view = memoryview(scratch)
                    try:
                        codecs.decode_into(body, self.codec.id, view)
                        del body
                        for a, b in sink.wanted:
                            for lo in range(a, b, RAW_PIECE):
                                waits.check()
                                sink.put(lo, view[lo : min(b, lo + RAW_PIECE)])
                    finally:
                        view.release()
        finally:
            os.close(fd)
            path.unlink(missing_ok=True)
            self.area.refund(nbytes)


class GzipBlocks:
    """A gzip body of the library's indexed blocks: the blocks holding ``wanted``, each inflated alone
    and checked (its length, its CRC-32 where the index gives it). Falls back to ``whole`` (the
    whole decode) when the body has no usable index or a block does not fit it."""

    def __init__(self, store: ObjectStore, info: ObjectInfo, spec: ArraySpec, whole: WholeBody):
        self.store, self.info, self.spec, self.fallback = store, info, spec, whole
        self.name = store.describe(info.key)
        self._index: pgzip.Index | None = None
        self._starts: list[int] = []
        self._looked = False
        self._broken = False

    def _blocks(self) -> list[pgzip.Block] | None:
        """The checked index's blocks, looked up once (one ranged GET of the header); ``None``: none usable."""
        if not self._looked:  # a store error propagates, and the next call asks again
            self._index = block_index(self.store, self.info, self.spec.nbytes)
            self._starts = [] if self._index is None else [b.out_start for b in self._index.blocks]
            self._looked = True
        return None if self._index is None or self._broken else self._index.blocks

    @property
    def whole(self) -> bool:
        return self._blocks() is None

    def index(self) -> pgzip.Index | None:
        """The body's block index, structurally checked (``None``: none usable, or a block did not fit)."""
        return self._index if self._blocks() is not None else None

    def _at(self, pos: int) -> int:
        return bisect.bisect_right(self._starts, pos) - 1

    def units(self, start: int, end: int, reading: bool) -> tuple[int, int]:
        blocks = self._blocks()
        if blocks is None:
            return self.fallback.units(start, end, reading)
        return blocks[self._at(start)].out_start, blocks[self._at(max(start, end - 1))].out_end

    def fetch(self, wanted: list[tuple[int, int]], put: Put) -> int:
        blocks = self._blocks()
        if blocks is None:
            return self.fallback.fetch(wanted, put)
        needed = sorted({i for a, b in wanted for i in range(self._at(a), self._at(b - 1) + 1)})
        fetched = 0
        sink = _Wanted(self.spec.nbytes, wanted, put)
        run: list[int] = []
        try:
            for i in needed:
                if run and (i != run[-1] + 1 or blocks[i].end - blocks[run[0]].start > RUN_BYTES
                            or blocks[i].out_end - blocks[run[0]].out_start > RUN_BYTES):
                    fetched += self._run(blocks, run, sink)
                    run = []
                run.append(i)
            if run:
                fetched += self._run(blocks, run, sink)
        except (ValueError, pgzip.BlockCrcError) as exc:  # a block not fitting its index: the whole decode
            self._broken = True
            log.info("%s: gzip block does not fit its index (%s); decoding the whole array (its own CRC-32 "
                     "and length are checked)", self.name, exc.strerror if isinstance(exc, OSError) else exc)
            return fetched + self.fallback.fetch(wanted, put)
        return fetched

    def _run(self, blocks: list[pgzip.Block], run: list[int], sink: _Wanted) -> int:
        """Blocks ``run`` (adjacent): one ranged GET, inflated alone each, ``INFLATE_WORKERS`` at once
        (zlib lets the GIL go), then handed to ``sink`` in order on this thread."""
        waits.check()
        first, last = blocks[run[0]], blocks[run[-1]]
        data = memoryview(bytearray(last.end - first.start))
        _pinned(self.store, self.info,
                lambda: self.store.readinto(self.info.key, first.start, data, if_match=self.info.etag))

        def inflate(i: int) -> memoryview:
            block = blocks[i]
            out = memoryview(bytearray(block.out_end - block.out_start))
            crc = pgzip.inflate_block_into(data[block.start - first.start : block.end - first.start], out,
                                           i == len(blocks) - 1)
            pgzip.check_block_crc(block, crc, i, self.name)
            return out

        if len(run) == 1:
            decoded = [inflate(run[0])]
        else:
            workers = min(INFLATE_WORKERS, len(run))
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cc-w-gunzip") as pool:
                decoded = list(pool.map(inflate, run))
        for i, out in zip(run, decoded, strict=True):
            sink[blocks[i].out_start : blocks[i].out_end] = out
        return len(data)
