"""gzip arrays we wrote (with the ``cc-gzip-blocks`` index) through real mounts: a read fetches and
inflates only the blocks that cover it, never the whole array; a forged index is not used (the
array is then decoded whole, as before) and the values stay right. GETs and bytes are counted in the
local server's log."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.formats import pgzip
from tests.conftest import BUCKET
from tests.mountutil import VERSION_KEPT, mounted, needs_fuse, read_ahead_settled

pytestmark = [needs_fuse, pytest.mark.fuse]
KEY = "gzb/big"
SHAPE = (6000, 1024)  # 47 MiB of float64: 12 blocks of 4 MiB


def upload(cci, key: str = KEY, array: np.ndarray | None = None) -> np.ndarray:  # type: ignore[no-untyped-def]
    if array is None:
        array = np.random.default_rng(5).integers(0, 50, SHAPE).astype("<f8")
    cci.upload_raw_array(key, array)  # the default: gzip, in indexed blocks
    assert pgzip.INDEX_KEY in cci.store.head(key).metadata
    return array


def gets(s3, key: str = KEY) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """GETs and HEADs of the array's object, and the body bytes they sent."""
    hits = [r for r in s3.requests() if r.method in ("GET", "HEAD") and r.path == f"/{BUCKET}/{key}"]
    return len(hits), sum(r.bytes_sent for r in hits)


def endpoint(cci) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--endpoint-url", cci.settings.endpoint_url]


def timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    value = fn()
    return value, (time.perf_counter() - started) * 1e3


def test_a_row_and_a_slice_fetch_only_their_blocks(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    array = upload(cci)
    info = cci.store.head(KEY)
    block = int(info.metadata[pgzip.INDEX_KEY].split(":")[1])
    largest = block  # a compressed block is never larger than this array's decoded block
    body = cci.store.get_range(KEY, 0, info.size)  # before: the same body without its index
    cci.store.put("gzb/plain", body, {k: v for k, v in info.metadata.items() if k != pgzip.INDEX_KEY})
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *endpoint(cci), *VERSION_KEPT) as m:
        plain, plain_ms = timed(lambda: np.array(np.load(m / "gzb/plain.npy", mmap_mode="r")[0]))
        assert np.array_equal(plain, array[0])
        read_ahead_settled(s3)  # each count holds its reads' fetches ahead, and only theirs
        plain_gets = gets(s3, "gzb/plain")
        s3.clear_log()
        first, first_ms = timed(lambda: np.array(np.load(m / f"{KEY}.npy", mmap_mode="r")[0]))
        assert np.array_equal(first, array[0])
        read_ahead_settled(s3)
        first_gets = gets(s3)
        s3.clear_log()
        rows, slice_ms = timed(lambda: np.array(np.load(m / f"{KEY}.npy", mmap_mode="r")[3000:3010]))
        assert np.array_equal(rows, array[3000:3010])
        read_ahead_settled(s3)
        slice_gets = gets(s3)
        assert np.array_equal(np.load(m / f"{KEY}.npy"), array)  # the whole file, block by block
    print(f"gzip array {info.size} B body, {array.nbytes} B decoded, blocks of {block} B: first row "
          f"{first_gets[0]} requests {first_gets[1]} B {first_ms:.0f} ms; 10-row slice {slice_gets[0]} requests "
          f"{slice_gets[1]} B {slice_ms:.0f} ms; without the index, first row {plain_gets[0]} requests "
          f"{plain_gets[1]} B {plain_ms:.0f} ms")
    # the lookup's GET (metadata, the index and the first compressed bytes), at most two blocks
    assert first_gets[0] <= 3 and first_gets[1] <= 2**20 + 2 * largest
    assert slice_gets[0] <= 2 and slice_gets[1] <= 2 * largest
    assert first_gets[1] < info.size // 4


@pytest.mark.parametrize("dtype", ["<f4", ">i4", "<c8", "|b1", "<u2"])
def test_values_equal_download_raw_array(cci, tmp_path: Path, dtype: str) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    array = (rng.integers(0, 3, (3000, 1100)) if dtype != "|b1" else rng.integers(0, 2, (3000, 1100))).astype(dtype)
    upload(cci, "gzb/dt", array)
    with mounted(BUCKET, tmp_path, *endpoint(cci)) as m:
        mapped = np.load(m / "gzb/dt.npy", mmap_mode="r")
        assert np.array_equal(mapped[2999], array[2999]) and np.array_equal(mapped[1234:1244], array[1234:1244])
        assert np.array_equal(np.load(m / "gzb/dt.npy"), cci.download_raw_array("gzb/dt"))


def _swap_two_lengths(body: bytes) -> bytes:
    """The same body with an index that still tiles it but cuts it in the wrong places."""
    count = struct.unpack_from("<I", body, 16 + 9)[0]
    at = pgzip.HEADER_FIXED
    lengths = list(struct.unpack_from(f"<{count}I", body, at))
    lengths[0], lengths[1] = lengths[1] + 1, lengths[0] - 1
    return body[:at] + struct.pack(f"<{count}I", *lengths) + body[at + 4 * count :]


def test_a_forged_index_is_not_used(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    array = upload(cci)
    info = cci.store.head(KEY)
    body = cci.store.get_range(KEY, 0, info.size)
    cci.store.put("gzb/forged", _swap_two_lengths(body), dict(info.metadata))
    cci.store.put("gzb/badmeta", body, {**info.metadata, pgzip.INDEX_KEY: "1:1:99999"})
    with mounted(BUCKET, tmp_path, *endpoint(cci)) as m:
        for key in ("gzb/forged", "gzb/badmeta"):
            assert np.array_equal(np.load(m / f"{key}.npy", mmap_mode="r")[4321], array[4321])
            assert np.array_equal(np.load(m / f"{key}.npy"), array)
    log = "\n".join(p.read_text() for p in tmp_path.glob("mnt*.log"))
    assert "does not fit its index" in log or "gzip block index not used" in log
