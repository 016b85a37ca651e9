"""``download_raw_array_as_dask`` of a gzip array we wrote: sliced reads fetch and inflate only the blocks
holding the rows asked (counted in the local server's log); a forged index falls back to the serial read."""

from __future__ import annotations

import pickle
import struct
from typing import Any

import numpy as np
import pytest

from cottoncandy.formats import pgzip
from tests.conftest import BUCKET

BLOCK = 64 * 2**10
SHAPE = (2000, 100)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", BLOCK)
    return BLOCK


def gets(s3: Any, key: str) -> list[Any]:
    return [r for r in s3.requests() if r.method == "GET" and r.path == f"/{BUCKET}/{key}"]


@pytest.mark.parametrize("dtype", ["<f8", ">i4", "<c8"])
def test_a_slice_reads_one_block(cci: Any, s3: Any, small_blocks: int, dtype: str) -> None:
    arr = np.random.default_rng(4).integers(0, 9, SHAPE).astype(dtype)
    cci.upload_raw_array("gzd/x", arr)
    lazy = cci.download_raw_array_as_dask("gzd/x")
    block = int(cci.store.head("gzd/x").metadata[pgzip.INDEX_KEY].split(":")[1])
    assert lazy.chunks[0][0] == block // (arr.nbytes // SHAPE[0])  # one dask chunk per block of rows
    s3.clear_log()
    assert np.array_equal(lazy[1000:1010].compute(), arr[1000:1010])
    sent = gets(s3, "gzd/x")
    assert len(sent) == 1 and sent[0].range and sent[0].bytes_sent < 2 * cci.store.head("gzd/x").size // 25 + 4096
    assert np.array_equal(lazy[5:900:7, ::3].compute(), arr[5:900:7, ::3])
    assert np.array_equal(lazy.compute(), cci.download_raw_array("gzd/x"))
    assert np.array_equal(pickle.loads(pickle.dumps(lazy))[-1].compute(), arr[-1])
    assert np.array_equal(cci.download_raw_array_as_dask("gzd/x", chunks=(333, 50)).compute(), arr)


def test_a_forged_index_falls_back_to_the_serial_read(cci: Any, small_blocks: int) -> None:
    arr = np.arange(SHAPE[0] * SHAPE[1], dtype="<f8").reshape(SHAPE)
    cci.upload_raw_array("gzd/f", arr)
    info = cci.store.head("gzd/f")
    body = bytearray(cci.store.get_range("gzd/f", 0, info.size))
    count = struct.unpack_from("<I", body, 16 + 9)[0]
    lengths = list(struct.unpack_from(f"<{count}I", body, pgzip.HEADER_FIXED))
    lengths[2], lengths[3] = lengths[2] + 5, lengths[3] - 5  # still tiles the body, cut in the wrong places
    struct.pack_into(f"<{count}I", body, pgzip.HEADER_FIXED, *lengths)
    cci.store.put("gzd/f", bytes(body), dict(info.metadata))
    lazy = cci.download_raw_array_as_dask("gzd/f")
    assert np.array_equal(lazy[300:310].compute(), arr[300:310])  # block 3 or 4: does not fit, read serially
    assert np.array_equal(lazy.compute(), arr)
