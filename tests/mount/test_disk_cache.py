"""The persistent block cache of real mounts (``--cache-dir``): GETs counted in the server's log."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.cache.disk import HEADER
from tests.conftest import BUCKET
from tests.mountutil import mounted, needs_fuse

pytestmark = [needs_fuse, pytest.mark.fuse]


def endpoint(cci) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--endpoint-url", cci.settings.endpoint_url]


def data_gets(s3, key: str) -> list:  # type: ignore[no-untyped-def]
    """GETs of the object's bytes (LISTs are GETs of the bucket and do not count)."""
    return [r for r in s3.requests() if r.method == "GET" and r.path.rstrip("/").endswith(f"/{BUCKET}/{key}")]


def block_files(cache: Path) -> list[Path]:
    return [p for p in (cache / "blocks").glob("??/*") if not p.name.startswith(".tmp-")]


def block_sizes(cache: Path) -> list[int]:
    """Sizes of the block files present now. A live daemon evicts blocks while we list them, so a
    file listed and gone before its stat counts as absent (it is no longer in the folder)."""
    sizes = []
    for path in block_files(cache):
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:
            continue
    return sizes


def cached_bytes(cache: Path) -> int:
    return sum(size - HEADER.size for size in block_sizes(cache))


def wait_written(cache: Path, nbytes: int) -> None:
    """A mount still running writes its blocks behind its readers: wait for them (a condition)."""
    for _ in range(600):
        if cached_bytes(cache) >= nbytes:
            return
        time.sleep(0.05)
    assert cached_bytes(cache) >= nbytes


def test_a_remount_rereads_with_no_get(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arr = np.random.default_rng(0).standard_normal(2**19)  # 4 MiB: 16 blocks
    cci.upload_raw_array("dc/a", arr, compression=False)
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as m:
        assert np.array_equal(np.load(m / "dc/a.npy"), arr)
    # ``ccfs umount`` returned after the daemon wrote what it had queued: every block is there
    assert data_gets(s3, "dc/a") and cached_bytes(cache) == arr.nbytes
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as m:
        assert np.array_equal(np.load(m / "dc/a.npy"), arr)
        assert np.array_equal(np.load(m / "dc/a.npy", mmap_mode="r")[1000:2000], arr[1000:2000])
    assert data_gets(s3, "dc/a") == []
    assert not list(cache.glob("spill-*")), "a mount's spill folder outlived it"


def test_a_second_mount_sharing_the_folder_reads_with_no_get(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arr = np.arange(2**19, dtype="<f8")
    cci.upload_raw_array("dc/b", arr, compression=False)
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as one, \
            mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as two:
        assert np.array_equal(np.load(one / "dc/b.npy"), arr)
        wait_written(cache, arr.nbytes)  # the first mount writes its blocks behind the reader
        s3.clear_log()
        assert np.array_equal(np.load(two / "dc/b.npy"), arr)
        assert data_gets(s3, "dc/b") == []


def test_a_rewritten_object_is_never_served_from_old_blocks(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    old, new = np.zeros(2**18), np.arange(2**18, dtype="<f8")  # same size, same key
    cci.upload_raw_array("dc/c", old, compression=False)
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as m:
        assert np.array_equal(np.load(m / "dc/c.npy"), old)
    assert cached_bytes(cache) == old.nbytes
    cci.upload_raw_array("dc/c", new, compression=False)
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as m:
        assert np.array_equal(np.load(m / "dc/c.npy"), new)
    assert data_gets(s3, "dc/c")  # fetched: the new ETag names other blocks


def test_the_folder_stays_within_its_size(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arrays = {f"dc/many{i}": np.full(2**17, float(i)) for i in range(6)}  # 6 x 1 MiB in 64 KiB blocks
    for key, arr in arrays.items():
        cci.upload_raw_array(key, arr, compression=False)
    cache = tmp_path / "cache"
    limit = 2**21
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache), "--cache-dir-size", "2M",
                 "--block-size", "64K") as m:
        for _ in range(2):
            for key, arr in arrays.items():
                assert np.array_equal(np.load(m / f"{key}.npy"), arr)
                assert sum(block_sizes(cache)) <= limit
    sizes = block_sizes(cache)
    assert limit - 2**17 < sum(sizes) <= limit and len(sizes) > 16  # full, never over


def test_a_corrupt_block_file_is_discarded_and_fetched_again(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arr = np.random.default_rng(1).standard_normal(2**18)  # 2 MiB: 8 blocks
    cci.upload_raw_array("dc/d", arr, compression=False)
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as m:
        assert np.array_equal(np.load(m / "dc/d.npy"), arr)
    assert cached_bytes(cache) == arr.nbytes
    # the two largest block files: blocks are cut where reads fell, so one may be shorter than the flip's offset
    victim, truncated = sorted(block_files(cache), key=lambda p: (-p.stat().st_size, p.name))[:2]
    assert victim.stat().st_size > HEADER.size + 4321
    raw = bytearray(victim.read_bytes())
    raw[HEADER.size + 4321] ^= 0x40  # one flipped bit
    victim.write_bytes(raw)
    os.truncate(truncated, truncated.stat().st_size // 2)
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as m:
        assert np.array_equal(np.load(m / "dc/d.npy"), arr)
    assert 1 <= len(data_gets(s3, "dc/d")) <= 2  # the two damaged blocks only
    log = (tmp_path / f"{m.name}.log").read_text()
    assert log.count("corrupt block file") == 2, log
    assert cached_bytes(cache) == arr.nbytes  # written again, whole


def test_compressed_arrays_still_spill_under_the_folder(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    arr = np.arange(2**20, dtype="<f8")  # 8 MiB decoded: more than half the decoded-array memory below
    cci.upload_raw_array("dc/z", arr, compression="Zstd")  # decoded whole (our gzip is read by block)
    cci.upload_raw_array("dc/g", arr, compression="gzip")
    cache = tmp_path / "cache"
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache), "--cache-size", "16M") as m:
        assert np.array_equal(np.load(m / "dc/g.npy"), arr)
        assert not [p for spill in cache.glob("spill-*") for p in spill.iterdir()]  # blocks, no whole decode
        assert np.array_equal(np.load(m / "dc/z.npy"), arr)
        (spill,) = cache.glob("spill-*")
        assert [p for p in spill.iterdir()], "the decoded array did not spill"
    assert not list(cache.glob("spill-*"))


def test_a_relative_cache_dir_is_the_callers(cci, s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The daemon runs in ``/``: a relative ``--cache-dir`` must still mean the caller's folder."""
    cci.upload_raw_array("dc/r", np.arange(1000.0), compression=False)
    monkeypatch.chdir(tmp_path)
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", "rel-cache") as m:
        assert np.array_equal(np.load(m / "dc/r.npy"), np.arange(1000.0))
    assert cached_bytes(tmp_path / "rel-cache") == 8000


def test_a_mount_reads_what_a_download_cached(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Opt-in sharing: ``get_interface(block_cache_dir=...)`` and ``--cache-dir`` name the same blocks."""
    import cottoncandy as cc
    from cottoncandy.cache.folder import shared_blocks

    arr = np.random.default_rng(2).standard_normal(2**18)  # 2 MiB: 9 blocks after the header
    cci.upload_raw_array("dc/s", arr, compression=False)
    cache = tmp_path / "cache"
    sharing = cc.get_interface(BUCKET, endpoint_url=cci.settings.endpoint_url, verbose=False,
                               block_cache_dir=str(cache))
    assert np.array_equal(sharing.download_raw_array("dc/s"), arr)
    shared_blocks(cache, sharing.settings.block_cache_size).flush()
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *endpoint(cci), "--cache-dir", str(cache)) as m:
        assert np.array_equal(np.load(m / "dc/s.npy"), arr)
    assert data_gets(s3, "dc/s") == []
