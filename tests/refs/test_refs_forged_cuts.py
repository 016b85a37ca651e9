"""A gzip body too large to inflate when referenced, whose version 2 index has its cut points moved but
right CRCs (the lengths still tile the body, the CRCs still combine to the trailer's).

When references are built, the probed cut points (``gzip_blocks.check_cuts``: a 4-byte ranged GET per
cut, bounded) catch it: one chunk, one warning naming the object and the block, right values through
zarr. A cut left unprobed (more blocks than ``CUT_PROBES``) is caught as zarr reads that block: the
error names the object and the block, and the other blocks still read."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest

pytest.importorskip("zarr")

from cottoncandy import refs as ccrefs  # noqa: E402
from cottoncandy.arrays import gzip_blocks  # noqa: E402
from cottoncandy.formats import pgzip, zarr_blocks  # noqa: E402
from tests.refs.refsutil import gets_of  # noqa: E402
from tests.refs.test_refs_gzip_blocks import SHAPE, small_blocks, zarray  # noqa: E402, F401


def forge_cuts(cci: Any, key: str) -> None:
    """Move the cut between blocks 0 and 1 by 7 bytes: lengths still tile the body, CRCs untouched."""
    info = cci.store.head(key)
    body = bytearray(cci.store.get_range(key, 0, info.size))
    count = struct.unpack_from("<I", body, 16 + 9)[0]
    lengths = list(struct.unpack_from(f"<{count}I", body, pgzip.HEADER_FIXED))
    lengths[0], lengths[1] = lengths[0] + 7, lengths[1] - 7
    struct.pack_into(f"<{count}I", body, pgzip.HEADER_FIXED, *lengths)
    cci.store.put(key, bytes(body), dict(info.metadata))


@pytest.fixture
def large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gzip_blocks, "INDEX_CHECK_WHOLE", 0)  # as if the body were over 16 MiB


def test_moved_cuts_are_caught_when_referenced(s3: Any, cci: Any, small_blocks: int, large: None,  # noqa: F811
                                               caplog: pytest.LogCaptureFixture) -> None:
    arr = np.random.default_rng(31).integers(0, 9, SHAPE).astype("<f8")
    cci.upload_raw_array("gzm/x", arr)
    count = len(zarray(cci, "gzm", "x", portable=False)["compressor"]["crcs"])
    assert count > 2
    forge_cuts(cci, "gzm/x")
    s3.clear_log()
    with caplog.at_level("WARNING", logger="cottoncandy.refs.build"):
        meta = zarray(cci, "gzm", "x", portable=False)
    assert meta["chunks"] == list(SHAPE) and meta["compressor"]["id"] == "gzip"  # one chunk
    warned = [r.getMessage() for r in caplog.records if "gzm/x" in r.getMessage()]
    assert len(warned) == 1 and "block 0" in warned[0], warned
    probes = [r for r in gets_of(s3, "/gzm/x") if r.bytes_sent == 4]
    assert 1 <= len(probes) <= count - 1  # 4-byte GETs, not the body
    # the probes, then, as the body is referenced as one gzip chunk, one bounded decode of it into nothing
    # (ISIZE cannot bound a whole chunk: ``_Builder.check_body_sizes``)
    size = cci.store.head("gzm/x").size
    assert sum(r.bytes_sent for r in gets_of(s3, "/gzm/x")) < 4096 + pgzip.header_size(count, 2) + size
    assert np.array_equal(ccrefs.open_group(cci, "gzm")["x"][:], arr)


def test_cuts_probed_are_bounded(s3: Any, cci: Any, small_blocks: int, large: None,  # noqa: F811
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gzip_blocks, "CUT_PROBES", 3)
    assert gzip_blocks.cuts_to_probe(2) == [0]
    assert gzip_blocks.cuts_to_probe(11) == [0, 4, 9]
    arr = np.random.default_rng(32).integers(0, 9, SHAPE).astype("<f8")
    cci.upload_raw_array("gzn/x", arr)
    s3.clear_log()
    assert zarray(cci, "gzn", "x", portable=False)["compressor"]["id"] == zarr_blocks.ID
    assert len([r for r in gets_of(s3, "/gzn/x") if r.bytes_sent == 4]) == 3 + 1  # and the ISIZE check


def test_an_unprobed_moved_cut_fails_its_block_naming_it(cci: Any, small_blocks: int, large: None,  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gzip_blocks, "CUT_PROBES", 0)  # as if block 0's cut were one of those left unprobed
    arr = np.random.default_rng(33).integers(0, 9, SHAPE).astype("<f8")
    cci.upload_raw_array("gzu/x", arr)
    forge_cuts(cci, "gzu/x")
    x = ccrefs.open_group(cci, "gzu")["x"]
    rows = x.chunks[0]
    assert rows < SHAPE[0]  # blocks: the forgery went unnoticed when referenced
    with pytest.raises(Exception) as failed:  # noqa: PT011 - fsspec wraps it (ReferenceNotReachable)
        x[3]
    causes = []
    cause: BaseException | None = failed.value
    while cause is not None:
        causes.append(str(cause))
        cause = cause.__cause__
    assert any("gzu/x: gzip block 0 (bytes" in text for text in causes), causes
    assert np.array_equal(x[3 * rows : 4 * rows], arr[3 * rows : 4 * rows])  # other blocks still read
