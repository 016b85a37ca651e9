"""One contract, every store: ``StoreContract`` holds the tests, one subclass per store runs them.

Stores: memory, the local directory, and S3 over real HTTP (moto server) three ways -- with the
fast paths (signed HEAD/GET/LIST, ``storage/s3_signed.py``), with them switched off
(``Settings(fast_paths=False)``), and through plain boto3 calls because a private botocore name
they need is missing (``cottoncandy.fastpaths`` falls back). A new store is one subclass with a
``store`` fixture.
"""

from __future__ import annotations

import builtins
import errno
import io
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.auth
import numpy as np
import pytest

from cottoncandy import fastpaths
from cottoncandy.config import Settings
from cottoncandy.storage import LocalStore, MemoryStore, ObjectStore, S3Account
from cottoncandy.storage.s3 import S3Store
from tests.conftest import BUCKET


class StoreContract:
    """What every ``ObjectStore`` promises; subclasses give the ``store`` fixture."""

    @pytest.fixture
    def store(self) -> ObjectStore:
        raise NotImplementedError

    def test_put_head_roundtrip_keeps_metadata(self, store: ObjectStore) -> None:
        info = store.put("a/b/obj", b"hello world", {"dtype": "<f8", "Subject": "s01"})
        head = store.head("a/b/obj")
        assert head.size == 11
        assert head.etag == info.etag
        assert head.metadata == {"dtype": "<f8", "subject": "s01"}
        assert store.get("a/b/obj") == b"hello world"

    def test_missing_object_names_bucket_and_key(self, store: ObjectStore) -> None:
        with pytest.raises(FileNotFoundError) as err:
            store.head("no/such/key")
        assert "no/such/key" in str(err.value)
        assert store.bucket.rsplit("/", 1)[-1] in str(err.value)
        assert not store.exists("no/such/key")

    @pytest.mark.parametrize(("start", "end"), [(0, 10), (3, 7), (5, 26), (25, 26), (4, 4)])
    def test_get_range_is_half_open(self, store: ObjectStore, start: int, end: int) -> None:
        data = bytes(range(26))
        store.put("r", data)
        assert store.get_range("r", start, end) == data[start:end]

    def test_readinto_and_parallel_download(self, store: ObjectStore) -> None:
        data = np.random.default_rng(0).integers(0, 255, 100_000, dtype=np.uint8).tobytes()
        store.put("blob", data)
        buf = bytearray(50)
        store.readinto("blob", 1000, memoryview(buf))
        assert bytes(buf) == data[1000:1050]
        store.part_size = 7_777  # many parts, odd boundaries
        out = bytearray(len(data))
        store.download_into("blob", memoryview(out))
        assert bytes(out) == data

    def test_if_match_pins_a_version(self, store: ObjectStore) -> None:
        first = store.put("v", b"version one")
        assert store.get_range("v", 0, 7, if_match=first.etag) == b"version"
        store.put("v", b"version two, longer")
        with pytest.raises(OSError) as err:
            store.get_range("v", 0, 7, if_match=first.etag)
        assert err.value.errno == errno.ESTALE
        with pytest.raises(OSError) as err:
            store.readinto("v", 0, memoryview(bytearray(4)), if_match=first.etag)
        assert err.value.errno == errno.ESTALE

    def test_open_read_streams_whole_object(self, store: ObjectStore) -> None:
        store.put("s", io.BytesIO(b"x" * 300_000))
        with store.open_read("s") as fh:
            assert fh.read() == b"x" * 300_000

    def test_put_accepts_numpy_buffer_without_copy_semantics(self, store: ObjectStore) -> None:
        arr = np.arange(1000, dtype="<f8")
        store.put("arr", memoryview(arr))
        assert store.get("arr") == arr.tobytes()

    def test_list_dir_with_delimiter(self, store: ObjectStore) -> None:
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

    def test_list_page_after_is_one_level_in_key_order(self, store: ObjectStore) -> None:
        for key in ["p/a0", "p/a1", "p/a 2", "p/a3", "p/sub/x", "p/z", "p2/a9"]:
            store.put(key, b"12")
        listed = {o.key: o for o in store.list_dir("p/").objects}

        def page(start_after: str, max_keys: int = 1000) -> list[str]:
            found = store.list_page_after("p/", start_after, max_keys)
            assert all(o.size == 2 and o.etag == listed[o.key].etag for o in found)
            return [o.key for o in found]

        assert page("") == ["p/a 2", "p/a0", "p/a1", "p/a3", "p/z"]  # no sub-prefix, nothing of p2/
        assert page("p/a0") == ["p/a1", "p/a3", "p/z"]  # strictly after
        assert page("p/a05") == ["p/a1", "p/a3", "p/z"]  # a key that is not there
        assert page("p/a0", max_keys=2) == ["p/a1", "p/a3"]
        assert page("p/z") == []

    def test_copy_keeps_metadata_and_delete_many(self, store: ObjectStore) -> None:
        store.put("src", b"payload", {"k": "v"})
        store.copy("src", "dst/copy")
        assert store.get("dst/copy") == b"payload"
        assert store.head("dst/copy").metadata == {"k": "v"}
        store.delete_many(["src", "dst/copy", "never-existed"])
        assert not store.exists("src") and not store.exists("dst/copy")

    def test_empty_object(self, store: ObjectStore) -> None:
        store.put("empty", b"")
        assert store.head("empty").size == 0
        assert store.get("empty") == b""
        store.download_into("empty", memoryview(bytearray(0)))


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> ObjectStore:
        return MemoryStore()


class TestLocalStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        return LocalStore(tmp_path / "bucket")


class S3Paths:
    """Which path an S3 store's HEAD, ranged GET and listing take: the signed client's, or boto3's."""

    FAST: bool

    def test_reads_take_the_expected_path(self, store: S3Store, monkeypatch: pytest.MonkeyPatch) -> None:
        store.put("a/x", b"12345")
        calls: Counter[str] = Counter()

        def counting(name: str) -> Any:
            real = getattr(store.client, name)

            def counted(*args: Any, **kwargs: Any) -> Any:
                calls[name] += 1
                return real(*args, **kwargs)
            return counted

        for name in ("head_object", "get_object", "list_objects_v2"):
            monkeypatch.setattr(store.client, name, counting(name))
        assert store.head("a/x").size == 5
        buf = memoryview(bytearray(3))
        store.readinto("a/x", 1, buf)
        assert bytes(buf) == b"234"
        assert [o.key for o in store.list_dir("a/").objects] == ["a/x"]
        expected = {} if self.FAST else {"head_object": 1, "get_object": 1, "list_objects_v2": 1}
        assert dict(calls) == expected


class TestS3StoreFastPaths(S3Paths, StoreContract):
    """S3 with the fast paths: every HEAD, ranged GET and listing the signed client can take."""

    FAST = True

    @pytest.fixture
    def store(self, s3_settings: Settings) -> ObjectStore:
        store = S3Account(s3_settings).store(BUCKET)
        assert store._signed_requests() is not None
        return store


class TestS3StoreFastPathsOff(S3Paths, StoreContract):
    """S3 with the fast paths switched off: plain boto3 calls only."""

    FAST = False

    @pytest.fixture
    def store(self, s3_settings: Settings) -> ObjectStore:
        store = S3Account(Settings(endpoint_url=s3_settings.endpoint_url, fast_paths=False)).store(BUCKET)
        assert store._signed_requests() is None and store.head_many(["k"]) == {"k": None}
        return store


class TestS3StoreFallback(S3Paths, StoreContract):
    """S3 through plain boto3 calls because ``botocore.auth._host_from_url`` is gone, as after a
    botocore release that renamed it (botocore's own signer still finds it, through builtins)."""

    FAST = False

    @pytest.fixture
    def store(self, s3_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[ObjectStore]:
        monkeypatch.setattr(builtins, "_host_from_url", botocore.auth._host_from_url, raising=False)
        monkeypatch.delattr(botocore.auth, "_host_from_url")
        fastpaths.reset()
        store = S3Account(s3_settings).store(BUCKET)
        assert store._signed_requests() is None and store.head_many(["k"]) == {"k": None}
        assert fastpaths.fallbacks() == {"botocore": 1}
        yield store
        fastpaths.reset()
