"""What the store said about single objects (their HEADs), how long that is trusted, and which
paths are known not to exist.

Object metadata costs a HEAD, issued concurrently and only for objects whose name leaves open
that they are raw arrays (the caller decides which). HEADs are kept for ``ttl`` seconds, and a
listing whose ETag differs from a cached HEAD invalidates that HEAD (``listed``). Misses (paths
that resolved to nothing) are kept in a bounded negative cache. With a ``shelf`` (the persistent
metadata cache), a listed object whose version the shelf holds needs no HEAD at all, and every
HEAD answer is put on the shelf for the next process.

A file is different: what a stat, an open or a read of it gets must be its current version, or a
scientist who rewrites an array and looks at it again sees the old one for minutes. So metadata
confirmed more than ``attr_ttl`` seconds ago is asked for again (``stale`` / ``revalidate``, one
HEAD); what that finds (a new version, or none) overrides the cached listing until the next one
(``with_revalidations``).

A HEAD that fails for a passing reason (a 5xx, a reset, a timeout: the store's retries ran out)
decides nothing: an object whose metadata is unknown could be a raw array (shown as ``k.npy``) or
not (shown as ``k``), so guessing would rename it or make it vanish. The listing or lookup that
needed it fails with EIO naming the object (``undecided``), and nothing about it is cached, so the
next access asks again. Only a HEAD's 404 (the object went away after the LIST) or 403 (its
metadata may not be read: it is shown as a plain object that fails to open) is an answer.
"""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from typing import Protocol

from cachetools import TTLCache

from ..storage.base import ObjectInfo, ObjectStore, same_version
from .listings import FolderListing

HeadResult = ObjectInfo | BaseException


class Shelf(Protocol):
    """HEAD answers kept outside this process (``cache.metadata.ScopedShelf``: on local disk,
    shared by mounts and library processes), answered only for the version a listing shows."""

    def recall(self, listed: Iterable[ObjectInfo]) -> dict[str, ObjectInfo]: ...

    def remember(self, infos: Iterable[ObjectInfo]) -> None: ...


def is_answer(exc: BaseException) -> bool:
    """Whether a failed HEAD says something about the object (it is gone, or its metadata is
    refused) rather than about the way to it (a 5xx, a reset, a timeout after retries).

    ``ValueError``: the store refused the object's own metadata (a hostile local sidecar): an
    answer about that one object, which then fails alone instead of its whole folder."""
    return isinstance(exc, (FileNotFoundError, PermissionError, ValueError))


class AttributeCache:
    def __init__(self, store: ObjectStore, pool: Executor, ttl: float = 300.0, attr_ttl: float | None = None,
                 max_heads: int = 500_000, negative_size: int = 10_000, shelf: Shelf | None = None):
        """``pool``: where HEADs the store cannot batch run concurrently; ``attr_ttl``: seconds a
        file's metadata is trusted (``None``: ``ttl``); ``shelf``: HEAD answers kept across processes."""
        self.store = store
        self.shelf = shelf
        self.attr_ttl = ttl if attr_ttl is None else attr_ttl
        self._pool = pool
        self._lock = threading.Lock()
        # key -> when its metadata was last confirmed by the store (monotonic seconds)
        self._checked: TTLCache[str, float] = TTLCache(maxsize=max_heads, ttl=ttl)
        # key -> what a revalidation found since its folder was listed (None: the object is gone)
        self._fresh: TTLCache[str, ObjectInfo | None] = TTLCache(maxsize=max_heads, ttl=ttl)
        self._heads: TTLCache[str, ObjectInfo] = TTLCache(maxsize=max_heads, ttl=ttl)
        self._negative: TTLCache[str, bool] = TTLCache(maxsize=negative_size, ttl=max(0.001, min(ttl, 30.0)))
        self.head_requests = 0
        self.shelf_hits = 0

    # --- HEADs -------------------------------------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        with self._lock:
            cached = self._heads.get(key)
        if cached is not None:
            return cached
        info = self.store.head(key)
        self.head_requests += 1
        with self._lock:
            self._heads[key] = info
            self._checked[key] = time.monotonic()
        if self.shelf is not None:
            self.shelf.remember([info])
        return info

    def heads(self, keys: Iterable[str], threads: bool = True,
              listed: Mapping[str, ObjectInfo] | None = None) -> dict[str, HeadResult]:
        """HEAD many keys concurrently (cached ones are free); failures are returned, not raised.
        Without ``threads``, what the store cannot batch is asked one key after another.
        ``listed``: key -> its listing entry, for the shelf (which answers only that version)."""
        keys = list(keys)
        out: dict[str, HeadResult] = {}
        todo = []
        with self._lock:
            for key in keys:
                cached = self._heads.get(key)
                if cached is not None:
                    out[key] = cached
                else:
                    todo.append(key)
        if todo and self.shelf is not None and listed:
            kept = self.shelf.recall([listed[key] for key in todo if key in listed])
            if kept:  # confirmed when the listing that shows this version was made (``listed``), not now
                with self._lock:
                    for key, info in kept.items():
                        out[key] = self._heads[key] = info
                self.shelf_hits += len(kept)
                todo = [key for key in todo if key not in kept]

        def one(key: str) -> HeadResult:
            try:
                return self.head(key)
            except Exception as exc:
                return exc

        batched = self.store.capabilities.batched_head and len(todo) > 1  # S3: one thread, many sockets
        answered = self.store.head_many(todo) if batched else None
        if answered is not None:
            now = time.monotonic()
            with self._lock:
                for key, answer in answered.items():
                    if answer is not None:
                        out[key] = self._heads[key] = answer
                        self._checked[key] = now
                        self.head_requests += 1
            if self.shelf is not None:
                self.shelf.remember(found for found in answered.values() if found is not None)
            todo = [key for key in todo if key not in out]  # the rest: boto3 says what they are
        if len(todo) == 1 or not threads:
            out.update((key, one(key)) for key in todo)
        elif todo:
            for key, result in zip(todo, self._pool.map(one, todo)):
                out[key] = result
        return out

    def unknown(self, keys: Iterable[str]) -> int:
        """How many of ``keys`` have no HEAD answer in memory."""
        with self._lock:
            return sum(1 for key in keys if key not in self._heads)

    def undecided(self, heads: dict[str, HeadResult], keys: Iterable[str], what: str) -> None:
        """Raise ``OSError(EIO)`` if the HEAD of one of ``keys`` failed for a passing reason: its
        name and kind are unknown, and guessing them would change the tree (see the docstring)."""
        for key in keys:
            failure = heads.get(key)
            if isinstance(failure, BaseException) and not is_answer(failure):
                raise OSError(errno.EIO, f"{what}: metadata of {self.store.describe(key)} unavailable "
                                         f"({failure})") from failure

    # --- listings and revalidation -----------------------------------------------------------
    def listed(self, prefix: str, listing: FolderListing) -> None:
        """A new listing of the folder at key ``prefix``: it is newer than what revalidations found
        there, it confirms its objects' metadata, and it invalidates HEADs of other versions."""
        now = time.monotonic()
        with self._lock:
            for key in [k for k in self._fresh if k.startswith(prefix) and "/" not in k[len(prefix):]]:
                del self._fresh[key]
            for info in listing.objects.values():
                head = self._heads.get(info.key)
                if head is not None and not same_version(info, head):
                    del self._heads[info.key]  # new body, or new metadata (a copy onto itself)
                self._checked[info.key] = now  # the same version: this LIST confirms its HEAD now

    def with_revalidations(self, listing: FolderListing) -> FolderListing:
        """``listing`` with what revalidations found since it was made (new versions, objects gone)."""
        with self._lock:
            if not self._fresh:
                return listing
            found = {name: self._fresh.get(info.key, info) for name, info in listing.objects.items()
                     if info.key in self._fresh}
        if not found:
            return listing
        objects = {name: found.get(name, info) for name, info in listing.objects.items()}
        return FolderListing(folders=listing.folders,
                             objects={name: info for name, info in objects.items() if info is not None},
                             listed_at=listing.listed_at, list_seconds=listing.list_seconds)

    def confirm_listed(self, page: Iterable[ObjectInfo], shown: Mapping[str, ObjectInfo]) -> int:
        """A page of a LIST made just now: each object in it whose version is the one the tree shows
        (what a revalidation found since, else ``shown``: key -> its listing entry) is confirmed
        now, as a HEAD of it would. How many were."""
        now = time.monotonic()
        confirmed = 0
        with self._lock:
            for info in page:
                known = self._fresh[info.key] if info.key in self._fresh else shown.get(info.key)
                if known is not None and same_version(info, known):
                    self._checked[info.key] = now
                    confirmed += 1
        return confirmed

    def stale(self, key: str) -> bool:
        """Whether ``key``'s metadata was confirmed more than ``attr_ttl`` seconds ago."""
        with self._lock:
            checked = self._checked.get(key, 0.0)
        return time.monotonic() - checked >= self.attr_ttl

    def revalidate(self, key: str) -> ObjectInfo:
        """Ask the store for ``key``'s metadata now (one HEAD). ``FileNotFoundError`` when it is
        gone, which is remembered until the folder's next listing."""
        try:
            info = self.store.head(key)
        except FileNotFoundError:
            with self._lock:
                self._fresh[key] = None
                self._heads.pop(key, None)
            raise
        self.head_requests += 1
        with self._lock:
            self._checked[key] = time.monotonic()
        if self.shelf is not None:
            self.shelf.remember([info])
        return info

    def new_version(self, info: ObjectInfo) -> None:
        """A revalidation found another version: it replaces the listed one until the next listing."""
        with self._lock:
            self._heads[info.key] = info
            self._fresh[info.key] = info

    # --- misses ------------------------------------------------------------------------------
    def missing(self, path: str) -> bool:
        with self._lock:
            return path in self._negative

    def remember_missing(self, path: str) -> None:
        with self._lock:
            self._negative[path] = True

    def learned(self, key: str, info: ObjectInfo | None) -> None:
        """The store said just now that ``key`` is ``info`` (``None``: gone): that replaces what was
        known of it, and every remembered miss is dropped (one of them may name it)."""
        with self._lock:
            self._fresh.pop(key, None)
            self._heads.pop(key, None)
            self._checked.pop(key, None)
            self._negative.clear()
            if info is not None:
                self._heads[key] = info
                self._checked[key] = time.monotonic()
        if info is not None and self.shelf is not None:
            self.shelf.remember([info])

    def clear(self) -> None:
        """Forget HEADs and misses (not when metadata was last confirmed)."""
        with self._lock:
            self._heads.clear()
            self._negative.clear()
