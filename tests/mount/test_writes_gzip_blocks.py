"""``np.save`` through a real ``--rw --write-compression gzip`` mount stores the library's gzip format
(issue 26's gap, issue 27's blocks): one gzip member in row-aligned blocks with its version 2 index, so
``download_raw_array`` reads it, and the mount then reads one row by fetching at most two blocks, not the
whole body. A forged per-block CRC fails the read of that block with EIO and one log line naming the
object; the other rows still read. GETs and bytes are counted in the local server's log.
(cottoncandy 0.4.0 reading such arrays: ``tests/compat/test_mount_writes_040.py``, gzip case.)"""

from __future__ import annotations

import errno
import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.formats import pgzip
from tests.conftest import BUCKET
from tests.mountutil import VERSION_KEPT, mounted, needs_fuse, read_ahead_settled

pytestmark = [needs_fuse, pytest.mark.fuse]
SHAPE = (6000, 1024)  # 47 MiB of float64: 12 blocks of 4 MiB (whole rows)


def gets(s3, key: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """GETs and HEADs of ``key``'s object, and the body bytes they sent."""
    hits = [r for r in s3.requests() if r.method in ("GET", "HEAD") and r.path == f"/{BUCKET}/{key}"]
    return len(hits), sum(r.bytes_sent for r in hits)


def npy_header_size(array: np.ndarray) -> int:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, np.lib.format.header_data_from_array_1_0(array))
    return len(out.getvalue())


def index_of(cci, key: str, nbytes: int) -> tuple[pgzip.IndexShape, pgzip.Index, bytes]:  # type: ignore[no-untyped-def]
    info = cci.store.head(key)
    shape = pgzip.parse_metadata(info.metadata[pgzip.INDEX_KEY], nbytes)
    body = cci.store.get_range(key, 0, info.size)
    return shape, pgzip.parse_index(body[: shape.header_size], shape.block_size, shape.count, nbytes, len(body),
                                    shape.version), body


def test_np_save_with_gzip_is_read_by_blocks(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    array = np.random.default_rng(27).standard_normal(SHAPE)  # barely compressible: blocks of ~4 MB
    endpoint = ["--endpoint-url", cci.settings.endpoint_url]
    with mounted(BUCKET, tmp_path, *endpoint, "--rw", "--write-compression", "gzip") as m:
        (m / "w").mkdir()
        np.save(m / "w/big.npy", array)
    assert np.array_equal(cci.download_raw_array("w/big"), array)  # (a) the library reads it
    shape, index, _ = index_of(cci, "w/big", array.nbytes)
    assert shape.version == pgzip.INDEX_VERSION and shape.count == 12
    assert shape.block_size % (1024 * 8) == 0  # whole rows per block
    assert all(block.crc is not None for block in index.blocks)
    largest = max(block.end - block.start for block in index.blocks)
    row_bytes, header = array[0].nbytes, npy_header_size(array)
    with mounted(BUCKET, tmp_path, *endpoint, *VERSION_KEPT) as m:
        s3.clear_log()  # pread, not np.load: a read at offset 0 starts the mount's sequential read-ahead
        fd = os.open(m / "w/big.npy", os.O_RDONLY)
        try:  # (c) one row: the lookup (metadata, index, first bytes), then its block, at most two
            assert os.pread(fd, row_bytes, header + 3500 * row_bytes) == array[3500].tobytes()
            read_ahead_settled(s3)  # the kernel's read-ahead READs after the row: in this count, not the next
            row = gets(s3, "w/big")
            s3.clear_log()
            assert os.pread(fd, 10 * row_bytes, header + 4700 * row_bytes) == array[4700:4710].tobytes()
            read_ahead_settled(s3)
            rows = gets(s3, "w/big")
        finally:
            os.close(fd)
        assert np.array_equal(np.load(m / "w/big.npy"), array)
    info = cci.store.head("w/big")
    print(f"np.save via --rw gzip: body {info.size} B in {shape.count} blocks (largest {largest} B); open and "
          f"one row {row[0]} requests {row[1]} B; 10 rows {rows[0]} requests {rows[1]} B")
    assert row[0] <= 4 and row[1] <= 2**20 + 2 * largest
    assert rows[0] <= 2 and rows[1] <= 2 * largest
    assert row[1] < info.size // 4


def test_a_forged_block_crc_fails_that_read_with_eio(cci, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    array = np.random.default_rng(28).integers(0, 50, SHAPE).astype("<f8")
    cci.upload_raw_array("w/src", array)  # the library's writer: a version 2 index
    shape, index, body = index_of(cci, "w/src", array.nbytes)
    bad_block = 7
    forged = bytearray(body)
    at = pgzip.HEADER_FIXED + 4 * shape.count + 4 * bad_block  # block 7's CRC-32, after the lengths
    struct.pack_into("<I", forged, at, struct.unpack_from("<I", forged, at)[0] ^ 0x5A5A5A5A)
    cci.store.put("w/forged", bytes(forged), dict(cci.store.head("w/src").metadata))
    assert np.array_equal(cci.download_raw_array("w/forged"), array)  # the body itself is sound
    row_bytes = 1024 * 8
    bad_row = index.blocks[bad_block].out_start // row_bytes + 3
    good_row = index.blocks[2].out_start // row_bytes + 3
    with mounted(BUCKET, tmp_path, "--endpoint-url", cci.settings.endpoint_url, expect_errors=True) as m:
        path = m / "w/forged.npy"
        with open(path, "rb", buffering=0) as f:
            np.lib.format.read_magic(f)
            np.lib.format.read_array_header_1_0(f)
            header = f.tell()
            f.seek(header + good_row * row_bytes)
            assert np.frombuffer(f.read(row_bytes), "<f8").tolist() == array[good_row].tolist()
            f.seek(header + bad_row * row_bytes)
            with pytest.raises(OSError) as caught:
                f.read(row_bytes)
            assert caught.value.errno == errno.EIO
    errors = mounted.last_errors  # type: ignore[attr-defined]
    crc_lines = [line for line in errors if "w/forged" in line and f"gzip block {bad_block}" in line]
    assert crc_lines and "CRC-32" in crc_lines[0]
    # one line per failed READ the kernel sent: it asks again once after a failed read (2 seen here)
    assert len(errors) <= 3, errors
