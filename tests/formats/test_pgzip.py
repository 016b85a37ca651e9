"""formats/pgzip: one gzip member of parallel full-flushed deflate blocks, its CRC/ISIZE, and its index.

Every body is checked with three independent readers: ``gzip.decompress`` (what gzip(1) accepts),
one ``zlib.decompressobj(16 + MAX_WBITS)`` (exactly 0.4.0's ``GzipInputStream``, which stops at the
end of the first member) and our own serial ``codecs.gunzip_into``. The index is untrusted input:
every forged field must be refused before it is used. Every test runs with both deflaters
(``formats/deflate``: ISA-L, the default, and zlib, the fallback where ``isal`` does not import).
"""

from __future__ import annotations

import gzip
import os
import random
import struct
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from cottoncandy.formats import codecs, deflate, pgzip

BLOCK = 4096


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer of these tests makes blocks of ``BLOCK`` bytes (the reader trusts no smaller ones)."""
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", BLOCK)


@pytest.fixture(autouse=True, params=["isal", "zlib"])
def deflater(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test once with ISA-L (a required dependency: it must import here) and once with zlib."""
    if request.param == "zlib":
        monkeypatch.setattr(deflate, "_isal", None)
        assert not deflate.accelerated()
    else:
        assert deflate.accelerated(), "isal is a required dependency and must import"
    return str(request.param)


def build(data: bytes, block: int = BLOCK, level: int = pgzip.DEFAULT_LEVEL,
          strategy: int = zlib.Z_DEFAULT_STRATEGY) -> tuple[bytes, pgzip.ParallelGzip]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        writer = pgzip.ParallelGzip(memoryview(data), pool, level=level, block_size=block, ahead=3,
                                    strategy=strategy)
        chunks = list(writer.chunks())
    return writer.header() + b"".join(chunks), writer


def inflate_040(body: bytes) -> bytes:
    """0.4.0's reader: one decompressobj fed the body in 16 KiB reads, then flushed."""
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = b"".join(z.decompress(body[i : i + 16384]) for i in range(0, len(body), 16384))
    return out + z.flush()


def parallel_read(body: bytes, value: str, nbytes: int) -> bytes:
    block_size, count = pgzip.parse_metadata_value(value, nbytes)
    index = pgzip.parse_index(body[: pgzip.header_size(count)], block_size, count, nbytes, len(body))
    out = bytearray(nbytes)
    crc = 0
    for i, b in enumerate(index.blocks):
        block_crc = pgzip.inflate_block_into(body[b.start : b.end], memoryview(out)[b.out_start : b.out_end],
                                             i == count - 1)
        crc = pgzip.crc32_combine(crc, block_crc, b.out_end - b.out_start)
    pgzip.check_trailer(body[index.trailer_at :], crc, nbytes)
    return bytes(out)


SIZES = [0, 1, 100, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK, 17 * BLOCK + 5]


@pytest.mark.parametrize("size", SIZES)
def test_one_member_every_reader_agrees(size: int) -> None:
    data = np.random.default_rng(size).integers(0, 40, size, dtype=np.uint8).tobytes()
    body, writer = build(data)
    assert body[:3] == b"\x1f\x8b\x08"
    assert gzip.decompress(body) == data
    assert inflate_040(body) == data
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    assert z.decompress(body) == data and z.eof and z.unused_data == b""  # one member, nothing after it
    out = bytearray(size)
    codecs.gunzip_into([body[i : i + 1000] for i in range(0, len(body), 1000)], memoryview(out))
    assert bytes(out) == data
    assert struct.unpack("<II", body[-8:]) == (zlib.crc32(data), size)
    assert writer.count == max(1, -(-size // BLOCK))
    assert parallel_read(body, writer.metadata_value(), size) == data


@pytest.mark.parametrize("strategy", [zlib.Z_DEFAULT_STRATEGY, zlib.Z_RLE, zlib.Z_HUFFMAN_ONLY])
@pytest.mark.parametrize("level", [1, 6, 9])
def test_any_level_reads_back(level: int, strategy: int) -> None:
    data = np.cumsum(np.random.default_rng(0).standard_normal(5000)).astype("<f4").tobytes() + bytes(3000)
    body, writer = build(data, level=level, strategy=strategy)
    assert gzip.decompress(body) == data and inflate_040(body) == data
    assert parallel_read(body, writer.metadata_value(), len(data)) == data


@pytest.mark.parametrize("level", [0, 1, 3, 4, 7, 9])
def test_incompressible_blocks_stay_within_the_bound(level: int) -> None:
    """Random bytes expand a little under any deflater; the reader's bound must still accept them
    (ISA-L measured ~190 bytes over zlib's deflateBound at some sizes)."""
    rng = np.random.default_rng(level)
    for size in [0, 1, 2, 100, 4095, 65535, 65536, 65537, 300_001, 736_753, 2**20 + 3]:
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        for last in (False, True):
            pieces, crc = pgzip._deflate_block(memoryview(data), level, last)
            block = b"".join(pieces)
            assert len(block) <= pgzip.deflate_bound(size), (size, last, len(block))
            out = bytearray(size)
            assert pgzip.inflate_block_into(block, memoryview(out), last) == crc == zlib.crc32(data)
            assert bytes(out) == data


@pytest.mark.parametrize("last", [False, True])
def test_a_block_that_inflates_to_far_more_is_refused_without_inflating_it(last: bool) -> None:
    """A forged block of zeros (~1,000:1) claiming a 64 KiB place: refused after at most one byte more
    than the place, never inflated whole (``flush()`` once did, with either deflater)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = comp.compress(bytes(64 * 2**20)) + comp.flush(zlib.Z_FINISH if last else zlib.Z_FULL_FLUSH)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match="does not decode to its"):
            pgzip.inflate_block_into(block, memoryview(bytearray(2**16)), last)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"inflating the refused block held {peak / 2**20:.1f} MiB"


def test_every_block_inflates_alone() -> None:
    """Z_FULL_FLUSH resets the dictionary: a repeated pattern across blocks must not refer back."""
    data = (b"abcdefgh" * 2000)[: 5 * BLOCK]
    body, writer = build(data)
    block_size, count = pgzip.parse_metadata_value(writer.metadata_value(), len(data))
    index = pgzip.parse_index(body[: pgzip.header_size(count)], block_size, count, len(data), len(body))
    for i, b in enumerate(reversed(index.blocks)):  # any order
        out = bytearray(b.out_end - b.out_start)
        crc = pgzip.inflate_block_into(body[b.start : b.end], memoryview(out), i == 0)
        assert bytes(out) == data[b.out_start : b.out_end] and crc == zlib.crc32(bytes(out))


def test_header_is_deterministic_and_known_only_at_the_end() -> None:
    data = os.urandom(3 * BLOCK)
    with ThreadPoolExecutor(max_workers=2) as pool:
        writer = pgzip.ParallelGzip(memoryview(data), pool, block_size=BLOCK)
        with pytest.raises(RuntimeError):
            writer.header()
        list(writer.chunks())
    assert build(data)[0] == writer.header() + build(data)[0][len(writer.header()) :]
    assert writer.header()[4:8] == b"\0\0\0\0"  # mtime 0: same array, same bytes


def test_crc32_combine_matches_zlib() -> None:
    rng = random.Random(5)
    for _ in range(200):
        a, b = os.urandom(rng.randrange(0, 5000)), os.urandom(rng.randrange(0, 5000))
        assert pgzip.crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
    big = os.urandom(3 * 2**20 + 7)
    assert pgzip.crc32_combine(zlib.crc32(b"x"), zlib.crc32(big), len(big)) == zlib.crc32(b"x" + big)


def test_block_size_grows_to_fit_the_header() -> None:
    assert pgzip.block_size_for(10 * 2**20, 2**20) == 2**20
    huge = pgzip.MAX_BLOCKS * 2**20 + 1
    grown = pgzip.block_size_for(huge, 2**20)
    assert grown == 2**21 and pgzip.block_count(huge, grown) <= pgzip.MAX_BLOCKS
    assert pgzip.header_size(pgzip.MAX_BLOCKS) - 12 <= 0xFFFF  # XLEN is 16 bits


# --- hostile index ---------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["", "1", "3:4096:3", "0:4096:3", "1:4096:2", "1:4096:4", "1:0:3", "1:x:3",
                                   "1:-4096:3", "1:4096:3:1", "1:" + "9" * 30 + ":3",
                                   "1:1:" + str(pgzip.max_blocks(1) + 1), "2:1:" + str(pgzip.max_blocks(2) + 1)])
def test_metadata_value_refused(value: str) -> None:
    with pytest.raises(pgzip.BlockIndexError):
        pgzip.parse_metadata_value(value, 3 * BLOCK)


def test_metadata_value_not_a_string() -> None:
    with pytest.raises(pgzip.BlockIndexError):
        pgzip.parse_metadata_value(None, 10)


def forged(body: bytes, count: int, edit: object) -> bytes:
    head = bytearray(body[: pgzip.header_size(count)])
    edit(head)  # type: ignore[operator]
    return bytes(head) + body[len(head) :]


def lengths_at(head: bytearray, i: int, value: int) -> None:
    struct.pack_into("<I", head, pgzip.HEADER_FIXED + 4 * i, value)


@pytest.mark.parametrize("edit", [
    lambda h: h.__setitem__(0, 0),  # not gzip
    lambda h: h.__setitem__(3, 0),  # no FEXTRA flag
    lambda h: h.__setitem__(12, ord("X")),  # another subfield
    lambda h: struct.pack_into("<H", h, 10, 7),  # XLEN
    lambda h: struct.pack_into("<Q", h, 17, BLOCK * 2),  # block size disagrees with the metadata
    lambda h: struct.pack_into("<I", h, 25, 2),  # count disagrees
    lambda h: lengths_at(h, 0, 1),  # shorter than any deflate block
    lambda h: lengths_at(h, 0, 2**31),  # longer than the body
    lambda h: (lengths_at(h, 0, struct.unpack_from("<I", h, pgzip.HEADER_FIXED)[0] + 1)),  # does not tile
], ids=["magic", "flags", "subfield", "xlen", "block-size", "count", "tiny-block", "huge-block", "no-tiling"])
def test_forged_header_refused(edit: object) -> None:
    data = os.urandom(3 * BLOCK)
    body, writer = build(data)
    block_size, count = pgzip.parse_metadata_value(writer.metadata_value(), len(data))
    bad = forged(body, count, edit)
    with pytest.raises(pgzip.BlockIndexError):
        pgzip.parse_index(bad[: pgzip.header_size(count)], block_size, count, len(data), len(bad))


def test_shifted_lengths_that_still_tile_fail_to_inflate() -> None:
    """An index that adds up but puts the cut points in the wrong place: blocks do not inflate to their place."""
    data = np.random.default_rng(3).integers(0, 9, 3 * BLOCK, dtype=np.uint8).tobytes()
    body, writer = build(data)
    block_size, count = pgzip.parse_metadata_value(writer.metadata_value(), len(data))

    def shift(head: bytearray) -> None:
        first = struct.unpack_from("<I", head, pgzip.HEADER_FIXED)[0]
        second = struct.unpack_from("<I", head, pgzip.HEADER_FIXED + 4)[0]
        lengths_at(head, 0, first - 1)
        lengths_at(head, 1, second + 1)

    bad = forged(body, count, shift)
    index = pgzip.parse_index(bad[: pgzip.header_size(count)], block_size, count, len(data), len(bad))
    b = index.blocks[0]
    with pytest.raises(ValueError):
        pgzip.inflate_block_into(bad[b.start : b.end], memoryview(bytearray(b.out_end - b.out_start)), False)


def test_block_that_decodes_too_much_or_too_little() -> None:
    comp = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = comp.compress(b"x" * 100) + comp.flush(zlib.Z_FULL_FLUSH)
    with pytest.raises(ValueError):
        pgzip.inflate_block_into(block, memoryview(bytearray(99)), False)
    with pytest.raises(ValueError):
        pgzip.inflate_block_into(block, memoryview(bytearray(101)), False)
    with pytest.raises(ValueError):  # a non-final block is not the last one
        pgzip.inflate_block_into(block, memoryview(bytearray(100)), True)
    with pytest.raises(ValueError):
        pgzip.inflate_block_into(b"\xff" * 10, memoryview(bytearray(100)), False)


def test_trailer_mismatch_refused() -> None:
    with pytest.raises(ValueError):
        pgzip.check_trailer(struct.pack("<II", 1, 5), 2, 5)
    with pytest.raises(ValueError):
        pgzip.check_trailer(struct.pack("<II", 2, 6), 2, 5)
    with pytest.raises(ValueError):
        pgzip.check_trailer(b"1234", 2, 5)
    pgzip.check_trailer(struct.pack("<II", 2, 5), 2, 5)


def test_serial_reader_checks_the_crc_of_our_bodies() -> None:
    data = os.urandom(2 * BLOCK)
    body, _ = build(data)
    broken = body[:-8] + struct.pack("<II", zlib.crc32(data) ^ 1, len(data))
    with pytest.raises(codecs.CorruptBodyError):
        codecs.gunzip_into([broken], memoryview(bytearray(len(data))))


def test_visible_metadata_hides_only_the_index_key() -> None:
    meta = {"dtype": "<f8", "shape": "3", pgzip.INDEX_KEY: "1:4:1", "subject": "s1"}
    assert pgzip.visible_metadata(meta) == {"dtype": "<f8", "shape": "3", "subject": "s1"}
    assert pgzip.visible_metadata(None) == {}


def test_strategy_by_dtype() -> None:
    assert pgzip.strategy_for(np.dtype("<f4")) == pgzip.strategy_for(np.dtype("<c16")) == zlib.Z_RLE
    assert pgzip.strategy_for(np.dtype("<i8")) == pgzip.strategy_for(np.dtype("|S3")) == zlib.Z_DEFAULT_STRATEGY


def test_blocks_smaller_than_the_writer_makes_are_not_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 24: an index of 16,379 one-byte blocks cost 16,379 ranged GETs for a 16 KB array."""
    assert pgzip.parse_metadata_value(f"1:{BLOCK}:3", 3 * BLOCK) == (BLOCK, 3)
    with pytest.raises(pgzip.BlockIndexError, match=f"blocks of {BLOCK} bytes or more"):
        pgzip.parse_metadata_value(f"1:1:{pgzip.MAX_BLOCKS}", pgzip.MAX_BLOCKS)
    assert pgzip.parse_metadata_value("1:1:1", 1) == (1, 1)  # one block: nothing is fetched by range
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", 4 * 2**20)  # the writer's own default
    assert pgzip.smallest_block() == 4 * 2**20
    with pytest.raises(pgzip.BlockIndexError):
        pgzip.parse_metadata_value(f"1:{2**20}:3", 3 * 2**20)


def test_more_blocks_than_the_body_can_hold_are_not_trusted() -> None:
    """Lengths that tile the body, but a block too short to deflate what it stands for (deflate makes at
    most 1032 bytes per byte): the index was not made by the writer."""
    data = bytes(3 * BLOCK)  # zeros: as compressible as data gets
    body, writer = build(data)
    block_size, count = pgzip.parse_metadata_value(writer.metadata_value(), len(data))
    pgzip.parse_index(body[: pgzip.header_size(count)], block_size, count, len(data), len(body))

    def squeeze(head: bytearray) -> None:
        first = struct.unpack_from("<I", head, pgzip.HEADER_FIXED)[0]
        second = struct.unpack_from("<I", head, pgzip.HEADER_FIXED + 4)[0]
        lengths_at(head, 0, 2)
        lengths_at(head, 1, second + first - 2)

    bad = forged(body, count, squeeze)
    with pytest.raises(pgzip.BlockIndexError, match="too short to hold the 4096 bytes"):
        pgzip.parse_index(bad[: pgzip.header_size(count)], block_size, count, len(data), len(bad))
