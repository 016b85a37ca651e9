"""gzip arrays we wrote, opened by the real zarr and xarray as one chunk per block of whole rows.

A row or a 10-row slice then fetches and inflates one block (counted in the local server's log),
not the whole body; values equal ``download_raw_array`` for each dtype; portable references keep
one gzip chunk unless asked (their readers may not have cottoncandy's codec); a forged index is not
used (one chunk, as before).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import pytest

pytest.importorskip("zarr")
pytest.importorskip("xarray")

from cottoncandy import refs as ccrefs  # noqa: E402
from cottoncandy.formats import pgzip, zarr_blocks  # noqa: E402
from tests.refs.refsutil import gets_of  # noqa: E402

BLOCK = 64 * 2**10
SHAPE = (2000, 100)


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", BLOCK)  # many blocks without a large array
    return BLOCK


def zarray(cci, prefix: str, name: str, **options) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    refs = ccrefs.build_refs(cci.store, prefix, **options)
    return json.loads(refs.refs[f"{name}/.zarray"])


@pytest.mark.parametrize("dtype", ["<f8", ">i4", "<c8", "|b1"])
def test_a_chunk_per_block_and_a_slice_reads_one(s3, cci, small_blocks: int, dtype: str) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 2 if dtype == "|b1" else 9, SHAPE).astype(dtype)
    cci.upload_raw_array("gzr/x", arr)  # the default codec: gzip in indexed blocks of whole rows
    info = cci.store.head("gzr/x")
    block, count = pgzip.parse_metadata_value(info.metadata[pgzip.INDEX_KEY], arr.nbytes)
    rows = block // (arr.nbytes // SHAPE[0])
    assert block % (arr.nbytes // SHAPE[0]) == 0 and count > 2
    ds = ccrefs.open_dataset(cci, "gzr")
    assert ds["x"].data.chunks[0] == (rows,) * (count - 1) + (SHAPE[0] - rows * (count - 1),)
    s3.clear_log()
    assert np.array_equal(ds["x"][1000:1010].values, arr[1000:1010])
    gets = gets_of(s3, "/gzr/x")
    moved = sum(r.bytes_sent for r in gets)
    print(f"{dtype}: 10-row slice through zarr: {len(gets)} GETs {moved} B of a {info.size} B body")
    assert 1 <= len(gets) <= 2 and all(r.range for r in gets) and moved < 3 * info.size // count + 4096
    s3.clear_log()
    assert np.array_equal(ds["x"][SHAPE[0] - 1].values, arr[-1])  # the short last block, padded by the codec
    assert len(gets_of(s3, "/gzr/x")) == 1
    assert np.array_equal(ds["x"].values, cci.download_raw_array("gzr/x"))


def test_portable_references_keep_one_chunk_unless_asked(cci, small_blocks: int) -> None:  # type: ignore[no-untyped-def]
    arr = np.arange(SHAPE[0] * SHAPE[1], dtype="<f8").reshape(SHAPE)
    cci.upload_raw_array("gzp/x", arr)
    portable = zarray(cci, "gzp", "x")
    assert portable["compressor"]["id"] == "gzip" and portable["chunks"] == list(SHAPE)
    asked = zarray(cci, "gzp", "x", gzip_blocks=True)
    assert asked["compressor"]["id"] == zarr_blocks.ID and asked["chunks"][0] < SHAPE[0]
    assert zarray(cci, "gzp", "x", portable=False)["compressor"]["id"] == zarr_blocks.ID


def test_a_forged_index_is_not_used(cci, small_blocks: int, caplog) -> None:  # type: ignore[no-untyped-def]
    """An index that parses and tiles the body but cuts it in the wrong places: checked against the body
    when referenced, so zarr gets one chunk (and right values), not blocks it would fail to inflate."""
    arr = np.arange(SHAPE[0] * SHAPE[1], dtype="<f8").reshape(SHAPE)
    cci.upload_raw_array("gzf/x", arr)
    info = cci.store.head("gzf/x")
    body = bytearray(cci.store.get_range("gzf/x", 0, info.size))
    count = struct.unpack_from("<I", body, 16 + 9)[0]
    lengths = list(struct.unpack_from(f"<{count}I", body, pgzip.HEADER_FIXED))
    lengths[0], lengths[1] = lengths[0] + 7, lengths[1] - 7  # still tiles the body, cut in the wrong places
    struct.pack_into(f"<{count}I", body, pgzip.HEADER_FIXED, *lengths)
    cci.store.put("gzf/x", bytes(body), dict(info.metadata))
    with caplog.at_level("WARNING", logger="cottoncandy.refs.build"):
        meta = zarray(cci, "gzf", "x", portable=False)
    assert meta["chunks"] == list(SHAPE) and meta["compressor"]["id"] == "gzip"  # one chunk
    assert any("gzf/x" in r.getMessage() and "block 0" in r.getMessage() for r in caplog.records)
    assert np.array_equal(ccrefs.open_group(cci, "gzf")["x"][:], arr)
    cci.store.put("gzf/x", bytes(body), {**info.metadata, pgzip.INDEX_KEY: "1:7:3"})
    assert zarray(cci, "gzf", "x", portable=False)["chunks"] == list(SHAPE)  # refused: one chunk


def test_a_forged_block_crc_of_a_large_body_is_caught_by_the_trailer(cci, small_blocks: int,  # type: ignore[no-untyped-def]
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies too large to check block by block when referenced: the index's CRCs, combined, must give
    the trailer's CRC-32 (one ranged GET); a forged one sends zarr to one chunk."""
    from cottoncandy.arrays import gzip_blocks

    monkeypatch.setattr(gzip_blocks, "INDEX_CHECK_WHOLE", 0)
    arr = np.random.default_rng(8).integers(0, 9, SHAPE).astype("<f8")
    cci.upload_raw_array("gzk/x", arr)
    blocks = zarray(cci, "gzk", "x", portable=False)
    assert blocks["compressor"]["id"] == zarr_blocks.ID and len(blocks["compressor"]["crcs"]) > 2
    info = cci.store.head("gzk/x")
    body = bytearray(cci.store.get_range("gzk/x", 0, info.size))
    count = struct.unpack_from("<I", body, 16 + 9)[0]
    at = pgzip.HEADER_FIXED + 4 * count + 4  # block 1's CRC-32
    struct.pack_into("<I", body, at, struct.unpack_from("<I", body, at)[0] ^ 1)
    cci.store.put("gzk/x", bytes(body), dict(info.metadata))
    assert zarray(cci, "gzk", "x", portable=False)["chunks"] == list(SHAPE)
    assert np.array_equal(ccrefs.open_group(cci, "gzk")["x"][:], arr)


def test_ccfs_refs_gives_blocks_when_asked(s3, cci, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.cliutil import run
    from tests.conftest import BUCKET

    cci.upload_raw_array("gzc/x", np.arange(3000 * 1024, dtype="<f8").reshape(3000, 1024))  # 6 blocks of 4 MiB
    for extra, codec in (((), "gzip"), (("--gzip-blocks",), zarr_blocks.ID)):
        out = tmp_path / f"refs{len(extra)}.json"
        run(s3, "refs", f"s3://{BUCKET}/gzc", "-o", str(out), *extra)
        doc = json.loads(out.read_text())
        assert json.loads(doc["refs"]["x/.zarray"])["compressor"]["id"] == codec
