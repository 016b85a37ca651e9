"""A folder's entries handed out as its LIST pages arrive, with each page's HEADs running while the
next page is being listed.

Why: a cold visit of a folder of N arrays is N/1000 LIST pages, one after the other (each asks
for the next with the token of the one before), then N HEADs. Done in that order, ``ls``, ``find``
or ``os.scandir`` of 100,000 arrays saw no name until every page and every HEAD was in: the LIST
time and the HEAD time added up. Here page k's HEADs run on one thread while page k+1 is listed on
another, so they overlap, and each entry is published as soon as nothing later in the folder can
change it (``tree.settled``): the first thousand names of a big folder are out after one LIST page
and its HEADs, and a reader of the directory gets them while the rest is still being listed.

What is published is exactly what the whole listing gives (``tree.entries`` on the settled names,
in the store's order); when something forbids deciding early (a HEAD that failed for a passing
reason, or a store whose pages are not in S3's order) the stream stops publishing and the whole
listing decides at the end, as a visit without streaming would (raising EIO as it would).

A stream is started by whoever needs the folder first. A lookup of a folder-like name starts it
*without* HEADs (``wanted`` False: it only needs to know the folder is not empty, and a ``stat``
or ``cd`` must not cost a HEAD per entry); a directory read that joins it asks for the HEADs.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .. import waits
from ..storage.base import ObjectInfo
from . import tree
from .attributes import HeadResult, is_answer
from .listings import FolderListing
from .nodes import FolderNode, Node

if TYPE_CHECKING:
    from .resolver import Resolver

log = logging.getLogger(__name__)

#: entries per page when a listing already in memory is handed out (S3's page)
PAGE = 1000
#: the longest entries are held back at the start of a visit (see ``FolderStream.__init__``)
HOLD_SECONDS = 5.0


def pages_of(listing: FolderListing, size: int = PAGE) -> Iterator[FolderListing]:
    """A listing held in memory, cut into pages in S3's order (folders sort as ``name/``)."""
    items = sorted([(name + "/", name, None) for name in listing.folders] +
                   [(name, name, info) for name, info in listing.objects.items()], key=lambda item: item[0])
    for start in range(0, len(items), size):
        chunk = items[start:start + size]
        yield FolderListing(folders=[name for _, name, info in chunk if info is None],
                            objects={name: info for _, name, info in chunk if info is not None})


class FolderStream:
    """One visit of one folder: its entries (name, node) in the order they were settled."""

    def __init__(self, resolver: Resolver, path: str, wanted: bool):
        self.resolver = resolver
        self.path = path
        self.entries: list[tuple[str, Node]] = []
        self.done = False
        self.error: BaseException | None = None
        self._names: set[str] = set()
        self._seen_any = False
        self._listed = False  # the LIST ended (or failed)
        self._arrivals = 0  # pages handed to ``_settle`` (by the LIST thread only)
        self._closing = False  # ending without HEADs: nobody joined
        # Entries settled in the first moments are held back until ``_hold_until`` (or the end):
        # the kernel keeps an entry's attributes for --attr-ttl from when it gets them, and ``ls -l``
        # stats its entries only after reading them all. A folder listed within the hold reaches the
        # kernel whole, so those stats find every entry fresh (sent out one page at a time, the first
        # pages' entries had expired: 8 HEADs and a LIST more for 2,000 arrays, measured); a longer
        # visit's first entries would be stale by then anyway, and are sent as they settle.
        ttl = resolver.attributes.attr_ttl
        self._hold_until = time.monotonic() + min(5 * ttl, HOLD_SECONDS)
        self._held_back: list[tuple[str, Node]] = []
        self._wanted = wanted
        self._changed = threading.Condition()
        self._pages: queue.SimpleQueue[FolderListing | None] = queue.SimpleQueue()
        self._table: dict[str, tree.Entry] = {}
        self._held: dict[str, ObjectInfo] = {}  # objects listed, not settled yet
        self._heads: dict[str, HeadResult] = {}
        # the greatest name seen (a folder as ``name/``): complete below it; ``None``: complete
        self._listed_up_to: str | None = ""
        self._early = True  # whether entries may still be published before the listing ends

    # --- for readers -------------------------------------------------------------------------
    def want(self) -> bool:
        """A directory read joins: HEAD and publish (a lookup's stream only LISTs until then).
        False when this visit already decided to end without HEADs (the reader starts another)."""
        with self._changed:
            if self._closing or self.done:
                return False
            self._wanted = True
            self._changed.notify_all()
            return True

    def wait(self, index: int) -> bool:
        """Whether entry ``index`` exists, waiting for it while the folder is being listed; the
        visit's error when it failed before getting that far."""
        with self._changed:
            while True:
                timeout = self._release_held()
                if index < len(self.entries) or self.done:
                    break
                waits.wait(self._changed, timeout)  # a FUSE request gives up when its reader is signalled
            if index < len(self.entries):
                return True
            if self.error is not None:
                raise self.error
            return False

    def not_empty(self) -> bool:
        """Whether the folder has anything in it: as soon as one page shows an entry (or the
        listing ended); the LIST's error if it failed first."""
        with self._changed:
            while not self._seen_any and not self.done:
                waits.wait(self._changed)
            if self._seen_any:
                return True
            if self.error is not None:
                raise self.error
            return False

    # --- the visit ---------------------------------------------------------------------------
    def start(self) -> None:
        try:
            threading.Thread(target=self._list, name="cc-list", daemon=True).start()
        except BaseException as exc:  # no thread to be had: the readers get the error, never a hang
            self._finish(exc)
            return
        try:
            threading.Thread(target=self._settle, name="cc-pages", daemon=True).start()
        except BaseException as exc:  # noqa: BLE001 - the LIST thread drains into a queue nobody reads
            self._finish(exc)

    def _list(self) -> None:
        """Feed pages: from the LIST as they arrive, or from the listing already in memory."""
        try:
            self.resolver.join_load_ahead(self.path)  # it may be HEADing this folder right now
            listings = self.resolver.listings
            held = listings.peek(self.path)
            if held is None:
                held = listings.get(self.path, on_page=self._arrived)
                if not self._arrivals:  # another caller's LIST served it (or one kept meanwhile):
                    self._early = False  # no page came here, the whole listing decides
            elif self.resolver.attributes.unknown(info.key for name, info in held.objects.items()
                                                  if tree.may_be_array(name)) > PAGE:
                for page in pages_of(self.resolver.attributes.with_revalidations(held)):
                    self._arrived(page)
            else:  # one page's HEADs or fewer: the whole listing decides at once
                self._early = False
            with self._changed:
                self._seen_any = self._seen_any or not held.empty
        except BaseException as exc:  # noqa: BLE001 - handed to every reader of the stream
            self._finish(exc)
        finally:
            with self._changed:
                self._listed = True
                self._changed.notify_all()
            self._pages.put(None)

    def _arrived(self, page: FolderListing) -> None:
        self._arrivals += 1
        with self._changed:
            if not page.empty and not self._seen_any:
                self._seen_any = True
                self._changed.notify_all()
        self._pages.put(page)

    def _settle(self) -> None:
        """HEAD each page's arrays (once a reader wants them) and publish what is settled; at the
        end, the whole listing decides what is left (and every entry, when deciding early stopped)."""
        try:
            ended = False
            while not ended:
                pages, ended = self._next_pages()
                with self._changed:
                    while pages and not self._wanted and not self._listed:
                        self._changed.wait()
                    if self.error is not None or not self._wanted:
                        self._early = False  # the LIST failed, or nobody reads the folder: drain
                        continue
                if self._early and pages:
                    self._page(pages)
            if self.error is not None:
                return
            with self._changed:  # a lookup's stream that nobody read: the listing is kept, no HEADs
                self._closing = not self._wanted  # from here ``want`` is refused
            if self._closing:  # (never finished under ``_changed``: ``_finish`` takes the resolver's
                self._finish(None)  # lock, which ``Resolver.stream`` holds while calling ``want``)
                return
            if self._early:  # the folder is listed: what is held settles now
                self._listed_up_to = None
                self._page([])
                listing = self.resolver.listings.get(self.path)
                with self._changed:
                    published = self.entries + self._held_back  # held back ones too
                self.resolver.adopt(listing, published)
                self.resolver.load_ahead(self.path, listing)
            else:
                every = self.resolver.children(self.path)
                self._publish([(name, node) for name, node in sorted(every.items()) if name not in self._names])
            self._finish(None)
        except BaseException as exc:  # noqa: BLE001 - handed to every reader of the stream
            self._finish(exc)

    def _next_pages(self) -> tuple[list[FolderListing], bool]:
        """The next page and every page queued behind it (their HEADs go out as one batch: a
        batch ends with fewer requests in flight, so fewer, bigger batches keep the window full
        when the LIST runs ahead of the HEADs); and whether the LIST's end came with them."""
        pages: list[FolderListing] = []
        page = self._pages.get()
        while page is not None:
            pages.append(page)
            try:
                page = self._pages.get_nowait()
            except queue.Empty:
                return pages, False
        return pages, True

    def _page(self, pages: list[FolderListing]) -> None:
        """HEAD the arrays of ``pages`` (in the store's order) and publish what they settle."""
        folders: list[str] = []
        objects: dict[str, ObjectInfo] = {}
        for page in pages:
            names = [name + "/" for name in page.folders] + list(page.objects)
            if names and self._listed_up_to is not None:
                if min(names) <= self._listed_up_to:  # not S3's order: settle nothing early
                    self._early = False
                    return
                self._listed_up_to = max(names)
            folders += page.folders
            objects.update(page.objects)
        page = FolderListing(folders=folders, objects=objects)
        attributes = self.resolver.attributes
        needs = [info.key for name, info in page.objects.items() if tree.may_be_array(name)]
        heads = attributes.heads(needs, listed={info.key: info for info in page.objects.values()})
        if any(isinstance(head, BaseException) and not is_answer(head) for head in heads.values()):
            self._early = False  # a kind unknown: the whole listing decides (and fails) at the end
            return
        self._heads.update(heads)
        self._held.update(page.objects)
        ready = {name: info for name, info in self._held.items() if tree.settled(name, self._listed_up_to)}
        for name in ready:
            del self._held[name]
        before = len(self._table)
        tree.entries(page.folders, ready, lambda name: self.resolver.is_array(self._heads, ready[name].key),
                     table=self._table)
        batch: list[tuple[str, Node]] = []
        for shown, entry in itertools.islice(self._table.items(), before, None):
            child_path = f"{self.path}/{shown}" if self.path else shown
            if entry.kind == "folder":
                batch.append((shown, FolderNode(child_path, self.resolver.listings.folder_prefix(child_path))))
            else:
                info = ready[entry.child]
                batch.append((shown, self.resolver.file_node(child_path, info, self._heads.get(info.key))))
        self._publish(batch)

    def _release_held(self) -> float | None:
        """Hand out the entries held back once the hold is over (``_changed`` held); how long to
        wait before asking again (``None``: nothing held)."""
        if not self._held_back:
            return None
        left = self._hold_until - time.monotonic()
        if left > 0:
            return left
        self.entries.extend(self._held_back)
        self._held_back = []
        self._changed.notify_all()
        return None

    def _publish(self, batch: list[tuple[str, Node]]) -> None:
        with self._changed:
            self._names.update(name for name, _ in batch)
            self._held_back.extend(batch)
            if self._release_held() is not None:
                self._changed.notify_all()  # a reader waits with the hold's deadline

    def _finish(self, error: BaseException | None) -> None:
        with self._changed:
            if self.done:
                return
            self.entries.extend(self._held_back)  # the end: nothing is held back any longer
            self._held_back = []
            self.error = error
            self.done = True
            self._changed.notify_all()
        self.resolver.stream_ended(self)
