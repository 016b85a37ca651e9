"""Inflated blocks of gzip arrays kept in ``--cache-dir`` across mounts (``cache.disk.DecodedOnDisk``):
after a remount, a row read before costs no GET, for our gzip arrays (block index) and for 0.4.0's
(seek points kept); a block file another hand damaged fails only itself and comes from the store.
GETs are counted in the local server's log."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.formats import zran
from tests.conftest import BUCKET
from tests.mount.test_gzip_seek_points import KEY as OLD_KEY
from tests.mount.test_gzip_seek_points import args, upload_040
from tests.mountutil import mounted, needs_fuse, read_ahead_settled

pytestmark = [needs_fuse, pytest.mark.fuse]
OURS = "zr/ours"


def object_gets(s3, key: str) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    hits = [r for r in s3.requests() if r.method == "GET" and r.path == f"/{BUCKET}/{key}"]
    return len(hits), sum(r.bytes_sent for r in hits)


def row(mountpoint: Path, key: str, i: int) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    values = np.array(np.load(mountpoint / f"{key}.npy", mmap_mode="r")[i])
    return values, time.perf_counter() - started


@pytest.mark.parametrize("kind", ["ours", "0.4.0"])
def test_a_row_read_before_a_remount_costs_no_get(cci, s3, tmp_path: Path, kind: str) -> None:  # type: ignore[no-untyped-def]
    if kind == "ours":
        array = np.random.default_rng(3).standard_normal((2560, 1024))
        cci.upload_raw_array(OURS, array)
        key = OURS
    else:
        if not zran.available():
            pytest.skip("libz cannot be loaded here")
        array, key = upload_040(cci), OLD_KEY
    cache = tmp_path / "cache"
    if kind == "0.4.0":  # the first open decodes whole and keeps the seek points; rows come after a remount
        with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
            assert np.array_equal(row(m, key, 0)[0], array[0])
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
        values, cold_s = row(m, key, 1500)
        assert np.array_equal(values, array[1500])
        read_ahead_settled(s3, cache)
    cold = object_gets(s3, key)
    assert cold[0] >= 1
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
        values, warm_s = row(m, key, 1500)
        assert np.array_equal(values, array[1500])
        warm = object_gets(s3, key)
        assert warm == (0, 0), warm  # the row's blocks (and the header's) came from the cache folder
    print(f"\n{kind}: row after a remount {cold[0]} GETs {cold[1]} B {cold_s * 1e3:.0f} ms; "
          f"the same row after another {warm[0]} GETs {warm_s * 1e3:.0f} ms")


def test_a_damaged_decoded_block_file_fails_only_itself(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    array = np.random.default_rng(4).standard_normal((2560, 1024))
    cci.upload_raw_array(OURS, array)
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
        assert np.array_equal(np.load(m / f"{OURS}.npy"), array)  # every block kept
    files = sorted(p for p in (cache / "blocks").glob("??/*") if not p.name.startswith(".tmp-"))
    big = [p for p in files if p.stat().st_size > 2**20]  # the inflated 4 MiB blocks
    assert len(big) >= 4
    with open(big[0], "r+b") as f:  # one cut short, one overwritten with zeros of the right length
        f.truncate(1000)
    big[1].write_bytes(bytes(big[1].stat().st_size))
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
        assert np.array_equal(np.load(m / f"{OURS}.npy"), array)
    count, sent = object_gets(s3, OURS)
    body = cci.store.head(OURS).size
    assert 1 <= count <= 2 and 0 < sent < body // 2  # the two bad blocks' compressed bytes only
    log = "\n".join(p.read_text() for p in tmp_path.glob("mnt*.log"))
    assert log.count("discarded corrupt block file") == 2
