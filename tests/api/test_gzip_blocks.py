"""Default (gzip) uploads compressed in parallel and streamed; indexed bodies inflated in parallel.

Over the real local S3 server (and the local and memory stores for the spooling fallback): round
trips of many shapes, the body as standard gzip, the first part sent last, bounded memory measured in
a child process, fallbacks for bodies without a usable index, and an aborted upload on failure.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import time
import zlib
from typing import Any

import boto3
import numpy as np
import pytest

import cottoncandy.arrays.gzip_blocks as gzip_blocks
import cottoncandy.arrays.raw as raw
from cottoncandy.arrays.raw import read_raw_array, write_raw_array
from cottoncandy.config import Settings
from cottoncandy.formats import pgzip
from cottoncandy.storage import LocalStore, MemoryStore, S3Account
from cottoncandy.storage.s3 import S3Store
from tests.conftest import BUCKET

SMALL_BLOCK = 64 * 2**10


@pytest.fixture
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", SMALL_BLOCK)
    return SMALL_BLOCK


def client_for(s3: Any) -> Any:
    return boto3.client("s3", endpoint_url=s3.endpoint_url, region_name="us-east-1")


def c_bytes(arr: np.ndarray) -> bytes:
    return np.ascontiguousarray(arr).tobytes()


rng = np.random.default_rng(7)
ARRAYS = {
    "empty": np.zeros((0, 3)),
    "scalar": np.array(3.5),
    "tiny": np.arange(5, dtype="<i2"),
    "one_block": rng.integers(0, 9, SMALL_BLOCK, dtype=np.uint8),
    "one_block_plus_one": rng.integers(0, 9, SMALL_BLOCK + 1, dtype=np.uint8),
    "many_blocks_f4": np.cumsum(rng.standard_normal((300, 200)), axis=0).astype("<f4"),
    "many_blocks_big_endian": np.arange(100_000, dtype=">i4").reshape(400, 250),
    "fortran": np.asfortranarray(rng.random((150, 120))),
    "noncontiguous": rng.random((300, 400))[:, ::3],
    "complex": (rng.random(20_000) + 1j).astype("<c16"),
    "strings": np.array(["ab", "cde"] * 10_000),
}


@pytest.mark.filterwarnings("ignore:.*not C-contiguous:UserWarning")
@pytest.mark.parametrize("name", list(ARRAYS))
def test_round_trip_and_standard_gzip_body(cci: Any, s3: Any, small_blocks: int, name: str) -> None:
    arr = ARRAYS[name]
    cci.upload_raw_array("a", arr)
    obj = client_for(s3).get_object(Bucket=BUCKET, Key="a")
    body, meta = obj["Body"].read(), {k.lower(): v for k, v in obj["Metadata"].items()}
    assert meta["compression"] == "gzip" and meta["order"] == "C"
    assert gzip.decompress(body) == c_bytes(arr)  # standard gzip tools read it
    z = zlib.decompressobj(16 + zlib.MAX_WBITS)  # 0.4.0's reader: one decompressobj, first member only
    assert z.decompress(body) == c_bytes(arr) and z.eof and not z.unused_data
    row = arr.nbytes // arr.shape[0] if arr.ndim and arr.nbytes else 0  # blocks hold whole rows
    block = pgzip.row_block_size(arr.nbytes, row)
    assert block % small_blocks == 0 or (block % row == 0 and small_blocks <= block < small_blocks + row)
    assert meta[pgzip.INDEX_KEY] == f"{pgzip.INDEX_VERSION}:{block}:{max(1, -(-arr.nbytes // block))}"
    assert pgzip.INDEX_KEY not in cci.download_stream("a").metadata  # the API shows 0.4.0's keys only
    back = cci.download_raw_array("a")
    assert back.dtype == arr.dtype and back.shape == arr.shape and c_bytes(back) == c_bytes(arr)


def logged_gets(s3: Any, expected: int) -> list[Any]:
    """The server's GETs; it logs a request once its body is sent, which can trail the client, so
    wait (up to 10 s) until ``expected`` are there, then settle briefly for any extra ones."""
    deadline = time.monotonic() + 10
    while len([r for r in s3.requests() if r.method == "GET"]) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    return [r for r in s3.requests() if r.method == "GET"]


def test_many_blocks_read_by_ranges_in_parallel(cci: Any, s3: Any, small_blocks: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    arr = ARRAYS["many_blocks_f4"]
    cci.upload_raw_array("a", arr)
    s3.clear_log()

    def no_serial(*args: object, **kwargs: object) -> None:
        raise AssertionError("the indexed body was read serially")

    monkeypatch.setattr(type(cci.store), "open_read", no_serial)
    monkeypatch.setattr(raw, "FIRST_READ", 4096)  # the body would fit in the first request: read whole
    assert c_bytes(cci.download_raw_array("a")) == c_bytes(arr)
    count = -(-arr.nbytes // pgzip.row_block_size(arr.nbytes, arr.nbytes // arr.shape[0]))
    gets = logged_gets(s3, count + 2)
    # the first request (metadata and the first bytes), the header, then one range per block
    assert len(gets) == count + 2 and all(r.range for r in gets)


def test_old_single_stream_gzip_without_index_still_reads(cci: Any, s3: Any) -> None:
    arr = np.arange(50_000, dtype="<f8")
    client_for(s3).put_object(Bucket=BUCKET, Key="old", Body=gzip.compress(arr.tobytes(), 9),
                              Metadata={"dtype": "<f8", "shape": "50000", "compression": "gzip", "order": "C"})
    assert np.array_equal(cci.download_raw_array("old"), arr)


def put_forged(s3: Any, key: str, body: bytes, arr: np.ndarray, index: str) -> None:
    client_for(s3).put_object(Bucket=BUCKET, Key=key, Body=body, Metadata={
        "dtype": arr.dtype.str, "shape": ",".join(map(str, arr.shape)), "compression": "gzip", "order": "C",
        pgzip.INDEX_KEY: index})


def our_body(s3: Any, cci: Any, arr: np.ndarray) -> tuple[bytes, str]:
    cci.upload_raw_array("src", arr)
    obj = client_for(s3).get_object(Bucket=BUCKET, Key="src")
    return obj["Body"].read(), {k.lower(): v for k, v in obj["Metadata"].items()}[pgzip.INDEX_KEY]


def shift_first_cut(body: bytes) -> bytes:
    head = bytearray(body)
    first = int.from_bytes(head[pgzip.HEADER_FIXED : pgzip.HEADER_FIXED + 4], "little")
    second = int.from_bytes(head[pgzip.HEADER_FIXED + 4 : pgzip.HEADER_FIXED + 8], "little")
    head[pgzip.HEADER_FIXED : pgzip.HEADER_FIXED + 4] = (first + 7).to_bytes(4, "little")
    head[pgzip.HEADER_FIXED + 4 : pgzip.HEADER_FIXED + 8] = (second - 7).to_bytes(4, "little")
    return bytes(head)


@pytest.mark.parametrize("forgery", ["key_on_plain_gzip", "count_off", "huge_block", "shifted_cuts", "garbage"])
def test_unusable_index_falls_back_to_the_serial_reader(cci: Any, s3: Any, small_blocks: int,
                                                        forgery: str) -> None:
    arr = ARRAYS["many_blocks_f4"]
    body, index = our_body(s3, cci, arr)
    count = int(index.split(":")[2])
    if forgery == "key_on_plain_gzip":
        body = gzip.compress(arr.tobytes())
    elif forgery == "count_off":
        index = f"1:{small_blocks}:{count + 1}"
    elif forgery == "huge_block":
        index = f"1:{arr.nbytes}:1"
    elif forgery == "shifted_cuts":
        body = shift_first_cut(body)
    else:
        index = "x" * 500
    put_forged(s3, "forged", body, arr, index)
    assert c_bytes(cci.download_raw_array("forged")) == c_bytes(arr)


def test_damaged_indexed_body_is_a_clear_error(cci: Any, s3: Any, small_blocks: int) -> None:
    arr = ARRAYS["many_blocks_f4"]
    body, index = our_body(s3, cci, arr)
    broken = bytearray(body)
    broken[len(body) // 2] ^= 0xFF
    put_forged(s3, "broken", bytes(broken), arr, index)
    with pytest.raises(ValueError, match="broken.*gzip body"):
        cci.download_raw_array("broken")


class RecordingStore(S3Store):
    """An S3 store that records the parts it sends, in the order it sends them."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[int, int]] = []
        self.single: list[int] = []

    def _multipart(self, key: str, extra: dict[str, Any], parts: Any, progress: Any = None,
                   in_flight: int | None = None, condition: Any = None) -> Any:
        def record() -> Any:
            for number, view in parts:
                self.sent.append((number, len(view)))
                yield number, view

        return super()._multipart(key, extra, record(), progress, in_flight, condition)

    def _put_single(self, key: str, view: memoryview, extra: dict[str, Any], progress: Any = None,
                    condition: Any = None) -> Any:
        self.single.append(len(view))
        return super()._put_single(key, view, extra, progress, condition)


def test_streamed_parts_are_bounded_and_the_first_goes_last(s3: Any) -> None:
    settings = Settings(endpoint_url=s3.endpoint_url, mpu_chunksize=5 * 2**20)
    store = RecordingStore(BUCKET, settings, client=S3Account(settings).client)
    arr = np.random.default_rng(1).integers(0, 2**62, 3 * 2**20, dtype=np.int64)  # 24 MiB, incompressible
    info = write_raw_array(store, "big", arr)
    numbers = [n for n, _ in store.sent]
    assert numbers[-1] == 1 and sorted(numbers) == list(range(1, len(numbers) + 1)) and len(numbers) >= 4
    head = pgzip.header_size(pgzip.block_count(arr.nbytes, pgzip.DEFAULT_BLOCK))
    assert all(size == 5 * 2**20 for n, size in store.sent[:-2])  # every part but the first and the last
    assert dict(store.sent)[1] == 5 * 2**20 + head
    assert info.size == sum(size for _, size in store.sent) and not store.single
    assert np.array_equal(read_raw_array(store, "big"), arr)
    small = RecordingStore(BUCKET, settings, client=S3Account(settings).client)
    write_raw_array(small, "small", np.arange(10))
    assert len(small.single) == 1 and not small.sent


def test_failure_while_compressing_aborts_the_upload(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(endpoint_url=s3.endpoint_url, mpu_chunksize=5 * 2**20)
    store = S3Account(settings).store(BUCKET)
    calls = {"n": 0}
    real = pgzip._deflate_block

    def failing(data: memoryview, level: int, last: bool, strategy: int) -> tuple[list[bytes], int]:
        calls["n"] += 1
        if calls["n"] == 6:
            raise MemoryError("simulated failure while compressing")
        return real(data, level, last, strategy)

    monkeypatch.setattr(pgzip, "_deflate_block", failing)
    monkeypatch.setattr(pgzip, "DEFAULT_BLOCK", 2**20)
    arr = np.random.default_rng(2).integers(0, 2**62, 2**21, dtype=np.int64)  # 16 MiB: parts 2, 3 go up first
    with pytest.raises(MemoryError):
        write_raw_array(store, "aborted", arr)
    client = client_for(s3)
    assert client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert "Contents" not in client.list_objects_v2(Bucket=BUCKET)


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_stores_without_parts_spool_and_read_in_parallel(tmp_path: Any, small_blocks: int, kind: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalStore(tmp_path / "bucket") if kind == "local" else MemoryStore()
    arr = ARRAYS["many_blocks_big_endian"]
    write_raw_array(store, "a/b", arr)
    info = store.head("a/b")
    assert info.metadata is not None and pgzip.INDEX_KEY in info.metadata
    assert gzip.decompress(store.get("a/b")) == arr.tobytes()
    monkeypatch.setattr(type(store), "open_read", lambda *a, **k: (_ for _ in ()).throw(AssertionError("serial")))
    assert np.array_equal(read_raw_array(store, "a/b"), arr)


MEMORY_CHILD = textwrap.dedent("""
    import json, sys, tracemalloc
    import numpy as np
    from cottoncandy.arrays.raw import write_raw_array, read_raw_array
    from cottoncandy.config import Settings
    from cottoncandy.formats import pgzip
    from cottoncandy.storage import S3Account
    pgzip.DEFAULT_BLOCK = 2**20
    settings = Settings(endpoint_url=sys.argv[1], mpu_chunksize=5 * 2**20)
    store = S3Account(settings).store(sys.argv[2])
    arr = np.random.default_rng(3).integers(0, 2**62, 6 * 2**20, dtype=np.int64)  # 48 MiB, incompressible
    tracemalloc.start()
    write_raw_array(store, "mem", arr)
    up = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    tracemalloc.start()
    back = read_raw_array(store, "mem")
    down = tracemalloc.get_traced_memory()[1] - back.nbytes
    tracemalloc.stop()
    assert np.array_equal(back, arr)
    print(json.dumps({"up": up, "down": down}))
""")


def test_upload_and_download_memory_is_bounded(s3: Any) -> None:
    """Python allocations of a 48 MiB incompressible upload/download stay well below the body's size
    (before: the whole compressed body, about 48 MiB, was held)."""
    out = subprocess.run([sys.executable, "-c", MEMORY_CHILD, s3.endpoint_url, BUCKET], capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    peaks = json.loads(out.stdout.strip().splitlines()[-1])
    assert peaks["up"] < 36 * 2**20, peaks  # ~ 4 parts of 5 MiB + blocks in flight
    assert peaks["down"] < 24 * 2**20, peaks  # ~ READ_WORKERS x (compressed block + decoded copy)


def test_compress_workers_bounded_by_store(tmp_path: Any) -> None:
    store = LocalStore(tmp_path / "b")
    store.concurrency = 1
    assert gzip_blocks.compress_workers(store) == 1


@pytest.mark.parametrize("sizes", [[], [0], [10, 0, 5], [3 * 2**20, 2**20, 5 * 2**20 + 3, 7]],
                         ids=["nothing", "empty-chunk", "small", "several-parts"])
def test_put_chunks_stores_head_then_chunks(store: Any, sizes: list[int]) -> None:
    """Every store: the body is ``head()`` (asked for only after the chunks) followed by the chunks."""
    if isinstance(store, S3Store):
        store.settings = Settings(endpoint_url=store.settings.endpoint_url, mpu_chunksize=5 * 2**20)
    data = [np.random.default_rng(n).integers(0, 255, n, dtype=np.uint8).tobytes() for n in sizes]
    consumed = []

    def chunks() -> Any:
        for chunk in data:
            yield chunk
            consumed.append(len(chunk))

    def head() -> bytes:
        assert len(consumed) == len(data), "head() asked for before the chunks were all consumed"
        return b"HEAD:" + str(len(data)).encode()

    info = store.put_chunks("k/obj", chunks(), {"a": "1"}, head=head, size_hint=sum(sizes))
    expected = head() + b"".join(data)
    assert info.size == len(expected)
    assert store.get("k/obj") == expected
    assert store.head("k/obj").metadata == {"a": "1"}


def test_an_index_of_blocks_smaller_than_the_writer_makes_is_not_used(cci: Any, s3: Any,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    """Issue 24: 16,379 one-byte blocks of a 16 KB array (a valid body in every other way: our own writer
    made it, told to) were fetched one ranged GET each, 40 s where the serial read takes 0.3 s. The
    writer never makes blocks under ``pgzip.smallest_block()``: such an index falls back to the serial
    read, with one log line naming the object."""
    arr = (np.arange(pgzip.MAX_BLOCKS) % 251).astype(np.uint8)
    meta = {"dtype": "|u1", "shape": str(arr.size), "compression": "gzip", "order": "C"}
    gzip_blocks.write_gzip_blocks(cci.store, "tiny-blocks", memoryview(arr.tobytes()), meta, block_size=1)
    assert cci.store.head("tiny-blocks").metadata[pgzip.INDEX_KEY] == f"{pgzip.INDEX_VERSION}:1:{pgzip.MAX_BLOCKS}"
    monkeypatch.setattr(raw, "FIRST_READ", 4096)  # a body larger than the first request, as at any size
    s3.clear_log()
    with caplog.at_level("INFO", logger=gzip_blocks.__name__):
        started = time.monotonic()
        assert np.array_equal(cci.download_raw_array("tiny-blocks"), arr)
        took = time.monotonic() - started
    assert len(logged_gets(s3, 2)) <= 3 and took < 5
    lines = [r.getMessage() for r in caplog.records if r.name == gzip_blocks.__name__]
    assert len(lines) == 1 and "tiny-blocks" in lines[0] and "reading serially" in lines[0], lines
    assert f"{pgzip.smallest_block()} bytes or more" in lines[0]
