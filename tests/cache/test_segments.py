"""Reading decoded bytes of a 0.4.0 gzip body through seek points (cache.stretches over cache.segments,
cache.seek_index): only the stretches a read covers are fetched, once; a bad stretch sends reads to the
whole decode; the kept records are bounded, keyed by version, and a damaged one is dropped."""

from __future__ import annotations

import gc
import gzip
import io
import threading
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.cache.budget import MemoryBudget
from cottoncandy.cache.seek_index import SeekIndexShelf
from cottoncandy.cache.segments import PointTable
from cottoncandy.cache.stretches import StretchReader
from cottoncandy.formats import zran

pytestmark = pytest.mark.skipif(not zran.available(), reason="libz cannot be loaded here")
SPAN = 2**17


@pytest.fixture(scope="module")
def sample() -> tuple[bytes, bytes, list[zran.SeekPoint]]:
    raw = np.random.default_rng(5).standard_normal(2**18).tobytes()  # 2 MiB, blocks of ~16-50 KB
    out = io.BytesIO()
    with gzip.GzipFile(mode="wb", fileobj=out, compresslevel=9) as gz:
        gz.write(raw)
    body = out.getvalue()
    points = zran.gunzip_recording([body], memoryview(bytearray(len(raw))), span=SPAN)
    assert points is not None
    return raw, body, points


class Counting:
    def __init__(self, body: bytes):
        self.body, self.calls, self.bytes = body, 0, 0
        self.lock = threading.Lock()

    def __call__(self, start: int, end: int) -> bytes:
        with self.lock:
            self.calls += 1
            self.bytes += end - start
        return self.body[start:end]


def test_a_read_fetches_only_its_stretches_once(sample) -> None:  # type: ignore[no-untyped-def]
    raw, body, points = sample
    body_fetch = Counting(body)
    budget = MemoryBudget(64 * 2**20)
    fetch = StretchReader(PointTable(points, len(body), len(raw)), body_fetch, lambda a, b: b"", lambda why: None,
                          budget=budget)
    a = points[5].out_start + 100
    assert fetch(a, a + 4096) == raw[a : a + 4096]
    assert body_fetch.calls == 1 and body_fetch.bytes < 2 * SPAN
    threads = [threading.Thread(target=fetch, args=(a + 8192, a + 9000)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert body_fetch.calls == 1  # kept
    across = points[7].out_start - 10
    assert fetch(across, across + 20) == raw[across : across + 20]  # two stretches joined
    assert fetch(len(raw) - 50, len(raw)) == raw[-50:]
    assert budget.used > 0
    del fetch
    gc.collect()
    assert budget.used == 0  # kept stretches let go with the file


def test_a_stretch_that_fails_its_check_sends_every_read_to_the_whole_decode(sample) -> None:  # type: ignore[no-untyped-def]
    raw, body, points = sample
    forged = list(points)
    forged[3] = zran.SeekPoint(points[3].start, points[3].skip, points[3].out_start,
                               bytes(32768), points[3].crc)
    told: list[str] = []
    fetch = StretchReader(PointTable(forged, len(body), len(raw)), Counting(body), lambda a, b: raw[a:b], told.append)
    a = points[3].out_start
    assert fetch(a, a + 1000) == raw[a : a + 1000]
    assert fetch(0, 10) == raw[:10]
    assert fetch.broken and len(told) == 1


def test_only_gzip_bodies_without_our_index_of_16_mib_or_more_are_indexed() -> None:
    from cottoncandy.arrays.gzip_points import indexable
    from cottoncandy.formats.pgzip import INDEX_KEY
    from cottoncandy.formats.raw import ArraySpec
    from cottoncandy.storage.base import ObjectInfo

    big = ArraySpec(np.dtype("<f8"), (2**21,), "C", "gzip")
    small = ArraySpec(np.dtype("<f8"), (2**21 - 1,), "C", "gzip")
    plain = ObjectInfo(key="k", size=10, etag='"e"', metadata={})
    assert indexable(plain, big) and not indexable(plain, small)
    assert indexable(plain, ArraySpec(np.dtype("<f8"), (2**21,), "C", "GZIP"))  # 0.4.0 keeps the caller's spelling
    assert not indexable(ObjectInfo(key="k", size=10, etag='"e"', metadata={INDEX_KEY: "1:4194304:4"}), big)
    assert not indexable(plain, ArraySpec(np.dtype("<f8"), (2**21,), "C", "Zstd"))


def test_records_are_kept_per_version_bounded_and_checked(sample, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    raw, body, points = sample
    shelf = SeekIndexShelf(tmp_path / "meta", limit=10**9)
    assert shelf.path.stat().st_mode & 0o077 == 0 and shelf.folder.stat().st_mode & 0o077 == 0  # private
    ident = "s3 http://x key:1 b\0k"
    shelf.remember(ident, '"e1"', len(body), len(raw), points)
    assert shelf.recall(ident, '"e2"', len(body), len(raw)) is None  # another version
    # recall checks with the default floor (64 KiB between points): these are 128 KiB apart
    assert shelf.recall(ident, '"e1"', len(body), len(raw)) == points
    import sqlite3

    db = sqlite3.connect(shelf.path)
    with db:
        db.execute("UPDATE points SET record = ?", (b"\x78\x9c" + b"\0" * 40,))
    db.close()
    assert shelf.recall(ident, '"e1"', len(body), len(raw)) is None and shelf.discarded == 1
    assert shelf.usage == 0  # the bad record was deleted
    small = SeekIndexShelf(tmp_path / "small", limit=len(zran.encode_index(points, len(body), len(raw))) + 10)
    small.remember(ident, '"e1"', len(body), len(raw), points)
    small.remember(ident + "2", '"e1"', len(body), len(raw), points)
    assert small.recall(ident, '"e1"', len(body), len(raw)) is None  # evicted: least recently used
    assert small.recall(ident + "2", '"e1"', len(body), len(raw)) == points and small.evicted == 1


def test_a_whole_read_by_concurrent_runs_fetches_each_compressed_byte_once(sample) -> None:  # type: ignore[no-untyped-def]
    """Runs that straddle stretches, many in flight (as the mount's read-ahead sends them): every
    stretch is fetched once and kept until both runs sharing it have their part (the old fetch kept
    the last 2 stretches only and fetched 1.4x the body here)."""
    raw, body, points = sample
    body_fetch = Counting(body)
    budget = MemoryBudget(256 * 2**20)
    fetch = StretchReader(PointTable(points, len(body), len(raw)), body_fetch, lambda a, b: b"", lambda why: None,
                          budget=budget)
    run = 3 * SPAN // 2 + 1000  # not a multiple of a stretch: most stretches are cut between two runs
    spans = [(a, min(len(raw), a + run)) for a in range(0, len(raw), run)]
    got: dict[int, bytes] = {}
    order = spans[1::2] + spans[::2]  # every other run first: the cut stretches wait for their second run
    threads = [threading.Thread(target=lambda a, b: got.__setitem__(a, fetch(a, b)), args=span) for span in order]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert b"".join(got[a] for a, _ in spans) == raw
    shared = sum(1 for p in points[1:] if p.skip)  # a byte two stretches share when a point is mid-byte
    assert len(body) - points[0].start <= body_fetch.bytes <= len(body) - points[0].start + shared
    assert fetch.inflated == len(points)
    assert fetch.kept_bytes == 0 and budget.used == 0  # each stretch let go once handed out whole


def test_adjacent_stretches_one_read_needs_are_one_get_and_bounded_kept(sample) -> None:  # type: ignore[no-untyped-def]
    raw, body, points = sample
    body_fetch = Counting(body)
    fetch = StretchReader(PointTable(points, len(body), len(raw)), body_fetch, lambda a, b: b"", lambda why: None,
                         keep_bytes=3 * SPAN)
    a, b = points[2].out_start + 5, points[6].out_start + 5  # stretches 2..6
    assert fetch(a, b) == raw[a:b]
    assert body_fetch.calls == 1 and fetch.gets == 1 and fetch.inflated == 5
    assert fetch.kept_bytes <= 3 * SPAN + 2**16  # the bound (least recently used let go first)
    assert fetch(a - 10, a) == raw[a - 10 : a]  # stretch 2, partly handed out, was let go: fetched again
    assert body_fetch.calls == 2


def test_files_of_one_version_share_one_fetch(sample) -> None:  # type: ignore[no-untyped-def]
    from cottoncandy.arrays.gzip_points import OpenFetches

    raw, body, points = sample
    made: list[StretchReader] = []

    def make() -> StretchReader:
        made.append(StretchReader(PointTable(points, len(body), len(raw)), Counting(body), lambda a, b: b"",
                                  lambda why: None))
        return made[-1]

    shared = OpenFetches()
    first = shared.get(("id", '"e"', len(body), len(raw)), make)
    assert shared.get(("id", '"e"', len(body), len(raw)), make) is first and len(made) == 1
    assert shared.get(("id", '"f"', len(body), len(raw)), make) is not first  # another version
    del first, made[:]
    gc.collect()
    assert shared.get(("id", '"e"', len(body), len(raw)), make) is made[0]  # the last file closed: a new one
