"""One gzip member compressed in parallel blocks (the way pigz does), and its block index.

Why: 0.4.0 stores gzip bodies (its default codec below 2 GB) and reads them through a single
``zlib.decompressobj(16 + MAX_WBITS)``, which stops at the end of the *first* member. So the body
must stay one member: one header, one CRC-32 and ISIZE trailer. Inside it, the deflate stream is
cut into blocks of ``block_size`` input bytes, each compressed on its own thread by its own raw
deflater (ISA-L's or zlib's, see ``deflate``; both release the GIL) and ended by a full flush (the
last by ``Z_FINISH``). A full flush byte-aligns the stream, and every block starts with an empty
dictionary (its own deflater), so the concatenation is one valid deflate stream and every block
also inflates alone with a raw inflater. The CRC of the whole body is
combined from per-block CRCs (:func:`crc32_combine`).

Where the block index lives: a multipart upload's metadata is fixed when the upload *starts*,
before any block's compressed size is known, so the offsets cannot go in user metadata without
holding the whole compressed body (what this module exists to avoid) or copying the object onto
itself afterwards. They go in the gzip header's extra field (FEXTRA, RFC 1952 section 2.3.1.1),
which zlib, gzip(1), Python's ``gzip`` and 0.4.0's reader skip. The header is written last: the
store uploads the first part last (see ``ObjectStore.put_chunks``). User metadata gets one short
key, :data:`INDEX_KEY`, saying that the header holds an index, and with what block size and count,
so the reader knows the header's length and asks for exactly those bytes.

Layout: ``header(10 + 2 + 4 + 13 + 4n) | block_0 ... block_{n-1} | CRC-32 | ISIZE``. Extra
subfield ``Cc``: version (1 byte), block size (u64 LE), count (u32 LE), then each block's
compressed length (u32 LE). At most :data:`MAX_BLOCKS` blocks (the field's 64 KiB limit); the
writer grows the block size to stay under it.

Everything read back (the metadata value, the header) is untrusted: :func:`parse_index` checks it
against the array's size and the body's size, and the caller falls back to the serial reader on
any mismatch. No I/O here.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from functools import lru_cache

from . import deflate
from .codecs import GZIP, Sink, record
from .flat import BufferSource, ByteSource
from .keys import INDEX_KEY as INDEX_KEY  # declared in ``keys`` with every other metadata key
from .keys import visible_metadata as visible_metadata

INDEX_VERSION = 1
#: input bytes per block: big enough that ranged GETs and thread hand-offs are cheap, small enough
#: that a few blocks in flight stay far below the 64 MiB memory target
DEFAULT_BLOCK = 4 * 2**20
#: speed over size: level 1 (any level reads back). Measured per core on this project's machine
#: against 0.4.0's level 9: small integers 46 vs 1 MiB/s (size 0.35 vs 0.30 of the array), arange
#: int64 92 vs 1 (0.19 both), smooth float32 28 vs 15 (0.76 both)
DEFAULT_LEVEL = 1


def strategy_for(dtype: object) -> int:
    """``Z_RLE`` for floating-point and complex arrays, zlib's default strategy otherwise (used when
    zlib deflates; ISA-L, the default deflater, has no strategies).

    Float mantissas are noise, so the LZ77 match search finds little but runs: Z_RLE (matches at
    distance 1 only, plain deflate every reader inflates) measured about twice level 1's speed on
    float data at about the same size (random float64: 50 vs 23 MiB/s per core, 0.940 vs 0.949 of
    the array; smooth float32: 54 vs 28, 0.79 vs 0.76), while on integers it lost size (arange int64:
    0.38 vs 0.19), so integers keep the default strategy.
    """
    kind = getattr(dtype, "kind", "")
    return zlib.Z_RLE if kind in ("f", "c") else zlib.Z_DEFAULT_STRATEGY
SUBFIELD_ID = b"Cc"
_FIXED = struct.Struct("<BQI")
MAX_BLOCKS = (0xFFFF - 4 - _FIXED.size) // 4
HEADER_FIXED = 10 + 2 + 4 + _FIXED.size
TRAILER = 8
#: how every block but the last ends: the empty stored block a full flush writes
SYNC_MARKER = b"\x00\x00\xff\xff"


class BlockIndexError(ValueError):
    """A block index that does not fit the array or the body (forged or damaged)."""


def block_size_for(nbytes: int, block_size: int = DEFAULT_BLOCK) -> int:
    """``block_size``, doubled until ``nbytes`` needs at most :data:`MAX_BLOCKS` blocks."""
    block_size = max(1, int(block_size))
    while -(-nbytes // block_size) > MAX_BLOCKS:
        block_size *= 2
    return block_size


def row_block_size(nbytes: int, row_bytes: int, block_size: int | None = None) -> int:
    """The writer's block size for an array of ``row_bytes``-byte rows: ``block_size`` (default
    :data:`DEFAULT_BLOCK`, read at call time) rounded *up* to whole rows when a row fits in it, so every
    block holds whole rows and a block is a chunk of rows (``cottoncandy.refs`` presents it as one zarr
    chunk; a row never needs two blocks). Rounding up keeps blocks at least :func:`smallest_block`, which
    readers of earlier versions require. Longer rows are cut (one block size, rows across blocks)."""
    base = block_size or DEFAULT_BLOCK
    if 0 < row_bytes <= base:
        base = -(-base // row_bytes) * row_bytes
    return block_size_for(nbytes, base)


def smallest_block() -> int:
    """The smallest block size the writer makes: :data:`DEFAULT_BLOCK` (``block_size_for`` only grows it),
    read at call time, so tests that lower it to cut small arrays into blocks lower this too. An index
    of smaller blocks was not written by cottoncandy: 16,379 one-byte blocks of a 16 KB array cost
    16,379 ranged GETs (40 s where the serial read takes 0.3 s), so such an index is not used."""
    return DEFAULT_BLOCK


def block_count(nbytes: int, block_size: int) -> int:
    """Blocks of an ``nbytes`` body: at least one (an empty array is one empty final block)."""
    return max(1, -(-nbytes // block_size))


def header_size(count: int) -> int:
    return HEADER_FIXED + 4 * count


def metadata_value(block_size: int, count: int) -> str:
    return f"{INDEX_VERSION}:{block_size}:{count}"


def header(block_size: int, lengths: list[int], level: int = DEFAULT_LEVEL) -> bytes:
    """The gzip header holding the index (mtime 0: the bytes depend on the array only)."""
    payload = _FIXED.pack(INDEX_VERSION, block_size, len(lengths)) + struct.pack(f"<{len(lengths)}I", *lengths)
    sub = SUBFIELD_ID + struct.pack("<H", len(payload)) + payload
    xfl = 4 if level == 1 else 2 if level == 9 else 0
    return b"\x1f\x8b\x08\x04" + b"\x00\x00\x00\x00" + bytes([xfl, 255]) + struct.pack("<H", len(sub)) + sub


# --- CRC-32 combination (zlib's crc32_combine, by GF(2) matrices) ------------------------------
def _gf2_times(mat: list[int] | tuple[int, ...], vec: int) -> int:
    total, i = 0, 0
    while vec:
        if vec & 1:
            total ^= mat[i]
        vec >>= 1
        i += 1
    return total


def _gf2_square(mat: list[int]) -> list[int]:
    return [_gf2_times(mat, mat[n]) for n in range(32)]


@lru_cache(maxsize=16)
def _shift_operator(len2: int) -> tuple[int, ...]:
    """The GF(2) operator that appends ``len2`` zero bytes to a CRC-32 (cached: blocks share sizes)."""
    op = [1 << n for n in range(32)]  # identity
    odd = [0xEDB88320] + [1 << n for n in range(31)]  # one zero bit
    even = _gf2_square(odd)  # two zero bits
    odd = _gf2_square(even)  # four zero bits
    while len2:
        even = _gf2_square(odd)  # first pass: one zero byte
        if len2 & 1:
            op = [_gf2_times(even, v) for v in op]
        len2 >>= 1
        if not len2:
            break
        odd = _gf2_square(even)
        if len2 & 1:
            op = [_gf2_times(odd, v) for v in op]
        len2 >>= 1
    return tuple(op)


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of ``A + B`` from ``crc32(A)``, ``crc32(B)`` and ``len(B)`` (as zlib's C function)."""
    if len2 <= 0:
        return crc1
    return _gf2_times(_shift_operator(len2), crc1) ^ crc2


# --- writing ---------------------------------------------------------------------------------
def _deflate_block(data: memoryview, level: int, last: bool,
                   strategy: int = zlib.Z_DEFAULT_STRATEGY) -> tuple[list[bytes], int]:
    """One block's raw deflate bytes (ended by a full flush, or by the final block) and its CRC.

    The bytes come in the pieces zlib made them in (joining them would copy the block once more).
    """
    comp = deflate.deflater(level, strategy)
    pieces = [comp.compress(data), comp.flush(deflate.FINISH if last else deflate.FULL_FLUSH)]
    return pieces, deflate.crc32(data)


def _deflate_range(source: ByteSource, start: int, stop: int, level: int, last: bool,
                   strategy: int) -> tuple[list[bytes], int]:
    """:func:`_deflate_block` of bytes read here, on the compressing thread (a strided source copies
    its range out now, so copies run in parallel and only blocks in flight are in memory)."""
    return _deflate_block(source.read(start, stop), level, last, strategy)


class ParallelGzip:
    """The body of one gzip member, compressed on ``pool`` a few blocks ahead of the reader.

    Iterate :meth:`chunks` for the blocks and the trailer in order (at most ``ahead`` blocks are
    being compressed or waiting at once: memory stays bounded); then :meth:`header` gives the
    header that must come *before* them (it holds the block lengths).
    """

    def __init__(self, data: memoryview | ByteSource, pool: Executor, *, level: int = DEFAULT_LEVEL,
                 block_size: int = DEFAULT_BLOCK, ahead: int = 3, strategy: int = zlib.Z_DEFAULT_STRATEGY):
        self.data: ByteSource = BufferSource(data) if isinstance(data, memoryview) else data
        self.pool = pool
        self.level = level
        self.strategy = strategy
        self.block_size = block_size_for(len(self.data), block_size)
        self.count = block_count(len(self.data), self.block_size)
        self.ahead = max(1, ahead)
        self.lengths: list[int] = []
        self._done = False

    def metadata_value(self) -> str:
        return metadata_value(self.block_size, self.count)

    def chunks(self) -> Iterator[bytes]:
        """Compressed blocks in order (each in one or more pieces), then the 8-byte trailer."""
        pending: list[Future[tuple[list[bytes], int]]] = []
        crc, submitted = 0, 0
        try:
            while submitted < self.count or pending:
                while submitted < self.count and len(pending) < self.ahead:
                    start = submitted * self.block_size
                    stop = min(len(self.data), start + self.block_size)
                    last = submitted == self.count - 1
                    pending.append(self.pool.submit(_deflate_range, self.data, start, stop, self.level, last,
                                                    self.strategy))
                    submitted += 1
                pieces, block_crc = pending.pop(0).result()
                index = len(self.lengths)
                crc = crc32_combine(crc, block_crc, min(self.block_size, len(self.data) - index * self.block_size))
                self.lengths.append(sum(len(piece) for piece in pieces))
                while pieces:
                    yield pieces.pop(0)
        finally:
            for fut in pending:
                fut.cancel()
        self._done = True
        yield struct.pack("<II", crc & 0xFFFFFFFF, len(self.data) & 0xFFFFFFFF)

    def header(self) -> bytes:
        if not self._done:
            raise RuntimeError("the gzip header is known only after every block is compressed")
        return header(self.block_size, self.lengths, self.level)


# --- reading ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """One block: compressed bytes ``[start, end)`` of the body, decoded bytes ``[out_start, out_end)``."""

    start: int
    end: int
    out_start: int
    out_end: int


@dataclass(frozen=True)
class Index:
    blocks: list[Block]
    trailer_at: int  # body offset of the CRC-32/ISIZE trailer


def parse_metadata_value(value: object, nbytes: int) -> tuple[int, int]:
    """Block size and count from the :data:`INDEX_KEY` value, checked against the array's size."""
    if not isinstance(value, str) or len(value) > 64:
        raise BlockIndexError(f"{INDEX_KEY} is not a short string")
    parts = value.strip().split(":")
    if len(parts) != 3 or not all(p.isdigit() and len(p) <= 20 for p in parts):
        raise BlockIndexError(f"{INDEX_KEY} is not VERSION:BLOCK_SIZE:COUNT ({value[:64]!r})")
    version, block_size, count = (int(p) for p in parts)
    if version != INDEX_VERSION:
        raise BlockIndexError(f"{INDEX_KEY} has unknown version {version}")
    if block_size < 1 or not 1 <= count <= MAX_BLOCKS or count != block_count(nbytes, block_size):
        raise BlockIndexError(f"{INDEX_KEY} says {count} blocks of {block_size} bytes; the array has {nbytes}")
    if count > 1 and block_size < smallest_block():
        raise BlockIndexError(f"{INDEX_KEY} says {count} blocks of {block_size} bytes; the writer makes blocks of "
                              f"{smallest_block()} bytes or more")
    return block_size, count


def deflate_bound(size: int) -> int:
    """Most bytes a block of ``size`` bytes may deflate to, flush marker included.

    zlib's deflateBound is ``size + size/4096 + size/16384 + size/2**25 + 13``; ISA-L (``deflate``)
    measured up to ~190 bytes over that on random bytes of 0-4 MiB, so the bound is looser than both:
    it only has to keep a forged index from asking for absurd blocks.
    """
    return size + (size >> 10) + 1024


def parse_index(head: bytes, block_size: int, count: int, nbytes: int, body_size: int) -> Index:
    """The blocks of a body from its first ``header_size(count)`` bytes, every field checked.

    Raises :class:`BlockIndexError` unless the header is a gzip header whose only extra subfield is
    our index, agreeing with ``block_size``/``count``, and the lengths tile the body exactly.
    """
    size = header_size(count)
    if len(head) != size:
        raise BlockIndexError(f"gzip header is {len(head)} bytes, expected {size}")
    if head[:4] != b"\x1f\x8b\x08\x04":
        raise BlockIndexError("body does not start with a gzip header holding only an extra field")
    xlen = struct.unpack_from("<H", head, 10)[0]
    if xlen != size - 12 or head[12:14] != SUBFIELD_ID or struct.unpack_from("<H", head, 14)[0] != xlen - 4:
        raise BlockIndexError("gzip extra field is not a block index")
    version, stored_block, stored_count = _FIXED.unpack_from(head, 16)
    if (version, stored_block, stored_count) != (INDEX_VERSION, block_size, count):
        raise BlockIndexError("gzip block index disagrees with the object's metadata")
    lengths = struct.unpack_from(f"<{count}I", head, HEADER_FIXED)
    total = size + sum(lengths) + TRAILER
    if total != body_size:
        raise BlockIndexError(f"block lengths add up to {total} bytes, the body has {body_size}")
    blocks, pos = [], size
    longest = deflate_bound(block_size)
    for i, length in enumerate(lengths):
        if not 2 <= length <= longest:  # the smallest deflate block (an empty final one) is 2 bytes
            raise BlockIndexError(f"block {i} is {length} bytes long (blocks of {block_size} bytes take 2 to "
                                  f"{longest})")
        out_start = i * block_size
        out_end = min(nbytes, out_start + block_size)
        if length < (out_end - out_start) // record(GZIP).max_ratio:  # a 258-byte match costs 2 bits at least
            raise BlockIndexError(f"block {i} is {length} bytes long: too short to hold the "
                                  f"{out_end - out_start} bytes it stands for (deflate makes at most "
                                  f"{record(GZIP).max_ratio} per byte)")
        blocks.append(Block(pos, pos + length, out_start, out_end))
        pos += length
    return Index(blocks, pos)


def inflate_block_into(data: bytes | memoryview, out: memoryview | Sink, last: bool) -> int:
    """Inflate one block into ``out`` (exactly filled; a memoryview, or a sink taking ``out[:] = bytes``);
    its CRC-32. ``ValueError`` if it does not fit."""
    if not last and bytes(data[-4:]) != SYNC_MARKER:
        raise ValueError("deflate block does not end with a full flush")
    inflater = deflate.inflater()
    try:
        produced = inflater.decompress(data, len(out) + 1)
        while len(produced) <= len(out) and not inflater.unconsumed_tail and not inflater.eof:
            # output the inflater may still hold once all input is in, asked for with the same bound
            # (``flush()`` would inflate whatever is left, however much a forged block makes)
            more = inflater.decompress(b"", len(out) + 1 - len(produced))
            if not more:
                break
            produced += more
        ended = inflater.eof
    except deflate.ERRORS as exc:
        raise ValueError(f"damaged deflate block ({exc})") from exc
    if len(produced) != len(out) or inflater.unconsumed_tail or inflater.unused_data or ended != last:
        raise ValueError(f"deflate block does not decode to its {len(out)} bytes")
    out[:] = produced
    return deflate.crc32(produced)


def check_trailer(trailer: bytes, crc: int, nbytes: int) -> None:
    if len(trailer) != TRAILER or struct.unpack("<II", trailer) != (crc & 0xFFFFFFFF, nbytes & 0xFFFFFFFF):
        raise ValueError("gzip trailer does not match the decoded bytes (CRC-32 or length)")
