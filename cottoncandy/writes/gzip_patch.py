"""A staged rewrite of a gzip array in the library's block format, storing again only the blocks that changed.

Why: a block of the library's gzip body (``formats.pgzip``) inflates alone and its index gives its
compressed length and CRC-32, so a body whose array changed in a few rows differs from the stored one
only in the blocks holding those rows, in the header (the index) and in the trailer (the CRC-32 of
the whole array, combined from the blocks' CRCs). Encoding the whole array again at every commit
decodes and deflates every block (an ``r+`` update of one row of a 1 GiB array: 1 GiB inflated and
deflated). Here only the changed blocks are read (decoded from the base where the program did not
write them) and deflated again; every unchanged block keeps its compressed bytes, copied by the
server in runs of at least 5 MiB (``UploadPartCopy`` pinned to the base's ETag) or, in shorter runs,
fetched compressed and sent as they are. The result is the same kind of body as the writer's: one
gzip member, the index in its header (version 2, every block's length and CRC-32), the base's
block geometry (blocks of whole rows, as the writer cut them).

When it applies (else ``None`` and the caller encodes the whole array): the base is an indexed gzip
body whose index gives every block's CRC-32 and whose CRCs combine to the body's own trailer
(``gzip_blocks.check_index``, for bodies over ``INDEX_CHECK_WHOLE``: smaller ones are encoded whole,
which costs little); the file keeps the base's header and size (same dtype, shape and order, no
truncate); the changed blocks hold at most ``MAX_CHANGED`` decoded bytes (their compressed bytes are
held in memory until the body is composed).
"""

from __future__ import annotations

import bisect
import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from ..arrays.gzip_blocks import INDEX_CHECK_WHOLE, check_index
from ..formats import deflate, pgzip
from ..storage.base import CopiedRange, ObjectInfo, Piece
from ..storage.conditions import WriteCondition
from .ranges import RangeSet
from .staged import StagedFile

log = logging.getLogger("cottoncandy.writes")

#: most decoded bytes of changed blocks deflated again in one commit (their compressed bytes wait in
#: memory for the body's header); beyond it the whole array is encoded again, streamed
MAX_CHANGED = 64 * 2**20


@dataclass(frozen=True)
class _Segment:
    """Bytes ``[start, end)`` of the new body: ``data`` sent, or the base body's bytes from ``source``."""

    start: int
    end: int
    data: bytes | None = None
    source: int = 0


def store_changed_blocks(staged: StagedFile, key: str, skip: int, metadata: dict[str, str],
                         condition: WriteCondition | None, part_size: int, in_flight: int) -> ObjectInfo | None:
    """Store the staged ``.npy`` (its array after ``skip`` header bytes) as ``key`` with the base's
    unchanged blocks kept (module docstring); ``None`` when that does not apply."""
    from .commit import plan  # here: commit imports this module

    base = staged.base
    if base is None or base.spec is None or staged.base_end != staged.size or staged.size != base.size \
            or skip != len(base.header) or base.info.size <= INDEX_CHECK_WHOLE:
        return None
    index = staged.base_index()
    if index is None or any(block.crc is None for block in index.blocks):  # no index, or version 1
        return None
    nbytes = base.spec.nbytes
    changed = RangeSet()
    for a, b in staged.dirty.overlapping(skip, skip + nbytes):
        changed.add(a - skip, b - skip)
    renewed = [i for i, block in enumerate(index.blocks) if changed.covered(block.out_start, block.out_end)]
    if sum(index.blocks[i].out_end - index.blocks[i].out_start for i in renewed) > MAX_CHANGED:
        return None
    store = staged.store
    try:
        check_index(store, base.info, index, nbytes)
    except pgzip.BlockIndexError as exc:
        log.info("%s: gzip block index not reused (%s); encoding the whole array", store.describe(key), exc)
        return None
    level, strategy = pgzip.DEFAULT_LEVEL, pgzip.strategy_for(base.spec.dtype)
    last = len(index.blocks) - 1
    fresh: dict[int, tuple[bytes, int]] = {}
    for i in renewed:
        block = index.blocks[i]
        data = staged.bytes_of(skip + block.out_start, skip + block.out_end)
        comp = deflate.deflater(level, strategy)
        body = comp.compress(data) + comp.flush(deflate.FINISH if i == last else deflate.FULL_FLUSH)
        fresh[i] = (body, deflate.crc32(data))
    lengths = [len(fresh[i][0]) if i in fresh else b.end - b.start for i, b in enumerate(index.blocks)]
    crcs = [fresh[i][1] if i in fresh else b.crc or 0 for i, b in enumerate(index.blocks)]
    crc = 0
    for block, block_crc in zip(index.blocks, crcs, strict=True):
        crc = pgzip.crc32_combine(crc, block_crc, block.out_end - block.out_start)
    block_size = index.blocks[0].out_end - index.blocks[0].out_start
    head = pgzip.header(block_size, lengths, crcs, level)
    segments = [_Segment(0, len(head), head)]
    at = len(head)
    for i, block in enumerate(index.blocks):
        end = at + lengths[i]
        segments.append(_Segment(at, end, fresh[i][0]) if i in fresh else _Segment(at, end, None, block.start))
        at = end
    segments.append(_Segment(at, at + 8, struct.pack("<II", crc & 0xFFFFFFFF, nbytes & 0xFFFFFFFF)))
    size = at + 8
    send = RangeSet()
    for segment in segments:
        if segment.data is not None:
            send.add(segment.start, segment.end)
    pieces = plan(size, send, part_size)
    metadata = {**metadata, pgzip.INDEX_KEY: pgzip.metadata_value(block_size, len(index.blocks))}
    info = store.compose(key, _pieces(staged, segments, pieces), metadata, condition=condition, in_flight=in_flight)
    copied = sum(b - a for kind, a, b in pieces if kind == "copy")
    log.info("%s: stored %s (gzip: %d of %d blocks deflated again, %d of %d body bytes copied by the server, "
             "%d fetched)", staged.path, store.describe(key), len(renewed), len(index.blocks), copied, size,
             staged.fetched)
    return info


def _pieces(staged: StagedFile, segments: list[_Segment], pieces: list[tuple[str, int, int]]) -> Iterator[Piece]:
    """The planned pieces: a copied one is one run of unchanged blocks (contiguous in the base too: no
    sent segment lies inside it); a sent one is joined by :func:`_sent`."""
    base = staged.base
    assert base is not None
    starts = [segment.start for segment in segments]
    for kind, a, b in pieces:
        first = bisect.bisect_right(starts, a) - 1
        if kind == "copy":
            segment = segments[first]
            assert segment.data is None
            shift = segment.source - segment.start
            yield CopiedRange(base.info.key, a + shift, b + shift, base.info.etag)
        else:
            yield _sent(staged, segments, first, a, b)


def _sent(staged: StagedFile, segments: list[_Segment], first: int, a: int, b: int) -> bytes:
    """Bytes ``[a, b)`` of the new body (``segments[first]`` holds ``a``): new bytes as they are, and
    the unchanged blocks' compressed bytes, each run of them fetched in one ranged GET pinned to the
    base's version."""
    base = staged.base
    assert base is not None
    out = bytearray()
    run: tuple[int, int] | None = None  # base bytes still to fetch, contiguous
    for segment in segments[first:]:
        if segment.start >= b:
            break
        lo, hi = max(a, segment.start), min(b, segment.end)
        if run is not None and (segment.data is not None or run[1] != segment.source + lo - segment.start):
            out += staged.store.get_range(base.info.key, run[0], run[1], if_match=base.info.etag)
            staged.fetched += run[1] - run[0]
            run = None
        if segment.data is not None:
            out += segment.data[lo - segment.start : hi - segment.start]
        elif hi > lo:
            source = segment.source + lo - segment.start
            run = (run[0] if run is not None else source, source + hi - lo)
    if run is not None:
        out += staged.store.get_range(base.info.key, run[0], run[1], if_match=base.info.etag)
        staged.fetched += run[1] - run[0]
    return bytes(out)
