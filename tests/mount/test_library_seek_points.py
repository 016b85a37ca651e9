"""Seek points recorded by the library's decodes (``gzip_points.recorded_download``): with a cache
folder named for the library (``get_interface(block_cache_dir=...)``), ``download_raw_array`` and a
dask part's download of a 0.4.0 gzip array record its points in that folder's ``metadata/``, and a
mount with ``--cache-dir`` of the same folder reads a row of it by stretches on its first open.
Without a named folder the library writes nothing. GETs are counted in the local server's log."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.cache.seek_index import FILENAME
from cottoncandy.formats import zran
from tests.conftest import BUCKET
from tests.mount.test_gzip_seek_points import KEY, args, upload_040
from tests.mountutil import mounted, needs_fuse, read_ahead_settled

pytestmark = [pytest.mark.skipif(not zran.available(), reason="libz cannot be loaded here")]


def with_folder(s3, folder: Path):  # type: ignore[no-untyped-def]
    return cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False, block_cache_dir=str(folder))


@needs_fuse
@pytest.mark.fuse
def test_a_download_records_points_a_mount_of_the_folder_reads(cci, s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    array = upload_040(cci)
    body_size = cci.store.head(KEY).size
    folder = tmp_path / "cache"
    assert np.array_equal(with_folder(s3, folder).download_raw_array(KEY), array)
    assert (folder / "metadata" / FILENAME).is_file()
    s3.clear_log()
    assert np.array_equal(with_folder(s3, folder).download_raw_array(KEY), array)  # kept: not recorded again
    s3.clear_log()
    with mounted(BUCKET, tmp_path, *args(cci, folder)) as m:  # the mount's first open: by stretches
        assert np.array_equal(np.array(np.load(m / f"{KEY}.npy", mmap_mode="r")[2000]), array[2000])
        read_ahead_settled(s3, folder)  # the stretches fetched ahead are counted too
        hits = [r for r in s3.requests() if r.method == "GET" and r.path == f"/{BUCKET}/{KEY}"]
    # ranged GETs of stretches (what read-ahead adds is stretches too), never the whole-body decode's GET
    assert hits and all(r.range is not None and r.range != f"bytes=0-{body_size - 1}" for r in hits), hits
    assert hits[0].bytes_sent <= zran.SPAN and sum(r.bytes_sent for r in hits) <= body_size


def test_without_a_named_folder_the_library_records_nothing(cci, s3, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    array = upload_040(cci)
    assert np.array_equal(cci.download_raw_array(KEY), array)
    assert not list((tmp_path / "home-cache").rglob(FILENAME))


def test_a_dask_part_download_records_its_points(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cottoncandy.arrays.gzip_points import library_shelf
    from cottoncandy.cache.identity import object_identity

    folder = tmp_path / "cache"
    cci = with_folder(s3, folder)
    array = np.random.default_rng(8).standard_normal((4096, 1024))  # 32 MiB: two parts of 16 MiB
    cci.upload_dask_array("dk", array, axis=0, buffersize=16 * 2**20)
    part_keys = [k for k in cci.glob("dk/*") if not k.endswith("metadata.json") and cci.store.head(k).size > 2**20]
    assert len(part_keys) == 2  # and 0.4.0's empty last part
    for key in part_keys:  # as 0.4.0 stores a part: one GzipFile stream, no index of ours
        values = cci.download_raw_array(key)
        out = io.BytesIO()
        with gzip.GzipFile(mode="wb", fileobj=out, compresslevel=9) as gz:
            gz.write(values.tobytes())
        info = cci.store.head(key)
        cci.store.put(key, out.getvalue(), {k: v for k, v in info.metadata.items() if not k.startswith("cc-")})
    shelf = library_shelf(cci.store)
    assert shelf is not None
    infos = [cci.store.head(key) for key in part_keys]
    assert not any(shelf.holds(object_identity(cci.store, i.key), i.etag, i.size) for i in infos)
    assert np.array_equal(cci.download_dask_array("dk").compute(), array)
    assert all(shelf.holds(object_identity(cci.store, i.key), i.etag, i.size) for i in infos)
