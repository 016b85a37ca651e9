"""Slices of ``download_dask_array`` read only what they need of each part (``dask_parts.PartSlices``):
dask fuses the slice into each part's ``getter``; a gzip part of ours is read by the blocks holding the
rows, an uncompressed part by byte ranges, a 0.4.0 gzip part by stretches once its seek points are kept
in the library's cache folder; other parts, and whole parts, are read whole. Bytes are counted in the
local server's log; every value is compared with numpy's."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.formats import zran
from tests.conftest import BUCKET

SHAPE = (4096, 1024)  # 32 MiB of float64: two parts of 16 MiB and 0.4.0's empty last one


def sent(s3, prefix: str) -> int:  # type: ignore[no-untyped-def]
    return sum(r.bytes_sent for r in s3.requests() if r.method == "GET" and r.path.startswith(f"/{BUCKET}/{prefix}"))


def parts(cci, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [k for k in cci.glob(f"{name}/*") if not k.endswith("metadata.json") and cci.store.head(k).size > 2**20]


@pytest.mark.parametrize("compression", [True, False], ids=["gzip", "raw"])
def test_a_slice_reads_only_what_it_needs_of_each_part(s3, compression) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    cci = cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False)
    cci.settings = replace(cci.settings, do_compression=compression)  # options.cfg's [compression] choice
    array = np.random.default_rng(9).standard_normal(SHAPE)
    cci.upload_dask_array("dk", array, axis=0, buffersize=16 * 2**20)
    assert (cci.store.head(parts(cci, "dk")[0]).metadata["compression"] == "gzip") == compression
    assert len(parts(cci, "dk")) == 2
    lazy = cci.download_dask_array("dk")
    # each part touched: gzip, at most 2 blocks of 4 MiB; raw, the rows' bytes
    most = 2 * 4 * 2**20 if compression else 2**20
    reads = [(10, 1), ((slice(2040, 2060), slice(5, 9)), 2), ((slice(2090, 2100, 3), slice(None, None, 7)), 1)]
    for index, touched in reads:  # (index, parts it touches)
        s3.clear_log()
        assert np.array_equal(lazy[index].compute(), array[index])
        assert 0 < sent(s3, "dk/") <= touched * most, (index, sent(s3, "dk/"))
    s3.clear_log()
    assert np.array_equal(lazy.compute(), array)  # whole: every part read whole
    assert sent(s3, "dk/") >= (array.nbytes * 0.9 if compression else array.nbytes)
    assert np.array_equal(lazy[:, 3].sum().compute(), array[:, 3].sum())


def test_a_0_4_0_part_is_read_by_stretches_once_its_points_are_kept(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if not zran.available():
        pytest.skip("libz cannot be loaded here")
    cci = cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False, block_cache_dir=str(tmp_path / "c"))
    array = np.random.default_rng(10).standard_normal(SHAPE)
    cci.upload_dask_array("dk", array, axis=0, buffersize=16 * 2**20)
    for key in parts(cci, "dk"):  # as 0.4.0 stores a part: one GzipFile stream, no index of ours
        info = cci.store.head(key)
        out = io.BytesIO()
        with gzip.GzipFile(mode="wb", fileobj=out, compresslevel=9) as gz:
            gz.write(cci.download_raw_array(key).tobytes())
        cci.store.put(key, out.getvalue(), {k: v for k, v in info.metadata.items() if not k.startswith("cc-")})
    lazy = cci.download_dask_array("dk")
    s3.clear_log()
    assert np.array_equal(lazy[3000].compute(), array[3000])  # no points yet: the part whole
    whole = sent(s3, "dk/")
    assert whole > 15 * 2**20
    assert np.array_equal(lazy.compute(), array)  # whole decodes record the points (the folder is named)
    s3.clear_log()
    assert np.array_equal(lazy[3000].compute(), array[3000])
    by_stretch = sent(s3, "dk/")
    assert by_stretch <= zran.SPAN + 2**20, by_stretch
    print(f"\none row of a 0.4.0 dask part: {whole} B without seek points, {by_stretch} B with them")
