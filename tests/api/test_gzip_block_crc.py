"""The library's reads of a gzip array whose version 2 index gives a wrong CRC-32 for one block.

``download_raw_array`` reads the body in parallel by block, finds the mismatch and reads it again
serially, which checks the body's own CRC-32: a sound body with a forged index still reads right.
``download_raw_array_as_dask`` reads rows by block (``GzipRows`` through the mount's block reader):
rows of that block fail with an error naming the object and the block (no values from a block that
fails its check), other rows read. The server is the local S3 server of the fixtures."""

from __future__ import annotations

import errno
import struct
from typing import Any

import numpy as np
import pytest

from cottoncandy.formats import pgzip

BLOCK = 64 * 2**10
SHAPE = (2000, 100)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", BLOCK)
    return BLOCK


def test_a_forged_block_crc(cci: Any, small_blocks: int) -> None:
    arr = np.random.default_rng(12).integers(0, 9, SHAPE).astype("<f8")
    cci.upload_raw_array("gzc/x", arr)
    info = cci.store.head("gzc/x")
    body = bytearray(cci.store.get_range("gzc/x", 0, info.size))
    count = struct.unpack_from("<I", body, 16 + 9)[0]
    at = pgzip.HEADER_FIXED + 4 * count + 4 * 2  # block 2's CRC-32
    struct.pack_into("<I", body, at, struct.unpack_from("<I", body, at)[0] ^ 0xFF)
    cci.store.put("gzc/x", bytes(body), dict(info.metadata))
    assert np.array_equal(cci.download_raw_array("gzc/x"), arr)  # the serial read: the body is sound
    lazy = cci.download_raw_array_as_dask("gzc/x")
    rows = lazy.chunks[0][0]
    assert np.array_equal(lazy[: 2 * rows].compute(), arr[: 2 * rows])  # blocks 0 and 1
    with pytest.raises(OSError, match="gzc/x: gzip block 2 decodes to CRC-32") as caught:
        lazy[2 * rows + 1].compute()
    assert caught.value.errno == errno.EIO
    assert np.array_equal(lazy[3 * rows :].compute(), arr[3 * rows :])
