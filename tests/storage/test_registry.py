"""The backend seam: URLs -> stores through one registry, capabilities instead of types, and
the picklable spec that carries every non-secret setting to worker processes."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import cottoncandy as cc
from cottoncandy.config import Settings
from cottoncandy.files.transfers import copy_object
from cottoncandy.files.urls import Location, parse_location
from cottoncandy.storage import (
    Account,
    Capabilities,
    LocalStore,
    MemoryStore,
    ObjectInfo,
    ObjectStore,
    S3Account,
    S3Store,
    StoreSpec,
    registry,
)
from cottoncandy.storage.registry import StoreHandle, StoreKind, StoreOptions, open_store
from cottoncandy.testing.s3server import LocalS3Server
from tests.conftest import BUCKET

# --- URLs -> stores ---------------------------------------------------------------------------


def test_urls_open_the_store_of_their_scheme(s3: LocalS3Server, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(f"s3://{BUCKET}", endpoint_url=s3.endpoint_url)
    assert isinstance(store, S3Store) and store.bucket == BUCKET
    store.put("k", b"v")  # a working store on the endpoint given
    assert S3Account(Settings(endpoint_url=s3.endpoint_url)).store(BUCKET).get("k") == b"v"

    folder = tmp_path / "d"
    folder.mkdir()
    for url in (str(folder), f"file://{folder}", f"file:{folder}"):
        local = open_store(url)
        assert isinstance(local, LocalStore) and local.root == folder.resolve(), url
    monkeypatch.chdir(tmp_path)
    assert open_store("d").root == folder.resolve()  # type: ignore[attr-defined]  # relative paths too
    with pytest.raises(FileNotFoundError):
        open_store(str(tmp_path / "absent"))  # a folder is made only when asked
    assert open_store(str(tmp_path / "absent"), create=True).bucket == str(tmp_path / "absent")

    one, two = open_store("memory://scratch"), open_store("memory://scratch/")
    assert isinstance(one, MemoryStore) and one is two  # one store per name in this process
    assert open_store("memory://other") is not one


@pytest.mark.parametrize(("url", "words"), [
    ("gs://bucket/x", ("'gs://bucket/x'", "unknown scheme gs://", "only s3:// URLs", "memory://")),
    ("ftp://h/p", ("'ftp://h/p'", "unknown scheme ftp://")),
    ("./odd://name", ("'./odd://name'", "not a URL")),
    ("s3://", ("'s3://'", "no bucket name")),
    ("memory:///k", ("'memory:///k'", "no bucket name")),
    ("s3://bucket/some/key", ("'s3://bucket/some/key'", "names a key")),
])
def test_bad_urls_are_a_value_error_naming_the_url(url: str, words: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as err:
        open_store(url)
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_get_interface_maps_040_backend_names_through_the_registry(s3: LocalS3Server, tmp_path: Path) -> None:
    assert registry.backend_kind("s3") is registry.kind_of("s3")
    assert registry.backend_kind("local") is registry.kind_of("file")  # 0.4.0's name of the folder backend
    assert registry.backend_kind("file") is registry.kind_of("file")
    cci = cc.get_interface(str(tmp_path / "b"), backend="local", verbose=False)
    assert isinstance(cci.store, LocalStore) and (tmp_path / "b").is_dir()
    mem = cc.get_interface("arrays", backend="memory", verbose=False)
    mem.upload_raw_array("x", np.arange(4.0))
    assert np.array_equal(mem.download_raw_array("x"), np.arange(4.0))
    assert open_store("memory://arrays") is mem.store  # the registry's store of that name
    assert repr(mem) == "cottoncandy.backend_interface on memory of this process (arrays)"
    with pytest.raises(ValueError) as err:
        cc.get_interface("b", backend="ftp", verbose=False)
    assert "'ftp'" in str(err.value) and "s3, local" in str(err.value) and "memory" in str(err.value)


def test_cli_locations_and_mount_targets_parse_through_the_registry(tmp_path: Path) -> None:
    from ccfs.target import parse_target

    assert parse_location("memory://b/a//k") == Location("memory", "b", "a/k")
    assert parse_location("memory://b/k").url() == "memory://b/k"
    assert parse_location(f"s3://{BUCKET}/x/").url("y") == f"s3://{BUCKET}/y"
    local = parse_location(str(tmp_path / "arr"))
    assert local == Location("file", str(tmp_path), "arr") and local.url() == str(tmp_path / "arr")
    assert local.store_url() == f"file://{tmp_path}"
    with pytest.raises(ValueError, match="only s3:// URLs"):
        parse_location("gs://bucket/x")
    assert str(parse_target("bkt/sub/dir")) == "s3://bkt/sub/dir"  # a bare name is the first scheme's
    assert str(parse_target("memory://bkt")) == "memory://bkt"
    assert parse_target(f"file://{tmp_path}").scheme == "file" and str(parse_target(str(tmp_path))) == str(tmp_path)


# --- a new backend: one module, one registry line ----------------------------------------------


class ToyStore(MemoryStore):
    """The toy backend of docs/BACKENDS.md: memory, under its own scheme."""


_TOYS: dict[str, ToyStore] = {}


def _toy(bucket: str, options: StoreOptions) -> ToyStore:
    return _TOYS.setdefault(bucket, ToyStore(bucket))


class ToyAccount(Account):
    named_buckets = False
    endpoint = "toy"

    def store(self, bucket: str) -> ToyStore:
        return _toy(bucket, StoreOptions())

    def list_buckets(self) -> list[str]:
        return sorted(_TOYS)

    def bucket_exists(self, bucket: str) -> bool:
        return bucket in _TOYS

    def create_bucket(self, bucket: str, acl: str | None = None) -> None:
        self.store(bucket)

    def delete_bucket(self, bucket: str) -> None:
        _TOYS.pop(bucket)


def _no_spec(spec: StoreSpec) -> ObjectStore:
    raise ValueError("toy stores live in one process")


KIND = StoreKind(scheme="toy", open_bucket=_toy, account=lambda settings: ToyAccount(), from_spec=_no_spec)


def test_a_new_backend_is_one_module_and_one_registry_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.KINDS, "toy", __name__)  # the one line (this module is the backend's module)
    monkeypatch.setattr(registry, "_loaded", dict(registry._loaded))
    store = open_store("toy://box")
    assert isinstance(store, ToyStore) and store is open_store("toy://box")
    assert parse_location("toy://box/a/b") == Location("toy", "box", "a/b")
    cci = cc.get_interface("box", backend="toy", verbose=False)
    cci.upload_raw_array("arr", np.arange(3))
    assert np.array_equal(cci.download_raw_array("arr"), np.arange(3)) and cci.store is store
    with pytest.raises(ValueError, match="toy://"):
        open_store("toy://")


# --- capabilities, not types --------------------------------------------------------------------


class BatchingMemory(MemoryStore):
    """A store that says it batches HEADs; records what it was asked."""

    capabilities = Capabilities(batched_head=True)

    def __init__(self) -> None:
        super().__init__("batching")
        self.batches: list[list[str]] = []

    def head_many(self, keys: Iterable[str]) -> dict[str, ObjectInfo | None]:
        keys = list(keys)
        self.batches.append(keys)
        return super().head_many(keys)


class PlainMemory(BatchingMemory):
    capabilities = Capabilities()


@pytest.mark.parametrize("kind", [BatchingMemory, PlainMemory])
def test_the_namespace_batches_heads_only_for_stores_that_declare_it(kind: type[BatchingMemory]) -> None:
    from ccfs.filesystem import CcFilesystem
    from cottoncandy.arrays.raw import write_raw_array

    store = kind()
    for i in range(6):
        write_raw_array(store, f"many/a{i}", np.zeros(3), compression=False)
    fs = CcFilesystem(store)
    names = sorted(name for name, _ in fs.readdir("/many") if name not in (".", ".."))
    assert names == [f"a{i}.npy" for i in range(6)]
    for name in names:
        assert fs.getattr(f"/many/{name}")["st_size"] == 128 + 24
    batched = sorted(key for batch in store.batches for key in batch)
    if kind.capabilities.batched_head:
        assert batched == [f"many/a{i}" for i in range(6)]
    else:
        assert batched == []
    assert [op for op, _ in store.requests].count("head") == 6  # each key asked once either way


def test_declared_capabilities() -> None:
    assert S3Store.capabilities.batched_head and S3Store.capabilities.cross_bucket_copy
    assert S3Store.capabilities.other_processes and LocalStore.capabilities.other_processes
    assert not LocalStore.capabilities.batched_head and not LocalStore.capabilities.cross_bucket_copy
    assert MemoryStore.capabilities == Capabilities()  # in-memory: nothing beyond the contract, this process only
    assert ObjectStore.capabilities == Capabilities()


def test_head_many_is_in_the_contract_of_every_store(store: ObjectStore) -> None:
    store.put("a", b"1")
    store.put("b", b"22", {"k": "v"})
    answers = store.head_many(["a", "missing", "b", "a"])
    assert sorted(answers) == ["a", "b", "missing"]  # one answer per distinct key; in no promised order
    assert answers["missing"] is None
    assert answers["b"] is not None and answers["b"].size == 2 and answers["b"].metadata == {"k": "v"}


def test_s3_head_many_without_its_fast_path_leaves_every_key_to_head(s3_store: S3Store) -> None:
    s3_store.put("a", b"1")
    s3_store._signed = None  # as when the signed-request path cannot be built for a client
    assert s3_store.head_many(["a", "b"]) == {"a": None, "b": None}


def test_copy_from_is_server_side_across_buckets_of_one_endpoint(s3: LocalS3Server, tmp_path: Path) -> None:
    account = S3Account(Settings(endpoint_url=s3.endpoint_url))
    account.create_bucket("other")
    src, dst = account.store(BUCKET), account.store("other")
    src.put("k", b"payload", {"dtype": "<f8"})

    def no_streaming(*args: object, **kwargs: object) -> None:
        raise AssertionError("a same-endpoint copy must not stream through this process")

    src.open_read = no_streaming  # type: ignore[method-assign]
    copy_object(src, "k", dst, "copied")
    assert dst.get("copied") == b"payload" and dst.head("copied").metadata == {"dtype": "<f8"}

    # no shared account: streamed, metadata kept (memory -> local, local -> S3)
    memory, local = MemoryStore(), LocalStore(tmp_path / "l")
    memory.put("m", b"bytes", {"a": "1"})
    copy_object(memory, "m", local, "x/m")
    copy_object(local, "x/m", dst, "from-local")
    assert dst.get("from-local") == b"bytes" and dst.head("from-local").metadata == {"a": "1"}


# --- the spec: every non-secret setting reaches a worker ----------------------------------------

OPTIONS_CFG = """\
[basic]
threads = 3
signature_version = s3v4
default_acl = private
[upload_settings]
mpu_chunksize = 7
mpu_use_threshold = 33
[compression]
small_array = LZ4
"""

SHOW_STORE = """\
import json, pickle, sys
handle = pickle.load(sys.stdin.buffer)
store = handle.get()
s = store.settings
print(json.dumps({"concurrency": store.concurrency, "threads": s.threads, "signature": s.signature_version,
                  "acl": s.default_acl, "mpu_chunksize": s.mpu_chunksize, "mpu_threshold": s.mpu_threshold,
                  "small_array": s.small_array, "endpoint": s.endpoint_url, "access_key": s.access_key,
                  "body": store.get("k").decode()}))
"""


def test_a_pickled_store_carries_options_cfg_to_a_fresh_process(
        s3: LocalS3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_home = tmp_path / "config"
    (config_home / "cottoncandy").mkdir(parents=True)
    (config_home / "cottoncandy" / "options.cfg").write_text(OPTIONS_CFG)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    cci = cc.get_interface(BUCKET, ACCESS_KEY="testing", SECRET_KEY="explicit-secret-xyz",
                           endpoint_url=s3.endpoint_url, verbose=False)
    assert cci.settings.threads == 3  # read here from options.cfg
    S3Account(Settings(endpoint_url=s3.endpoint_url)).store(BUCKET).put("k", b"from the worker")
    blob = pickle.dumps(StoreHandle(cci.store))
    assert b"explicit-secret-xyz" not in blob

    empty = tmp_path / "empty-config"
    empty.mkdir()
    env = {**os.environ, "XDG_CONFIG_HOME": str(empty), "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    result = subprocess.run([sys.executable, "-c", SHOW_STORE], input=blob, capture_output=True, env=env,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr.decode()
    seen = json.loads(result.stdout)
    assert seen == {"concurrency": 3, "threads": 3, "signature": "s3v4", "acl": "private",
                    "mpu_chunksize": 7 * 2**20, "mpu_threshold": 33 * 2**20, "small_array": "LZ4",
                    "endpoint": s3.endpoint_url,
                    "access_key": None,  # the token is unknown there: the worker's own credential chain
                    "body": "from the worker"}


def test_a_spec_round_trip_in_process_recalls_the_keys_only_for_the_same_endpoint(s3: LocalS3Server) -> None:
    settings = replace(Settings(endpoint_url=s3.endpoint_url, threads=5), access_key="a", secret_key="s3cr3t-value")
    spec = S3Account(settings).store(BUCKET).spec()
    assert "s3cr3t-value" not in repr(spec) and b"s3cr3t-value" not in pickle.dumps(spec)
    assert dict(spec.settings)["threads"] == 5 and "secret_key" not in dict(spec.settings)
    assert registry.kind_of("s3").from_spec(spec).settings is settings  # type: ignore[attr-defined]
    moved = replace(spec, settings=tuple((k, "http://elsewhere:1" if k == "endpoint_url" else v)
                                         for k, v in spec.settings))
    rebuilt = registry.kind_of("s3").from_spec(moved)
    assert rebuilt.settings.secret_key is None and rebuilt.settings.threads == 5  # type: ignore[attr-defined]


def test_memory_stores_refuse_to_travel() -> None:
    handle = StoreHandle(open_store("memory://stay"))
    assert handle.get() is open_store("memory://stay")
    with pytest.raises(TypeError, match="cannot be sent to another process"):
        pickle.dumps(handle)


def test_a_dask_worker_process_gets_the_settings(s3: LocalS3Server, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A real ``dask.distributed`` LocalCluster: a worker process rebuilds the store from its spec."""
    distributed = pytest.importorskip("distributed")
    config_home = tmp_path / "config"
    (config_home / "cottoncandy").mkdir(parents=True)
    (config_home / "cottoncandy" / "options.cfg").write_text(OPTIONS_CFG)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    cci = cc.get_interface(BUCKET, endpoint_url=s3.endpoint_url, verbose=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # the worker cannot read options.cfg itself
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    cci.upload_object("k", b"read in the worker")
    handle = StoreHandle(cci.store)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address="127.0.0.1:0", worker_dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        pid, threads, signature, body = client.submit(_worker_view, handle).result(timeout=120)
    assert pid != os.getpid()
    assert (threads, signature, body) == (3, "s3v4", b"read in the worker")


def _worker_view(handle: StoreHandle) -> tuple[int, int, str | None, bytes]:
    store = handle.get()
    return os.getpid(), store.concurrency, store.settings.signature_version, store.get("k")  # type: ignore[attr-defined]
