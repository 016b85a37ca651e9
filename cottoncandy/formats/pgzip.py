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

Layout: ``header(10 + 2 + 4 + 13 + 8n) | block_0 ... block_{n-1} | CRC-32 | ISIZE``. Extra
subfield ``Cc``: version (1 byte), block size (u64 LE), count (u32 LE), each block's compressed length
(u32 LE), then (version 2, what the writer makes) each block's CRC-32 of its decoded bytes (u32 LE), so
a block read alone is checked as the whole body is by its trailer. Version 1 (earlier writers) has no
CRCs; readers take both. At most :data:`MAX_BLOCKS` blocks (the field's 64 KiB limit); the writer grows
the block size to stay under it.

The writer is incremental (:class:`ParallelGzip`): it is told the body's decoded length up front (the
block boundaries, and which block is last, follow from it) and then either reads a source by block
(the library's uploads) or is fed the bytes as they arrive, in pieces of any size (the mount's
``np.save``): full blocks go to the pool as soon as they are complete, and at most ``ahead`` blocks
are compressing or waiting, so memory stays a few blocks whatever the array's size.

Everything read back (the metadata value, the header) is untrusted: :func:`parse_index` checks it
against the array's size and the body's size, and the caller falls back to the serial reader on
any mismatch. No I/O here.
"""

from __future__ import annotations

import errno
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from functools import lru_cache

from . import deflate
from .codecs import GZIP, Sink, record
from .flat import BufferSource, ByteSource
from .keys import INDEX_KEY as INDEX_KEY  # declared in ``keys`` with every other metadata key
from .keys import visible_metadata as visible_metadata

#: the index version the writer makes (2: lengths and CRC-32s); readers take :data:`READ_VERSIONS`
INDEX_VERSION = 2
READ_VERSIONS = (1, 2)
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
#: bytes of the index per block, by version: a length (v1), a length and a CRC-32 (v2)
ENTRY = {1: 4, 2: 8}


def max_blocks(version: int = INDEX_VERSION) -> int:
    """The most blocks an index of ``version`` holds (the extra field's XLEN is 16 bits)."""
    return (0xFFFF - 4 - _FIXED.size) // ENTRY[version]


#: the most blocks the writer makes (its index version's limit)
MAX_BLOCKS = max_blocks()
HEADER_FIXED = 10 + 2 + 4 + _FIXED.size
TRAILER = 8
#: how every block but the last ends: the empty stored block a full flush writes
SYNC_MARKER = b"\x00\x00\xff\xff"
#: largest block a reader accepts (the writer makes 4 MiB ones, larger only past :data:`MAX_BLOCKS` blocks
#: of them): an index or a codec config asking for more is forged, and is refused before anything of
#: that size is allocated or fetched
MAX_READ_BLOCK = 64 * 2**20


class BlockIndexError(ValueError):
    """A block index that does not fit the array or the body (forged or damaged)."""


class BlockCrcError(OSError):
    """A block that inflated to its place but not to the CRC-32 its index gives: its bytes or the
    index are damaged or forged. ``EIO``; the message names the object (when told) and the block."""

    def __init__(self, name: str, block: int, found: int, expected: int):
        what = f"{name}: " if name else ""
        super().__init__(errno.EIO, f"{what}gzip block {block} decodes to CRC-32 {found:08x}, its index says "
                                    f"{expected:08x} (damaged or forged)")


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


def header_size(count: int, version: int = INDEX_VERSION) -> int:
    return HEADER_FIXED + ENTRY[version] * count


def metadata_value(block_size: int, count: int) -> str:
    return f"{INDEX_VERSION}:{block_size}:{count}"


def header(block_size: int, lengths: list[int], crcs: list[int], level: int = DEFAULT_LEVEL) -> bytes:
    """The gzip header holding the index, version :data:`INDEX_VERSION` (mtime 0: the bytes depend on
    the array only)."""
    if len(crcs) != len(lengths):
        raise ValueError(f"{len(lengths)} block lengths but {len(crcs)} CRCs")
    n = len(lengths)
    payload = _FIXED.pack(INDEX_VERSION, block_size, n) + struct.pack(f"<{n}I{n}I", *lengths, *crcs)
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


def _deflate_held(data: bytearray, level: int, last: bool, strategy: int) -> tuple[list[bytes], int]:
    """:func:`_deflate_block` of a block gathered from fed bytes (the buffer is this block's alone)."""
    return _deflate_block(memoryview(data), level, last, strategy)


class ParallelGzip:
    """The body of one gzip member of ``nbytes`` decoded bytes, compressed on ``pool`` a block at a time.

    ``data``: the bytes (a view or a ``ByteSource``, read a block at a time by :meth:`chunks`), or
    just their count when they are fed as they arrive: :meth:`write` pieces of any size, then
    :meth:`finish`. Either way, full blocks go to ``pool`` in order and at most ``ahead`` are being
    compressed or waiting at once (memory stays bounded: those blocks and one being gathered); the
    compressed bytes come out in order (each block in one or more pieces), the 8-byte trailer last.
    Then :meth:`header` gives the header that must come *before* them (it holds the block lengths and
    CRCs). One instance writes one body, from one thread.
    """

    def __init__(self, data: memoryview | ByteSource | int, pool: Executor, *, level: int = DEFAULT_LEVEL,
                 block_size: int = DEFAULT_BLOCK, ahead: int = 3, strategy: int = zlib.Z_DEFAULT_STRATEGY):
        if isinstance(data, int):
            if data < 0:
                raise ValueError(f"a body of {data} bytes")
            self.data: ByteSource | None = None
            self.nbytes = data
        else:
            self.data = BufferSource(data) if isinstance(data, memoryview) else data
            self.nbytes = len(self.data)
        self.pool = pool
        self.level = level
        self.strategy = strategy
        self.block_size = block_size_for(self.nbytes, block_size)
        self.count = block_count(self.nbytes, self.block_size)
        self.ahead = max(1, ahead)
        self.lengths: list[int] = []
        self.crcs: list[int] = []
        self._crc = 0
        self._pending: deque[Future[tuple[list[bytes], int]]] = deque()
        self._submitted = 0
        self._held = bytearray()  # the block being gathered from fed bytes
        self._fed = 0
        self._done = False

    def metadata_value(self) -> str:
        return metadata_value(self.block_size, self.count)

    def _block_length(self, i: int) -> int:
        """Decoded bytes of block ``i``."""
        return max(0, min(self.block_size, self.nbytes - i * self.block_size))

    def _submit(self, fn: Callable[..., tuple[list[bytes], int]], *args: object) -> None:
        last = self._submitted == self.count - 1
        self._pending.append(self.pool.submit(fn, *args, self.level, last, self.strategy))
        self._submitted += 1

    def _collect(self) -> list[bytes]:
        """The oldest pending block's pieces (waiting for it), its length and CRC noted."""
        pieces, block_crc = self._pending.popleft().result()
        index = len(self.lengths)
        self._crc = crc32_combine(self._crc, block_crc, self._block_length(index))
        self.lengths.append(sum(len(piece) for piece in pieces))
        self.crcs.append(block_crc)
        return pieces

    def _ready(self, limit: int) -> list[bytes]:
        """Pieces of the blocks done in order at the front, waiting while more than ``limit`` are pending."""
        out: list[bytes] = []
        while self._pending and (len(self._pending) > limit or self._pending[0].done()):
            out += self._collect()
        return out

    def _trailer(self) -> bytes:
        self._done = True
        return struct.pack("<II", self._crc & 0xFFFFFFFF, self.nbytes & 0xFFFFFFFF)

    def chunks(self) -> Iterator[bytes]:
        """Compressed blocks in order (each in one or more pieces), then the 8-byte trailer, reading
        ``data`` a block at a time on the compressing threads."""
        if self.data is None:
            raise RuntimeError("this body is fed by write(), not read from a source")
        try:
            while self._submitted < self.count:
                start = self._submitted * self.block_size
                self._submit(_deflate_range, self.data, start, start + self._block_length(self._submitted))
                if len(self._pending) >= self.ahead:
                    yield from self._collect()
            while self._pending:
                yield from self._collect()
        finally:
            self.close()
        yield self._trailer()

    def write(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        """Take the next decoded bytes (any length); the compressed pieces ready so far, in order.

        Waits while ``ahead`` blocks are pending. ``ValueError`` beyond the ``nbytes`` declared."""
        view = memoryview(data).cast("B")
        if self.data is not None or self._done:
            raise RuntimeError("this body is read from a source, or already finished")
        if self._fed + len(view) > self.nbytes:
            raise ValueError(f"{self._fed + len(view)} bytes fed to a body of {self.nbytes}")
        out: list[bytes] = []
        while len(view):
            take = view[: self._block_length(self._submitted) - len(self._held)]
            self._held += take
            self._fed += len(take)
            view = view[len(take):]
            if len(self._held) == self._block_length(self._submitted):
                out += self._ready(self.ahead - 1)  # room for one more: a long piece waits here
                held, self._held = self._held, bytearray()
                self._submit(_deflate_held, held)
        return out + self._ready(self.ahead)

    def finish(self) -> list[bytes]:
        """After every byte is fed: the pieces left, then the trailer. ``ValueError`` if bytes are missing."""
        if self.data is not None or self._done:
            raise RuntimeError("this body is read from a source, or already finished")
        if self._fed != self.nbytes:
            raise ValueError(f"{self._fed} bytes fed to a body of {self.nbytes}")
        if self._submitted < self.count:  # an empty body: one empty final block
            self._submit(_deflate_held, bytearray())
        try:
            out = self._ready(0)
        finally:
            self.close()
        return [*out, self._trailer()]

    def close(self) -> None:
        """Cancel blocks not yet compressed (giving the body up); harmless once finished."""
        while self._pending:
            self._pending.popleft().cancel()

    def header(self) -> bytes:
        if not self._done:
            raise RuntimeError("the gzip header is known only after every block is compressed")
        return header(self.block_size, self.lengths, self.crcs, self.level)


# --- reading ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Block:
    """One block: compressed bytes ``[start, end)`` of the body, decoded bytes ``[out_start, out_end)``."""

    start: int
    end: int
    out_start: int
    out_end: int
    #: CRC-32 of the decoded bytes (index version 2); ``None``: the index gives none (version 1)
    crc: int | None = None


def check_block_crc(block: Block, crc: int, i: int, name: str = "") -> None:
    """Raise :class:`BlockCrcError` unless block ``i`` (just inflated, to CRC ``crc``) matches its index."""
    if block.crc is not None and crc != block.crc:
        raise BlockCrcError(name, i, crc, block.crc)


@dataclass(frozen=True)
class Index:
    blocks: list[Block]
    trailer_at: int  # body offset of the CRC-32/ISIZE trailer


@dataclass(frozen=True)
class IndexShape:
    """What the :data:`INDEX_KEY` value says: the header's index version, block size and count."""

    version: int
    block_size: int
    count: int

    @property
    def header_size(self) -> int:
        return header_size(self.count, self.version)


def parse_metadata(value: object, nbytes: int) -> IndexShape:
    """The index's version, block size and count from the :data:`INDEX_KEY` value, checked against the
    array's size (``BlockIndexError`` otherwise)."""
    if not isinstance(value, str) or len(value) > 64:
        raise BlockIndexError(f"{INDEX_KEY} is not a short string")
    parts = value.strip().split(":")
    if len(parts) != 3 or not all(p.isdigit() and len(p) <= 20 for p in parts):
        raise BlockIndexError(f"{INDEX_KEY} is not VERSION:BLOCK_SIZE:COUNT ({value[:64]!r})")
    version, block_size, count = (int(p) for p in parts)
    if version not in READ_VERSIONS:
        raise BlockIndexError(f"{INDEX_KEY} has unknown version {version}")
    if block_size < 1 or not 1 <= count <= max_blocks(version) or count != block_count(nbytes, block_size):
        raise BlockIndexError(f"{INDEX_KEY} says {count} blocks of {block_size} bytes; the array has {nbytes}")
    if count > 1 and block_size < smallest_block():
        raise BlockIndexError(f"{INDEX_KEY} says {count} blocks of {block_size} bytes; the writer makes blocks of "
                              f"{smallest_block()} bytes or more")
    return IndexShape(version, block_size, count)


def parse_metadata_value(value: object, nbytes: int) -> tuple[int, int]:
    """Block size and count from the :data:`INDEX_KEY` value (:func:`parse_metadata` without the version)."""
    shape = parse_metadata(value, nbytes)
    return shape.block_size, shape.count


def deflate_bound(size: int) -> int:
    """Most bytes a block of ``size`` bytes may deflate to, flush marker included.

    zlib's deflateBound is ``size + size/4096 + size/16384 + size/2**25 + 13``; ISA-L (``deflate``)
    measured up to ~190 bytes over that on random bytes of 0-4 MiB, so the bound is looser than both:
    it only has to keep a forged index from asking for absurd blocks.
    """
    return size + (size >> 10) + 1024


def parse_index(head: bytes, block_size: int, count: int, nbytes: int, body_size: int,
                version: int = INDEX_VERSION) -> Index:
    """The blocks of a body from its first ``header_size(count, version)`` bytes, every field checked.

    Raises :class:`BlockIndexError` unless the header is a gzip header whose only extra subfield is
    our index, agreeing with ``version``/``block_size``/``count`` (the metadata's), and the lengths
    tile the body exactly. Version 2 blocks carry their CRC-32 (checked when each is inflated).
    """
    if version not in READ_VERSIONS:
        raise BlockIndexError(f"unknown block index version {version}")
    size = header_size(count, version)
    if len(head) != size:
        raise BlockIndexError(f"gzip header is {len(head)} bytes, expected {size}")
    if head[:4] != b"\x1f\x8b\x08\x04":
        raise BlockIndexError("body does not start with a gzip header holding only an extra field")
    xlen = struct.unpack_from("<H", head, 10)[0]
    if xlen != size - 12 or head[12:14] != SUBFIELD_ID or struct.unpack_from("<H", head, 14)[0] != xlen - 4:
        raise BlockIndexError("gzip extra field is not a block index")
    stored = _FIXED.unpack_from(head, 16)
    if stored != (version, block_size, count):
        raise BlockIndexError("gzip block index disagrees with the object's metadata")
    lengths = struct.unpack_from(f"<{count}I", head, HEADER_FIXED)
    crcs: tuple[int | None, ...] = (struct.unpack_from(f"<{count}I", head, HEADER_FIXED + 4 * count)
                                    if version >= 2 else (None,) * count)
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
        blocks.append(Block(pos, pos + length, out_start, out_end, crcs[i]))
        pos += length
    return Index(blocks, pos)


#: an empty final deflate block (fixed codes, end of block at once): what zlib writes to finish an empty stream
EMPTY_FINAL_BLOCK = b"\x03\x00"


def ends_at_block_boundary(inflater: deflate.Inflater) -> bool:
    """Whether ``inflater``, given all of a block's bytes, stopped where a new deflate block may start,
    byte-aligned, as after the writer's full flush. It is fed an empty final block, which ends the
    stream there at once with no output; inside a block those two bytes would be data or codes.

    Why: a block's last 4 bytes may only look like the flush marker -- the text of a stored block that
    runs on past the index's cut. Inflated alone from that cut, the next block can then be any other
    stream hidden in that text, with its own CRC-32 in a forged index, while ``gzip -d``, 0.4.0 and
    ``download_raw_array`` read the text. Such a block is refused here when it is read. The block after
    the cut, read alone, cannot tell: it is a valid stream (a limit of any random access into one deflate
    stream by an index from outside; README, *Compressed arrays*). The inflater is spent."""
    try:
        extra = inflater.decompress(EMPTY_FINAL_BLOCK, 1)
    except deflate.ERRORS:
        return False
    return not extra and inflater.eof and not inflater.unused_data


def inflate_block_into(data: bytes | memoryview, out: memoryview | Sink, last: bool) -> int:
    """Inflate one block into ``out`` (exactly filled; a memoryview, or a sink taking ``out[:] = bytes``);
    its CRC-32. ``ValueError`` if it does not fit, or does not end where the writer ends a block (the
    full flush, at a block boundary: ``ends_at_block_boundary``; the final block for the ``last``)."""
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
    if not last and not ends_at_block_boundary(inflater):
        raise ValueError("deflate block does not end at a block boundary (its last bytes only look like a "
                         "full flush: the index cuts the body where no block ends)")
    out[:] = produced
    return deflate.crc32(produced)


def check_trailer(trailer: bytes, crc: int, nbytes: int) -> None:
    if len(trailer) != TRAILER or struct.unpack("<II", trailer) != (crc & 0xFFFFFFFF, nbytes & 0xFFFFFFFF):
        raise ValueError("gzip trailer does not match the decoded bytes (CRC-32 or length)")
