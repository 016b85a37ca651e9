"""Arrays cottoncandy stored, opened in place by the real zarr, xarray and dask.distributed.

Every array kind 0.4.0 wrote (../shared/corpus-0.4.0) and every kind our own writers make must
read back through zarr and through ``xr.open_zarr`` equal to what cottoncandy's own download
gives, lazily: a slice of an uncompressed array fetches only the chunk holding it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("zarr")
xr = pytest.importorskip("xarray")

import dask.array as da  # noqa: E402

from cottoncandy import refs as ccrefs  # noqa: E402
from cottoncandy.formats import pgzip  # noqa: E402
from tests.corpusutil import c_order_sha, load_corpus_into  # noqa: E402
from tests.refs.refsutil import gets_of, zarr_values  # noqa: E402

ARRAY_KINDS = {"raw_array", "npy_array", "dask_array"}


@pytest.fixture
def corpus(cci):  # type: ignore[no-untyped-def]
    expected = load_corpus_into(lambda key, body, meta: cci.store.put(key, body, meta))
    return cci, expected


def downloaded(cci, key: str, kind: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    if kind == "npy_array":
        return cci.download_npy_array(key)
    if kind == "dask_array":
        return cci.download_dask_array(key).compute()
    return cci.download_raw_array(key)


def test_every_corpus_array_reads_through_zarr(corpus) -> None:  # type: ignore[no-untyped-def]
    cci, expected = corpus
    values = zarr_values(ccrefs.open_group(cci))
    checked = 0
    for key, want in expected.items():
        if want["kind"] not in ARRAY_KINDS:
            continue
        got, ours = values.pop(key), downloaded(cci, key, want["kind"])
        assert got.dtype == ours.dtype and got.shape == ours.shape and np.array_equal(got, ours), key
        assert c_order_sha(got) == want["sha256_c_order"], key
        checked += 1
    assert checked == 34  # every raw, npy and dask value; sparse values below
    # sparse matrices: a group of their raw parts, the matrix type in its attributes
    group = ccrefs.open_group(cci, "sparse")
    assert dict(group["csr"].attrs) == {"cottoncandy_sparse": "csr", "shape": [12, 9]}
    for path in list(values):
        if path.startswith("sparse/"):
            assert np.array_equal(values.pop(path), cci.download_raw_array(path)), path
    assert values == {}, sorted(values)


def test_every_corpus_folder_opens_in_xarray_lazily(corpus) -> None:  # type: ignore[no-untyped-def]
    cci, expected = corpus
    store = ccrefs.zarr_store(cci)
    folders = sorted({key.rpartition("/")[0] for key, want in expected.items() if want["kind"] in ARRAY_KINDS})
    seen = 0
    for folder in folders:
        ds = xr.open_zarr(store, group=folder, consolidated=True, zarr_format=2)
        for name, var in ds.data_vars.items():
            key = f"{folder}/{name}"
            if var.ndim:
                assert isinstance(var.data, da.Array), key
            ours = downloaded(cci, key, expected[key]["kind"])
            assert var.shape == ours.shape and np.array_equal(var.values, ours), key
            seen += 1
    assert seen == 34
    # the same through engine='zarr' and through cottoncandy's own helper
    ds = xr.open_dataset(store, engine="zarr", group="raw/compression", chunks={}, consolidated=True,
                         zarr_format=2)
    assert isinstance(ds["Zstd"].data, da.Array) and np.array_equal(ds["Zstd"].values,
                                                                   cci.download_raw_array("raw/compression/Zstd"))
    ds = ccrefs.open_dataset(cci, "dask")
    ours = cci.download_dask_array("dask/last_axis")[:, 5, 1400:].compute()
    assert np.array_equal(ds["last_axis"][:, 5, 1400:].values, ours)  # the padded edge part, read in-process


def test_every_kind_our_writers_make(cci, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(7)
    arr = rng.random((60, 40))
    ints = np.arange(8 * 120 * 1500, dtype="<i8").reshape(8, 120, 1500)
    small = (np.arange(20 * 2**19) % 251).astype(np.uint8).reshape(20, 2**19)  # 10 MiB: parts [10, 10, 0]
    with monkeypatch.context() as patch:
        patch.setattr(pgzip, "DEFAULT_BLOCK", 4096)  # our block-indexed gzip body, in several blocks
        for codec in (False, "gzip", "LZ4", "Zstd", "Zlib", "BZ2", "lzma"):
            cci.upload_raw_array(f"ours/raw/{codec}", arr, compression=codec)
        index = cci.store.head("ours/raw/gzip").metadata[pgzip.INDEX_KEY]
        assert pgzip.parse_metadata_value(index, arr.nbytes)[1] > 1
    cci.upload_raw_array("ours/raw/strings", np.array(["ab", "cde"]), compression=False)
    cci.upload_raw_array("ours/raw/records", np.zeros(3, dtype=[("x", "<f4"), ("n", "<i2")]), compression=False)
    cci.upload_npy_array("ours/npy/a.npy", arr)
    cci.upload_dask_array("ours/dask/first", small, axis=0, buffersize=5 * 2**20)
    cci.upload_dask_array("ours/dask/last", ints, axis=-1, buffersize=5 * 2**20)
    cci.dict2cloud("ours/tree.grp", {"w": np.eye(3), "sub": {"labels": np.arange(4)}})
    fortran = np.asfortranarray(arr[:10, :6])  # 0.4.0 reads ``order: F`` bodies; describe them as such
    cci.store.put("ours/raw/fortran", memoryview(fortran.tobytes(order="F")),
                  {"dtype": "<f8", "shape": "10,6", "compression": "False", "order": "F"})
    values = zarr_values(ccrefs.open_group(cci, "ours", chunk_bytes=4096))
    for key, got in values.items():
        full = f"ours/{key}"
        if key.startswith("dask/"):
            ours = cci.download_dask_array(full).compute()
        elif key.endswith(".npy"):
            ours = cci.download_npy_array(full)
        else:
            ours = cci.download_raw_array(full)
        assert got.dtype == ours.dtype and np.array_equal(got, ours), key
    assert sorted(values) == ["dask/first", "dask/last", "npy/a.npy", *sorted(
        f"raw/{c}" for c in ("False", "gzip", "LZ4", "Zstd", "Zlib", "BZ2", "lzma", "strings", "records", "fortran")),
        "tree.grp/sub/labels", "tree.grp/w"]
    assert np.array_equal(values["raw/fortran"], fortran)
    assert values["raw/records"].dtype.names == ("x", "n")
    ds = ccrefs.open_dataset(cci, "ours/raw", chunk_bytes=4096)
    assert ds["False"].data.chunks == ((12,) * 5, (40,))  # slabs of whole rows by byte range, 12 x 320 B
    assert np.array_equal(ds["fortran"].values, fortran)


def test_a_slice_reads_only_its_chunk(s3, cci) -> None:  # type: ignore[no-untyped-def]
    arr = np.arange(2000 * 100, dtype="<f8").reshape(2000, 100)
    cci.upload_raw_array("lazy/x", arr, compression=False)
    ds = ccrefs.open_dataset(cci, "lazy", chunk_bytes=64 * 2**10)
    s3.clear_log()
    assert np.array_equal(ds["x"][1000:1010].values, arr[1000:1010])
    gets = gets_of(s3, "/lazy/x")
    moved = sum(r.bytes_sent for r in gets)
    chunk = 80 * 100 * 8  # 80 rows: the largest divisor of 2000 within 64 KiB
    assert gets and all(r.range for r in gets), gets
    assert moved == chunk, (moved, gets)
    assert moved * 25 == arr.nbytes


def test_a_whole_object_chunk_is_one_get(s3, cci) -> None:  # type: ignore[no-untyped-def]
    arr = np.arange(30_000, dtype="<f8").reshape(300, 100)
    cci.upload_raw_array("whole/z", arr, compression="Zstd")  # a compressed array is one chunk: its whole body
    ds = ccrefs.open_dataset(cci, "whole")
    s3.clear_log()
    assert np.array_equal(ds["z"][5].values, arr[5])
    sent = [r for r in s3.requests(at_least=1) if "/whole/z" in r.path]
    assert [r.method for r in sent] == ["GET"], sent  # the size described: no HEAD before it
    assert sent[0].bytes_sent == cci.store.head("whole/z").size
    cci.upload_raw_array("whole/z", arr + 1, compression="Zstd")  # same size, another version
    with pytest.raises(Exception, match="whole/z"):
        ds["z"][5].load()


def test_reads_are_pinned_to_the_version_described(cci) -> None:  # type: ignore[no-untyped-def]
    cci.upload_raw_array("pin/x", np.arange(10.0), compression=False)
    group = ccrefs.open_group(cci, "pin")
    cci.upload_raw_array("pin/x", np.arange(10.0) + 1, compression=False)
    with pytest.raises(Exception, match="pin/x") as caught:
        group["x"][...]
    chain = [caught.value, *iter(lambda e=[caught.value]: (e.append(e[-1].__cause__) or e[-1]) if e[-1].__cause__
                                 else None, None)]
    assert any(isinstance(e, OSError) for e in chain), chain


def test_a_distributed_cluster_computes_over_it(cci, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed")
    arr = np.arange(600 * 50, dtype="<i8").reshape(600, 50)
    cci.upload_raw_array("dist/x", arr, compression=False)
    cci.upload_raw_array("dist/z", arr * 2, compression="Zstd")
    ds = ccrefs.open_dataset(cci, "dist", chunk_bytes=32 * 2**10)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address="127.0.0.1:0", worker_dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        total = client.compute((ds["x"] + ds["z"].data.sum()).sum().data).result(timeout=120)
        pids = set(client.run(os.getpid).values())
    assert total == arr.sum() + arr.size * (2 * arr.sum())
    assert pids and os.getpid() not in pids
