"""The persistent metadata cache of real mounts: HEADs counted in the server's log.

A remount of an unchanged folder costs its LIST and no HEAD; a rewritten object (new ETag) is
HEADed again and shown as it is now; a corrupt cache file is discarded and the listing is still
right; two mounts share the file; ``--no-metadata-cache`` keeps nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.cache.metadata import FILENAME
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]


def endpoint(cci) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--endpoint-url", cci.settings.endpoint_url]


def heads(s3, prefix: str) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for r in s3.requests() if r.method == "HEAD" and r.path.startswith(f"/{BUCKET}/{prefix}"))


def asked(s3, key: str) -> int:  # type: ignore[no-untyped-def]
    """Requests for ``key``'s metadata: HEADs, and the first-block GETs a single lookup makes."""
    return sum(1 for r in s3.requests() if r.method in ("HEAD", "GET") and r.path == f"/{BUCKET}/{key}")


def lists(s3) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for r in s3.requests() if r.method == "GET" and r.path.rstrip("/") == f"/{BUCKET}")


def sizes(folder: Path) -> dict[str, int]:
    """What ``ls -l`` shows: every entry's name and size (one readdir, one stat each)."""
    return {entry.name: entry.stat().st_size for entry in os.scandir(folder)}


def upload(cci, prefix: str, count: int, length: int = 4) -> None:  # type: ignore[no-untyped-def]
    for i in range(count):
        cci.upload_raw_array(f"{prefix}/a{i:02d}", np.arange(length, dtype="<f8") + i, compression=False)


def test_a_remount_of_an_unchanged_folder_sends_no_head(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    upload(cci, "mc", 6)
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as m:
        first = sizes(m / "mc")
    assert heads(s3, "mc/") == 6 and (cache / "metadata" / FILENAME).is_file()
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as m:
        assert sizes(m / "mc") == first
        assert sorted(first) == [f"a{i:02d}.npy" for i in range(6)]
        assert np.array_equal(np.load(m / "mc/a03.npy"), np.arange(4, dtype="<f8") + 3)
    assert heads(s3, "mc/") == 0
    assert lists(s3) >= 1


def test_a_rewritten_object_is_headed_again_and_never_shown_stale(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    upload(cci, "mr", 3)
    with mounted(BUCKET, tmp_path, *endpoint(cci)) as m:  # the default folder: $XDG_CACHE_HOME/ccfs/metadata
        assert sizes(m / "mr")["a01.npy"] == 128 + 4 * 8
    assert (Path(os.environ["XDG_CACHE_HOME"]) / "ccfs" / "metadata" / FILENAME).is_file()
    cci.upload_raw_array("mr/a01", np.zeros((5, 2), dtype="<f4"), compression=False)  # new bytes: new ETag
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *endpoint(cci)) as m:
        shown = sizes(m / "mr")
        assert shown["a01.npy"] == 128 + 10 * 4
        assert np.load(m / "mr/a01.npy").shape == (5, 2)
    assert asked(s3, "mr/a01") >= 1 and asked(s3, "mr/a00") == 0 and asked(s3, "mr/a02") == 0


def test_a_corrupt_cache_file_is_discarded_and_the_listing_is_right(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    upload(cci, "mx", 3)
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as m:
        first = sizes(m / "mx")
    index = cache / "metadata" / FILENAME
    for suffix in ("-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    index.write_bytes(b"not a database at all " * 200)
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache), "--log-level", "WARNING") as m:
        assert sizes(m / "mx") == first
    log = (tmp_path / f"{m.name}.log").read_text()
    assert log.count("metadata cache: discarded unreadable") == 1, log
    assert heads(s3, "mx/") == 3  # nothing trusted from the bad file: asked again, and kept anew
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as m:
        assert sizes(m / "mx") == first
    assert heads(s3, "mx/") == 0


def test_two_mounts_share_the_cache(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    upload(cci, "ms", 4)
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as one, \
            mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as two:
        first = sizes(one / "ms")
        assert heads(s3, "ms/") == 4
        s3.clear_log()
        assert sizes(two / "ms") == first
        assert heads(s3, "ms/") == 0


def test_with_the_cache_off_nothing_is_kept(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    upload(cci, "mo", 3)
    cache = tmp_path / "cache"
    for _ in range(2):
        s3.clear_log()
        with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache), "--no-metadata-cache") as m:
            assert sorted(sizes(m / "mo")) == ["a00.npy", "a01.npy", "a02.npy"]
        assert heads(s3, "mo/") == 3
    assert not (cache / "metadata").exists()
    assert not (Path(os.environ["XDG_CACHE_HOME"]) / "ccfs").exists()
