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
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

from ..formats import pgzip
from ..formats.codecs import Sink
from ..formats.flat import ByteSource
from ..progress import BodyMap
from ..storage.base import ObjectInfo, ObjectStore, Progress

log = logging.getLogger(__name__)

#: blocks being fetched and inflated at once (each holds a compressed block and its decoded copy)
READ_WORKERS = 4
#: largest block the parallel reader accepts (ours are 4 MiB; larger ones come from a forged index)
MAX_READ_BLOCK = 64 * 2**20


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


def _declared(body: pgzip.ParallelGzip, meter: BodyMap) -> Iterator[bytes]:
    """``body.chunks()``, declaring the body's layout to ``meter`` before its bytes can be sent: the
    header and trailer first (their sizes are known from the start; they carry no array bytes),
    then each block, compressed bytes to array bytes, as soon as its compressed length is known."""
    nbytes, block = len(body.data), body.block_size
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
        block_size, count = pgzip.parse_metadata_value(value, nbytes)
        if count < 2:
            return None  # one block: the serial reader is as fast and saves a request
        if block_size > MAX_READ_BLOCK:
            raise pgzip.BlockIndexError(f"blocks of {block_size} bytes are larger than {MAX_READ_BLOCK}")
        size = pgzip.header_size(count)
        if size + 2 * count + pgzip.TRAILER > info.size:
            raise pgzip.BlockIndexError(f"{count} blocks cannot fit a {info.size}-byte body")
        head = bytes(memoryview(first)[:size]) if first is not None and len(first) >= size else \
            store.get_range(info.key, 0, size, if_match=info.etag)
        return pgzip.parse_index(head, block_size, count, nbytes, info.size)
    except pgzip.BlockIndexError as exc:
        log.info("%s: gzip block index not used (%s); reading serially", store.describe(info.key), exc)
        return None


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
        data = bytearray(end - block.start)
        store.readinto(info.key, block.start, memoryview(data), if_match=info.etag)
        if i == last:
            trailer[:] = data[block.end - block.start :]
            del data[block.end - block.start :]
        crc = pgzip.inflate_block_into(data, _place(out, block.out_start, block.out_end), i == last)
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
    except ValueError as exc:  # a block that does not inflate to its place, or a CRC mismatch
        log.info("%s: gzip block index does not fit the body (%s); reading serially", name, exc)
        return False
    return True
