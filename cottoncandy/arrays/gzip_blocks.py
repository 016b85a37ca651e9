"""gzip bodies of raw arrays, compressed in parallel as they upload and inflated in parallel on read.

The writer streams :class:`formats.pgzip.ParallelGzip` into ``store.put_chunks``: a few blocks are
compressed at once on ``workers`` threads and a few parts are in memory, never the whole compressed
body. The reader uses the block index of such bodies to fetch blocks by byte range and inflate them
in parallel straight into the array; any body without a usable index (0.4.0's, a damaged or forged
index) goes to the serial reader, which checks the whole body's CRC-32 and length.
"""

from __future__ import annotations

import logging
import os
import threading
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from cachetools import LRUCache

from ..cache.inflated import BlockTable
from ..cache.stretches import StretchReader
from ..formats import codecs, pgzip
from ..formats.codecs import Sink
from ..formats.flat import ByteSource
from ..formats.ranges import bounding_block
from ..formats.raw import ArraySpec, dtype_token, parse_dtype_token
from ..progress import BodyMap
from ..storage.base import ObjectInfo, ObjectStore, Progress
from ..storage.registry import StoreHandle

log = logging.getLogger(__name__)

#: blocks being fetched and inflated at once (each holds a compressed block and its decoded copy)
READ_WORKERS = 4
#: largest block the parallel reader accepts (declared with the format: ``pgzip.MAX_READ_BLOCK``)
MAX_READ_BLOCK = pgzip.MAX_READ_BLOCK
#: bytes of whole decodes kept in the process for readers of parts of arrays: ``GzipRows`` readers that
#: fell back (a body whose index failed) and dask parts sliced but readable only whole
#: (``dask_parts.PartSlices``); the least recently used is let go past this, and a decode of more is
#: not kept (each read that needs it then decodes it again)
WHOLE_KEPT = 256 * 2**20

Whole = bytearray | np.ndarray


def _whole_size(value: Whole) -> int:
    return int(value.nbytes) if isinstance(value, np.ndarray) else len(value)


class WholeDecodes:
    """Whole decodes by (object, ETag[, kind]), bounded to ``limit`` bytes (LRU).

    Why: a dask array's part is sliced many times, and each slice used to decode a forged part (or a
    part of a codec without blocks) whole again; kept here, a version is decoded once for every reader
    in the process (the bound keeps a few large parts from holding memory without end). Thread-safe."""

    def __init__(self, limit: int):
        self.limit = limit
        self._kept: LRUCache[tuple[str, ...], Whole] = LRUCache(maxsize=max(1, limit), getsizeof=_whole_size)
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...]) -> Whole | None:
        with self._lock:
            return self._kept.get(key)

    def put(self, key: tuple[str, ...], whole: Whole) -> None:
        if _whole_size(whole) > self.limit:
            return
        with self._lock:
            self._kept[key] = whole

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()


#: the process's kept whole decodes (``GzipRows._serial``)
WHOLE = WholeDecodes(WHOLE_KEPT)


def compress_workers(store: ObjectStore) -> int:
    """Threads compressing one body: the cores, at most the store's concurrency."""
    return max(1, min(os.cpu_count() or 1, store.concurrency))


def write_gzip_blocks(store: ObjectStore, key: str, raw: memoryview | ByteSource, metadata: Mapping[str, str], *,
                      acl: str | None = None, progress: Progress | None = None,
                      level: int | None = None, block_size: int | None = None,
                      strategy: int | None = None, in_flight: int | None = None) -> ObjectInfo:
    """Upload ``raw`` as one gzip member compressed in parallel, with its block index.

    ``level``/``block_size`` default to ``pgzip.DEFAULT_LEVEL``/``DEFAULT_BLOCK`` (read at call time);
    ``strategy`` is zlib's (``pgzip.strategy_for(dtype)`` picks one). ``raw`` may be a
    ``ByteSource`` (a strided array's bytes, copied a block at a time as they are compressed).
    ``progress`` counts array bytes: each block's, as its compressed bytes are sent.
    """
    level = pgzip.DEFAULT_LEVEL if level is None else level
    block_size = block_size or pgzip.DEFAULT_BLOCK
    workers = compress_workers(store)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cc-gzip") as pool:
        body = pgzip.ParallelGzip(raw, pool, level=level, block_size=block_size, ahead=workers,
                                  strategy=zlib.Z_DEFAULT_STRATEGY if strategy is None else strategy)
        meta = dict(metadata)
        meta[pgzip.INDEX_KEY] = body.metadata_value()
        meter = None if progress is None else BodyMap(progress)
        chunks = body.chunks() if meter is None else _declared(body, meter)
        return store.put_chunks(key, chunks, meta, acl=acl, progress=meter, head=body.header,
                                size_hint=len(raw), in_flight=in_flight)


#: threads compressing one array written through the mount (``StreamedGzipBlocks``): the mount serves
#: other files and readers meanwhile, so a file gets a small pool, not every core
STREAM_WORKERS = 2


def array_block_size(spec: ArraySpec) -> int:
    """The writer's block size for ``spec``'s body: ``DEFAULT_BLOCK`` rounded to whole rows (of the stored
    order), so a block is a chunk of rows (``pgzip.row_block_size``)."""
    return pgzip.row_block_size(spec.nbytes, spec.row_bytes)


class StreamedGzipBlocks:
    """The library's gzip body of one array (what :func:`write_gzip_blocks` stores), made from its bytes
    as they arrive in order, in pieces of any size (``np.save`` through the mount).

    The same incremental encoder (``pgzip.ParallelGzip`` fed by ``write``) on a pool of its own of
    ``workers`` threads: full blocks compress as soon as they are gathered, at most ``workers + 1``
    are compressing or waiting, so a file holds a few blocks (~4 MiB each, in and out) whatever its
    size. The body's decoded length comes from the ``.npy`` header, so the block boundaries and the
    index's size are known from the first byte: :meth:`metadata` can go with the upload's start, and
    :meth:`header` (the index) is the first part, sent last (``put_chunks(head=...)``).
    """

    def __init__(self, spec: ArraySpec, workers: int = STREAM_WORKERS, *, level: int | None = None,
                 block_size: int | None = None):
        self._pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="cc-gzip-write")
        self.body = pgzip.ParallelGzip(spec.nbytes, self._pool,
                                       level=pgzip.DEFAULT_LEVEL if level is None else level,
                                       block_size=block_size or array_block_size(spec), ahead=max(1, workers) + 1,
                                       strategy=pgzip.strategy_for(spec.dtype))

    def metadata(self) -> dict[str, str]:
        """The metadata key telling readers that the header holds an index, and of what shape."""
        return {pgzip.INDEX_KEY: self.body.metadata_value()}

    def memory(self) -> int:
        """Most bytes held at once: the pending blocks, their compressed copies, the one being gathered."""
        return (2 * self.body.ahead + 1) * self.body.block_size

    def compress(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Take the next bytes of the array; the compressed pieces ready, in order."""
        return self.body.write(data)

    def flush(self) -> list[bytes]:
        """After the last byte: the remaining pieces and the trailer (the pool is then let go)."""
        try:
            return self.body.finish()
        finally:
            self.close()

    def header(self) -> bytes:
        """The gzip header with the block index (once :meth:`flush` has returned)."""
        return self.body.header()

    def close(self) -> None:
        """Give the body up (blocks not yet compressed are dropped) and let the pool's threads end."""
        self.body.close()
        self._pool.shutdown(wait=True, cancel_futures=True)  # at most the blocks being compressed finish


def _declared(body: pgzip.ParallelGzip, meter: BodyMap) -> Iterator[bytes]:
    """``body.chunks()``, declaring the body's layout to ``meter`` before its bytes can be sent: the
    header and trailer first (their sizes are known from the start; they carry no array bytes),
    then each block, compressed bytes to array bytes, as soon as its compressed length is known."""
    nbytes, block = body.nbytes, body.block_size
    meter.segment(pgzip.header_size(body.count) + pgzip.TRAILER, 0)
    declared = 0
    for piece in body.chunks():
        while declared < len(body.lengths):  # a block was compressed: its pieces come next
            meter.segment(body.lengths[declared], min(block, nbytes - declared * block))
            declared += 1
        yield piece


class _Window:
    """Bytes ``[start, stop)`` of a sink, written whole as ``window[:] = data`` (a block's place)."""

    def __init__(self, sink: Sink, start: int, stop: int):
        self.sink, self.start, self.stop = sink, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __setitem__(self, where: slice, data: bytes | memoryview) -> None:
        start, stop, step = where.indices(len(self))
        if step != 1:
            raise ValueError("a block's place is written in one contiguous range")
        self.sink[self.start + start : self.start + stop] = data


def _place(out: memoryview | Sink, start: int, stop: int) -> memoryview | Sink:
    """Where block bytes ``[start, stop)`` of the array go: a slice of a view, a window of a sink."""
    return out[start:stop] if isinstance(out, memoryview) else _Window(out, start, stop)


def block_index(store: ObjectStore, info: ObjectInfo, nbytes: int,
                first: bytes | bytearray | memoryview | None = None) -> pgzip.Index | None:
    """The checked block index of an indexed gzip body of ``nbytes`` decoded bytes, or ``None`` (no
    index, one block, or an index that does not fit: logged; read such a body serially).

    ``first``: the body's first bytes if already fetched (the mount's lookup); the header is read from
    them when they hold it, else with one ranged GET. Store errors (``OSError``) propagate.
    """
    value = (info.metadata or {}).get(pgzip.INDEX_KEY)
    if value is None:
        return None
    try:
        shape = pgzip.parse_metadata(value, nbytes)
        if shape.count < 2:
            return None  # one block: the serial reader is as fast and saves a request
        if shape.block_size > MAX_READ_BLOCK:
            raise pgzip.BlockIndexError(f"blocks of {shape.block_size} bytes are larger than {MAX_READ_BLOCK}")
        size = shape.header_size
        if size + 2 * shape.count + pgzip.TRAILER > info.size:
            raise pgzip.BlockIndexError(f"{shape.count} blocks cannot fit a {info.size}-byte body")
        head = bytes(memoryview(first)[:size]) if first is not None and len(first) >= size else \
            store.get_range(info.key, 0, size, if_match=info.etag)
        return pgzip.parse_index(head, shape.block_size, shape.count, nbytes, info.size, shape.version)
    except pgzip.BlockIndexError as exc:
        log.info("%s: gzip block index not used (%s); reading serially", store.describe(info.key), exc)
        return None


#: indexed bodies up to this size are checked block by block when referenced (:func:`check_index`: one
#: GET of the body, every block inflated alone); larger ones by their CRCs against the trailer and
#: their cut points (:func:`check_cuts`)
INDEX_CHECK_WHOLE = 16 * 2**20
#: cut points of a larger body checked when it is referenced (a 4-byte ranged GET each, in parallel);
#: a body with more blocks has this many checked, spread evenly, and the rest checked as they are read
CUT_PROBES = 64


def cuts_to_probe(count: int, probes: int | None = None) -> list[int]:
    """The blocks (of ``count``) whose end is probed: every one but the last (which ends the body's deflate
    stream, checked against the trailer), or ``probes`` of them spread evenly, first and last included."""
    probes = CUT_PROBES if probes is None else probes
    cuts = count - 1
    if cuts <= probes:
        return list(range(cuts))
    if probes <= 0:
        return []
    if probes == 1:
        return [0]
    return sorted({i * (cuts - 1) // (probes - 1) for i in range(probes)})


def check_cuts(store: ObjectStore, info: ObjectInfo, index: pgzip.Index) -> None:
    """``BlockIndexError`` unless every probed block (:func:`cuts_to_probe`) ends where our writer ends a
    block but the last: with the full-flush marker (``pgzip.SYNC_MARKER``). Why: an index whose cut points
    are moved but whose lengths still tile the body and whose CRCs are right passes every other cheap
    check, and zarr, which reads a chunk per block, would fail on it with no fallback; a moved cut lands
    on those 4 bytes by chance once in 2**32. Store errors (``OSError``) propagate."""
    blocks = index.blocks
    probed = cuts_to_probe(len(blocks))
    if not probed:
        return

    def ends(i: int) -> bytes:
        return store.get_range(info.key, blocks[i].end - 4, blocks[i].end, if_match=info.etag)

    with ThreadPoolExecutor(max_workers=max(1, min(store.concurrency, len(probed))),
                            thread_name_prefix="cc-gzip-cuts") as pool:
        for i, tail in zip(probed, pool.map(ends, probed), strict=True):
            if bytes(tail) != pgzip.SYNC_MARKER:
                raise pgzip.BlockIndexError(f"block {i} does not end where a block ends (bytes "
                                            f"{blocks[i].start}-{blocks[i].end}: no full-flush marker)")


def check_index(store: ObjectStore, info: ObjectInfo, index: pgzip.Index, nbytes: int) -> None:
    """``BlockIndexError`` unless ``index`` (structurally checked: :func:`block_index`) describes this
    body, for readers that cannot fall back once they read (``cottoncandy.refs``: zarr reads a chunk per
    block and has no serial reader to turn to).

    A body of at most :data:`INDEX_CHECK_WHOLE` bytes is fetched whole (one GET) and every block
    inflated alone to its place and, for a version 2 index, its CRC-32, and the blocks' combined CRC and
    length checked against the trailer. A larger body, without inflating anything: the lengths were
    checked to tile the body, each within what its decoded size can deflate to (:func:`block_index`);
    its cut points are probed for the writer's block ends (:func:`check_cuts`, at most
    :data:`CUT_PROBES` 4-byte GETs); a version 2 index's CRCs, combined, must equal the trailer's CRC-32
    and the length its ISIZE (one ranged GET of the last 8 bytes). What is left is checked as zarr reads
    each block (it must end as the writer ends blocks and inflate to its size and one of the CRCs; the
    ``cottoncandy.refs`` filesystem names the object and the block of a cut that fails). Store errors
    (``OSError``) propagate.
    """
    blocks = index.blocks
    if info.size <= INDEX_CHECK_WHOLE:
        body = memoryview(store.get_range(info.key, 0, info.size, if_match=info.etag))
        scratch = bytearray(max(b.out_end - b.out_start for b in blocks))
        crc = 0
        try:
            for i, block in enumerate(blocks):
                place = memoryview(scratch)[: block.out_end - block.out_start]
                block_crc = pgzip.inflate_block_into(body[block.start : block.end], place, i == len(blocks) - 1)
                pgzip.check_block_crc(block, block_crc, i)
                crc = pgzip.crc32_combine(crc, block_crc, block.out_end - block.out_start)
            pgzip.check_trailer(bytes(body[index.trailer_at :]), crc, nbytes)
        except (ValueError, pgzip.BlockCrcError) as exc:
            raise pgzip.BlockIndexError(f"block {i}: {exc.strerror if isinstance(exc, OSError) else exc}") from None
        return
    check_cuts(store, info, index)
    if any(block.crc is None for block in blocks):
        return
    crc = 0
    for block in blocks:
        crc = pgzip.crc32_combine(crc, block.crc or 0, block.out_end - block.out_start)
    try:
        pgzip.check_trailer(store.get_range(info.key, info.size - pgzip.TRAILER, info.size, if_match=info.etag),
                            crc, nbytes)
    except ValueError as exc:
        raise pgzip.BlockIndexError(f"the index's block CRCs do not combine to the body's ({exc})") from None


def read_gzip_blocks(store: ObjectStore, info: ObjectInfo, nbytes: int, out: memoryview | Sink,
                     progress: Progress | None = None) -> bool:
    """Fill ``out`` (a byte view, or a sink such as a strided slot's ``FlatSink``) from an indexed gzip
    body in parallel; ``False`` (``out`` undefined) when the body has no usable index and must be read
    serially. Store errors (``OSError``) propagate."""
    if len(out) != nbytes:
        return False
    name = store.describe(info.key)
    index = block_index(store, info, nbytes)
    if index is None:
        return False
    count = len(index.blocks)
    head = index.blocks[0].start
    if progress is not None:
        progress(head)
    last = len(index.blocks) - 1
    trailer = bytearray()

    def inflate(i: int) -> int:
        block = index.blocks[i]
        end = info.size if i == last else block.end  # the last fetch brings the trailer along
        fetched = memoryview(bytearray(end - block.start))
        store.readinto(info.key, block.start, fetched, if_match=info.etag)
        # sliced, never resized: the store may still hold a view of the buffer it filled (a retried
        # read's traceback, say), and a bytearray with views cannot be resized (BufferError)
        data = fetched[: block.end - block.start]
        if i == last:
            trailer[:] = fetched[block.end - block.start :]
        crc = pgzip.inflate_block_into(data, _place(out, block.out_start, block.out_end), i == last)
        pgzip.check_block_crc(block, crc, i, name)
        if progress is not None:
            progress(end - block.start)
        return crc

    try:
        with ThreadPoolExecutor(max_workers=min(READ_WORKERS, store.concurrency, count),
                                thread_name_prefix="cc-gunzip") as pool:
            crcs = list(pool.map(inflate, range(count)))
        crc = crcs[0]
        for block, block_crc in zip(index.blocks[1:], crcs[1:], strict=True):
            crc = pgzip.crc32_combine(crc, block_crc, block.out_end - block.out_start)
        pgzip.check_trailer(bytes(trailer), crc, nbytes)
    except (ValueError, pgzip.BlockCrcError) as exc:  # a block that does not inflate to its place, a CRC mismatch
        log.info("%s: gzip block index does not fit the body (%s); reading serially", name, exc)
        return False
    return True


class GzipRows:
    """An array-like over a C-order gzip raw array with our block index: ``[slices]`` fetches the
    compressed bytes of the blocks holding the rows asked (one ranged GET) and inflates only those.

    Picklable (a ``StoreHandle``, the index as offsets, a few numbers), so ``dask.array.from_array``
    over it runs on any worker; reads carry the ETag seen at open and go through the mount's block
    reader (``cache.stretches.StretchReader`` over ``cache.inflated.BlockTable``). The index was
    checked at open (:func:`block_index`). As 0.4.0 reads any body it can decode, a block that does
    not inflate to its place, or inflates but not to the CRC-32 its index gives (the mount fails such
    a block with EIO; the library does not), makes this reader decode the whole body serially instead:
    logged once naming the object and the block, decoded once (kept in :data:`WHOLE`, bounded, for
    every reader of that version in the process), and every later read served from it.
    Only a body that fails its own CRC-32 or length then fails the read (``ValueError`` naming the
    object, as ``download_raw_array``). Thread-safe (dask's threads share one instance).
    """

    def __init__(self, handle: StoreHandle, key: str, etag: str, dtype: str, shape: tuple[int, ...],
                 spans: tuple[tuple[int, int], ...], block_size: int, crcs: tuple[int | None, ...] | None = None):
        self.handle, self.key, self.etag = handle, key, etag
        self.crcs = tuple(crcs) if crcs is not None else (None,) * len(spans)
        self.dtype = parse_dtype_token(dtype, key)
        self.shape, self.ndim = tuple(shape), len(shape)
        self.spans, self.block_size = tuple(spans), int(block_size)
        self.row = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._inflate: StretchReader | None = None
        self._broken = False  # a block failed: every read goes to the serial decode
        self._lock = threading.Lock()  # the reader and the whole decode are made once
        self._decoding = threading.Lock()

    def __reduce__(self) -> tuple[Any, ...]:
        return (GzipRows, (self.handle, self.key, self.etag, dtype_token(self.dtype), self.shape, self.spans,
                           self.block_size, self.crcs))

    @property
    def chunks(self) -> tuple[int, ...] | None:
        """One dask chunk per block when blocks hold whole rows (``None``: they do not)."""
        if not self.row or self.block_size % self.row:
            return None
        return (self.block_size // self.row, *self.shape[1:])

    def __getitem__(self, index: Any) -> np.ndarray:
        block, local = bounding_block(self.shape, index)
        out = self._rows(block[0].start, block[0].stop)[(slice(None),) + tuple(block[1:])]
        for axis in range(len(local) - 1, -1, -1):  # last axis first, so axis numbers stay valid
            take = local[axis]
            if take is not None:
                out = np.take(out, take, axis=axis)
        return out

    def _rows(self, first: int, stop: int) -> np.ndarray:
        start, end = first * self.row, stop * self.row
        if start >= end:
            return np.empty((stop - first, *self.shape[1:]), dtype=self.dtype)
        data = self._read(start, end)
        return np.frombuffer(data, dtype=self.dtype).reshape((stop - first, *self.shape[1:]))

    def _read(self, start: int, end: int) -> bytes | bytearray | memoryview:
        """Decoded bytes ``[start, end)``: by block, or from the serial decode once a block failed."""
        if not self._broken:
            try:
                return self._reader()(start, end)  # a block not fitting its index: the reader falls back itself
            except pgzip.BlockCrcError as exc:  # the block inflated, but not to its index's CRC-32
                self._give_up(exc.strerror or str(exc))
        return self._serial(start, end)

    def _give_up(self, why: str) -> None:
        """Send this and every later read to the serial decode; log ``why`` (it names the object and
        the block) the first time only."""
        with self._lock:
            first, self._broken = not self._broken, True
        if first:
            log.info("%s; decoding the whole array serially (its own CRC-32 and length are checked)", why)

    def _reader(self) -> StretchReader:
        """The block reader (``cache.stretches``, as the mount's), made on first use where this runs."""
        with self._lock:
            if self._inflate is None:
                store, nbytes = self.handle.get(), int(np.prod(self.shape)) * self.dtype.itemsize
                name = store.describe(self.key)
                blocks = [pgzip.Block(a, b, i * self.block_size, min(nbytes, (i + 1) * self.block_size), crc)
                          for i, ((a, b), crc) in enumerate(zip(self.spans, self.crcs, strict=True))]

                def body(start: int, end: int) -> bytes:
                    return store.get_range(self.key, start, end, if_match=self.etag)

                def bad(why: str) -> None:
                    self._give_up(f"{name}: gzip block does not fit its index ({why})")

                table = BlockTable(pgzip.Index(blocks, self.spans[-1][1]), nbytes, name)
                self._inflate = StretchReader(table, body, self._serial, bad)
            return self._inflate

    def _serial(self, start: int, end: int) -> bytes:
        """Decoded bytes ``[start, end)`` from the whole body read serially (once per version in the
        process while it stays in :data:`WHOLE`; zlib checks its CRC-32 and length: a body failing them
        is a ``ValueError`` naming the object)."""
        with self._decoding:
            store = self.handle.get()
            key = (store.describe(self.key), self.etag)
            kept = WHOLE.get(key)
            whole = kept if isinstance(kept, bytearray) else None
            if whole is None:
                whole = bytearray(int(np.prod(self.shape)) * self.dtype.itemsize)
                try:
                    with store.open_read(self.key, if_match=self.etag) as stream:
                        codecs.gunzip_into(iter(lambda: stream.read(2**20), b""), memoryview(whole))
                except codecs.CorruptBodyError as exc:
                    raise ValueError(f"{store.describe(self.key)}: {exc}") from exc
                WHOLE.put(key, whole)
        return bytes(memoryview(whole)[start:end])


def gzip_rows(store: ObjectStore, info: ObjectInfo, spec: ArraySpec) -> GzipRows | None:
    """A :class:`GzipRows` over a C-order gzip array with a usable block index, or ``None``."""
    if spec.compression is None or not codecs.record(spec.compression).blocks or spec.fortran or not spec.shape:
        return None
    index = block_index(store, info, spec.nbytes)
    if index is None:
        return None
    return GzipRows(StoreHandle(store), info.key, info.etag, dtype_token(spec.dtype), spec.shape,
                    tuple((b.start, b.end) for b in index.blocks),
                    index.blocks[0].out_end - index.blocks[0].out_start, tuple(b.crc for b in index.blocks))
