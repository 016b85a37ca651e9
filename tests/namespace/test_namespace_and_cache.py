"""Core of the mount without a kernel: tree rules, listing/HEAD economy, block cache, prefetch, handles."""

from __future__ import annotations

import dataclasses
import errno
import gc
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ccfs.errors import errno_for
from ccfs.filesystem import CcFilesystem, MountOptions
from cottoncandy.arrays.raw import write_raw_array
from cottoncandy.cache.blocks import BlockCache
from cottoncandy.cache.buffers import BufferPool
from cottoncandy.cache.decoded import DecodedArrayCache
from cottoncandy.cache.prefetch import ObjectReader
from cottoncandy.namespace import tree
from cottoncandy.namespace.facade import Namespace
from cottoncandy.storage import MemoryStore


def npy_bytes(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, arr)
    return out.getvalue()


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore("bkt")
    write_raw_array(s, "proj/a.grp/x", np.arange(12.0).reshape(3, 4), compression=False)
    write_raw_array(s, "proj/a.grp/z", np.arange(1000, dtype="<i4"), compression="gzip")
    s.put("proj/a.grp/plain.json", b'{"a": 1}')
    s.put("proj/n.npy", npy_bytes(np.arange(5)))
    s.put("proj/marker/", b"")
    s.put("proj/b.grp/deep/k", b"data")
    return s


def test_tree_rules() -> None:
    table = tree.entries(["g.grp", "clash"], {"x": 1, "y.npy": 1, "clash": 1, "t": 1, "t.npy": 1, "j.json": 1},
                         lambda n: n in {"x", "y.npy", "t"})
    assert table["g.grp"].kind == "folder" and table["clash"].kind == "folder"  # folder wins
    assert table["x.npy"] == tree.Entry("array", "x")
    assert table["y.npy"] == tree.Entry("array", "y.npy")  # already .npy: keeps its name
    assert table["t.npy"] == tree.Entry("object", "t.npy")  # the stored name wins...
    assert table["t"] == tree.Entry("array", "t")  # ...and the array is shown under its bare key
    assert table["j.json"].kind == "object" and "x" not in table


def test_tree_view_and_sizes(store: MemoryStore) -> None:
    fs = CcFilesystem(store)
    assert [n for n, _ in fs.readdir("/")] == ["proj"]
    names = dict(fs.readdir("/proj"))
    assert sorted(names) == ["a.grp", "b.grp", "marker", "n.npy"]
    listing = dict(fs.readdir("/proj/a.grp"))
    assert sorted(listing) == ["plain.json", "x.npy", "z.npy"]
    assert listing["x.npy"]["st_size"] == len(npy_bytes(np.arange(12.0).reshape(3, 4)))
    assert listing["z.npy"]["st_size"] == len(npy_bytes(np.arange(1000, dtype="<i4")))  # exact when compressed
    assert fs.getattr("/proj/n.npy")["st_size"] == len(npy_bytes(np.arange(5)))
    with pytest.raises(FileNotFoundError):
        fs.getattr("/proj/a.grp/x")  # shown only as x.npy
    with pytest.raises(FileNotFoundError):
        fs.getattr("/nothing/here")


def test_file_bytes_equal_np_save(store: MemoryStore) -> None:
    fs = CcFilesystem(store, options=MountOptions(block_size=64))
    for path, arr in (("/proj/a.grp/x.npy", np.arange(12.0).reshape(3, 4)),
                      ("/proj/a.grp/z.npy", np.arange(1000, dtype="<i4")), ("/proj/n.npy", np.arange(5))):
        fh = fs.open(path)
        want = npy_bytes(arr)
        got = b"".join(fs.read(fh, 100, off) for off in range(0, len(want) + 100, 100))
        assert got == want
        fs.release(fh)


def test_listing_costs_one_list_and_heads_once(store: MemoryStore) -> None:
    for i in range(50):
        write_raw_array(store, f"many/a{i:03d}", np.zeros(3), compression=False)
    fs = CcFilesystem(store)
    store.requests.clear()
    entries = fs.readdir("/many")
    for name, _ in entries:
        fs.getattr(f"/many/{name}")  # what ls -l does after readdir
    ops = [op for op, _ in store.requests]
    assert ops.count("list") == 1  # the folder alone: its own listing says /many is a folder (no parent LIST)
    assert ops.count("head") == 50  # one HEAD per array, none repeated
    fs.readdir("/many")
    assert [op for op, _ in store.requests].count("head") == 50


def test_a_cold_lookup_tries_a_folder_first_and_files_in_the_parent(store: MemoryStore) -> None:
    write_raw_array(store, "p/x", np.zeros(3), compression=False)
    store.put("p/x.json", b"{}")
    store.put("p/x/inner", b"folder wins")
    store.put("top", b"plain")
    fs = CcFilesystem(store)
    store.requests.clear()
    assert fs.getattr("/p/x")["st_mode"] & 0o170000 == 0o040000  # a folder: it wins the clash
    assert [op for op, _ in store.requests] == ["list"]  # p/x/ alone, no parent LIST
    assert fs.getattr("/p/x.npy")["st_size"] == 128 + 24  # /p's listing is cached now: no probe
    assert fs.getattr("/p/x.json")["st_size"] == 2
    assert fs.getattr("/top")["st_size"] == 5  # no such folder: found in the root's listing
    with pytest.raises(FileNotFoundError):
        fs.getattr("/p/nothing")


def test_negative_cache(store: MemoryStore) -> None:
    fs = CcFilesystem(store)
    for _ in range(3):
        with pytest.raises(FileNotFoundError):
            fs.getattr("/proj/missing.npy")
    assert [op for op, _ in store.requests].count("list") <= 2


def test_open_pins_etag_and_replacement_is_estale(store: MemoryStore) -> None:
    fs = CcFilesystem(store, options=MountOptions(block_size=16, metadata_ttl=0.001))
    fh, keep = fs.open_file("/proj/a.grp/x.npy")
    assert not keep  # first open of the path: nothing cached that could be kept
    # reads start past the body's byte 0: a stream from byte 0 fetches the body's first bytes at once
    # (``prefetch.START_BYTES``), all of this small array, and nothing would be left to fail
    first = fs.read(fh, 16, 144)
    write_raw_array(store, "proj/a.grp/x", np.ones((3, 4)), compression=False)
    with pytest.raises(OSError) as err:
        fs.read(fh, 16, 176)
    assert err.value.errno == errno.ESTALE
    assert first == np.arange(12.0).tobytes()[16:32]
    time.sleep(0.01)
    # while a handle of the old version is open, the kernel's pages for this file are of that
    # version: a new open stays on it (and fails for bytes the store no longer has) rather than mix
    during, keep = fs.open_file("/proj/a.grp/x.npy")
    assert keep and fs.read(during, 16, 144) == first  # the block cache still has it
    with pytest.raises(OSError) as err:
        fs.read(during, 16, 192)
    assert err.value.errno == errno.ESTALE
    fs.release(fh)
    fs.release(during)
    fresh, keep = fs.open_file("/proj/a.grp/x.npy")
    assert not keep  # a new version: the kernel must drop the pages it cached of the old one
    assert fs.read(fresh, 8, 144) == np.ones(1).tobytes()
    fs.release(fresh)
    again, keep = fs.open_file("/proj/a.grp/x.npy")
    assert keep and fs.versions.open_paths() == 1  # same version: cached pages stay valid
    fs.release(again)
    data, info = store._objects["proj/a.grp/x"]  # a metadata-only rewrite: same body, same ETag, new shape
    store._objects["proj/a.grp/x"] = (data, dataclasses.replace(info, metadata={**info.metadata, "shape": "4,3"}))
    time.sleep(0.01)
    again, keep = fs.open_file("/proj/a.grp/x.npy")
    assert not keep and b"(4, 3)" in fs.read(again, 128, 0)  # the header page changed: drop cached pages
    store.delete_many(["proj/a.grp/x"])
    with pytest.raises(OSError) as err:  # deleted while open: a stale handle, not "no such file"
        fs.read(again, 8, 200)
    assert err.value.errno == errno.ESTALE and "proj/a.grp/x" in str(err.value)
    fs.release(again)
    assert fs.versions.open_paths() == 0


def test_writes_refused_and_bad_objects_are_eio(store: MemoryStore) -> None:
    import os

    fs = CcFilesystem(store)
    with pytest.raises(OSError) as err:
        fs.open("/proj/a.grp/x.npy", os.O_WRONLY)
    assert err.value.errno == errno.EROFS
    store.put("bad/short", b"\x00" * 10, {"dtype": "<f8", "shape": "100", "compression": "False"})
    store.put("bad/dtype", b"\x00" * 8, {"dtype": "not-a-dtype", "shape": "1", "compression": "False"})
    store.put("bad/gz", b"\x1f\x8b garbage", {"dtype": "<f8", "shape": "4", "compression": "gzip"})
    names = sorted(n for n, _ in fs.readdir("/bad"))
    assert names == ["dtype.npy", "gz.npy", "short.npy"]
    for name in names:
        with pytest.raises((OSError, ValueError)) as err:
            fh = fs.open(f"/bad/{name}")
            fs.read(fh, 4096, 0)
        assert errno_for(err.value) == errno.EIO
    assert fs.versions.open_paths() == 0  # a failed open holds no version
    assert fs.read(fs.open("/proj/n.npy"), 6, 0) == b"\x93NUMPY"


def test_xattrs(store: MemoryStore) -> None:
    fs = CcFilesystem(store)
    attrs = {a: fs.getxattr("/proj/a.grp/z.npy", a) for a in fs.listxattr("/proj/a.grp/z.npy")}
    assert attrs["user.cottoncandy.dtype"] == b"<i4" and attrs["user.cottoncandy.shape"] == b"1000"
    assert attrs["user.cottoncandy.compression"] == b"gzip" and attrs["user.cottoncandy.order"] == b"C"
    assert attrs["user.cottoncandy.etag"]
    with pytest.raises(OSError) as err:
        fs.getxattr("/proj/a.grp/z.npy", "user.other")
    assert err.value.errno == errno.ENODATA


def test_no_compression_has_one_spelling(store: MemoryStore) -> None:
    """The xattr and ``ccfs info`` (``describe``) say the same of an uncompressed array: ``none``
    (the stored metadata value is 0.4.0's ``False``; that is the wire, not what is shown)."""
    from cottoncandy.arrays.inspect import describe

    fs = CcFilesystem(store)
    shown = fs.getxattr("/proj/a.grp/x.npy", "user.cottoncandy.compression").decode()
    assert shown == describe(store, "proj/a.grp/x")["compression"] == "none"
    assert store.head("proj/a.grp/x").metadata["compression"] == "False"


def test_block_cache_single_flight_and_bound() -> None:
    cache = BlockCache(capacity=1000)
    calls = []
    gate = threading.Event()

    def fetch() -> bytes:
        calls.append(1)
        gate.wait(1)
        return b"x" * 100

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(cache.get_or_fetch, ("k", "e", 0), fetch) for _ in range(8)]
        time.sleep(0.05)
        gate.set()
        assert all(f.result() == b"x" * 100 for f in futures)
    assert len(calls) == 1
    for i in range(30):
        cache.get_or_fetch(("k", "e", i + 1), lambda: b"y" * 100)
    assert cache.size <= 1000


def test_prefetch_grows_on_sequential_and_random_reads_fetch_one_block() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    fetched: list[tuple[int, int]] = []
    lock = threading.Lock()

    def fetch(start: int, end: int) -> bytes:
        with lock:
            fetched.append((start, end))
        return data[start:end]

    pool = ThreadPoolExecutor(4)
    reader = ObjectReader(BlockCache(2**22), pool, fetch, ("k", "e"), len(data), block_size=16384,
                          max_window=256 * 1024, run_size=64 * 1024)
    assert reader.read(500_000, 100) == data[500_000:500_100]
    assert fetched == [(491520, 507904)]  # one block for a random read
    fetched.clear()
    pos = 0
    while pos < len(data):
        assert reader.read(pos, 32768) == data[pos : pos + 32768]
        pos += 32768
    pool.shutdown(wait=True)
    assert max(e - s for s, e in fetched) == 64 * 1024  # prefetch runs of several blocks
    assert sum(e - s for s, e in fetched) <= len(data)  # nothing fetched twice


def test_decoded_cache_spills_and_respects_limits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cache = DecodedArrayCache(memory_limit=1000, spill_dir=tmp_path, spill_limit=10_000)

    def filler(value: int):  # type: ignore[no-untyped-def]
        def decode(out: memoryview) -> None:
            out[:] = bytes([value]) * len(out)
        return decode

    small = cache.get(("a", "1"), 100, filler(1))
    assert small.path is None and small.read(0, 3) == b"\x01\x01\x01"
    big = cache.get(("b", "1"), 6000, filler(2))
    assert big.path is not None and big.read(5990, 20) == b"\x02" * 10
    cache.get(("c", "1"), 6000, filler(3))  # evicts b from the spill directory
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 10_000
    assert big.read(0, 2) == b"\x02\x02"  # an open reader keeps working
    with pytest.raises(OSError) as err:
        cache.get(("d", "1"), 20_000, filler(4))
    assert err.value.errno == errno.EFBIG


def test_long_sequential_stream_lets_go_of_passed_blocks_but_random_reads_keep_theirs() -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    cache = BlockCache(2**24)
    pool = ThreadPoolExecutor(4)
    reader = ObjectReader(cache, pool, lambda s, e: data[s:e], ("k", "e"), len(data), block_size=16384,
                          max_window=256 * 1024, run_size=64 * 1024)
    assert reader.read(1_900_000, 10) == data[1_900_000:1_900_010]  # a random read: its block stays
    for pos in range(0, 1_500_000, 32768):
        assert reader.read(pos, 32768) == data[pos : pos + 32768]
    pool.shutdown(wait=True)
    assert not cache.contains(("k", "e", 0))  # passed long ago: the kernel's page cache has it
    assert cache.contains(("k", "e", (1_500_000 - 32768) // 16384))  # near the front: still there
    assert cache.contains(("k", "e", 1_900_000 // 16384))
    assert cache.size < 1_000_000  # well under the 1.5 MB read


def test_buffer_pool_reuses_a_buffer_once_no_view_of_it_is_left() -> None:
    pool = BufferPool(1024, keep=1)

    def address(view: memoryview) -> int:
        return np.frombuffer(view, dtype=np.uint8).__array_interface__["data"][0]

    first = pool.take(1024)
    where = address(first)
    block = first[512:]  # a cache entry: a view of the run's buffer
    del first
    gc.collect()
    assert pool.idle == 0  # the block still needs the memory
    other = pool.take(1024)  # so this one is new
    assert address(other) != where
    del block
    gc.collect()
    assert pool.idle == 1
    again = pool.take(1024)
    assert address(again) == where and pool.reused == 1
    small = pool.take(100)  # another size is never pooled: it cannot pin a big buffer
    assert len(small) == 100 and pool.created == 2
    del other, again, small
    gc.collect()
    assert pool.idle == 1  # at most ``keep`` idle buffers are held


def _eventually(check, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Wait for background loads to reach ``check``, then a moment more for any that should not happen."""
    deadline = time.time() + seconds
    while not check() and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)
    assert check()


def test_listing_a_folder_loads_its_first_subfolders_ahead_one_level_only() -> None:
    store = MemoryStore()
    for sub in ("s1", "s2", "s3"):
        for i in range(3):
            write_raw_array(store, f"proj/{sub}.grp/a{i}", np.zeros(2), compression=False)
        write_raw_array(store, f"proj/{sub}.grp/deeper/b", np.zeros(2), compression=False)
    ns = Namespace(store, folders_ahead=2)
    store.requests.clear()
    assert sorted(ns.children("proj")) == ["s1.grp", "s2.grp", "s3.grp"]
    _eventually(lambda: sorted(arg for op, arg in store.requests if op == "list")  # two ahead, not deeper
                == ["proj/", "proj/s1.grp/", "proj/s2.grp/"]
                and sum(op == "head" for op, _ in store.requests) == 6)  # their arrays too
    store.requests.clear()
    assert sorted(ns.children("proj/s1.grp")) == ["a0.npy", "a1.npy", "a2.npy", "deeper"]
    assert [op for op, _ in store.requests if op in ("list", "head")] == []  # all there already
    _eventually(lambda: [arg for op, arg in store.requests if op == "list"] == ["proj/s1.grp/deeper/"])
    lean = Namespace(store, heads_ahead=0)
    store.requests.clear()
    lean.children("proj")
    _eventually(lambda: sum(op == "list" for op, _ in store.requests) == 4
                and not any(op == "head" for op, _ in store.requests))


def test_blocks_are_aligned_to_the_file_so_page_aligned_reads_are_one_view() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB of body behind a 128-byte header
    fetched: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> bytes:
        fetched.append((start, end))
        return data[start:end]

    pool = ThreadPoolExecutor(2)
    reader = ObjectReader(BlockCache(2**22), pool, fetch, ("k", "e"), len(data), block_size=16384,
                          max_window=16384, run_size=16384, origin=128)
    assert fetched == [] and reader.read(0, 16384 - 128) == data[: 16384 - 128]
    assert fetched == [(0, 16384 - 128)]  # the first block holds what follows the header
    file_offset = 5 * 16384  # a page-aligned kernel READ of one block's size...
    pieces = reader.read_pieces(file_offset - 128, 16384)
    assert len(pieces) == 1 and bytes(pieces[0]) == data[file_offset - 128 : file_offset - 128 + 16384]
    assert (file_offset - 128, file_offset - 128 + 16384) in fetched  # ...is exactly one block
    rng = np.random.default_rng(3)
    for _ in range(200):  # any range still reads back exactly, across blocks and at the end
        start = int(rng.integers(0, len(data)))
        length = int(rng.integers(1, 70_000))
        assert reader.read(start, length) == data[start : start + length]
    assert b"".join(bytes(p) for p in reader.read_pieces(len(data) - 300, 1000)) == data[-300:]
    assert reader.read_pieces(len(data), 10) == []
    pool.shutdown(wait=True)
    with pytest.raises(ValueError, match="origin"):
        ObjectReader(BlockCache(2**20), pool, fetch, ("k", "e"), 10, block_size=4096, origin=4096)


def test_handle_pieces_are_header_then_views_of_cached_blocks(store: MemoryStore) -> None:
    arr = np.arange(100_000, dtype="<f8")
    write_raw_array(store, "big", arr, compression=False)
    fs = CcFilesystem(store, options=MountOptions(block_size=16384, cache_size=2**22))
    fh = fs.open("/big.npy")
    want = npy_bytes(arr)
    pieces = fs.read_pieces(fh, 4096, 0)  # the first page: header bytes, then the body's start
    assert [type(p) for p in pieces] == [bytes, memoryview] and b"".join(bytes(p) for p in pieces) == want[:4096]
    pieces = fs.read_pieces(fh, 16384, 3 * 16384)  # a block-sized, block-aligned read: one view
    assert len(pieces) == 1 and bytes(pieces[0]) == want[3 * 16384 : 4 * 16384]
    assert fs.read(fh, 10**6, len(want) - 100) == want[-100:]
    with pytest.raises(OSError) as err:
        fs.read_pieces(fh + 1000, 10, 0)
    assert err.value.errno == errno.EBADF
    fs.close()


def test_a_file_older_than_attr_ttl_is_asked_again_but_listings_are_kept(store: MemoryStore) -> None:
    ns = Namespace(store, ttl=300, attr_ttl=0.05, folders_ahead=0)
    first = ns.lookup("proj/a.grp/x.npy")
    heads = ns.head_requests
    assert ns.lookup("proj/a.grp/x.npy") is first and ns.head_requests == heads  # fresh: no request
    write_raw_array(store, "proj/a.grp/x", np.arange(20.0).reshape(4, 5), compression=False)  # new shape
    time.sleep(0.06)
    lists = [op for op, _ in store.requests].count("list")
    now = ns.lookup("proj/a.grp/x.npy")
    assert now.info.etag != first.info.etag and now.spec.shape == (4, 5)  # one HEAD found the new version
    assert [op for op, _ in store.requests].count("list") == lists  # and no listing was asked again
    assert ns.children("proj/a.grp")["x.npy"].spec.shape == (4, 5)  # readdir agrees with it
    time.sleep(0.06)
    heads = ns.head_requests
    assert ns.lookup("proj/a.grp/x.npy").info.etag == now.info.etag and ns.head_requests == heads + 1
    store.delete_many(["proj/a.grp/x"])
    time.sleep(0.06)
    with pytest.raises(FileNotFoundError, match="removed from the store"):
        ns.lookup("proj/a.grp/x.npy")
    assert "x.npy" not in ns.children("proj/a.grp")  # gone from readdir too, before the listing expires
    ns.close()


class FailingHeads(MemoryStore):
    """A memory store whose HEADs (and LISTs, with ``lists_fail``) raise ``failure`` while it is set."""

    failure: OSError | None = None
    lists_fail = False

    def head(self, key: str):  # type: ignore[no-untyped-def]
        if self.failure is not None:
            raise self.failure
        return super().head(key)

    def list_dir(self, prefix: str, delimiter: str = "/"):  # type: ignore[no-untyped-def]
        if self.failure is not None and self.lists_fail:
            raise self.failure
        return super().list_dir(prefix, delimiter)


def _timed_out() -> OSError:
    """What a store raises when its reads time out (``storage.errors.failed``: a ``NoAnswer``)."""
    from cottoncandy.storage.errors import failed

    try:
        raise TimeoutError("no timely answer in 3 attempts")
    except TimeoutError as exc:
        try:
            raise failed(exc, "failed to read s3://bkt/proj/x: no timely answer") from exc
        except OSError as wrapped:
            return wrapped


def _refused(status: int, code: str) -> OSError:
    """What S3's store raises for this error answer (``storage.errors.translate``)."""
    from botocore.exceptions import ClientError

    from cottoncandy.storage.errors import translate

    cause = ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "HeadObject")
    try:
        raise translate(cause, "bkt", "proj/x") from cause
    except OSError as wrapped:
        return wrapped


def _reset() -> OSError:
    from cottoncandy.storage.errors import failed

    return failed(ConnectionResetError(errno.ECONNRESET, "reset"), "failed to access s3://bkt/proj/x: reset")


@pytest.mark.parametrize("failure", [_timed_out(), _refused(503, "SlowDown"), _refused(500, "InternalError"),
                                     _reset()],
                         ids=["timeout", "503", "500", "reset"])
def test_a_stale_file_whose_revalidation_meets_no_answer_is_served_as_confirmed_before(failure: OSError) -> None:
    """docs/SEMANTICS.md: while the endpoint does not answer, what is cached keeps being served. A
    stat of a known file whose ``--attr-ttl`` ran out failed with EIO when its revalidation timed out
    (a CI run of the fault tests logged it), though reads pinned to that version went on."""
    store = FailingHeads("bkt")
    write_raw_array(store, "proj/x", np.arange(10.0), compression=False)
    ns = Namespace(store, ttl=300, attr_ttl=0.05, folders_ahead=0)
    try:
        first = ns.lookup("proj/x.npy")
        store.failure = failure
        time.sleep(0.06)
        assert ns.lookup("proj/x.npy") is first and ns.resolver.stale_served == 1
        assert ns.lookup("proj/x.npy") is first and ns.resolver.stale_served == 2  # asked again each time
        store.failure = None
        write_raw_array(store, "proj/x", np.arange(12.0), compression=False)  # back: the new version shows
        assert ns.lookup("proj/x.npy").spec.shape == (12,)
    finally:
        ns.close()


def test_a_burst_of_stale_lookups_while_nothing_answers_keeps_serving_the_folder() -> None:
    """Eight stale lookups in a folder within a few ``attr_ttl`` re-LIST it instead of HEADing each
    (``RELIST_AFTER``). That LIST dropped the folder's listing before asking, so when it met no answer
    every later lookup in the folder failed with EIO (a review found it: lookups 8-12 failed)."""
    store = FailingHeads("bkt")
    for i in range(12):
        write_raw_array(store, f"proj/x{i:02d}", np.arange(10.0 + i), compression=False)
    ns = Namespace(store, ttl=300, attr_ttl=0.05, folders_ahead=0)
    try:
        first = {i: ns.lookup(f"proj/x{i:02d}.npy") for i in range(12)}
        store.failure, store.lists_fail = _timed_out(), True
        time.sleep(0.06)
        for _ in range(3):
            for i in range(12):
                assert ns.lookup(f"proj/x{i:02d}.npy") is first[i]
        assert ns.resolver.stale_served == 36
        store.failure = None  # back: the folder is listed again and the new version shows
        write_raw_array(store, "proj/x03", np.arange(5.0), compression=False)
        time.sleep(0.06)
        assert all(ns.lookup(f"proj/x{i:02d}.npy").spec.shape == ((5,) if i == 3 else (10 + i,)) for i in range(12))
    finally:
        ns.close()


@pytest.mark.parametrize("failure", [_refused(400, "InvalidRequest"), PermissionError(errno.EACCES, "denied"),
                                     OSError(errno.EIO, "corrupt answer")], ids=["400", "403", "no-cause"])
def test_a_stale_file_whose_revalidation_is_refused_fails(failure: OSError) -> None:
    """An answer about the object (a refusal, a denial, a bad answer) is not stood in for by the cache."""
    store = FailingHeads("bkt")
    write_raw_array(store, "proj/x", np.arange(10.0), compression=False)
    ns = Namespace(store, ttl=300, attr_ttl=0.05, folders_ahead=0)
    try:
        ns.lookup("proj/x.npy")
        store.failure = failure
        time.sleep(0.06)
        with pytest.raises(OSError) as caught:
            ns.lookup("proj/x.npy")
        assert caught.value is failure and ns.resolver.stale_served == 0
    finally:
        ns.close()


@pytest.mark.parametrize("codec", ["LZ4", "Zstd", "gzip", "Zlib", "BZ2", "lzma"])
def test_every_codec_decodes_into_a_spill_file(tmp_path, codec: str) -> None:  # type: ignore[no-untyped-def]
    """Arrays too big for the decoded cache's memory are decoded into a spill file (a SpillWriter,
    not a buffer): LZ4 and zstd, which decode in one C call, get the file mapped for that call."""
    from cottoncandy.formats import codecs

    data = np.arange(200_000, dtype=np.float64).tobytes()
    body = codecs.encode(memoryview(data), codec)
    cache = DecodedArrayCache(memory_limit=1000, spill_dir=tmp_path, spill_limit=10 * len(data))
    got = cache.get((codec, "1"), len(data), lambda out: codecs.decode_into(body, codec, out))
    assert got.path is not None
    assert got.read(0, len(data)) == data


@pytest.mark.parametrize("codec", ["LZ4", "Zstd"])
def test_a_corrupt_body_decoding_into_a_spill_file_fails_cleanly(tmp_path, codec: str) -> None:  # type: ignore[no-untyped-def]
    from cottoncandy.formats import codecs

    data = np.arange(200_000, dtype=np.float64).tobytes()
    body = codecs.encode(memoryview(data), codec)
    body = body[: len(body) // 2]  # truncated: its header still declares the whole array
    cache = DecodedArrayCache(memory_limit=1000, spill_dir=tmp_path, spill_limit=10 * len(data))
    with pytest.raises(codecs.CorruptBodyError):  # not a BufferError from unmapping a view still in use
        cache.get((codec, "1"), len(data), lambda out: codecs.decode_into(body, codec, out))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("codec", ["LZ4", "Zstd"])
def test_trimming_the_mapping_during_a_decode_loses_nothing(tmp_path, monkeypatch, codec: str) -> None:  # type: ignore[no-untyped-def]
    """The spill mapping's pages are dropped from the process (MADV_DONTNEED) while LZ4/zstd write
    into it, here without pause: every byte still reaches the file (back-references fault pages in)."""
    from cottoncandy.cache.decoded import SpillWriter
    from cottoncandy.formats import codecs

    monkeypatch.setattr(SpillWriter, "TRIM_INTERVAL", 0)
    data = (np.random.default_rng(2).integers(0, 40, 4_000_000) // 3).astype(np.float32).tobytes()  # 16 MB
    body = codecs.encode(memoryview(data), codec)
    cache = DecodedArrayCache(memory_limit=1000, spill_dir=tmp_path, spill_limit=10 * len(data))
    got = cache.get((codec, "1"), len(data), lambda out: codecs.decode_into(body, codec, out))
    assert got.path is not None and got.read(0, len(data)) == data


@pytest.mark.parametrize("codec", ["LZ4", "Zstd", "gzip", "Zlib", "BZ2", "lzma"])
def test_a_stored_array_decodes_into_a_spill_file_without_a_copy_in_memory(tmp_path, codec: str) -> None:  # type: ignore[no-untyped-def]
    """The mount's path for a compressed array too big for its memory (``decode_body_into`` with the
    spill file's SpillWriter, ccfs/filesystem.py): the body streams or is decoded into the mapped
    file, never into a whole array in memory first."""
    import tracemalloc

    from cottoncandy.arrays.raw import decode_body_into, read_array_spec

    store = MemoryStore()
    data = np.tile(np.arange(4096, dtype=np.float32) % 97, 4096)  # 64 MiB that every codec shrinks a lot
    write_raw_array(store, "big", data, codec)
    info, spec = read_array_spec(store, "big")
    cache = DecodedArrayCache(memory_limit=1000, spill_dir=tmp_path, spill_limit=2 * data.nbytes)
    tracemalloc.start()
    try:
        got = cache.get(("big", info.etag), spec.nbytes, lambda out: decode_body_into(store, info, spec, out))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got.path is not None and got.read(0, data.nbytes) == data.tobytes()
    # a few MiB (gzip: its blocks inflating in parallel, ~16 MiB), not the array (a copy held 64-128)
    assert peak < 24 * 2**20, f"decoding held {peak / 2**20:.1f} MiB"


def test_what_counts_as_no_answer() -> None:
    """``unreachable``: the store did not answer (cache may stand in) vs it answered (it may not)."""
    from botocore.exceptions import ClientError, CredentialRetrievalError, EndpointConnectionError, ReadTimeoutError

    from cottoncandy.storage.errors import unreachable
    from cottoncandy.storage.retry import ShortReadError

    def wrapped(cause: BaseException) -> OSError:
        try:
            raise OSError(errno.EIO, "failed") from cause
        except OSError as exc:
            return exc

    def answer(status: int, code: str) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "HeadObject")

    no_answer = [TimeoutError(), ConnectionRefusedError(), wrapped(EndpointConnectionError(endpoint_url="http://x")),
                 wrapped(ReadTimeoutError(endpoint_url="http://x")), wrapped(answer(503, "SlowDown")),
                 wrapped(answer(429, "429")), wrapped(answer(500, "InternalError")),
                 wrapped(ShortReadError(errno.EIO, "short read")), wrapped(wrapped(TimeoutError()))]
    answered = [FileNotFoundError(), PermissionError(), wrapped(answer(400, "InvalidRequest")),
                wrapped(answer(501, "NotImplemented")), wrapped(answer(403, "AccessDenied")),
                wrapped(CredentialRetrievalError(provider="sso", error_msg="expired")), OSError(errno.EIO, "bad"),
                wrapped(PermissionError()), ValueError("bad metadata")]
    assert [unreachable(e) for e in no_answer] == [True] * len(no_answer)
    assert [unreachable(e) for e in answered] == [False] * len(answered)


def test_decoded_arrays_in_memory_count_while_open_files_hold_them(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``memory_limit`` bounds the decoded arrays alive, not only those the LRU keeps: arrays still
    read through open files count until freed, so beyond the limit new ones are spilled; each
    decode's working memory is reserved too, and everything is given back once freed."""
    from cottoncandy.cache.decoded import decode_work

    limit = 1000
    cache = DecodedArrayCache(memory_limit=limit, spill_dir=tmp_path, spill_limit=100_000)
    seen: list[int] = []

    def decode(out: memoryview) -> None:
        seen.append(cache.reserved)  # what is taken while it decodes: held arrays, its own work
        out[:] = b"\x07" * len(out)

    held = [cache.get((f"k{i}", "1"), 200, decode) for i in range(8)]  # open files keep all eight
    in_memory = [a for a in held if a.path is None]
    assert 1 <= len(in_memory) < 8 and len(held) - len(in_memory) >= 4  # the rest went to spill files
    assert max(seen) <= limit and cache.peak_reserved <= limit
    assert all(a.read(0, 200) == b"\x07" * 200 for a in held)
    assert cache.reserved == 200 * len(in_memory)  # decodes done: only the arrays alive
    assert decode_work(200) == 400
    cache.close()
    del held, in_memory
    gc.collect()
    assert cache.reserved == 0


def test_a_failed_block_answers_its_failure_at_once_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel asks again for a READ that failed: the block's failure, seen moments ago (after
    the store's own attempts), is answered again without a new fetch, to any handle of that version."""
    from cottoncandy.cache import blocks

    calls: list[int] = []

    def fetch(start: int, end: int) -> bytes:
        calls.append(start)
        raise OSError(errno.EIO, "k: no answer after 3 attempts")

    cache = BlockCache(2**22)
    with ThreadPoolExecutor(2) as pool:
        readers = [ObjectReader(cache, pool, fetch, ("k", "e"), 2**20, block_size=2**16) for _ in range(2)]
        with pytest.raises(OSError):
            readers[0].read(0, 4096)
        asked = calls.count(0)
        for reader in readers:
            with pytest.raises(OSError) as again:
                reader.read(0, 4096)
            assert again.value.errno == errno.EIO and "no answer" in str(again.value)
        assert calls.count(0) == asked  # (read-ahead may ask for the next block)
        monkeypatch.setattr(blocks, "FAILED_FOR", 0.0)  # once it has passed, the block is asked for again
        with pytest.raises(OSError):
            readers[1].read(0, 4096)
        assert calls.count(0) > asked


def test_runs_planned_for_an_abandoned_stream_are_not_fetched() -> None:
    """Read-ahead runs still queued when their stream is closed (or seeks away) had their room in the
    budget given back: they are dropped, not fetched into memory nobody counts."""
    data = bytes(range(256)) * 16384  # 4 MiB
    fetched: list[tuple[int, int]] = []

    def fetch(start: int, end: int) -> bytes:
        fetched.append((start, end))
        return data[start:end]

    gate = threading.Event()
    pool = ThreadPoolExecutor(1)
    pool.submit(gate.wait)  # the pool is busy: the runs the stream plans wait in its queue
    reader = ObjectReader(BlockCache(2**24), pool, fetch, ("k", "e"), len(data), block_size=2**16,
                          max_window=2**20, run_size=2**18)
    for offset in range(0, 2**19, 2**16):
        assert reader.read(offset, 2**16) == data[offset : offset + 2**16]
    reader.close()
    gate.set()
    pool.shutdown(wait=True)
    assert fetched and all(end <= 2**19 for _, end in fetched)  # what was read, nothing ahead
