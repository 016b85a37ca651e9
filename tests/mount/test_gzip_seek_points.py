"""A 0.4.0 gzip array (no block index) through real mounts: the first open decodes it whole and keeps
seek points in the cache folder; after a remount with the same ``--cache-dir`` a row costs one
stretch of the body, not all of it; a tampered record is dropped and the values stay right.
GETs and bytes are counted in the local server's log."""

from __future__ import annotations

import gzip
import io
import sqlite3
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.cache.seek_index import FILENAME
from cottoncandy.formats import zran
from tests.conftest import BUCKET
from tests.mountutil import VERSION_KEPT, mounted, needs_fuse, read_ahead_settled

pytestmark = [needs_fuse, pytest.mark.fuse,
              pytest.mark.skipif(not zran.available(), reason="libz cannot be loaded here")]
KEY = "zr/old"
SHAPE = (2560, 1024)  # 20 MiB of float64: above zran.MIN_ARRAY


def upload_040(cci) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The array as 0.4.0 stores it: one level-9 ``GzipFile`` stream, its four metadata keys."""
    array = np.random.default_rng(3).standard_normal(SHAPE)
    out = io.BytesIO()
    with gzip.GzipFile(mode="wb", fileobj=out, compresslevel=9) as gz:
        gz.write(array.tobytes())
    cci.store.put(KEY, out.getvalue(), {"dtype": "<f8", "shape": "2560,1024", "compression": "gzip", "order": "C"})
    return array


def gets(s3) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    """GETs of the array's object and the body bytes they sent."""
    hits = [r for r in s3.requests() if r.method == "GET" and r.path == f"/{BUCKET}/{KEY}"]
    return len(hits), sum(r.bytes_sent for r in hits)


def row(mountpoint: Path, i: int) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    values = np.array(np.load(mountpoint / f"{KEY}.npy", mmap_mode="r")[i])
    return values, time.perf_counter() - started


def args(cci, cache: Path) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--endpoint-url", cci.settings.endpoint_url, "--cache-dir", str(cache)]


def test_after_one_full_read_a_row_costs_one_stretch(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    array = upload_040(cci)
    body_size = cci.store.head(KEY).size
    cache = tmp_path / "cache"
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
        values, before_s = row(m, 1000)
        assert np.array_equal(values, array[1000])
    before = gets(s3)
    assert before[1] >= body_size  # the whole body, once
    assert (cache / "metadata" / FILENAME).is_file()
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *args(cci, cache), *VERSION_KEPT) as m:  # counted: no revalidation in them
        values, after_s = row(m, 2000)
        assert np.array_equal(values, array[2000])
        read_ahead_settled(s3, cache)  # the stretch fetched ahead after the header's READ: in this count
        after = gets(s3)
        assert np.array_equal(np.load(m / f"{KEY}.npy", mmap_mode="r")[700], array[700])
        read_ahead_settled(s3, cache)
    # one row: its stretch (about zran.SPAN of output), the small first one the header's READ brings,
    # and the next one the reader fetches ahead after that READ (as it does for our block index)
    assert after[0] <= 3 and after[1] <= 2 * zran.SPAN + zran.FIRST_SPAN + 2**20 < body_size
    assert gets(s3)[0] == after[0] + 1  # a row in another stretch: one more GET
    assert np.array_equal(cci.download_raw_array(KEY), array)
    # the same array written by us (cc-gzip-blocks index), for comparison
    cci.upload_raw_array("zr/ours", array)
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *args(cci, tmp_path / "cache2")) as m:
        started = time.perf_counter()
        assert np.array_equal(np.load(m / "zr/ours.npy", mmap_mode="r")[2000], array[2000])
        ours_s = time.perf_counter() - started
    ours = [r for r in s3.requests() if r.method == "GET" and r.path == f"/{BUCKET}/zr/ours"]
    print(f"\nrow of a 0.4.0 gzip array: first open {before[0]} GETs {before[1]} B {before_s * 1e3:.0f} ms; "
          f"after a remount {after[0]} GETs {after[1]} B {after_s * 1e3:.0f} ms (body {body_size} B); "
          f"ours (block index): {len(ours)} GETs {sum(r.bytes_sent for r in ours)} B {ours_s * 1e3:.0f} ms")


def _tamper(cache: Path, change) -> None:  # type: ignore[no-untyped-def]
    db = sqlite3.connect(cache / "metadata" / FILENAME)
    with db:
        for name, blob in db.execute("SELECT name, record FROM points").fetchall():
            db.execute("UPDATE points SET record = ? WHERE name = ?", (change(blob), name))
    db.close()


def _flip_windows(blob: bytes) -> bytes:
    """A record that passes every structural check: its windows' bytes inverted (their CRCs kept)."""
    raw = bytearray(zlib.decompress(blob))
    count = int.from_bytes(raw[20:24], "little")
    table_end = 24 + count * 25
    for i in range(table_end, len(raw)):
        raw[i] ^= 0xFF
    return zlib.compress(bytes(raw))


@pytest.mark.parametrize("change", [lambda blob: b"garbage" + blob[7:], _flip_windows], ids=["garbage", "windows"])
def test_a_tampered_record_is_dropped_and_values_stay_right(cci, s3, tmp_path: Path, change) -> None:  # type: ignore[no-untyped-def]
    array = upload_040(cci)
    body_size = cci.store.head(KEY).size
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
        assert np.array_equal(row(m, 5)[0], array[5])
    _tamper(cache, change)
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *args(cci, cache)) as m:
        assert np.array_equal(row(m, 2500)[0], array[2500])
        assert np.array_equal(np.load(m / f"{KEY}.npy"), array)
    assert gets(s3)[1] >= body_size  # decoded whole again: the record was not trusted
    log = "\n".join(p.read_text() for p in tmp_path.glob("mnt*.log"))
    assert "seek points: dropped the record" in log
