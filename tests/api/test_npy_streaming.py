"""upload_npy_array/download_npy_array move exactly np.save's bytes without a second copy of the array.

The upload streams the header and then the array's own memory in parts; the download reads the
header with the object's first bytes (one request, which also pins the version) and fills a new
array straight from ranged GETs. Memory is counted with ``tracemalloc`` (numpy reports its data
buffers to it) against a server in its own process, so only the client's allocations count.
"""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.arrays.npy_files import npy_bytes
from cottoncandy.formats.npy import npy_header
from cottoncandy.formats.raw import ArraySpec
from cottoncandy.storage.s3 import STREAM_IN_FLIGHT
from tests.api.test_dask_streaming import outside_endpoint  # noqa: F401 - the fixture

MB = 2**20

ARRAYS: dict[str, Callable[[], np.ndarray]] = {
    "c": lambda: np.arange(24, dtype="<f8").reshape(4, 6),
    "fortran": lambda: np.asfortranarray(np.arange(60, dtype="<i4").reshape(3, 4, 5)),
    "strided": lambda: np.arange(100, dtype="<i2").reshape(10, 10)[::2, 1::3],
    "transposed-strided": lambda: np.arange(120, dtype=">u4").reshape(10, 12).T[::3],
    "0-d": lambda: np.array(3.5),
    "empty": lambda: np.zeros((0, 7), dtype="<c8"),
    "records": lambda: np.array([(1, 2.0), (3, 4.0)], dtype=[("n", "<i4"), ("x", "<f8")]),
    "datetime": lambda: np.array(["2026-12-01", "1999-01-01"], dtype="datetime64[D]"),
    "bool": lambda: np.array([[True, False, True]]),
    "long header": lambda: np.zeros((1,) * 30, dtype="<f4"),
}


def np_save_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=False)
    return out.getvalue()


@pytest.mark.parametrize("kind", ARRAYS)
def test_the_bytes_are_np_saves(kind: str) -> None:
    array = ARRAYS[kind]()
    header, data = npy_bytes(array)
    assert header + bytes(data) == np_save_bytes(array)


@pytest.mark.parametrize("kind", ARRAYS)
def test_round_trip_stores_np_saves_bytes(any_cci, kind: str) -> None:  # type: ignore[no-untyped-def]
    array = ARRAYS[kind]()
    any_cci.upload_npy_array(f"npy/{kind}", array, subject="s01")
    assert any_cci.download_object(f"npy/{kind}") == np_save_bytes(array)
    back = any_cci.download_npy_array(f"npy/{kind}")
    assert back.dtype == array.dtype and back.shape == array.shape and np.array_equal(back, array)
    assert any_cci.get_metadata(f"npy/{kind}")["subject"] == "s01"


def traced_peak(fn: Callable[[], Any]) -> tuple[int, Any]:
    tracemalloc.start()
    try:
        result = fn()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def test_big_arrays_move_without_a_second_copy(outside_endpoint: str) -> None:  # noqa: F811
    cci = cc.get_interface("streaming", endpoint_url=outside_endpoint, ACCESS_KEY="testing", SECRET_KEY="testing",
                           verbose=False)
    cci.upload_npy_array("warm", np.zeros(10))  # clients, pools and imports made before measuring
    cci.download_npy_array("warm")
    array = np.random.default_rng(0).random((2048, 8192), dtype=np.float32)  # 64 MiB
    peak, _ = traced_peak(lambda: cci.upload_npy_array("npy/big", array))
    # a few 5 MiB parts, whatever the array's size (np.save into memory held all 64 MiB again): the
    # held first part, the one being filled and STREAM_IN_FLIGHT (4) being sent
    assert peak < (2 + STREAM_IN_FLIGHT) * 5 * MB + 8 * MB, f"upload held {peak / MB:.1f} MiB beyond a 64 MiB array"
    peak, back = traced_peak(lambda: cci.download_npy_array("npy/big"))
    assert np.array_equal(back, array)
    assert peak < array.nbytes + 2 * MB, f"download held {(peak - array.nbytes) / MB:.1f} MiB beyond the array"


def test_a_small_array_downloads_with_one_request(s3, cci) -> None:  # type: ignore[no-untyped-def]
    array = np.arange(1000, dtype="<f8")
    cci.upload_npy_array("npy/small", array)
    s3.clear_log()
    assert np.array_equal(cci.download_npy_array("npy/small"), array)
    assert [r.method for r in s3.requests(at_least=1) if "/npy/small" in r.path] == ["GET"]


def test_a_forged_header_fails_before_allocating(cci) -> None:  # type: ignore[no-untyped-def]
    header = npy_header(ArraySpec(dtype=np.dtype("<f8"), shape=(10**6, 10**6), order="C"))  # claims 7.3 TiB
    cci.upload_object("npy/forged", io.BytesIO(header + b"\0" * 64))
    with pytest.raises(ValueError, match="npy/forged.*truncated or forged"):
        cci.download_npy_array("npy/forged")


@pytest.mark.parametrize("body", [b"", b"not numpy at all", np_save_bytes(np.arange(3))[:20]])
def test_what_is_not_npy_is_named(cci, body: bytes) -> None:  # type: ignore[no-untyped-def]
    cci.upload_object("npy/other", io.BytesIO(body))
    with pytest.raises(ValueError, match="npy/other"):
        cci.download_npy_array("npy/other")


def test_a_raw_download_fetches_each_byte_once(s3, cci) -> None:  # type: ignore[no-untyped-def]
    array = np.arange(300_000, dtype="<f8")  # 2.4 MB: more than the first request brings
    cci.upload_raw_array("raw/big", array, compression=False)
    s3.clear_log()
    assert np.array_equal(cci.download_raw_array("raw/big"), array)
    sent = [r for r in s3.requests(at_least=2) if "/raw/big" in r.path]
    assert all(r.method == "GET" for r in sent), sent  # the first GET brought the metadata: no HEAD
    assert sum(r.bytes_sent for r in sent) == array.nbytes, sent  # its first bytes are not fetched again
