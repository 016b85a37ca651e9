"""The tree of one bucket (or prefix) as the mount sees it: ``Namespace``, one object wiring
three parts that each hold one kind of state.

- ``listings.ListingCache``: folder listings (one LIST per folder per ``ttl``);
- ``attributes.AttributeCache``: object metadata (HEADs, trusted ``attr_ttl`` for a file), misses,
  and the rule that a failed HEAD decides nothing;
- ``resolver.Resolver``: paths -> nodes, with ``tree``'s naming rules, and the loads ahead.

The mount (``ccfs.filesystem``) uses only this class; the parts are reachable as attributes for
tests and tools that need one of them.
"""

from __future__ import annotations

import errno
import itertools
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from cachetools import LRUCache

from ..storage.base import ObjectInfo, ObjectStore
from . import tree
from .attributes import AttributeCache, Shelf
from .listings import ListingCache, nameable
from .nodes import FileNode, Node
from .resolver import Resolver
from .streams import FolderStream

#: a folder named by more keys than this in one change message is LISTed again, not HEADed key by key
MANY_CHANGES = 32
#: keys whose last mend by this mount is remembered, so a HEAD answer older than it is not applied
MENDS_REMEMBERED = 10_000


class Namespace:
    def __init__(self, store: ObjectStore, prefix: str = "", ttl: float = 300.0, head_workers: int = 32,
                 negative_size: int = 10_000, max_heads: int = 500_000, max_folders: int = 20_000,
                 folders_ahead: int = 16, heads_ahead: int = 1000, attr_ttl: float | None = None,
                 shelf: Shelf | None = None):
        """``folders_ahead``: subfolders of a listed folder loaded in the background (0: none);
        ``heads_ahead``: a subfolder needing more HEADs than this is only listed ahead, not HEADed;
        ``attr_ttl``: seconds a file's metadata is trusted by ``lookup`` (``None``: ``ttl``);
        ``shelf``: HEAD answers kept on disk across processes (``cache.metadata``)."""
        self.store = store
        self.ttl = ttl
        # one pool for HEADs and loads ahead, as many threads as concurrent HEADs
        self._pool = ThreadPoolExecutor(max_workers=head_workers, thread_name_prefix="cc-head")
        self.attributes = AttributeCache(store, self._pool, ttl=ttl, attr_ttl=attr_ttl, max_heads=max_heads,
                                         negative_size=negative_size, shelf=shelf)
        self.listings = ListingCache(store, prefix, ttl=ttl, max_folders=max_folders,
                                     on_listed=self.attributes.listed)
        self.resolver = Resolver(store, self.listings, self.attributes, self._pool, folders_ahead=folders_ahead,
                                 heads_ahead=heads_ahead, max_nodes=max_heads, ttl=ttl)
        # when each key was last mended by this mount's own writes (``stored``/``removed``), in one
        # sequence: a change message's HEAD asked before such a mend answers about an older state
        self._mend_sequence = itertools.count(1)
        self._mended_at: LRUCache[str, int] = LRUCache(maxsize=MENDS_REMEMBERED)
        self._mend_lock = threading.Lock()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def lists(self) -> int:
        """LISTs sent so far."""
        return self.listings.lists

    @property
    def head_requests(self) -> int:
        """HEADs answered by the store so far."""
        return self.attributes.head_requests

    # --- paths -------------------------------------------------------------------------------
    def lookup(self, path: str) -> Node:
        """The node at ``path``; ``FileNotFoundError`` naming it when there is none (a path that is
        not UTF-8 names no key: no request is sent for it)."""
        if tree.key_bytes(path) is None:
            raise FileNotFoundError(errno.ENOENT, f"{tree.shown_path(path)}: not UTF-8, no object has that name")
        return self.resolver.lookup(path)

    def children(self, path: str, ahead: bool = True) -> dict[str, Node]:
        """Every entry of the folder at ``path``; with ``ahead``, its first subfolders start loading."""
        return self.resolver.children(path, ahead)

    def stream(self, path: str) -> FolderStream:
        """The folder's entries as its LIST pages arrive, each page's HEADs beside the next LIST."""
        return self.resolver.stream(path)

    def forget(self, path: str = "") -> None:
        """Drop cached state (all of it for ``''``) so the next access asks the store again."""
        self.listings.forget(path)
        if not path:
            self.attributes.clear()
            self.resolver.forget()

    def changed(self, keys: Iterable[str]) -> int:
        """Keys written or removed by a process on this machine (``cottoncandy.changes``): each is
        asked about (one HEAD; the message is a hint, not a fact) and the listings in memory are
        mended to match (``ListingCache.learned``), so it shows at once, with no flush and no LIST.
        Keys outside this tree are ignored; a folder named by more than ``MANY_CHANGES`` keys at once
        has its listing dropped instead (one LIST answers them more cheaply than their HEADs), as has
        the folder of a key the store did not answer about. How many keys were asked about."""
        prefix = self.listings.prefix
        by_folder: dict[str, list[tuple[str, str]]] = {}
        for key in dict.fromkeys(keys):
            relative = key[len(prefix):] if key.startswith(prefix) else None
            if not relative:
                continue
            folder, _, name = relative.rpartition("/")
            by_folder.setdefault(folder, []).append((key, name))
        asked = 0
        for folder, entries in by_folder.items():
            # a key with an empty part ('a//b', 'a/') is no plain entry of one folder: ask again
            # (nor is a name no folder entry can have: '.', '..', NUL; a LIST leaves it out)
            odd = any(not name or not nameable(name) for _, name in entries) or (
                folder != "" and any(not part or not nameable(part) for part in folder.split("/")))
            if len(entries) > MANY_CHANGES or odd:
                self.listings.forget(folder)
                self.listings.forget(folder.rpartition("/")[0])
                self.attributes.clear()
                continue
            for key, name in entries:
                asked_at = self._mend_mark()
                try:
                    info = self.store.head_if_exists(key)
                except OSError:  # no answer: what is cached about that folder is asked again
                    self.listings.forget(folder)
                    self.listings.forget(folder.rpartition("/")[0])
                    self.attributes.clear()
                    break
                asked += 1
                with self._mend_lock:  # this mount's own write of the key since the HEAD was asked is newer
                    if self._mended_at.get(key, 0) < asked_at:
                        self._learned(folder, name, key, info)
        return asked

    def _mend_mark(self) -> int:
        """A point in the mend sequence: mends after it have a larger number."""
        return next(self._mend_sequence)

    # --- single-key changes made by this mount ------------------------------------------------
    def written(self, path: str) -> tuple[str, str | None]:
        """The keys a new file written at ``path`` may become: its bytes' own key, and the raw
        array's if its bytes are a plain ``.npy`` (``tree.written``, the reverse naming rule). A path
        whose key S3 cannot hold is refused here, the one place new names are made into keys
        (``tree.check_storable``: ``EILSEQ``, ``ENAMETOOLONG``)."""
        folder, _, name = path.strip("/").rpartition("/")
        base = self.listings.prefix + (folder + "/" if folder else "")
        tree.check_storable(path, base + name)  # EILSEQ, ENAMETOOLONG: refused before anything is taken
        array = tree.written(name)
        return base + name, None if array is None else base + array

    def check_untaken(self, path: str) -> None:
        """``FileExistsError`` (EEXIST) when a key a new file at ``path`` may be stored as holds a file
        shown under another name: ``x`` is the key of the raw array shown as ``x.npy``, and ``x.npy``
        holding a plain array is stored as ``x``, the key of a file shown as ``x``. Either would replace
        a file the program never named (a condition cannot tell: nothing is shown at ``path``; some
        stores ignore it, ``--last-writer-wins`` has none). One lookup (two for a ``.npy`` name)."""
        name = path.strip("/")
        bytes_key, array_key = self.written(name)
        others = [(name + tree.NPY, bytes_key)]
        if array_key is not None:
            others.append((name[: -len(tree.NPY)], array_key))
        for other, key in others:
            try:
                shown = self.lookup(other)
            except FileNotFoundError:
                continue
            if isinstance(shown, FileNode) and shown.key == key:
                raise FileExistsError(errno.EEXIST, f"{name}: its key {key} holds the file shown as {shown.path}; "
                                                    "rename or remove that first")

    def stored(self, key: str, info: ObjectInfo) -> None:
        """This mount just stored ``key`` as ``info`` (the store's answer to the PUT or the
        CompleteMultipartUpload): it shows at once, with no HEAD and no LIST."""
        self._mend(key, info)

    def removed(self, key: str) -> None:
        """This mount just removed ``key``: it is gone from the listings and attributes at once."""
        self._mend(key, None)

    def _mend(self, key: str, info: ObjectInfo | None) -> None:
        with self._mend_lock:  # one order for own mends and change answers (see ``changed``)
            self._mended_at[key] = next(self._mend_sequence)
            self._mend_locked(key, info)

    def _mend_locked(self, key: str, info: ObjectInfo | None) -> None:
        prefix = self.listings.prefix
        relative = key[len(prefix):] if key.startswith(prefix) else ""
        folder, _, name = relative.rpartition("/")
        odd = folder != "" and any(not part or not nameable(part) for part in folder.split("/"))
        if not name or not nameable(name) or odd:  # no plain entry of one folder: that folder is listed again
            self.attributes.learned(key, info)
            self.listings.forget(folder)
            return
        self._learned(folder, name, key, info)

    def _learned(self, folder: str, name: str, key: str, info: ObjectInfo | None) -> None:
        """The one mending path: the attribute cache and the listings in memory learn ``key``."""
        self.attributes.learned(key, info)
        self.listings.learned(folder, name, info)

    def refresh(self, path: str = "") -> None:
        """Forget what is cached so that a new upload shows at once (``ccfs refresh``, SIGHUP):
        everything for ``''``; else the listings of the folder ``path`` and of the folder holding it
        (so ``path`` may name a folder, a file, or something not seen yet), and every remembered
        HEAD and miss."""
        parts = [part for part in path.split("/") if part]
        if not parts:
            self.forget("")
            return
        self.listings.forget("/".join(parts))
        self.listings.forget("/".join(parts[:-1]))  # '' (a top-level name): every listing
        self.attributes.clear()
