"""A whole read of a 0.4.0 gzip array through its kept seek points fetches each compressed byte once.

The mount's read-ahead runs (8 MiB, many in flight) cut the stretches between seek points (~4 MiB of
output each) in two, and ``np.load`` opens the file three times: the stretch reader is shared by the
files open on a version and keeps a stretch until both runs have their part (``cache.stretches``).
Before, a whole-array mean fetched 1.4x the body (42.9 MB for a 30.0 MB body). Bytes and GETs are
counted in the local server's log."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.formats import zran
from tests.conftest import BUCKET
from tests.mount.test_gzip_seek_points import KEY, args, gets, upload_040
from tests.mountutil import mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse,
              pytest.mark.skipif(not zran.available(), reason="libz cannot be loaded here")]


def test_a_whole_read_through_seek_points_fetches_the_body_once(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    array = upload_040(cci)
    body_size = cci.store.head(KEY).size
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:  # the first open decodes whole, keeps the points
        assert np.array_equal(np.load(m / f"{KEY}.npy", mmap_mode="r")[3], array[3])
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
        started = time.perf_counter()
        mean = float(np.load(m / f"{KEY}.npy", mmap_mode="r").mean())
        seconds = time.perf_counter() - started
        assert np.array_equal(np.load(m / f"{KEY}.npy"), array)  # read again: from the caches
    count, sent = gets(s3)
    assert mean == pytest.approx(float(array.mean()))
    points = len(array.tobytes()) // zran.SPAN + 2
    # each byte once: the 10-byte gzip header is never asked for, and a byte two stretches share
    # (a point in the middle of a byte) may come twice
    assert body_size - 10 <= sent <= body_size + points, (sent, body_size)
    assert count <= points
    print(f"\nwhole read through seek points: {count} GETs, {sent} B for a {body_size} B body, {seconds:.2f} s")
