"""Slices of a dask part that must be decoded whole decode it once, not once per slice.

``download_dask_array`` slices read a gzip part of ours by block (``dask_parts.PartSlices`` over
``gzip_blocks.GzipRows``); a block failing its index sends the part to the serial whole decode. That
fallback is made once per part version for the dask array's lifetime (the part's ``GzipRows`` is kept
by its source, the decode in the process's bounded ``gzip_blocks.WHOLE``), so several slices of the
forged part cost one GET of its body and one log line. A part of a codec without blocks (Zstd, LZ4)
is read whole for a slice and kept the same way. GETs are counted in the local server's log."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from cottoncandy.arrays import gzip_blocks
from cottoncandy.arrays.raw import read_array_spec
from cottoncandy.formats import pgzip
from tests.api.test_gzip_block_crc import SHAPE, fallbacks, forge_block_crc, small_blocks  # noqa: F401
from tests.conftest import BUCKET

LOGGER = "cottoncandy.arrays.gzip_blocks"


def body_gets(s3: Any, key: str, size: int) -> int:
    """GETs of ``key`` that sent its whole body (the serial decode's)."""
    return sum(1 for r in s3.requests() if r.method == "GET" and r.path == f"/{BUCKET}/{key}" and r.bytes_sent >= size)


def test_a_forged_part_is_decoded_once_for_all_its_slices(cci: Any, s3: Any, small_blocks: int,  # noqa: F811
                                                         caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    gzip_blocks.WHOLE.clear()
    arr = np.random.default_rng(21).integers(0, 9, (8 * SHAPE[0], SHAPE[1])).astype("<f8")  # 12.8 MB
    cci.upload_dask_array("gzo", arr, axis=0, buffersize=arr.nbytes // 2)
    first = sorted(k for k in cci.glob("gzo/*") if not k.endswith("metadata.json"))[0]
    info, spec = read_array_spec(cci.store, first)
    rows = pgzip.parse_metadata((info.metadata or {})[pgzip.INDEX_KEY], spec.nbytes).block_size // spec.row_bytes
    forge_block_crc(cci, first, 2)
    size = cci.store.head(first).size
    lazy = cci.download_dask_array("gzo")
    caplog.clear()
    s3.clear_log()
    picks = [(slice(2 * rows + 1, 2 * rows + 5), slice(3, 9)),  # in the forged block: the fallback
             2 * rows + 7, (slice(2 * rows, 2 * rows + 2),), 5 * rows + 3,  # the same block, then another
             (slice(rows - 2, rows + 3), slice(None, None, 5))]
    for pick in picks:
        assert np.array_equal(lazy[pick].compute(), arr[pick]), pick
    assert body_gets(s3, first, size) == 1  # one whole decode for the five slices
    logged = fallbacks(caplog)
    assert len(logged) == 1, logged
    assert first in logged[0] and "gzip block 2" in logged[0]
    s3.clear_log()
    assert np.array_equal(lazy[picks[1]].compute(), arr[picks[1]])
    assert body_gets(s3, first, size) == 0 and len(fallbacks(caplog)) == 1


def test_the_kept_decodes_are_bounded(cci: Any, s3: Any, small_blocks: int, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
                                      caplog: pytest.LogCaptureFixture) -> None:
    """A part decoding to more than the bound is not kept: each slice needing it decodes it again (still
    logged once), and nothing is held."""
    caplog.set_level(logging.INFO, logger=LOGGER)
    monkeypatch.setattr(gzip_blocks, "WHOLE", gzip_blocks.WholeDecodes(2**20))
    arr = np.random.default_rng(22).integers(0, 9, (8 * SHAPE[0], SHAPE[1])).astype("<f8")
    cci.upload_dask_array("gzb", arr, axis=0, buffersize=arr.nbytes // 2)
    first = sorted(k for k in cci.glob("gzb/*") if not k.endswith("metadata.json"))[0]
    info, spec = read_array_spec(cci.store, first)
    rows = pgzip.parse_metadata((info.metadata or {})[pgzip.INDEX_KEY], spec.nbytes).block_size // spec.row_bytes
    forge_block_crc(cci, first, 2)
    size = cci.store.head(first).size
    lazy = cci.download_dask_array("gzb")
    caplog.clear()
    s3.clear_log()
    for pick in (2 * rows + 1, 2 * rows + 9):
        assert np.array_equal(lazy[pick].compute(), arr[pick])
    assert body_gets(s3, first, size) == 2
    assert len(fallbacks(caplog)) == 1
    assert gzip_blocks.WHOLE.get((cci.store.describe(first), info.etag)) is None


@pytest.mark.parametrize("compression", ["Zstd", "LZ4"])
def test_slices_of_a_part_readable_only_whole_decode_it_once(cci: Any, s3: Any, compression: str) -> None:
    """A part of a codec without blocks is read whole for a slice; its next slices are served from that
    decode (kept in ``gzip_blocks.WHOLE``), and what a slice returns is the caller's own copy."""
    gzip_blocks.WHOLE.clear()
    arr = np.random.default_rng(23).integers(0, 9, (16000, 100)).astype("<f8")  # two parts of 6.4 MB
    cci.upload_dask_array("zo", arr, axis=0, buffersize=arr.nbytes // 2)
    part_keys = sorted(k for k in cci.glob("zo/*") if not k.endswith("metadata.json") and cci.store.head(k).size > 100)
    for key in part_keys:  # the same parts, stored with a codec without blocks
        cci.upload_raw_array(key, cci.download_raw_array(key), compression=compression)
    first = part_keys[0]
    size = cci.store.head(first).size
    lazy = cci.download_dask_array("zo")
    s3.clear_log()
    picks = [5, slice(10, 20), (slice(100, 110), slice(3, 9)), 7999]
    for pick in picks:
        got = lazy[pick].compute()
        assert np.array_equal(got, arr[pick]), pick
    assert body_gets(s3, first, size) == 1  # one whole read of the part for its four slices
    mine = lazy[5:7].compute()
    mine[0, 0] = -1.0  # the caller's own copy: the kept part is not changed
    assert np.array_equal(lazy[5:7].compute(), arr[5:7])
