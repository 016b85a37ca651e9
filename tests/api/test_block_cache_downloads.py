"""Opt-in: the library's downloads share the disk block cache of ``ccfs mount --cache-dir``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import cottoncandy as cc
from cottoncandy.cache.folder import shared_blocks
from tests.conftest import BUCKET


def object_gets(s3, key: str) -> list:  # type: ignore[no-untyped-def]
    return [r for r in s3.requests() if r.method == "GET" and r.path.rstrip("/").endswith(f"/{BUCKET}/{key}")]


def cached_interface(s3, folder: Path):  # type: ignore[no-untyped-def]
    return cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False, block_cache_dir=str(folder))


def test_a_second_download_is_answered_from_disk(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "cache"
    cci = cached_interface(s3, folder)
    arr = np.random.default_rng(0).standard_normal((300, 700))  # 1.6 MiB: blocks of 256 KiB after a header
    cci.upload_raw_array("bc/a", arr, compression=False)
    s3.clear_log()
    got = cci.download_raw_array("bc/a")
    assert np.array_equal(got, arr) and object_gets(s3, "bc/a")
    got[:] = 0  # the caller's array is its own: changing it changes nothing cached
    shared_blocks(folder, cci.settings.block_cache_size).flush()
    s3.clear_log()
    assert np.array_equal(cached_interface(s3, folder).download_raw_array("bc/a"), arr)
    assert object_gets(s3, "bc/a") == []  # the HEAD alone: every block came from disk
    assert (folder / "blocks" / "index.sqlite").is_file()


def test_a_rewritten_array_is_fetched_again(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "cache"
    cci = cached_interface(s3, folder)
    cci.upload_raw_array("bc/b", np.zeros(2**16), compression=False)
    assert not cci.download_raw_array("bc/b").any()
    shared_blocks(folder, cci.settings.block_cache_size).flush()
    cci.upload_raw_array("bc/b", np.ones(2**16), compression=False)  # same size, new ETag
    s3.clear_log()
    assert cci.download_raw_array("bc/b").all() and object_gets(s3, "bc/b")


def test_without_the_setting_nothing_is_kept(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cci.settings.block_cache_dir is None
    cci.upload_raw_array("bc/c", np.arange(1000.0), compression=False)
    cci.download_raw_array("bc/c")
    s3.clear_log()
    cci.download_raw_array("bc/c")
    assert object_gets(s3, "bc/c")
