"""A staged rewrite of a gzip array of the library's blocks deflates again only the blocks that changed
(issue 26): the other blocks keep their compressed bytes (copied by the server in runs of 5 MiB or
more, else fetched compressed), the header's index and the trailer are made anew. The stored body is
one gzip member that Python's ``gzip`` (as 0.4.0) decodes, whose index ``check_index`` accepts, and
whose array is the program's. Memory store and the S3 server (real UploadPartCopy)."""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.arrays.gzip_blocks import block_index, check_index
from cottoncandy.arrays.raw import read_raw_array, write_raw_array
from cottoncandy.formats.npy import npy_header
from cottoncandy.formats.raw import spec_for_body
from cottoncandy.storage.base import ObjectStore
from cottoncandy.storage.memory import MemoryStore
from cottoncandy.writes import gzip_patch
from cottoncandy.writes.commit import commit
from cottoncandy.writes.staged import Base, StagedFile
from cottoncandy.writes.staging import StagingArea

MiB = 2**20
ROW = 4096  # bytes per row of the arrays here (512 int64)


@pytest.fixture(params=["memory", "s3"])
def store(request: pytest.FixtureRequest) -> ObjectStore:
    if request.param == "s3":
        return request.getfixturevalue("s3_store")
    return MemoryStore()


def array_of(mib: int) -> np.ndarray:
    """Rows of 32-bit values in int64: a body of about 0.63 of the array."""
    return np.random.default_rng(mib).integers(0, 2**32, size=(mib * MiB // ROW, ROW // 8)).astype("<i8")


def staged_over(store: ObjectStore, key: str, array: np.ndarray, tmp_path: Path) -> tuple[StagedFile, int]:
    write_raw_array(store, key, array, compression="gzip")
    info = store.head(key)
    spec = spec_for_body(info.metadata, info.size, key)
    base = Base(info, npy_header(spec), spec)
    return StagedFile(StagingArea(tmp_path / "cache"), store, f"{key}.npy", key, base), len(base.header)


def deflated(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "deflated again" in r.getMessage()]


def check_body(store: ObjectStore, key: str, expected: np.ndarray) -> None:
    """The stored body: the array, one gzip member Python decodes, an index that fits it."""
    np.testing.assert_array_equal(read_raw_array(store, key), expected)
    info = store.head(key)
    assert gzip.decompress(store.get(key)) == expected.tobytes()
    index = block_index(store, info, expected.nbytes)
    assert index is not None
    check_index(store, info, index, expected.nbytes)


def test_one_changed_row_deflates_one_block_and_copies_the_rest(store: ObjectStore, tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    array = array_of(40)  # ten 4 MiB blocks, a body of ~25 MB
    staged, h = staged_over(store, "p", array, tmp_path)
    expected = array.copy()
    expected[5000] = -1  # 20.5 MB in: block 4
    staged.write(h + 5000 * ROW, expected[5000].tobytes())
    with caplog.at_level(logging.INFO, logger="cottoncandy.writes"):
        commit(staged, "p", "p.npy")
    assert len(deflated(caplog)) == 1 and "1 of 10 blocks deflated again" in deflated(caplog)[0]
    copied = re.search(r"(\d+) of (\d+) body bytes copied by the server", deflated(caplog)[0])
    assert copied is not None and int(copied.group(1)) > int(copied.group(2)) // 3, deflated(caplog)
    # compressed bytes only: that block's, and the unchanged bytes sent beside the new ones because a
    # copied part must be 5 MiB (S3's least part): after the header, around the block, before the trailer
    assert staged.fetched <= 3 * 5 * MiB + 4 * MiB, staged.fetched
    check_body(store, "p", expected)
    # a second commit over the new version: reuses its blocks the same way
    expected[0, 0] = 7
    staged.write(h, expected[0, :1].tobytes())
    with caplog.at_level(logging.INFO, logger="cottoncandy.writes"):
        commit(staged, "p", "p.npy")
    assert len(deflated(caplog)) == 2 and "1 of 10 blocks deflated again" in deflated(caplog)[1]
    check_body(store, "p", expected)
    staged.discard()


def test_the_first_and_last_blocks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    array = array_of(34)  # 8.5 blocks: the last one short
    staged, h = staged_over(store, "q", array, tmp_path)
    expected = array.copy()
    expected[0] = 1
    expected[-1] = 2
    staged.write(h, expected[0].tobytes())
    staged.write(h + (len(array) - 1) * ROW, expected[-1].tobytes())
    with caplog.at_level(logging.INFO, logger="cottoncandy.writes"):
        commit(staged, "q", "q.npy")
    assert "2 of 9 blocks deflated again" in deflated(caplog)[0]
    check_body(store, "q", expected)
    staged.discard()


def test_too_many_changed_blocks_encode_the_whole_array(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gzip_patch, "MAX_CHANGED", 4 * MiB)
    store = MemoryStore()
    array = array_of(34)
    staged, h = staged_over(store, "r", array, tmp_path)
    expected = array.copy()
    expected[::1000] = 3  # every block
    for row in range(0, len(array), 1000):
        staged.write(h + row * ROW, expected[row].tobytes())
    with caplog.at_level(logging.INFO, logger="cottoncandy.writes"):
        commit(staged, "r", "r.npy")
    assert deflated(caplog) == []
    check_body(store, "r", expected)
    staged.discard()


def test_a_small_body_is_encoded_whole(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """At most ``INDEX_CHECK_WHOLE`` (16 MiB) of body: checking its index would read it all anyway."""
    store = MemoryStore()
    array = array_of(12)
    staged, h = staged_over(store, "s", array, tmp_path)
    staged.write(h, np.zeros(1, "<i8").tobytes())
    with caplog.at_level(logging.INFO, logger="cottoncandy.writes"):
        commit(staged, "s", "s.npy")
    assert deflated(caplog) == []
    expected = array.copy()
    expected[0, 0] = 0
    check_body(store, "s", expected)
    staged.discard()
