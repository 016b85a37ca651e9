"""download_dask_array(...).compute() on a local scheduler: every part decoded straight into one result.

dask's own compute holds every part and then concatenates them into a new array (parts + result:
twice the array). The array ``download_dask_array`` returns fills one result instead, so these tests
check (1) the values are exactly the graph's, for every split axis, codec, stored order and dtype;
(2) the peak memory beyond the result is about one part, not the whole array; (3) anything that is
not a whole compute on a local scheduler still runs dask's graph; (4) the ETag pinning holds.
"""

from __future__ import annotations

import errno
import io
import threading
import tracemalloc

import dask
import dask.array as da
import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.arrays import dask_parts
from cottoncandy.formats.raw import ArraySpec, metadata_from_spec
from tests.api.test_dask_streaming import outside_endpoint  # noqa: F401 - the fixture

MB = 2**20


@pytest.fixture
def fills(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts whole-array fills (the fast path) as they happen."""
    calls: list[int] = []
    real = dask_parts.fill_parts

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(dask_parts, "fill_parts", counted)
    return calls


def graph_compute(x: da.Array) -> np.ndarray:
    """The same graph computed by dask's own machinery (a plain Array over it)."""
    return np.asarray(dask.compute(da.Array(x.dask, x.name, x.chunks, dtype=x.dtype))[0])


def sample(shape: tuple[int, ...], dtype: str = "<f4", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 1000, shape).astype(dtype)


@pytest.mark.parametrize("compression", [True, False, "Zstd"])
@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_whole_compute_fills_one_result_equal_to_the_graph(any_cci, fills: list[int], axis: int | None,  # type: ignore[no-untyped-def]
                                                           compression: object) -> None:
    arr = sample((600, 512, 10))  # 12 MiB: 3 parts of at most 5 MiB (S3's smallest multipart part)
    any_cci.upload_dask_array("d/x", arr, axis=axis, buffersize=5 * MB, compression=compression)
    x = any_cci.download_dask_array("d/x")
    assert isinstance(x, da.Array) and len(x.dask) > 2  # several parts
    got = x.compute()
    assert fills == [1]
    assert got.flags.c_contiguous and got.dtype == arr.dtype and np.array_equal(got, arr)
    assert np.array_equal(np.asarray(x), arr) and fills == [1, 1]  # np.asarray goes through compute()
    assert np.array_equal(graph_compute(x), arr) and len(fills) == 2


def test_records_and_fortran_parts(any_cci, fills: list[int]) -> None:  # type: ignore[no-untyped-def]
    """A part stored F-ordered (0.4.0 kept a Fortran array's order) goes through one temporary part;
    record dtypes fill byte for byte."""
    rec = np.zeros((100_000, 6), dtype=[("a", "<i4"), ("b", "<f8"), ("c", "S3")])
    rec["a"] = np.arange(600_000).reshape(100_000, 6)
    rec["b"] = rec["a"] * 0.5
    rec["c"] = b"xyz"
    any_cci.upload_dask_array("d/rec", rec, axis=0, buffersize=5 * MB)
    assert np.array_equal(any_cci.download_dask_array("d/rec").compute(), rec)

    arr = sample((2000, 1000), dtype="<i8", seed=3)
    any_cci.upload_dask_array("d/f", arr, axis=1, buffersize=5 * MB)
    parts = sorted(k for k in any_cci.glob("d/f/*") if not k.endswith("metadata.json"))
    assert len(parts) >= 2
    middle = any_cci.download_raw_array(parts[1])
    spec = ArraySpec(dtype=middle.dtype, shape=middle.shape, order="F", compression=None)
    any_cci.store.put(parts[1], middle.T.tobytes(), metadata_from_spec(spec))  # 0.4.0 stored F arrays so
    assert any_cci.get_metadata(parts[1])["order"] == "F"
    x = any_cci.download_dask_array("d/f")
    assert np.array_equal(x.compute(), arr) and fills == [1, 1]
    assert np.array_equal(graph_compute(x), arr)


def test_other_computes_run_the_graph(cci, fills: list[int]) -> None:  # type: ignore[no-untyped-def]
    arr = sample((3000, 1024), seed=1)
    cci.upload_dask_array("d/g", arr, axis=0, buffersize=5 * MB)
    x = cci.download_dask_array("d/g")
    assert np.array_equal(x[10:200:3].compute(), arr[10:200:3])  # an expression: a plain dask Array
    assert np.array_equal((x + 1).sum(axis=0).compute(), (arr + 1).sum(axis=0))
    assert np.array_equal(dask.compute(x)[0], arr)  # dask.compute: the graph
    assert fills == []
    assert np.array_equal(x.compute(scheduler="sync"), arr) and fills == [1]
    assert np.array_equal(x.compute(scheduler="threads", num_workers=1), arr) and fills == [1, 1]
    with dask.config.set(scheduler="sync"):
        assert np.array_equal(x.compute(), arr) and fills == [1, 1, 1]


def test_a_part_replaced_after_opening_fails_stale(cci) -> None:  # type: ignore[no-untyped-def]
    arr = sample((3000, 1024), seed=2)
    cci.upload_dask_array("d/s", arr, axis=0, buffersize=5 * MB)
    x = cci.download_dask_array("d/s")
    part = sorted(k for k in cci.glob("d/s/*") if not k.endswith("metadata.json"))[1]
    cci.upload_raw_array(part, cci.download_raw_array(part) + 1)
    with pytest.raises(OSError) as info:
        x.compute()
    assert info.value.errno == errno.ESTALE and part in str(info.value)


@pytest.mark.parametrize("axis", [0, -1])
def test_peak_memory_is_about_one_part_beyond_the_result(outside_endpoint: str, axis: int) -> None:  # noqa: F811
    """48 MiB in 8 parts: dask's concatenation held every part beside the result (twice the array at
    its peak); the fill holds the result plus what a part's download holds."""
    cci = cc.get_interface("streaming", endpoint_url=outside_endpoint, ACCESS_KEY="testing", SECRET_KEY="testing",
                           verbose=False)
    arr = np.tile(np.arange(1024, dtype="<f4") % 97, (12288, 1))  # 48 MiB that gzip shrinks a lot
    cci.upload_dask_array("m/x", arr, axis=axis, buffersize=6 * MB)
    x = cci.download_dask_array("m/x")
    assert len(x.dask) >= 8
    x[:1, :1].compute()  # imports, clients and pools made before measuring
    tracemalloc.start()
    try:
        got = x.compute()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(got, arr)
    extra = peak - arr.nbytes
    assert extra < 30 * MB, f"{extra / MB:.1f} MiB beyond the result"  # measured 12-20
    tracemalloc.start()
    try:
        assert np.array_equal(graph_compute(x), arr)
        graph_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert graph_peak - arr.nbytes > 40 * MB  # measured 48; what the fill saves: dask held the parts beside the result


def test_item_assignment_then_compute_runs_the_graph(cci, fills: list[int]) -> None:  # type: ignore[no-untyped-def]
    """``x[0] = 5`` rewrites the array in place (a new name): the fill would return the stored values."""
    arr = sample((3000, 1024), seed=4)
    cci.upload_dask_array("d/set", arr, axis=0, buffersize=5 * MB)
    x = cci.download_dask_array("d/set")
    x[0] = 5
    expected = arr.copy()
    expected[0] = 5
    assert np.array_equal(x.compute(), expected) and fills == []


def test_diagnostics_and_the_sync_scheduler(cci, fills: list[int], monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """A ProgressBar watches dask's tasks: dask runs them. The synchronous scheduler (chosen to debug on
    one thread) fills on the calling thread."""
    from dask.diagnostics import ProgressBar

    arr = sample((3000, 1024), seed=5)
    cci.upload_dask_array("d/diag", arr, axis=0, buffersize=5 * MB)
    x = cci.download_dask_array("d/diag")
    with ProgressBar(out=io.StringIO()):
        assert np.array_equal(x.compute(), arr)
    assert fills == []
    threads: list[str] = []
    real = dask_parts.load_part_into

    def recorded(ref, slot):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return real(ref, slot)

    monkeypatch.setattr(dask_parts, "load_part_into", recorded)
    assert np.array_equal(x.compute(scheduler="sync"), arr) and fills == [1]
    assert len(threads) == x.npartitions and set(threads) == {threading.current_thread().name}


@pytest.mark.parametrize("compression", [True, False, "Zstd"])
def test_a_damaged_part_fails_naming_it(cci, compression: object) -> None:  # type: ignore[no-untyped-def]
    arr = sample((3000, 1024), seed=6)
    cci.upload_dask_array("d/bad", arr, axis=1, buffersize=5 * MB, compression=compression)
    part = sorted(k for k in cci.glob("d/bad/*") if not k.endswith("metadata.json"))[1]
    info = cci.store.head(part)
    body = bytearray(cci.store.get(part))
    body[len(body) // 2 : len(body) // 2 + 64] = b"\xff" * 64  # same size, damaged middle
    if compression is False:
        del body[-8:]  # an uncompressed body can only be damaged detectably by its size
    cci.store.put(part, bytes(body), info.metadata)
    x = cci.download_dask_array("d/bad")
    with pytest.raises(ValueError, match=part):
        x.compute()
