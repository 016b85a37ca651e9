"""upload_dask_array streams each part from the caller's array: no part is ever copied whole.

Memory is measured with ``tracemalloc``, which numpy reports its data buffers to, so the test
counts bytes allocated, not time: before the fix each part in flight was first copied by
``np.ascontiguousarray`` (a slab along the last axis is strided), a whole part per thread.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from collections.abc import Iterator

import boto3
import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.arrays import chunked
from cottoncandy.arrays.raw import write_raw_array
from cottoncandy.formats import pgzip
from cottoncandy.testing.s3server import free_port

MB = 2**20


def compressible(rows: int, cols: int) -> np.ndarray:
    """float32 data that gzip shrinks a lot, so the compressed stream itself stays small."""
    return np.tile(np.arange(cols, dtype="<f4") % 97, (rows, 1))


def traced_peak(fn) -> int:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.fixture(scope="module")
def outside_endpoint() -> Iterator[str]:
    """A local S3 server in its own process: tracemalloc then counts the client's memory only."""
    server = subprocess.Popen([sys.executable, "-m", "cottoncandy.testing.s3server", "--port", str(free_port())],
                              stdout=subprocess.PIPE, text=True)
    try:
        endpoint = server.stdout.readline().strip()  # type: ignore[union-attr]
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket="streaming")
        yield endpoint
    finally:
        server.terminate()
        server.wait()


def test_strided_parts_upload_without_a_whole_copy(outside_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", MB)
    cci = cc.get_interface("streaming", endpoint_url=outside_endpoint, ACCESS_KEY="testing", SECRET_KEY="testing",
                           verbose=False)
    cci.upload_raw_array("warm", np.zeros(10))  # clients, pools and imports made before measuring
    arr = compressible(2048, 4096)  # 32 MiB; parts along the last axis are strided slabs of 16 MiB
    peak = traced_peak(lambda: cci.upload_dask_array("stream/x", arr, axis=-1, buffersize=16 * MB, threads=1))
    assert peak < 16 * MB, f"upload held {peak / MB:.1f} MiB at once (a part is 16 MiB)"
    meta = cci.download_json("stream/x/metadata.json")
    assert meta["chunks"][1][0] < 4096 and cci.get_metadata("stream/x/pt0000")["compression"] == "gzip"
    assert np.array_equal(cci.download_dask_array("stream/x").compute(), arr)


@pytest.mark.parametrize("compression", [False, "gzip", "Zlib"])
def test_a_strided_part_reads_back_with_every_codec_kind(any_cci, compression: object) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    part = rng.standard_normal((6, 300, 1100)).astype("<f4")[:, 10:290, 100:1000]  # as a dask task gets it
    write_raw_array(any_cci.store, "stream/part", part, compression, strided=True)
    back = any_cci.download_raw_array("stream/part")
    assert back.flags.c_contiguous and np.array_equal(back, part)


@pytest.mark.parametrize("axis", [-1, 1, None])
def test_strided_parts_of_several_in_flight_read_back(any_cci, axis: int | None) -> None:  # type: ignore[no-untyped-def]
    arr = np.random.default_rng(4).standard_normal((6, 300, 1100)).astype("<f4")  # parts of ~5 MiB
    any_cci.upload_dask_array("stream/y", arr, axis=axis, buffersize=5 * MB, threads=3)
    assert np.array_equal(any_cci.download_dask_array("stream/y").compute(), arr)


def test_parts_in_flight_stay_within_the_budget() -> None:
    assert chunked.parts_in_flight(100 * MB, 4) == 1
    assert chunked.parts_in_flight(5 * MB, 4) >= 2
    assert chunked.parts_in_flight(5 * MB, 1) == 1
    assert chunked.parts_in_flight(0, 4) == 4
