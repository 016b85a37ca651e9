"""Persistent caches name an object by everything that decides its bytes (issue 24, item 2).

Block files were named by a hash of (``s3://bucket/key``, ETag, range) and HEAD answers by endpoint and
bucket: bytes cached from one endpoint were served for another with the same bucket, key and ETag, and
two accounts on one endpoint (where bucket names are per account) shared entries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.cache.disk import DiskBackedFetch, DiskBlockStore
from cottoncandy.cache.folder import shared_blocks
from cottoncandy.cache.identity import object_identity, store_identity
from cottoncandy.cache.metadata import MetadataStore
from cottoncandy.config import Settings
from cottoncandy.storage.base import ObjectInfo
from cottoncandy.storage.local import LocalStore
from cottoncandy.storage.memory import MemoryStore
from cottoncandy.storage.s3 import S3Store
from tests.conftest import BUCKET


def s3(endpoint: str | None = None, access_key: str | None = None, profile: str | None = None,
       bucket: str = "bkt") -> S3Store:
    settings = Settings(endpoint_url=endpoint, access_key=access_key, secret_key="s" if access_key else None,
                        profile=profile)
    return S3Store(bucket, settings, client=object())


def test_the_endpoint_is_part_of_every_identity() -> None:
    one, two = s3("http://one.test:9000"), s3("http://two.test:9000")
    assert object_identity(one, "k") != object_identity(two, "k")
    assert "http://one.test:9000" in store_identity(one) and "bkt" in store_identity(one)
    # spellings of one endpoint that cannot name another are one identity; no user part or query kept
    assert store_identity(s3("HTTP://User:pw@ONE.test:9000/?x=y")) == store_identity(one)
    assert "pw" not in store_identity(s3("http://u:pw@one.test:9000"))


def test_the_account_is_part_of_it_where_bucket_names_are_per_account() -> None:
    a, b = s3("http://one.test:9000", "AKIAONE"), s3("http://one.test:9000", "AKIATWO")
    assert store_identity(a) != store_identity(b)
    assert "AKIAONE" not in store_identity(a)  # a digest: no credential is written in clear
    assert store_identity(s3("http://one.test:9000", profile="p1")) != store_identity(
        s3("http://one.test:9000", profile="p2"))
    # AWS's own endpoints: bucket names are global, so rotating role credentials keep their cache
    assert store_identity(s3(None, "AKIAONE")) == store_identity(s3(None, "AKIATWO")) == "s3 aws:aws bkt"


@pytest.mark.parametrize("fast_paths", [True, False])
def test_the_key_a_client_signs_with_counts_when_the_settings_name_none(
        monkeypatch: pytest.MonkeyPatch, fast_paths: bool) -> None:
    from cottoncandy import fastpaths
    from cottoncandy.storage.s3 import S3Account

    if not fast_paths:
        monkeypatch.setattr(fastpaths, "enabled", lambda: False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    identities = []
    for key in ("AKIAFIRST", "AKIASECOND"):
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
        identities.append(store_identity(S3Account(Settings(endpoint_url="http://one.test:9000")).store("bkt")))
    assert identities[0] != identities[1] and all("AKIA" not in i for i in identities)


def test_local_and_memory_stores(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert store_identity(LocalStore(tmp_path / "link")) == f"file {tmp_path / 'real'}"
    one, two = MemoryStore(), MemoryStore()
    assert store_identity(one) != store_identity(two)  # nothing of one process's memory is another's
    assert store_identity(one) == store_identity(one)


def test_blocks_of_one_endpoint_are_not_served_for_another(tmp_path: Path) -> None:
    disk = DiskBlockStore(tmp_path / "blocks", 2**20)

    def fetch(store: S3Store, fill: bytes) -> bytes:
        got = DiskBackedFetch(disk, object_identity(store, "k"), '"same-etag"',
                              lambda start, buffer: buffer.__setitem__(slice(None), fill * len(buffer)),
                              lambda n: memoryview(bytearray(n)), 4096)(0, 8192)
        disk.flush()
        return bytes(got)

    assert fetch(s3("http://one.test:9000"), b"1") == b"1" * 8192
    assert fetch(s3("http://two.test:9000"), b"2") == b"2" * 8192
    assert fetch(s3("http://one.test:9000"), b"x") == b"1" * 8192  # its own blocks, from disk
    disk.close()


def test_head_answers_of_one_endpoint_are_not_answered_for_another(tmp_path: Path) -> None:
    shelf = MetadataStore(tmp_path / "meta")
    one, two = s3("http://one.test:9000"), s3("http://two.test:9000")
    info = ObjectInfo(key="k", size=32, etag='"e"', metadata={"dtype": "<f8", "shape": "4", "compression": "False"})
    shelf.scoped(one).remember([info])  # type: ignore[union-attr]
    listed = [ObjectInfo(key="k", size=32, etag='"e"')]
    assert shelf.scoped(two).recall(listed) == {}  # type: ignore[union-attr]
    assert set(shelf.scoped(one).recall(listed)) == {"k"}  # type: ignore[union-attr]


@pytest.mark.parametrize("alias", ["localhost"])
def test_a_download_through_another_endpoint_is_fetched_again(s3, tmp_path: Path, alias: str) -> None:  # type: ignore[no-untyped-def]
    """The library's disk block cache with a second endpoint name for the same server: the same bucket,
    key and ETag, yet the second download must ask its own endpoint (another server could hold
    other bytes under that ETag)."""
    folder = tmp_path / "cache"
    first = cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False, block_cache_dir=str(folder))
    arr = np.arange(2**17, dtype="<f8")
    first.upload_raw_array("ep/a", arr, compression=False)
    assert np.array_equal(first.download_raw_array("ep/a"), arr)
    shared_blocks(folder, first.settings.block_cache_size).flush()
    other = s3.endpoint_url.replace("127.0.0.1", alias)
    assert other != s3.endpoint_url
    second = cc.get_interface(BUCKET, endpoint_url=other, verbose=False, block_cache_dir=str(folder))
    s3.clear_log()
    assert np.array_equal(second.download_raw_array("ep/a"), arr)
    assert [r for r in s3.requests() if r.method == "GET" and r.path.endswith("/ep/a")]


def test_a_mount_through_another_endpoint_is_fetched_again(s3, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The mount's disk tier (``--cache-dir``), driven without a kernel: same bucket, key and ETag under
    a second endpoint name, and the second mount still GETs the bytes from its own endpoint."""
    from ccfs.filesystem import CcFilesystem, MountOptions
    from cottoncandy.storage.s3 import S3Account

    arr = np.arange(2**16, dtype="<f8")
    cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False).upload_raw_array("ep/m", arr,
                                                                                            compression=False)
    for endpoint in (s3.endpoint_url, s3.endpoint_url.replace("127.0.0.1", "localhost")):
        fs = CcFilesystem(S3Account(Settings(endpoint_url=endpoint)).store(BUCKET),
                          options=MountOptions(cache_dir=str(tmp_path / "cache")))
        s3.clear_log()
        fh = fs.open("/ep/m.npy")
        size = fs.getattr("/ep/m.npy")["st_size"]
        assert fs.read(fh, size, 0)[-arr.nbytes :] == arr.tobytes()
        fs.release(fh)
        fs.close()
        assert [r for r in s3.requests() if r.method == "GET" and r.path.endswith("/ep/m")], endpoint
