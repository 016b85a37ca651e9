"""One contract, every store: ``cottoncandy.testing.contract.StoreContract`` holds the tests (shipped
with the library, so another backend can run them), one subclass per store runs them here.

Stores: memory, the local directory, and S3 over real HTTP (moto server) three ways -- with the
fast paths (signed HEAD/GET/LIST, ``storage/s3/signed.py``), with them switched off
(``Settings(fast_paths=False)``), and through plain boto3 calls because a private botocore name
they need is missing (``cottoncandy.fastpaths`` falls back). A new store is one subclass with a
``store`` fixture.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from pathlib import Path

import botocore.auth
import pytest

from cottoncandy import fastpaths
from cottoncandy.config import Settings
from cottoncandy.storage import LocalStore, MemoryStore, ObjectStore, S3Account
from cottoncandy.testing.contract import S3PathsContract, StoreContract
from tests.conftest import BUCKET


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self) -> ObjectStore:
        return MemoryStore()


class TestLocalStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> ObjectStore:
        return LocalStore(tmp_path / "bucket")


class TestS3StoreFastPaths(S3PathsContract, StoreContract):
    """S3 with the fast paths: every HEAD, ranged GET and listing the signed client can take."""

    FAST = True

    @pytest.fixture
    def store(self, s3_settings: Settings) -> ObjectStore:
        store = S3Account(s3_settings).store(BUCKET)
        assert store._signed_requests() is not None
        return store


class TestS3StoreFastPathsOff(S3PathsContract, StoreContract):
    """S3 with the fast paths switched off: plain boto3 calls only."""

    FAST = False

    @pytest.fixture
    def store(self, s3_settings: Settings) -> ObjectStore:
        store = S3Account(Settings(endpoint_url=s3_settings.endpoint_url, fast_paths=False)).store(BUCKET)
        assert store._signed_requests() is None and store.head_many(["k"]) == {"k": None}
        return store


class TestS3StoreFallback(S3PathsContract, StoreContract):
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
