"""Paths of the tree -> nodes: a folder's entries (``children``) and one path (``lookup``).

It asks ``listings`` for folders and ``attributes`` for object metadata, and applies ``tree``'s
naming rules to them; what it keeps itself is the node made for each path, reused while the
parent's listing it was made from is current (``ls -l`` and ``getfattr`` ask for every entry
again), and the loads ahead running.

Listing a folder also loads its first few subfolders in the background (one level, not further):
``find``, ``ls -R`` and globs such as ``proj/*.grp/*.npy`` visit them next, and would otherwise
wait for one LIST and one round of HEADs per folder, one folder after the other.

A file whose metadata is older than ``attr_ttl`` is asked for again before a stat shows it. One
stale file costs one HEAD; but ``ls -l`` of a big folder stats every entry after the listing, and
when the listing took longer than ``attr_ttl`` every stat found its entry stale: a HEAD per entry,
again (1.75 HEADs per array for a 3,000-array folder). So once ``RELIST_AFTER`` stale lookups (and
at least one per page of the folder's LIST) hit one folder within a few ``attr_ttl``, the folder is
LISTed again instead: a LIST entry showing the version already known confirms it (1,000 entries
per request), and only entries whose version changed are HEADed. Not the whole folder when its
LIST takes more than half of ``attr_ttl`` (a slow server, a huge folder): stats would then wait for
LIST after LIST, each confirming entries only until the next burst. There one LIST page starting
at the stale entry (``list_page_after``) confirms it and the up to 999 entries after it, which
``ls -l`` (stats in name order) asks for next: ``ls -l`` of 100,000 arrays re-asks with about 100
LIST requests, not 100,000 HEADs. An entry the page shows changed, or does not show, is HEADed.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from concurrent.futures import Executor, Future
from typing import Literal

from cachetools import TTLCache

from .. import waits
from ..formats.npy import npy_header
from ..formats.raw import check_body_size, has_array_metadata, spec_from_metadata
from ..storage.base import ObjectInfo, ObjectStore
from ..storage.errors import NoAnswer
from . import tree
from .attributes import AttributeCache, HeadResult
from .listings import FolderListing, ListingCache, split
from .nodes import FileNode, FolderNode, Node
from .streams import FolderStream

log = logging.getLogger(__name__)

#: stale lookups in one folder after which it is LISTed again rather than HEADed entry by entry
RELIST_AFTER = 8
#: keys per LIST request (S3's page)
LIST_PAGE = 1000


class Resolver:
    def __init__(self, store: ObjectStore, listings: ListingCache, attributes: AttributeCache, pool: Executor,
                 folders_ahead: int = 16, heads_ahead: int = 1000, max_nodes: int = 500_000, ttl: float = 300.0):
        """``pool``: where loads ahead run (the HEADs' pool: a load ahead must not wait on it);
        ``folders_ahead``: subfolders of a listed folder loaded in the background (0: none);
        ``heads_ahead``: a subfolder needing more HEADs than this is only listed ahead, not HEADed."""
        self.store = store
        self.listings = listings
        self.attributes = attributes
        self._pool = pool
        self.folders_ahead = folders_ahead
        self.heads_ahead = heads_ahead
        self._lock = threading.Lock()
        # path -> (the parent's listing it was made from, node): a lookup costs a dict hit while
        # that listing is current
        self._nodes: TTLCache[str, tuple[FolderListing, Node]] = TTLCache(maxsize=max_nodes, ttl=ttl)
        self._loading: dict[str, Future[None]] = {}  # folder path -> its load ahead, while it runs
        # folder path -> (when its first recent stale lookup came, how many came since)
        self._stale_lookups: TTLCache[str, tuple[float, int]] = TTLCache(maxsize=4096, ttl=600.0)
        self._streams: dict[str, FolderStream] = {}  # folder path -> its visit, while it runs
        self._paging: set[str] = set()  # folders whose entries a LIST page is confirming right now
        self.page_lists = 0  # LIST pages sent to confirm stale entries (``_confirm_page``)
        self.stale_served = 0  # stale entries served because their revalidation met no answer

    # --- nodes -------------------------------------------------------------------------------
    def file_node(self, path: str, listed: ObjectInfo, head: HeadResult | None) -> FileNode:
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

    @staticmethod
    def is_array(heads: dict[str, HeadResult], key: str) -> bool:
        head = heads.get(key)
        return isinstance(head, ObjectInfo) and has_array_metadata(head.metadata)

    def children(self, path: str, ahead: bool = True) -> dict[str, Node]:
        """Every entry of the folder at ``path`` (one LIST, concurrent HEADs where needed); with
        ``ahead``, its first subfolders start loading in the background."""
        path = "/".join(split(path))
        if ahead:
            self.join_load_ahead(path)
        listing = self.attributes.with_revalidations(self.listings.get(path))
        needs = [info.key for name, info in listing.objects.items() if tree.may_be_array(name)]
        by_key = {info.key: info for info in listing.objects.values()}
        # a load ahead runs on the pool: it must not wait on it
        heads = self.attributes.heads(needs, threads=ahead, listed=by_key)
        self.attributes.undecided(heads, needs, f"cannot list {path or '/'}")
        if ahead:
            self.load_ahead(path, listing)
        table = tree.entries(listing.folders, listing.objects,
                             lambda name: self.is_array(heads, listing.objects[name].key))
        out: dict[str, Node] = {}
        for shown, entry in table.items():
            child_path = f"{path}/{shown}" if path else shown
            if entry.kind == "folder":
                out[shown] = FolderNode(child_path, self.listings.folder_prefix(child_path))
            else:
                listed = listing.objects[entry.child]
                out[shown] = self.file_node(child_path, listed, heads.get(listed.key))
        with self._lock:
            for node in out.values():
                self._nodes[node.path] = (listing, node)
        return out

    def join_load_ahead(self, path: str) -> None:
        """Take over the folder's load ahead: cancel it if still queued (the caller does the work
        now), else wait for it rather than HEAD the same keys twice."""
        with self._lock:
            loading = self._loading.get(path)
        if loading is None:
            return
        if loading.cancel():
            with self._lock:
                self._loading.pop(path, None)
        else:
            waits.done(loading)  # a FUSE request gives up when its reader is signalled

    def stream(self, path: str, wanted: bool = True) -> FolderStream:
        """The folder's entries as its LIST pages arrive (``streams``): the visit running now, or a
        new one. ``wanted``: a directory read (HEADs and entries); else a lookup (the LIST only)."""
        path = "/".join(split(path))
        with self._lock:
            running = self._streams.get(path)  # lock order: this lock, then a stream's own
            if running is not None and not running.done and (not wanted or running.want()):
                return running
            stream = self._streams[path] = FolderStream(self, path, wanted)
        stream.start()
        return stream

    def stream_ended(self, stream: FolderStream) -> None:
        with self._lock:
            if self._streams.get(stream.path) is stream:
                del self._streams[stream.path]

    def adopt(self, listing: FolderListing, entries: list[tuple[str, Node]]) -> None:
        """Keep the nodes a stream made from ``listing`` (as ``children`` keeps its own)."""
        with self._lock:
            for _, node in entries:
                self._nodes[node.path] = (listing, node)

    def load_ahead(self, path: str, listing: FolderListing) -> None:
        if not self.folders_ahead:
            return
        todo = [f"{path}/{name}" if path else name for name in listing.folders[: self.folders_ahead]]
        todo = [sub for sub in todo if not self.listings.cached(sub)]
        with self._lock:
            todo = [sub for sub in todo if sub not in self._loading]
            for sub in todo:
                try:
                    self._loading[sub] = self._pool.submit(self._warm, sub)
                except RuntimeError:  # shut down: the mount is going away
                    return

    def _warm(self, path: str) -> None:
        """List one folder ahead of need, and HEAD its arrays if they are not too many."""
        try:
            listing = self.listings.get(path)
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
            return FolderNode("", self.listings.prefix)
        if self.attributes.missing(path):
            raise FileNotFoundError(f"no such file or folder: {path}")
        parent, name = "/".join(parts[:-1]), parts[-1]
        # the folder's own listing, which a visit needs next, instead of its parent's: folders win
        # every clash, so a non-empty one decides the name (``ls -l p/big`` costs its LISTs only)
        if not self.listings.cached(parent) and tree.may_be_folder(name):
            held = self.listings.peek(path)  # else its LIST starts (no HEADs): the first page decides
            if not held.empty if held is not None else self.stream(path, wanted=False).not_empty():
                return FolderNode(path, self.listings.folder_prefix(path))
        listing = self.listings.get(parent)
        node = self._node(path, name, listing)
        if isinstance(node, FileNode) and self.attributes.stale(node.key):
            way = self._many_stale(parent, listing)
            if way == "folder":
                try:
                    listing = self.listings.refresh(parent, self.attributes.attr_ttl)  # confirms what is unchanged
                except OSError as exc:
                    if not isinstance(exc, NoAnswer):
                        raise
                    log.debug("LIST of %s to confirm %s met no answer: %s", parent or "/", path, exc)
                else:
                    node = self._node(path, name, listing)
            elif way == "page":
                self._confirm_page(parent, listing, node.key)  # this entry and the next ones, if unchanged
        return self._revalidated(node, listing) if isinstance(node, FileNode) else node

    def _node(self, path: str, name: str, listing: FolderListing) -> Node:
        with self._lock:
            known = self._nodes.get(path)
        if known is not None and known[0] is listing:
            return known[1]
        node = self._find(path, name, self.attributes.with_revalidations(listing))
        with self._lock:
            self._nodes[path] = (listing, node)
        return node

    def _many_stale(self, folder: str, listing: FolderListing) -> Literal["folder", "page"] | None:
        """Count a stale lookup in ``folder``; whether it is one of a burst (``RELIST_AFTER`` within a
        few ``attr_ttl``), which LISTs answer more cheaply than HEADs: the whole folder again
        (``"folder"``, when it has at most as many pages as the burst has lookups), or one page from
        the stale entry on (``"page"``: when the folder's last LIST took more than half of
        ``attr_ttl``, what a whole LIST confirms would be stale again before the stats waiting for
        it got far, and they would wait LIST after LIST). Never with ``attr_ttl`` 0 (every stat asks)."""
        if self.attributes.attr_ttl <= 0:
            return None
        now = time.monotonic()
        window = max(1.0, 4 * self.attributes.attr_ttl)
        with self._lock:
            first, count = self._stale_lookups.get(folder, (now, 0))
            if now - first > window:
                first, count = now, 0
            self._stale_lookups[folder] = (first, count + 1)
        if count + 1 < RELIST_AFTER:
            return None
        if listing.list_seconds > self.attributes.attr_ttl / 2:
            return "page"
        return "folder" if count + 1 >= len(listing.objects) // LIST_PAGE + 1 else "page"

    def _confirm_page(self, folder: str, listing: FolderListing, key: str) -> None:
        """One LIST page of ``folder`` from ``key`` on: confirms the entries it shows unchanged (a
        failure confirms nothing: each stale entry is then HEADed as before)."""
        keys = listing.keys_in_order
        at = bisect.bisect_left(keys, key)
        start_after = keys[at - 1] if at > 0 else ""
        with self._lock:
            if folder in self._paging:  # another thread is confirming this folder's entries
                return
            self._paging.add(folder)
        try:
            prefix = self.listings.folder_prefix(folder)
            page = self.store.list_page_after(prefix, start_after, LIST_PAGE)
            shown = {info.key: listed for info in page
                     if (listed := listing.objects.get(info.key[len(prefix):])) is not None}
            self.attributes.confirm_listed(page, shown)
            self.page_lists += 1
        except OSError as exc:
            log.debug("LIST page of %s after %r failed: %s", folder or "/", start_after, exc)
        finally:
            with self._lock:
                self._paging.discard(folder)

    def _revalidated(self, node: FileNode, listing: FolderListing) -> FileNode:
        """``node``, or its current version when its metadata is older than ``attr_ttl`` (one HEAD)."""
        if not self.attributes.stale(node.key):
            return node
        try:
            info = self.attributes.revalidate(node.key)
        except FileNotFoundError:
            with self._lock:
                self._nodes.pop(node.path, None)
            self.attributes.remember_missing(node.path)
            raise FileNotFoundError(f"no such file or folder: {node.path} (removed from the store)") from None
        except OSError as exc:
            if not isinstance(exc, NoAnswer):
                raise
            # the store did not answer (after its retries): what is cached keeps being served
            # (docs/SEMANTICS.md, Errors). Reads pin this version (If-Match), so a file replaced
            # meanwhile fails them with ESTALE; the next stat asks again.
            self.stale_served += 1
            log.info("%s: metadata not confirmed (%s); serving what was confirmed before", node.path, exc)
            return node
        if (info.etag, info.size) == (node.info.etag, node.info.size) and (
                node.spec is None or info.metadata == node.info.metadata):
            return node  # unchanged
        self.attributes.new_version(info)
        fresh = self.file_node(node.path, info, info)
        if (fresh.spec is None) != (node.spec is None):  # it became (or stopped being) a raw array: its
            with self._lock:                          # name changes, so the next listing decides
                self._nodes.pop(node.path, None)
            raise FileNotFoundError(f"no such file or folder: {node.path} (changed kind in the store)")
        with self._lock:
            self._nodes[node.path] = (listing, fresh)
        return fresh

    def _find(self, path: str, name: str, listing: FolderListing) -> Node:
        if "/" in path and listing.empty:
            self.attributes.remember_missing(path)
            raise FileNotFoundError(f"no such file or folder: {path}")
        if name in listing.folder_names:
            return FolderNode(path, self.listings.folder_prefix(path))
        candidates = tree.candidates(name)
        present = [c for c in candidates if c in listing.objects]
        needs = [listing.objects[c].key for c in present if tree.may_be_array(c)]
        heads = self.attributes.heads(needs, listed={listing.objects[c].key: listing.objects[c] for c in present})
        self.attributes.undecided(heads, needs, f"cannot look up {path}")
        # decide with the same rule as a full listing, restricted to the candidates
        table = tree.entries([c for c in candidates if c in listing.folder_names],
                             {c: None for c in present},
                             lambda n: self.is_array(heads, listing.objects[n].key))
        entry = table.get(name)
        if entry is None or entry.kind == "folder":
            self.attributes.remember_missing(path)
            raise FileNotFoundError(f"no such file or folder: {path}")
        listed = listing.objects[entry.child]
        return self.file_node(path, listed, heads.get(listed.key))

    def forget(self) -> None:
        """Drop every node made (the next lookup decides again)."""
        with self._lock:
            self._nodes.clear()
