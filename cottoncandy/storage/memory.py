"""An in-process store: unit tests of the layers above storage, and ``memory://NAME`` in one process.

Stores opened through the registry (``open_store('memory://NAME')``, ``get_interface(NAME,
backend='memory')``) are shared by name within this process; they cannot travel to another one.
This module is also the smallest complete backend (``docs/BACKENDS.md``).
"""

from __future__ import annotations

import errno
import hashlib
import io
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import BinaryIO, ClassVar

from ..config import Settings
from ..errors import ObjectNotFound
from . import conditions
from .base import (
    Account,
    Buffer,
    Listing,
    ObjectInfo,
    ObjectStore,
    Progress,
    StoreSpec,
    as_byte_view,
    check_copy_source,
    check_range,
)
from .conditions import WriteCondition
from .registry import StoreKind, StoreOptions


class MemoryStore(ObjectStore):
    def __init__(self, bucket: str = "memory"):
        self.bucket = bucket
        self._objects: dict[str, tuple[bytes, ObjectInfo]] = {}
        self._lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []  # (operation, key): lets tests count round trips

    def __repr__(self) -> str:
        return f"MemoryStore({self.bucket!r})"

    def _get(self, key: str, if_match: str | None = None) -> tuple[bytes, ObjectInfo]:
        with self._lock:
            try:
                data, info = self._objects[key]
            except KeyError:
                raise ObjectNotFound(errno.ENOENT, f"object not found: {self.describe(key)}") from None
        if if_match and info.etag != if_match:
            raise OSError(errno.ESTALE, f"{self.describe(key)} changed since it was opened")
        return data, info

    def head(self, key: str) -> ObjectInfo:
        self.requests.append(("head", key))
        return self._get(key)[1]

    def get_range(self, key: str, start: int, end: int, if_match: str | None = None) -> bytes:
        check_range(start, end)
        self.requests.append(("get", key))
        data, _ = self._get(key, if_match)
        return data[start:end]

    def open_read(self, key: str, if_match: str | None = None) -> BinaryIO:
        self.requests.append(("get", key))
        return io.BytesIO(self._get(key, if_match)[0])

    def put(self, key: str, data: Buffer | BinaryIO, metadata: Mapping[str, str] | None = None,
            acl: str | None = None, progress: Progress | None = None, *,
            condition: WriteCondition | None = None) -> ObjectInfo:
        if not key:
            raise ValueError("invalid object key '': keys are non-empty strings")
        if isinstance(data, (bytes, bytearray, memoryview)) or hasattr(data, "__array_interface__"):
            body = bytes(as_byte_view(data))  # type: ignore[arg-type]
        else:
            body = data.read()
        info = ObjectInfo(key=key, size=len(body), etag=f'"{hashlib.md5(body).hexdigest()}"',
                          last_modified=datetime.now(timezone.utc),
                          metadata={k.lower(): str(v) for k, v in (metadata or {}).items()})
        with self._lock:
            current = self._objects.get(key)
            conditions.check(condition, None if current is None else current[1].etag, self.describe(key))
            self._objects[key] = (body, info)
        if progress is not None:
            progress(len(body))
        return info

    def copy(self, src: str, dst: str, *, condition: WriteCondition | None = None,
             source_etag: str | None = None) -> None:
        try:
            data, info = self._get(src)  # one version's bytes and info, taken together
        except FileNotFoundError:
            check_copy_source(source_etag, None, self.describe(src))  # asked for a version: stale
            raise
        check_copy_source(source_etag, info.etag, self.describe(src))
        self.put(dst, data, info.metadata, condition=condition)

    def delete_versions(self, versions: Mapping[str, str | None]) -> list[str]:
        left = []
        with self._lock:  # the check and the delete as one step
            for key, etag in versions.items():
                current = self._objects.get(key)
                if current is not None and etag is not None and current[1].etag.strip('"') != etag.strip('"'):
                    left.append(key)
                else:
                    self._objects.pop(key, None)
        return left

    def delete_many(self, keys: Iterable[str], *, cleanup: bool = False) -> None:
        with self._lock:
            for key in keys:
                self._objects.pop(key, None)

    def _listed(self, info: ObjectInfo) -> ObjectInfo:
        return ObjectInfo(key=info.key, size=info.size, etag=info.etag, last_modified=info.last_modified)

    def list_dir(self, prefix: str, delimiter: str = "/") -> Listing:
        self.requests.append(("list", prefix))
        with self._lock:
            keys = sorted(k for k in self._objects if k.startswith(prefix))
            infos = {k: self._objects[k][1] for k in keys}
        listing = Listing()
        for key in keys:
            rest = key[len(prefix):]
            if delimiter in rest:
                sub = prefix + rest.split(delimiter, 1)[0] + delimiter
                if not listing.prefixes or listing.prefixes[-1] != sub:
                    listing.prefixes.append(sub)
            else:
                listing.objects.append(self._listed(infos[key]))
        return listing

    def iter_objects(self, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            infos = [self._objects[k][1] for k in sorted(self._objects) if k.startswith(prefix)]
        yield from (self._listed(i) for i in infos)


class MemoryAccount(Account):
    """The named in-memory buckets of this process (made on first use, as local folders are)."""

    named_buckets = False
    _buckets: ClassVar[dict[str, MemoryStore]] = {}  # one table per process, shared by every account
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @property
    def endpoint(self) -> str:
        return "memory of this process"

    def store(self, bucket: str) -> MemoryStore:
        with self._lock:
            if bucket not in self._buckets:
                self._buckets[bucket] = MemoryStore(bucket)
            return self._buckets[bucket]

    def list_buckets(self) -> list[str]:
        with self._lock:
            return sorted(self._buckets)

    def bucket_exists(self, bucket: str) -> bool:
        with self._lock:
            return bucket in self._buckets

    def create_bucket(self, bucket: str, acl: str | None = None) -> None:
        self.store(bucket)

    def delete_bucket(self, bucket: str) -> None:
        with self._lock:
            store = self._buckets.get(bucket)
            if store is None:
                raise ObjectNotFound(errno.ENOENT, f"bucket not found: memory://{bucket}")
            if next(store.iter_objects(), None) is not None:
                raise OSError(errno.ENOTEMPTY, f"memory://{bucket} is not empty")
            del self._buckets[bucket]


def _open(bucket: str, options: StoreOptions) -> MemoryStore:
    return MemoryAccount().store(bucket)


def _account(settings: Settings) -> MemoryAccount:
    return MemoryAccount()


def _from_spec(spec: StoreSpec) -> MemoryStore:
    raise ValueError(f"memory://{spec.bucket} lives in one process and cannot be rebuilt in another")


KIND = StoreKind(scheme="memory", open_bucket=_open, account=_account, from_spec=_from_spec)
