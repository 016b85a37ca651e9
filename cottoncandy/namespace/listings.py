"""Folder listings of one bucket (or prefix), cached: one paginated LIST per folder per ``ttl``.

A folder costs one LIST with a delimiter; its listing is kept for ``ttl`` seconds, so new and
removed names show up after that. Threads visiting the same folder at once (``ls -l``, a glob, a
load ahead) share one LIST (``singleflight``); a LIST that fails is not remembered, and each of
its waiters then asks for itself. Only folders being listed are in that table, so it stays as
small as the number of LISTs running, however many folders a walk visits.

A new listing is announced (``on_listed``) before it is served: what is cached about its objects
(their HEADs, see ``attributes``) is brought up to date with it first, so no reader sees a new
listing next to an old object's metadata.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cachetools import TTLCache

from ..printable import escape_controls
from ..singleflight import SingleFlight
from ..storage.base import ObjectInfo, ObjectStore
from ..storage.errors import NoAnswer

log = logging.getLogger(__name__)

#: names a folder entry cannot have: the kernel's names end at a NUL (a key holding one would show
#: as its prefix, another object's name), and ``.`` and ``..`` are the folder and its parent
UNNAMEABLE = (".", "..")
#: keys whose leaving out was logged, per listing cache (each is logged once; beyond this, no more)
MAX_WARNED = 10_000


def nameable(name: str) -> bool:
    """Whether a child's name (relative to its folder, without ``/``) can be a directory entry."""
    return "\x00" not in name and name not in UNNAMEABLE


@dataclass(frozen=True)
class FolderListing:
    folders: list[str]
    objects: dict[str, ObjectInfo]
    #: when the LIST that made it began (monotonic seconds): what it says was true then
    listed_at: float = field(default=0.0, compare=False)
    #: how long that LIST took (all its pages), seconds
    list_seconds: float = field(default=0.0, compare=False)

    @functools.cached_property
    def folder_names(self) -> frozenset[str]:
        return frozenset(self.folders)

    @functools.cached_property
    def keys_in_order(self) -> list[str]:
        """The objects' keys in the store's order (for the key just before a given one)."""
        return sorted(info.key for info in self.objects.values())

    @property
    def empty(self) -> bool:
        return not self.folders and not self.objects


#: what ``ListingCache.get`` calls with each page of a LIST (names relative to the folder)
PageCallback = Callable[["FolderListing"], None]


def split(path: str) -> list[str]:
    return [p for p in path.strip("/").split("/") if p]


class ListingCache:
    """``get(path)``: the listing of one folder, from memory or from one LIST."""

    def __init__(self, store: ObjectStore, prefix: str = "", ttl: float = 300.0, max_folders: int = 20_000,
                 on_listed: Callable[[str, FolderListing], None] | None = None):
        """``prefix``: the key prefix of the tree's root; ``on_listed(folder key prefix, listing)``
        is called with each new listing before anyone is given it."""
        self.store = store
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.on_listed = on_listed
        self._folders: TTLCache[str, FolderListing] = TTLCache(maxsize=max_folders, ttl=ttl)
        self._lock = threading.Lock()
        self._listing: SingleFlight[str, FolderListing] = SingleFlight(self._lock)  # folder -> its LIST
        self.lists = 0
        self._warned: set[str] = set()
        self._warned_lock = threading.Lock()

    def folder_prefix(self, path: str) -> str:
        """The key prefix of the folder at ``path`` (relative to the root)."""
        return self.prefix + "".join(p + "/" for p in split(path))

    def get(self, path: str, on_page: PageCallback | None = None) -> FolderListing:
        """The folder's listing. ``on_page(page)``: called with each LIST page as it arrives when
        this call is the one LISTing (not when the listing is in memory or another caller's LIST is
        shared), so a caller can work on a big folder's first entries while the rest is listed."""
        path = "/".join(split(path))

        def keep(listing: FolderListing) -> None:
            self._folders[path] = listing

        # offload: a FUSE request that LISTs does so on a helper thread, so that its reader's signal
        # (or the mount stopping) ends its wait at once; the LIST goes on for the next visit
        return self._listing.run(path, lambda: self._list(path, on_page), cached=lambda: self._folders.get(path),
                                 keep=keep, share_failure=False, offload=True)

    def refresh(self, path: str, max_age: float) -> FolderListing:
        """The folder's listing, LISTed again unless the one in memory began less than ``max_age``
        seconds ago. Callers asking at once share one LIST (the first one drops the old listing). A
        LIST that meets no answer (``errors.NoAnswer``) puts the old listing back, then raises."""
        path = "/".join(split(path))
        with self._lock:
            current = self._folders.get(path)
            if current is not None and time.monotonic() - current.listed_at >= max_age:
                self._folders.pop(path, None)
            else:
                current = None  # nothing dropped
        try:
            return self.get(path)
        except OSError as exc:
            if current is not None and isinstance(exc, NoAnswer):  # what is cached keeps being served
                with self._lock:
                    self._folders.setdefault(path, current)
            raise

    def _list(self, path: str, on_page: PageCallback | None = None) -> FolderListing:
        prefix = self.folder_prefix(path)
        began = time.monotonic()
        folders: list[str] = []
        objects: dict[str, ObjectInfo] = {}
        for raw in self.store.list_dir_pages(prefix):
            page = FolderListing(folders=[p[len(prefix):].rstrip("/") for p in raw.prefixes
                                          if self._nameable(p, p[len(prefix):].rstrip("/"))],
                                 objects={o.key[len(prefix):]: o for o in raw.objects
                                          if o.key[len(prefix):] and "/" not in o.key[len(prefix):]
                                          and self._nameable(o.key, o.key[len(prefix):])})
            folders += page.folders
            objects.update(page.objects)
            if on_page is not None:
                on_page(page)
        self.lists += 1
        listing = FolderListing(folders=folders, objects=objects, listed_at=began,
                                list_seconds=time.monotonic() - began)
        if self.on_listed is not None:
            self.on_listed(prefix, listing)
        return listing

    def _nameable(self, key: str, name: str) -> bool:
        """``nameable(name)``; a key left out is logged once, escaped, with why."""
        if nameable(name):
            return True
        with self._warned_lock:
            first = key not in self._warned and len(self._warned) < MAX_WARNED
            if first:
                self._warned.add(key)
        if first:
            why = ("no file or folder name can hold a NUL character" if "\x00" in name
                   else f"{name!r} names a folder itself or its parent, never an entry of its own")
            log.warning("left out %s: %s", escape_controls(self.store.describe(key)), why)
        return False

    def peek(self, path: str) -> FolderListing | None:
        """The folder's listing if it is in memory (no LIST)."""
        with self._lock:
            return self._folders.get("/".join(split(path)))

    def cached(self, path: str) -> bool:
        """Whether the folder at ``path`` has a current listing in memory (no LIST needed)."""
        with self._lock:
            return "/".join(split(path)) in self._folders

    def in_flight(self) -> int:
        """How many folders are being listed right now (what the single-flight table holds)."""
        with self._lock:
            return len(self._listing)

    def learned(self, folder: str, name: str, info: ObjectInfo | None) -> None:
        """The store says the object ``name`` of the folder at ``folder`` is now ``info`` (``None``:
        gone): the listings in memory are mended to match, with no LIST. The folder's listing gets
        the entry (or loses it); each listed ancestor lists the folders on the way; a folder left
        empty leaves its parent's listing. A listing whose answer cannot be worked out (the folder's
        own is not in memory, so whether it is now empty is unknown) is dropped instead. A mended
        listing keeps its ``listed_at``, and one that is ``ttl`` old by then is dropped instead (it is
        due for a LIST): a folder written here over and over still shows what other machines wrote
        within twice ``ttl``."""
        parts = split(folder)
        folder = "/".join(parts)
        ttl = self._folders.ttl

        def mend(path: str, mended: FolderListing) -> None:
            if time.monotonic() - mended.listed_at >= ttl:
                self._folders.pop(path, None)
            else:
                self._folders[path] = mended

        with self._lock:
            listing = self._folders.get(folder)
            if listing is not None:
                objects = dict(listing.objects)
                if info is None:
                    objects.pop(name, None)
                else:
                    objects[name] = info
                listing = dataclasses.replace(listing, objects=objects)
                mend(folder, listing)
            if info is not None:
                for depth in range(len(parts)):
                    above, child = "/".join(parts[:depth]), parts[depth]
                    known = self._folders.get(above)
                    if known is not None and child not in known.folder_names:
                        mend(above, dataclasses.replace(known, folders=sorted([*known.folders, child])))
                return
            while parts and (listing is None or listing.empty):
                above, child = "/".join(parts[:-1]), parts[-1]
                known = self._folders.get(above)
                if known is None or child not in known.folder_names:
                    return
                if listing is None:  # whether the folder is now empty is unknown: ask again
                    del self._folders[above]
                    return
                listing = dataclasses.replace(known, folders=[f for f in known.folders if f != child])
                mend(above, listing)
                parts = parts[:-1]

    def forget(self, path: str = "") -> None:
        """Drop one folder's listing (all of them for ``''``): the next visit LISTs again."""
        with self._lock:
            if path:
                self._folders.pop("/".join(split(path)), None)
            else:
                self._folders.clear()
