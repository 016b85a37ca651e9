"""``read_start``: an object's info and first bytes in one answer, the same on every store."""

from __future__ import annotations

import numpy as np

from cottoncandy.cache.first_blocks import FirstBlocks, ProbingStore
from cottoncandy.storage import ObjectStore


def test_read_start_gives_what_head_gives_and_the_first_bytes(store: ObjectStore) -> None:
    body = bytes(range(256)) * 40
    store.put("rs/a", body, {"dtype": "<f8", "shape": "1280"})
    buffer = memoryview(bytearray(4096))
    info, n = store.read_start("rs/a", buffer)
    head = store.head("rs/a")
    assert (info.size, info.etag, dict(info.metadata or {})) == (len(body), head.etag, dict(head.metadata or {}))
    assert n == 4096 and bytes(buffer) == body[:4096]


def test_read_start_of_short_and_empty_objects(store: ObjectStore) -> None:
    store.put("rs/short", b"abc")
    store.put("rs/empty", b"")
    buffer = memoryview(bytearray(100))
    info, n = store.read_start("rs/short", buffer)
    assert (info.size, n, bytes(buffer[:n])) == (3, 3, b"abc")
    info, n = store.read_start("rs/empty", buffer)
    assert (info.size, n) == (0, 0) and info.etag == store.head("rs/empty").etag


def test_read_start_on_s3_is_one_ranged_get(s3, s3_store: ObjectStore) -> None:  # type: ignore[no-untyped-def]
    s3_store.put("rs/b", np.arange(1000.0).tobytes(), {"dtype": "<f8"})
    s3.clear_log()
    s3_store.read_start("rs/b", memoryview(bytearray(512)))
    assert [(r.method, r.range) for r in s3.requests(at_least=1)] == [("GET", "bytes=0-511")]


def test_probing_head_keeps_the_first_block_for_its_version(store: ObjectStore) -> None:
    store.put("rs/c", b"x" * 5000, {"k": "v"})
    blocks = FirstBlocks(max_bytes=1 << 20)
    probing = ProbingStore(store, blocks, probe_size=1024)
    info = probing.head("rs/c")
    assert info.metadata == {"k": "v"} and info.size == 5000
    assert blocks.take("rs/c", "another etag") is None
    kept = blocks.take("rs/c", info.etag)
    assert kept is not None and bytes(kept) == b"x" * 1024
    assert blocks.take("rs/c", info.etag) is None  # taken once


def test_first_blocks_are_bounded() -> None:
    blocks = FirstBlocks(max_bytes=3000, max_count=2)
    for i in range(3):
        blocks.keep(f"k{i}", "e", memoryview(b"." * 1000))
    assert len(blocks) == 2 and blocks.take("k0", "e") is None
    blocks.keep("big", "e", memoryview(b"." * 2500))  # fits alone: older ones go
    assert blocks.take("big", "e") is not None and len(blocks) == 0
    blocks.keep("huge", "e", memoryview(b"." * 4000))  # larger than the bound: not kept
    assert blocks.take("huge", "e") is None


def test_the_signed_fast_path_answers_read_start(s3, s3_store) -> None:  # type: ignore[no-untyped-def]
    """The mount's probe goes the way its block reads go (bounded, hedged), not through boto3."""
    s3_store.put("rs/f", b"y" * 3000, {"dtype": "<f8"})
    fast = s3_store._signed_requests()
    assert fast is not None
    buffer = memoryview(bytearray(1000))
    info, n = fast.get_start("rs/f", buffer)
    head = s3_store.head("rs/f")
    assert (info.size, info.etag, info.metadata, n) == (3000, head.etag, head.metadata, 1000)
    short = memoryview(bytearray(5000))
    info, n = fast.get_start("rs/f", short)
    assert (info.size, n, bytes(short[:n])) == (3000, 3000, b"y" * 3000)
    s3_store.put("rs/empty", b"")
    assert fast.get_start("rs/empty", buffer) is None  # S3 refuses the range: the store asks boto3


def test_the_probing_store_forwards_every_other_method_of_the_contract(s3_store: ObjectStore) -> None:
    """A wrapper that let a contract method fall back to ``ObjectStore``'s generic default once made
    mounts lose their persistent metadata cache (``cache_scope`` answered ``None``)."""
    import inspect

    probing = ProbingStore(s3_store, FirstBlocks(2**20), probe_size=1024)
    contract = [name for name, value in vars(ObjectStore).items()
                if inspect.isfunction(value) and not name.startswith("_")]
    inherited = [name for name in contract if getattr(type(probing), name) is getattr(ObjectStore, name)]
    assert inherited == []
    assert probing.cache_scope() == s3_store.cache_scope() is not None
