"""The store contract against the signature-checking rig, in every endpoint mode, fast paths on and off.

With fast paths on, no HEAD, ranged GET or listing may go to boto3: a refused fast request would be
asked again through boto3 and pass unnoticed, so that is counted here (and the ``endpoint`` fixture
fails on any 403 in the server's log).
"""

from __future__ import annotations

import pytest

from cottoncandy.storage import ObjectStore, S3Account
from cottoncandy.storage.s3 import S3Store
from cottoncandy.testing.contract import count_boto3_reads
from tests.conftest import BUCKET
from tests.endpoint_modes.conftest import Endpoint
from tests.storage.test_storage_contract import StoreContract


class TestEndpointContract(StoreContract):
    """Every contract test, per endpoint mode x (fast paths, boto3 only)."""

    @pytest.fixture(params=["fast", "boto3"])
    def store(self, endpoint: Endpoint, request: pytest.FixtureRequest) -> ObjectStore:
        fast = request.param == "fast"
        store = S3Account(endpoint.settings(fast_paths=fast)).store(BUCKET)
        assert isinstance(store, S3Store)
        assert (store._signed_requests() is not None) == fast
        return store

    def test_reads_take_the_expected_path(self, store: S3Store, monkeypatch: pytest.MonkeyPatch) -> None:
        """With fast paths, HEAD, ranged GET, listing and a batch of HEADs are all answered on the fast
        path (no boto3 call: nothing was refused and asked again)."""
        store.put("a/x", b"12345")
        store.put("a/y z+", b"1")
        calls = count_boto3_reads(store, monkeypatch)
        assert store.head("a/x").size == 5
        buf = memoryview(bytearray(3))
        store.readinto("a/x", 1, buf)
        assert bytes(buf) == b"234"
        assert [o.key for o in store.list_dir("a/").objects] == ["a/x", "a/y z+"]
        many = store.head_many(["a/x", "a/y z+", "a/none"])
        fast = store._signed_requests() is not None
        if fast:
            assert {k: (v.size if v else None) for k, v in many.items()} == {"a/x": 5, "a/y z+": 1, "a/none": None}
        expected = {} if fast else {"head_object": 1, "get_object": 1, "list_objects_v2": 1}
        assert dict(calls) == expected
