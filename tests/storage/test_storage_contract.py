"""One contract, every store: S3 over real HTTP (moto server), the local directory, memory."""

from __future__ import annotations

import errno
import io

import numpy as np
import pytest

from cottoncandy.storage import ObjectStore


def test_put_head_roundtrip_keeps_metadata(store: ObjectStore) -> None:
    info = store.put("a/b/obj", b"hello world", {"dtype": "<f8", "Subject": "s01"})
    head = store.head("a/b/obj")
    assert head.size == 11
    assert head.etag == info.etag
    assert head.metadata == {"dtype": "<f8", "subject": "s01"}
    assert store.get("a/b/obj") == b"hello world"


def test_missing_object_names_bucket_and_key(store: ObjectStore) -> None:
    with pytest.raises(FileNotFoundError) as err:
        store.head("no/such/key")
    assert "no/such/key" in str(err.value)
    assert store.bucket.rsplit("/", 1)[-1] in str(err.value)
    assert not store.exists("no/such/key")


@pytest.mark.parametrize(("start", "end"), [(0, 10), (3, 7), (5, 26), (25, 26), (4, 4)])
def test_get_range_is_half_open(store: ObjectStore, start: int, end: int) -> None:
    data = bytes(range(26))
    store.put("r", data)
    assert store.get_range("r", start, end) == data[start:end]


def test_readinto_and_parallel_download(store: ObjectStore) -> None:
    data = np.random.default_rng(0).integers(0, 255, 100_000, dtype=np.uint8).tobytes()
    store.put("blob", data)
    buf = bytearray(50)
    store.readinto("blob", 1000, memoryview(buf))
    assert bytes(buf) == data[1000:1050]
    store.part_size = 7_777  # many parts, odd boundaries
    out = bytearray(len(data))
    store.download_into("blob", memoryview(out))
    assert bytes(out) == data


def test_if_match_pins_a_version(store: ObjectStore) -> None:
    first = store.put("v", b"version one")
    assert store.get_range("v", 0, 7, if_match=first.etag) == b"version"
    store.put("v", b"version two, longer")
    with pytest.raises(OSError) as err:
        store.get_range("v", 0, 7, if_match=first.etag)
    assert err.value.errno == errno.ESTALE
    with pytest.raises(OSError) as err:
        store.readinto("v", 0, memoryview(bytearray(4)), if_match=first.etag)
    assert err.value.errno == errno.ESTALE


def test_open_read_streams_whole_object(store: ObjectStore) -> None:
    store.put("s", io.BytesIO(b"x" * 300_000))
    with store.open_read("s") as fh:
        assert fh.read() == b"x" * 300_000


def test_put_accepts_numpy_buffer_without_copy_semantics(store: ObjectStore) -> None:
    arr = np.arange(1000, dtype="<f8")
    store.put("arr", memoryview(arr))
    assert store.get("arr") == arr.tobytes()


def test_list_dir_with_delimiter(store: ObjectStore) -> None:
    for key in ["p/a", "p/b/c", "p/b/d", "p/e/f/g", "p2/x", "q"]:
        store.put(key, b"1")
    listing = store.list_dir("p/")
    assert listing.prefixes == ["p/b/", "p/e/"]
    assert [o.key for o in listing.objects] == ["p/a"]
    root = store.list_dir("")
    assert root.prefixes == ["p/", "p2/"]
    assert [o.key for o in root.objects] == ["q"]
    assert [o.key for o in store.iter_objects("p/")] == ["p/a", "p/b/c", "p/b/d", "p/e/f/g"]
    assert store.list_dir("nothing/").prefixes == [] and store.list_dir("nothing/").objects == []


def test_copy_keeps_metadata_and_delete_many(store: ObjectStore) -> None:
    store.put("src", b"payload", {"k": "v"})
    store.copy("src", "dst/copy")
    assert store.get("dst/copy") == b"payload"
    assert store.head("dst/copy").metadata == {"k": "v"}
    store.delete_many(["src", "dst/copy", "never-existed"])
    assert not store.exists("src") and not store.exists("dst/copy")


def test_empty_object(store: ObjectStore) -> None:
    store.put("empty", b"")
    assert store.head("empty").size == 0
    assert store.get("empty") == b""
    store.download_into("empty", memoryview(bytearray(0)))
