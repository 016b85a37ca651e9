"""The tree of one bucket (or prefix), cached: folder listings, object metadata, misses.

A folder costs one paginated LIST with a delimiter; object metadata costs a HEAD, issued
concurrently and only for objects whose name leaves open that they are raw arrays. Listings are
kept for ``ttl`` seconds (new and removed names show up after that), and misses are kept in a
bounded negative cache. A listing whose ETag differs from a cached HEAD invalidates that HEAD.

A file is different: what a stat, an open or a read of it gets must be its current version, or a
scientist who rewrites an array and looks at it again sees the old one for minutes. So a lookup of
a file whose metadata was confirmed more than ``attr_ttl`` seconds ago asks the store again (one
HEAD); what that finds (a new version, or none) overrides the cached listing until the next one.

A HEAD that fails for a passing reason (a 5xx, a reset, a timeout: the store's retries ran out)
decides nothing: an object whose metadata is unknown could be a raw array (shown as ``k.npy``) or
not (shown as ``k``), so guessing would rename it or make it vanish. The listing or lookup that
needed it fails with EIO naming the object, and nothing about it is cached, so the next access asks
again. Only a HEAD's 404 (the object went away after the LIST) or 403 (its metadata may not be
read: it is shown as a plain object that fails to open) is an answer.

Listing a folder also loads its first few subfolders in the background (one level, not further):
``find``, ``ls -R`` and globs such as ``proj/*.grp/*.npy`` visit them next, and would otherwise
wait for one LIST and one round of HEADs per folder, one folder after the other.
"""

from __future__ import annotations

import errno
import functools
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from cachetools import TTLCache

from ..formats.npy import npy_header
from ..formats.raw import check_body_size, has_array_metadata, spec_from_metadata
from ..storage.base import ObjectInfo, ObjectStore
from . import tree
from .nodes import FileNode, FolderNode, Node

log = logging.getLogger(__name__)


def is_answer(exc: BaseException) -> bool:
    """Whether a failed HEAD says something about the object (it is gone, or its metadata is
    refused) rather than about the way to it (a 5xx, a reset, a timeout after retries).

    ``ValueError``: the store refused the object's own metadata (a hostile local sidecar): an
    answer about that one object, which then fails alone instead of its whole folder."""
    return isinstance(exc, (FileNotFoundError, PermissionError, ValueError))


@dataclass(frozen=True)
class FolderListing:
    folders: list[str]
    objects: dict[str, ObjectInfo]

    @functools.cached_property
    def folder_names(self) -> frozenset[str]:
        return frozenset(self.folders)

    @property
    def empty(self) -> bool:
        return not self.folders and not self.objects


def split(path: str) -> list[str]:
    return [p for p in path.strip("/").split("/") if p]


class Namespace:
    def __init__(self, store: ObjectStore, prefix: str = "", ttl: float = 300.0, head_workers: int = 32,
                 negative_size: int = 10_000, max_heads: int = 500_000, max_folders: int = 20_000,
                 folders_ahead: int = 16, heads_ahead: int = 1000, attr_ttl: float | None = None):
        """``folders_ahead``: subfolders of a listed folder loaded in the background (0: none);
        ``heads_ahead``: a subfolder needing more HEADs than this is only listed ahead, not HEADed;
        ``attr_ttl``: seconds a file's metadata is trusted by ``lookup`` (``None``: ``ttl``)."""
        self.store = store
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.ttl = ttl
        self.attr_ttl = ttl if attr_ttl is None else attr_ttl
        # key -> when its metadata was last confirmed by the store (monotonic seconds)
        self._checked: TTLCache = TTLCache(maxsize=max_heads, ttl=ttl)
        # key -> what a revalidation found since its folder was listed (None: the object is gone)
        self._fresh: TTLCache = TTLCache(maxsize=max_heads, ttl=ttl)
        self._folders: TTLCache = TTLCache(maxsize=max_folders, ttl=ttl)
        self._heads: TTLCache = TTLCache(maxsize=max_heads, ttl=ttl)
        self._negative: TTLCache = TTLCache(maxsize=negative_size, ttl=max(0.001, min(ttl, 30.0)))
        # path -> (the parent's listing it was made from, node): a lookup costs a dict hit while
        # that listing is current (``ls -l`` asks for every entry again, ``getfattr`` too)
        self._nodes: TTLCache = TTLCache(maxsize=max_heads, ttl=ttl)
        self._lock = threading.Lock()
        self._folder_locks: dict[str, threading.Lock] = {}
        self._pool = ThreadPoolExecutor(max_workers=head_workers, thread_name_prefix="cc-head")
        self.folders_ahead = folders_ahead
        self._loading: dict[str, Future[None]] = {}  # folder path -> its load ahead, while it runs
        self.heads_ahead = heads_ahead
        self.lists = 0
        self.head_requests = 0

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    # --- keys --------------------------------------------------------------------------------
    def folder_prefix(self, path: str) -> str:
        parts = split(path)
        return self.prefix + "".join(p + "/" for p in parts)

    # --- cached reads of the store -----------------------------------------------------------
    def listing(self, path: str) -> FolderListing:
        path = "/".join(split(path))
        with self._lock:
            cached = self._folders.get(path)
            if cached is not None:
                return cached
            folder_lock = self._folder_locks.setdefault(path, threading.Lock())
        with folder_lock:  # one LIST per folder at a time
            with self._lock:
                cached = self._folders.get(path)
                if cached is not None:
                    return cached
            prefix = self.folder_prefix(path)
            raw = self.store.list_dir(prefix)
            self.lists += 1
            folders = [p[len(prefix):].rstrip("/") for p in raw.prefixes]
            objects = {o.key[len(prefix):]: o for o in raw.objects if o.key[len(prefix):] and "/" not in
                       o.key[len(prefix):]}
            listing = FolderListing(folders=folders, objects=objects)
            now = time.monotonic()
            with self._lock:
                self._folders[path] = listing
                for key in [k for k in self._fresh if k.startswith(prefix) and "/" not in k[len(prefix):]]:
                    del self._fresh[key]  # this listing is newer than what revalidations found
                for info in objects.values():
                    head = self._heads.get(info.key)
                    if head is not None and (head.etag, head.last_modified) != (info.etag, info.last_modified):
                        del self._heads[info.key]  # new body, or new metadata (a copy onto itself)
                    self._checked[info.key] = now
            return listing

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
        return info

    def heads(self, keys: Iterable[str], threads: bool = True) -> dict[str, ObjectInfo | BaseException]:
        """HEAD many keys concurrently (cached ones are free); failures are returned, not raised.
        Without ``threads``, what the store cannot batch is asked one key after another."""
        keys = list(keys)
        out: dict[str, ObjectInfo | BaseException] = {}
        todo = []
        with self._lock:
            for key in keys:
                cached = self._heads.get(key)
                if cached is not None:
                    out[key] = cached
                else:
                    todo.append(key)

        def one(key: str) -> ObjectInfo | BaseException:
            try:
                return self.head(key)
            except Exception as exc:
                return exc

        batched = self.store.capabilities.batched_head and len(todo) > 1  # S3: one thread, many sockets
        answered = self.store.head_many(todo) if batched else None
        if answered is not None:
            now = time.monotonic()
            with self._lock:
                for key, info in answered.items():
                    if info is not None:
                        out[key] = self._heads[key] = info
                        self._checked[key] = now
                        self.head_requests += 1
            todo = [key for key in todo if key not in out]  # the rest: boto3 says what they are
        if len(todo) == 1 or not threads:
            out.update((key, one(key)) for key in todo)
        elif todo:
            for key, result in zip(todo, self._pool.map(one, todo)):
                out[key] = result
        return out

    # --- nodes -------------------------------------------------------------------------------
    def _file_node(self, path: str, listed: ObjectInfo, head: ObjectInfo | BaseException | None) -> FileNode:
        if head is None or isinstance(head, BaseException) or not has_array_metadata(head.metadata):
            info = head if isinstance(head, ObjectInfo) else listed
            if isinstance(head, BaseException) and not isinstance(head, FileNotFoundError):
                return FileNode(path=path, info=listed, error=f"metadata unavailable: {head}")
            return FileNode(path=path, info=info)
        # one bad object fails only its own operations (EIO, one log line), never the listing
        name = self.store.describe(head.key)
        try:
            spec = spec_from_metadata(head.metadata, name)
            header = npy_header(spec)
        except Exception as exc:  # noqa: BLE001 - spec_from_metadata raises ValueError; anything else too
            return FileNode(path=path, info=head, error=str(exc) if isinstance(exc, ValueError) else
                            f"{name}: unreadable metadata ({type(exc).__name__})")
        try:
            check_body_size(spec, head.size, name)
        except ValueError as exc:  # a short raw body keeps its attributes (getfattr); a forged size
            kept = spec if spec.compression is None else None  # is not shown as the file's size
            return FileNode(path=path, info=head, spec=kept, header=header if kept else b"", error=str(exc))
        return FileNode(path=path, info=head, spec=spec, header=header)

    def _is_array(self, heads: dict[str, ObjectInfo | BaseException], key: str) -> bool:
        head = heads.get(key)
        return isinstance(head, ObjectInfo) and has_array_metadata(head.metadata)

    def _undecided(self, heads: dict[str, ObjectInfo | BaseException], keys: Iterable[str], what: str) -> None:
        """Raise ``OSError(EIO)`` if the HEAD of one of ``keys`` failed for a passing reason: its
        name and kind are unknown, and guessing them would change the tree (see the docstring)."""
        for key in keys:
            failure = heads.get(key)
            if isinstance(failure, BaseException) and not is_answer(failure):
                raise OSError(errno.EIO, f"{what}: metadata of {self.store.describe(key)} unavailable "
                                         f"({failure})") from failure

    def children(self, path: str, ahead: bool = True) -> dict[str, Node]:
        """Every entry of the folder at ``path`` (one LIST, concurrent HEADs where needed); with
        ``ahead``, its first subfolders start loading in the background."""
        path = "/".join(split(path))
        with self._lock:
            loading = self._loading.get(path) if ahead else None
        if loading is not None:
            if loading.cancel():  # still queued: this visit does the work now
                with self._lock:
                    self._loading.pop(path, None)
            else:  # running: wait for it rather than HEAD the same keys twice
                loading.result()
        listing = self._with_revalidations(self.listing(path))
        needs = [info.key for name, info in listing.objects.items() if tree.may_be_array(name)]
        heads = self.heads(needs, threads=ahead)  # a load ahead runs on the pool: it must not wait on it
        self._undecided(heads, needs, f"cannot list {path or '/'}")
        if ahead and self.folders_ahead:
            self._load_ahead(path, listing)
        table = tree.entries(listing.folders, listing.objects,
                             lambda name: self._is_array(heads, listing.objects[name].key))
        out: dict[str, Node] = {}
        for shown, entry in table.items():
            child_path = f"{path}/{shown}" if path else shown
            if entry.kind == "folder":
                out[shown] = FolderNode(child_path, self.folder_prefix(child_path))
            else:
                listed = listing.objects[entry.child]
                out[shown] = self._file_node(child_path, listed, heads.get(listed.key))
        with self._lock:
            for node in out.values():
                self._nodes[node.path] = (listing, node)
        return out

    def _with_revalidations(self, listing: FolderListing) -> FolderListing:
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
                             objects={name: info for name, info in objects.items() if info is not None})

    def _load_ahead(self, path: str, listing: FolderListing) -> None:
        with self._lock:
            todo = [f"{path}/{name}" if path else name for name in listing.folders[: self.folders_ahead]]
            todo = [sub for sub in todo if sub not in self._folders]
            todo = [sub for sub in todo if sub not in self._loading]
            for sub in todo:
                try:
                    self._loading[sub] = self._pool.submit(self._warm, sub)
                except RuntimeError:  # shut down: the mount is going away
                    return

    def _warm(self, path: str) -> None:
        """List one folder ahead of need, and HEAD its arrays if they are not too many."""
        try:
            listing = self.listing(path)
            needs = sum(1 for name in listing.objects if tree.may_be_array(name))
            if needs <= self.heads_ahead:
                self.children(path, ahead=False)
        except Exception as exc:  # the visit itself will meet (and report) the problem
            log.debug("loading %s ahead failed: %s", path, exc)
        finally:
            with self._lock:
                self._loading.pop(path, None)

    def lookup(self, path: str) -> Node:
        """The node at ``path``; ``FileNotFoundError`` naming it when there is none."""
        parts = split(path)
        path = "/".join(parts)
        if not parts:
            return FolderNode("", self.prefix)
        with self._lock:
            if path in self._negative:
                raise FileNotFoundError(f"no such file or folder: {path}")
        parent, name = "/".join(parts[:-1]), parts[-1]
        listing = self.listing(parent)
        with self._lock:
            known = self._nodes.get(path)
        if known is not None and known[0] is listing:
            node = known[1]
        else:
            node = self._find(path, name, self._with_revalidations(listing))
            with self._lock:
                self._nodes[path] = (listing, node)
        return self._revalidated(node, listing) if isinstance(node, FileNode) else node

    def _revalidated(self, node: FileNode, listing: FolderListing) -> FileNode:
        """``node``, or its current version when its metadata is older than ``attr_ttl`` (one HEAD)."""
        key = node.key
        with self._lock:
            checked = self._checked.get(key, 0.0)
        if time.monotonic() - checked < self.attr_ttl:
            return node
        try:
            info = self.store.head(key)
        except FileNotFoundError:
            with self._lock:
                self._fresh[key] = None
                self._heads.pop(key, None)
                self._nodes.pop(node.path, None)
            self._remember_missing(node.path)
            raise FileNotFoundError(f"no such file or folder: {node.path} (removed from the store)") from None
        self.head_requests += 1
        with self._lock:
            self._checked[key] = time.monotonic()
            if (info.etag, info.size) == (node.info.etag, node.info.size) and (
                    node.spec is None or info.metadata == node.info.metadata):
                return node  # unchanged
            self._heads[key] = info
            self._fresh[key] = info
        fresh = self._file_node(node.path, info, info)
        if (fresh.spec is None) != (node.spec is None):  # it became (or stopped being) a raw array: its
            with self._lock:                          # name changes, so the next listing decides
                self._nodes.pop(node.path, None)
            raise FileNotFoundError(f"no such file or folder: {node.path} (changed kind in the store)")
        with self._lock:
            self._nodes[node.path] = (listing, fresh)
        return fresh

    def _find(self, path: str, name: str, listing: FolderListing) -> Node:
        if "/" in path and listing.empty:
            self._remember_missing(path)
            raise FileNotFoundError(f"no such file or folder: {path}")
        if name in listing.folder_names:
            return FolderNode(path, self.folder_prefix(path))
        candidates = tree.candidates(name)
        present = [c for c in candidates if c in listing.objects]
        needs = [listing.objects[c].key for c in present if tree.may_be_array(c)]
        heads = self.heads(needs)
        self._undecided(heads, needs, f"cannot look up {path}")
        # decide with the same rule as a full listing, restricted to the candidates
        table = tree.entries([c for c in candidates if c in listing.folder_names],
                             {c: None for c in present},
                             lambda n: self._is_array(heads, listing.objects[n].key))
        entry = table.get(name)
        if entry is None or entry.kind == "folder":
            self._remember_missing(path)
            raise FileNotFoundError(f"no such file or folder: {path}")
        listed = listing.objects[entry.child]
        return self._file_node(path, listed, heads.get(listed.key))

    def _remember_missing(self, path: str) -> None:
        with self._lock:
            self._negative[path] = True

    def forget(self, path: str = "") -> None:
        """Drop cached state (all of it for ``''``) so the next access asks the store again."""
        with self._lock:
            if not path:
                self._folders.clear()
                self._heads.clear()
                self._negative.clear()
                self._nodes.clear()
            else:
                self._folders.pop("/".join(split(path)), None)
