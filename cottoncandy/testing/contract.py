"""The store contract: what every ``ObjectStore`` promises, as pytest tests another backend can run.

A backend's test module subclasses ``StoreContract`` and gives a ``store`` fixture that opens an
empty store of its kind; pytest then runs every check below against it::

    from cottoncandy.testing.contract import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(tmp_path / "bucket")

``StoreContract`` itself is not collected (its name does not start with ``Test``). An S3 store's
subclass can also take ``S3PathsContract`` (which path -- the signed fast client's or boto3's -- its
HEAD, ranged GET and listing take; ``FAST`` says which is expected).

Where an endpoint is known to answer otherwise than S3 (a stand-in server with a known gap), the
subclass names the check in ``EXPECTED_DIFFERENCES`` with the reason: that check is then a strict
expected failure -- it must still fail, so the entry goes once the endpoint (or we) changes.

Invariant: every check starts from an empty store and leaves nothing it depends on behind; the
checks use only ``ObjectStore``'s public methods and attributes.
"""

from __future__ import annotations

import errno
import io
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest

from ..storage.base import MIN_COMPOSE_PIECE, CopiedRange, ObjectStore, Piece
from ..storage.conditions import CREATE, overwrite

__all__ = ["S3PathsContract", "StoreContract"]


class StoreContract:
    """What every ``ObjectStore`` promises; subclasses give the ``store`` fixture."""

    #: check name (``test_...``) -> why this store is expected to fail it (a strict xfail)
    EXPECTED_DIFFERENCES: ClassVar[dict[str, str]] = {}

    @pytest.fixture
    def store(self) -> ObjectStore:
        raise NotImplementedError("a StoreContract subclass gives the store fixture")

    @pytest.fixture(autouse=True)
    def _expected_difference(self, request: pytest.FixtureRequest) -> None:
        name = getattr(request.node, "originalname", None) or request.node.name
        reason = self.EXPECTED_DIFFERENCES.get(name)
        if reason is not None:
            request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))

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
        store.put("arr", memoryview(arr))  # type: ignore[arg-type]  # numpy arrays are buffers
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

    def test_listing_is_in_key_order_when_one_name_starts_another(self, store: ObjectStore) -> None:
        """S3 lists in UTF-8 byte order of whole keys: ``a`` before ``a 2`` and ``a-b`` (a store
        that lists its files' names, suffixed, can put them the other way round)."""
        keys = ["o/a", "o/a 2", "o/a!", "o/a-b", "o/a.c", "o/a0", "o/aé", "o/b"]
        for key in reversed(keys):
            store.put(key, b"1")
        assert sorted(keys, key=lambda k: k.encode()) == keys
        assert [o.key for o in store.iter_objects("o/")] == keys
        assert [o.key for o in store.list_dir("o/").objects] == keys

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

    def test_head_many_answers_each_key_or_leaves_it_to_head(self, store: ObjectStore) -> None:
        keys = {"h/a": b"1", "h/b b": b"22", "h/ü+%": b"333"}
        etags = {key: store.put(key, body).etag for key, body in keys.items()}
        found = store.head_many([*keys, "h/missing", "h/a"])
        assert set(found) == {*keys, "h/missing"} and found["h/missing"] is None
        for key, info in found.items():  # None: not known from this call (``head`` says what it is)
            if info is not None:
                assert (info.size, info.etag) == (len(keys[key]), etags[key])

    def test_empty_object(self, store: ObjectStore) -> None:
        store.put("empty", b"")
        assert store.head("empty").size == 0
        assert store.get("empty") == b""
        store.download_into("empty", memoryview(bytearray(0)))

    def test_compose_copies_ranges_and_sends_bytes(self, store: ObjectStore) -> None:
        """One object from sent bytes and stretches of a stored one (S3: UploadPart and UploadPartCopy in
        one upload), with its metadata."""
        least = MIN_COMPOSE_PIECE
        source = bytes(range(256)) * (3 * least // 256)
        etag = store.put("c/src", source).etag
        pieces: list[Piece] = [b"a" * least, CopiedRange("c/src", 7, 7 + least, etag),
                               CopiedRange("c/src", 0, 10, etag)]
        info = store.compose("c/dst", iter(pieces), {"k": "v"})  # only the last piece may be short
        expected = b"a" * least + source[7 : 7 + least] + source[:10]
        assert store.get("c/dst") == expected and info.size == len(expected)
        assert store.head("c/dst").metadata == {"k": "v"} and store.head("c/dst").etag == info.etag
        # (a stretch of a replaced version: real S3 refuses it, CopySourceIfMatch; moto 5.2 ignores that
        # header on UploadPartCopy, so it is no check here)

    # --- conditional writes (what the store says it honours, it honours; the rest goes through) ---
    def test_conditional_create_refuses_an_existing_key(self, store: ObjectStore) -> None:
        support = store.conditional_writes()
        store.put("c/new", b"first", {"k": "1"}, condition=CREATE)
        assert store.get("c/new") == b"first"
        if not support.put_create:  # said at mount time; the write goes through
            store.put("c/new", b"second", condition=CREATE)
            return
        with pytest.raises(FileExistsError) as err:
            store.put("c/new", b"second", condition=CREATE)
        assert err.value.errno == errno.EEXIST and "c/new" in str(err.value)
        assert store.get("c/new") == b"first" and store.head("c/new").metadata == {"k": "1"}

    def test_conditional_overwrite_needs_the_version_seen(self, store: ObjectStore) -> None:
        support = store.conditional_writes()
        seen = store.put("c/obj", b"version one")
        newer = store.put("c/obj", b"version two", condition=overwrite(seen.etag))
        assert store.get("c/obj") == b"version two"
        if not support.put_overwrite:
            return
        with pytest.raises(OSError) as err:  # the version seen at open is gone: a lost update refused
            store.put("c/obj", b"version three", condition=overwrite(seen.etag))
        assert err.value.errno == errno.ESTALE
        assert store.get("c/obj") == b"version two" and store.head("c/obj").etag == newer.etag
        store.delete("c/obj")
        with pytest.raises(OSError) as err:  # removed meanwhile: stale too, and nothing stored
            store.put("c/obj", b"version four", condition=overwrite(newer.etag))
        assert err.value.errno == errno.ESTALE and not store.exists("c/obj")

    def test_conditional_streamed_write_in_parts(self, store: ObjectStore) -> None:
        """``put_chunks`` of several parts (one CompleteMultipartUpload on S3) carries the condition too."""
        support = store.conditional_writes()
        body = [bytes([i]) * 2**20 for i in range(11)]  # 11 MiB: three 5 MiB parts on S3
        store.put("c/big", b"small")
        if support.complete_create:
            with pytest.raises(FileExistsError):
                store.put_chunks("c/big", iter(body), condition=CREATE)
            assert store.get("c/big") == b"small"
        seen = store.head("c/big")
        store.put_chunks("c/big", iter(body), condition=overwrite(seen.etag))
        assert store.head("c/big").size == 11 * 2**20
        if support.complete_overwrite:
            with pytest.raises(OSError) as err:
                store.put_chunks("c/big", iter(body[:6]), condition=overwrite(seen.etag))
            assert err.value.errno == errno.ESTALE
            assert store.head("c/big").size == 11 * 2**20

    # --- a copy pinned to the version of its source that was seen (a rename through the mount) ---
    def test_copy_of_a_source_version_no_longer_there_writes_nothing(self, store: ObjectStore) -> None:
        seen = store.put("s/src", b"version one", {"k": "1"})
        store.put("s/src", b"version two", {"k": "2"})  # another writer replaced it since it was seen
        with pytest.raises(OSError) as err:
            store.copy("s/src", "s/dst", source_etag=seen.etag)
        assert err.value.errno == errno.ESTALE and "s/src" in str(err.value)
        assert not store.exists("s/dst") and store.get("s/src") == b"version two"
        with pytest.raises(OSError) as err:  # with a condition on the destination too: the source's error
            store.copy("s/src", "s/dst", condition=CREATE, source_etag=seen.etag)
        assert err.value.errno == errno.ESTALE and not store.exists("s/dst")
        store.delete("s/src")
        with pytest.raises(OSError) as err:  # removed meanwhile: stale too
            store.copy("s/src", "s/dst", source_etag=seen.etag)
        assert err.value.errno == errno.ESTALE and not store.exists("s/dst")

    def test_copy_of_the_source_version_seen(self, store: ObjectStore) -> None:
        seen = store.put("s/src", b"payload", {"k": "v"})
        store.copy("s/src", "s/dst", condition=CREATE, source_etag=seen.etag)
        assert store.get("s/dst") == b"payload" and store.head("s/dst").metadata == {"k": "v"}


    def test_delete_versions_leaves_a_key_at_another_version(self, store: ObjectStore) -> None:
        seen = store.put("d/old", b"version one")
        store.put("d/old", b"version two")  # replaced by another writer after it was copied
        gone = store.put("d/gone", b"x")
        store.put("d/any", b"y")
        if store.conditional_writes().delete_if_match:
            assert store.delete_versions({"d/old": seen.etag}) == ["d/old"]
            assert store.get("d/old") == b"version two"
        now = store.head("d/old")
        assert store.delete_versions({"d/old": now.etag, "d/gone": gone.etag, "d/any": None}) == []
        assert not store.exists("d/old") and not store.exists("d/gone") and not store.exists("d/any")
        assert store.delete_versions({"d/old": now.etag}) == []  # already gone: no error

def count_boto3_reads(store: Any, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many ``head_object``/``get_object``/``list_objects_v2`` calls ``store``'s boto3 client makes
    from now on (the fast path makes none; a refused fast request shows as one)."""
    calls: Counter[str] = Counter()

    def counting(name: str) -> Callable[..., Any]:
        real = getattr(store.client, name)

        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)
        return counted

    for name in ("head_object", "get_object", "list_objects_v2"):
        monkeypatch.setattr(store.client, name, counting(name))
    return calls


class S3PathsContract:
    """Which path an S3 store's HEAD, ranged GET and listing take: the signed client's (``FAST``: no
    boto3 call at all) or boto3's (one call each). Mixed into a ``StoreContract`` subclass whose
    ``store`` is an ``S3Store``."""

    FAST: ClassVar[bool]

    def test_reads_take_the_expected_path(self, store: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        store.put("a/x", b"12345")
        calls = count_boto3_reads(store, monkeypatch)
        assert store.head("a/x").size == 5
        buf = memoryview(bytearray(3))
        store.readinto("a/x", 1, buf)
        assert bytes(buf) == b"234"
        assert [o.key for o in store.list_dir("a/").objects] == ["a/x"]
        expected = {} if self.FAST else {"head_object": 1, "get_object": 1, "list_objects_v2": 1}
        assert dict(calls) == expected

    def test_head_many_is_one_batch_on_the_fast_path(self, store: Any) -> None:
        keys = [f"b/k{i}" for i in range(20)]
        for key in keys:
            store.put(key, b"abc")
        found = store.head_many(keys)
        if self.FAST:  # every answer taken from the batch
            assert all(info is not None and info.size == 3 for info in found.values()), found
        else:  # nothing known: the caller asks ``head`` (from threads)
            assert found == dict.fromkeys(keys)
