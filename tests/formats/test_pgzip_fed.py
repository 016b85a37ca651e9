"""formats/pgzip: the incremental writer (``ParallelGzip`` fed by ``write``) and the version 2 index.

The body fed in pieces of any size must be byte for byte the body made from the whole source (one
encoder, one format), read back by gzip(1)'s reader, 0.4.0's and our block reader; every block's
CRC-32 is in the index and a forged one is caught when that block is inflated. No I/O.
"""

from __future__ import annotations

import gzip
import random
import shutil
import struct
import subprocess
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.formats import pgzip

BLOCK = 4096


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", BLOCK)


def from_source(data: bytes, block: int = BLOCK) -> bytes:
    with ThreadPoolExecutor(2) as pool:
        writer = pgzip.ParallelGzip(memoryview(data), pool, block_size=block, ahead=3)
        pieces = list(writer.chunks())
    return writer.header() + b"".join(pieces)


def fed(data: bytes, sizes: list[int], block: int = BLOCK, ahead: int = 3) -> tuple[bytes, pgzip.ParallelGzip]:
    """The body made by writing ``data`` in pieces of ``sizes`` (cycled), then finishing."""
    with ThreadPoolExecutor(2) as pool:
        writer = pgzip.ParallelGzip(len(data), pool, block_size=block, ahead=ahead)
        pieces: list[bytes] = []
        at, turn = 0, 0
        while at < len(data):
            step = sizes[turn % len(sizes)]
            pieces += writer.write(data[at : at + step])
            at, turn = at + step, turn + 1
        pieces += writer.finish()
    return writer.header() + b"".join(pieces), writer


def read_by_blocks(body: bytes, value: str, nbytes: int) -> bytes:
    shape = pgzip.parse_metadata(value, nbytes)
    index = pgzip.parse_index(body[: shape.header_size], shape.block_size, shape.count, nbytes, len(body),
                              shape.version)
    out = bytearray(nbytes)
    crc = 0
    for i, b in enumerate(index.blocks):
        block_crc = pgzip.inflate_block_into(body[b.start : b.end], memoryview(out)[b.out_start : b.out_end],
                                             i == shape.count - 1)
        assert b.crc == block_crc  # version 2: each block's CRC is in the index
        crc = pgzip.crc32_combine(crc, block_crc, b.out_end - b.out_start)
    pgzip.check_trailer(body[index.trailer_at :], crc, nbytes)
    return bytes(out)


def inflate_040(body: bytes) -> bytes:
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)
    return b"".join(z.decompress(body[i : i + 16384]) for i in range(0, len(body), 16384)) + z.flush()


SIZES = [0, 1, 100, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK, 17 * BLOCK + 5]
PIECES = [[1], [7], [BLOCK - 1], [BLOCK], [BLOCK + 3], [5 * BLOCK], [10**9], [3, 5000, 1, 9000, 17]]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("sizes", PIECES, ids=lambda p: "+".join(map(str, p)))
def test_fed_in_any_pieces_is_the_same_body(size: int, sizes: list[int]) -> None:
    if size > 4 * BLOCK and sizes == [1]:
        sizes = [2]  # same coverage, half the calls
    data = np.random.default_rng(size).integers(0, 40, size, dtype=np.uint8).tobytes()
    body, writer = fed(data, sizes)
    assert body == from_source(data)  # one encoder: the same bytes either way
    assert gzip.decompress(body) == data == inflate_040(body)
    assert read_by_blocks(body, writer.metadata_value(), size) == data
    assert writer.metadata_value().startswith(f"{pgzip.INDEX_VERSION}:")


def test_memory_stays_a_few_blocks() -> None:
    """At most ``ahead`` blocks are pending at once, whatever the pieces: the writer waits for the oldest."""
    data = random.Random(1).randbytes(40 * BLOCK)
    seen = []
    with ThreadPoolExecutor(2) as pool:
        writer = pgzip.ParallelGzip(len(data), pool, block_size=BLOCK, ahead=2)
        out = []
        for at in range(0, len(data), 3 * BLOCK + 11):
            out += writer.write(data[at : at + 3 * BLOCK + 11])
            seen.append(len(writer._pending))
            assert len(writer._held) < BLOCK
        submit = pool.submit

        def watched(*args: object, **kwargs: object) -> object:
            seen.append(len(writer._pending) + 1)  # the pending blocks when one more is handed over
            return submit(*args, **kwargs)  # type: ignore[arg-type]

        pool.submit = watched  # type: ignore[method-assign]
        writer = pgzip.ParallelGzip(len(data), pool, block_size=BLOCK, ahead=2)
        out = writer.write(data)  # one piece of 40 blocks: still at most 2 pending at any time
        out += writer.finish()
    assert max(seen) <= 2
    assert gzip.decompress(writer.header() + b"".join(out)) == data


def test_an_empty_array_is_one_empty_final_block() -> None:
    body, writer = fed(b"", [1])
    assert writer.count == 1 and writer.lengths == [len(body) - pgzip.header_size(1) - pgzip.TRAILER]
    assert gzip.decompress(body) == b"" == inflate_040(body)
    assert writer.crcs == [0]


def test_a_short_body_is_refused_and_nothing_more_is_taken() -> None:
    with ThreadPoolExecutor(2) as pool:
        writer = pgzip.ParallelGzip(3 * BLOCK, pool, block_size=BLOCK)
        writer.write(b"x" * (2 * BLOCK + 5))
        with pytest.raises(ValueError, match=f"{2 * BLOCK + 5} bytes fed to a body of {3 * BLOCK}"):
            writer.finish()
        with pytest.raises(RuntimeError):
            writer.header()
        writer.close()
    with ThreadPoolExecutor(2) as pool:
        writer = pgzip.ParallelGzip(10, pool, block_size=BLOCK)
        with pytest.raises(ValueError, match="11 bytes fed to a body of 10"):
            writer.write(b"y" * 11)


def test_fed_and_source_kinds_are_not_mixed() -> None:
    with ThreadPoolExecutor(1) as pool:
        with pytest.raises(RuntimeError):
            pgzip.ParallelGzip(memoryview(b"abc"), pool).write(b"a")
        with pytest.raises(RuntimeError):
            list(pgzip.ParallelGzip(3, pool).chunks())


def test_row_aligned_blocks_fed_in_odd_pieces() -> None:
    """Blocks rounded to whole rows (the writer's size for an array) and pieces that cut rows anywhere."""
    row = 3 * 7 * 8  # a (n, 3, 7) float64 array
    block = pgzip.row_block_size(1000 * row, row)
    assert block % row == 0 and block >= BLOCK
    data = np.random.default_rng(9).standard_normal((1000, 3, 7)).tobytes()
    body, writer = fed(data, [999, 1, 65536, 13], block=block)
    assert writer.block_size == block and gzip.decompress(body) == data
    assert read_by_blocks(body, writer.metadata_value(), len(data)) == data


# --- version 2 index: CRCs -----------------------------------------------------------------------
def test_version_1_indexes_still_read() -> None:
    """An index of an earlier writer (lengths only): rebuilt here from a version 2 body."""
    data = np.random.default_rng(4).integers(0, 9, 3 * BLOCK + 10, dtype=np.uint8).tobytes()
    body, writer = fed(data, [5000])
    count = writer.count
    payload = struct.pack("<BQI", 1, BLOCK, count) + struct.pack(f"<{count}I", *writer.lengths)
    sub = pgzip.SUBFIELD_ID + struct.pack("<H", len(payload)) + payload
    head = b"\x1f\x8b\x08\x04\x00\x00\x00\x00\x04\xff" + struct.pack("<H", len(sub)) + sub
    old = head + body[pgzip.header_size(count) :]
    assert gzip.decompress(old) == data
    shape = pgzip.parse_metadata(f"1:{BLOCK}:{count}", len(data))
    assert shape.version == 1 and shape.header_size == len(head)
    index = pgzip.parse_index(old[: shape.header_size], BLOCK, count, len(data), len(old), 1)
    assert [b.crc for b in index.blocks] == [None] * count
    with pytest.raises(pgzip.BlockIndexError):  # a v2 header read as v1
        pgzip.parse_index(body[: pgzip.header_size(count, 1)], BLOCK, count, len(data), len(body), 1)


def test_a_forged_crc_fails_that_block_naming_the_object() -> None:
    data = np.random.default_rng(6).integers(0, 9, 3 * BLOCK, dtype=np.uint8).tobytes()
    body, writer = fed(data, [BLOCK])
    count = writer.count
    bad = bytearray(body)
    at = pgzip.HEADER_FIXED + 4 * count + 4 * 1  # block 1's CRC
    struct.pack_into("<I", bad, at, struct.unpack_from("<I", bad, at)[0] ^ 1)
    assert gzip.decompress(bytes(bad)) == data  # the body is still one valid member: 0.4.0 reads it
    index = pgzip.parse_index(bytes(bad[: pgzip.header_size(count)]), BLOCK, count, len(data), len(bad))
    b = index.blocks[1]
    crc = pgzip.inflate_block_into(bytes(bad[b.start : b.end]), memoryview(bytearray(BLOCK)), False)
    with pytest.raises(pgzip.BlockCrcError, match="bucket/key: gzip block 1 decodes to CRC-32") as caught:
        pgzip.check_block_crc(b, crc, 1, "bucket/key")
    assert caught.value.errno == 5  # EIO
    pgzip.check_block_crc(index.blocks[0], zlib.crc32(data[:BLOCK]), 0)  # the others check out


def test_the_index_fits_the_gzip_extra_field() -> None:
    assert pgzip.header_size(pgzip.MAX_BLOCKS) - 12 <= 0xFFFF
    assert pgzip.header_size(pgzip.max_blocks(1), 1) - 12 <= 0xFFFF
    assert pgzip.max_blocks(pgzip.INDEX_VERSION) == pgzip.MAX_BLOCKS
    with pytest.raises(pgzip.BlockIndexError):
        pgzip.parse_metadata(f"2:{2**22}:{pgzip.max_blocks(2) + 1}", 2**22 * (pgzip.max_blocks(2) + 1))


@pytest.mark.skipif(shutil.which("gzip") is None, reason="gzip(1) is not installed")
def test_gzip_1_reads_a_fed_body(tmp_path: Path) -> None:
    """gzip(1) itself (not only Python's readers) takes the version 2 index's extra field and the blocks."""
    data = np.random.default_rng(11).integers(0, 40, 9 * BLOCK + 77, dtype=np.uint8).tobytes()
    body, writer = fed(data, [1000])
    assert writer.count == 10
    path = tmp_path / "x.gz"
    path.write_bytes(body)
    subprocess.run(["gzip", "-t", str(path)], check=True)
    assert subprocess.run(["gzip", "-dc", str(path)], check=True, capture_output=True).stdout == data
