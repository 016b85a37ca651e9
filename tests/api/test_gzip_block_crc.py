"""The library's reads of a gzip array whose version 2 index gives a wrong CRC-32 for one block.

As 0.4.0 reads any body it can decode, every library read of a sound body with one forged block CRC
returns the array: ``download_raw_array`` reads by block, finds the mismatch and reads it again
serially (the body's own CRC-32 is checked); ``download_raw_array_as_dask`` and slices of
``download_dask_array`` read rows by block (``GzipRows``) and, at the failing block, decode the whole
body serially instead, logged once naming the object and the block. A body that fails its own CRC-32
fails the read, naming the object. (The mount fails such a block with EIO instead: tests/mount.)
The server is the local S3 server of the fixtures."""

from __future__ import annotations

import logging
import struct
from typing import Any

import numpy as np
import pytest

from cottoncandy.arrays.raw import read_array_spec
from cottoncandy.formats import pgzip

BLOCK = 64 * 2**10
SHAPE = (2000, 100)
LOGGER = "cottoncandy.arrays.gzip_blocks"


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", BLOCK)
    return BLOCK


def forge_block_crc(cci: Any, key: str, block: int, *, trailer: bool = False) -> None:
    """Flip bits of block ``block``'s CRC-32 in ``key``'s index (and of the body's own CRC-32 in its
    trailer when ``trailer``); the compressed blocks are left as written."""
    info = cci.store.head(key)
    body = bytearray(cci.store.get_range(key, 0, info.size))
    count = struct.unpack_from("<I", body, 16 + 9)[0]
    at = pgzip.HEADER_FIXED + 4 * count + 4 * block
    struct.pack_into("<I", body, at, struct.unpack_from("<I", body, at)[0] ^ 0xFF)
    if trailer:
        struct.pack_into("<I", body, len(body) - 8, struct.unpack_from("<I", body, len(body) - 8)[0] ^ 0xFF)
    cci.store.put(key, bytes(body), dict(info.metadata))


def fallbacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and "serially" in r.getMessage()]


def test_a_forged_block_crc(cci: Any, small_blocks: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    arr = np.random.default_rng(12).integers(0, 9, SHAPE).astype("<f8")
    cci.upload_raw_array("gzc/x", arr)
    forge_block_crc(cci, "gzc/x", 2)
    assert np.array_equal(cci.download_raw_array("gzc/x"), arr)  # the serial read: the body is sound
    caplog.clear()
    lazy = cci.download_raw_array_as_dask("gzc/x")
    rows = lazy.chunks[0][0]
    assert np.array_equal(lazy[: 2 * rows].compute(), arr[: 2 * rows])  # blocks 0 and 1: by block, no log
    assert fallbacks(caplog) == []
    assert np.array_equal(lazy[2 * rows + 1].compute(), arr[2 * rows + 1])  # block 2: the serial decode
    assert np.array_equal(lazy[3 * rows :].compute(), arr[3 * rows :])
    assert np.array_equal(lazy.compute(), arr)
    logged = fallbacks(caplog)
    assert len(logged) == 1, logged
    assert "gzc/x" in logged[0] and "gzip block 2" in logged[0]


def test_a_forged_block_crc_in_a_dask_part(cci: Any, small_blocks: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    arr = np.random.default_rng(13).integers(0, 9, (8 * SHAPE[0], SHAPE[1])).astype("<f8")  # 12.8 MB
    cci.upload_dask_array("gzd", arr, axis=0, buffersize=arr.nbytes // 2)  # two parts (and 0.4.0's empty one)
    first = sorted(k for k in cci.glob("gzd/*") if not k.endswith("metadata.json"))[0]
    info, spec = read_array_spec(cci.store, first)
    assert spec.compression == "gzip"
    rows = pgzip.parse_metadata((info.metadata or {})[pgzip.INDEX_KEY], spec.nbytes).block_size // spec.row_bytes
    forge_block_crc(cci, first, 2)
    lazy = cci.download_dask_array("gzd")
    caplog.clear()
    assert np.array_equal(lazy[3].compute(), arr[3])  # block 0 of the part, by block
    assert fallbacks(caplog) == []
    pick = (slice(2 * rows + 1, 2 * rows + 5), slice(3, 9))  # rows of block 2 of the first part
    assert np.array_equal(lazy[pick].compute(), arr[pick])
    logged = fallbacks(caplog)
    assert len(logged) == 1, logged
    assert first in logged[0] and "gzip block 2" in logged[0]


def test_a_body_failing_its_own_crc_fails_the_dask_read(cci: Any, small_blocks: int) -> None:
    arr = np.random.default_rng(14).integers(0, 9, SHAPE).astype("<f8")
    cci.upload_raw_array("gzc/y", arr)
    forge_block_crc(cci, "gzc/y", 2, trailer=True)
    with pytest.raises(ValueError, match="gzc/y"):
        cci.download_raw_array("gzc/y")
    lazy = cci.download_raw_array_as_dask("gzc/y")
    rows = lazy.chunks[0][0]
    assert np.array_equal(lazy[:rows].compute(), arr[:rows])  # block 0 reads by block (its CRC holds)
    with pytest.raises(ValueError, match="gzc/y"):
        lazy[2 * rows].compute()
