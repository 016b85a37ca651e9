"""The namespace's three parts (listings, attributes, resolver) and what holds them together:
the per-folder LIST table stays as small as the LISTs running, a failed LIST is not remembered,
and a new listing brings the cached metadata of its objects up to date before it is served."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np
import pytest

from cottoncandy.arrays.raw import write_raw_array
from cottoncandy.namespace.facade import Namespace
from cottoncandy.namespace.nodes import FileNode
from cottoncandy.storage import MemoryStore
from cottoncandy.storage.base import Listing

FOLDERS = 300


class WatchedStore(MemoryStore):
    """A memory store that calls ``during_list`` inside each LIST (to look at the namespace then)."""

    def __init__(self) -> None:
        super().__init__("bkt")
        self.during_list: Callable[[str], None] = lambda prefix: None

    def list_dir(self, prefix: str, delimiter: str = "/") -> Listing:
        self.during_list(prefix)
        return super().list_dir(prefix, delimiter)


def test_the_folder_table_holds_only_the_folders_being_listed() -> None:
    """Listing many folders leaves nothing behind (a table of one lock per folder ever seen grew
    by one entry per folder, ``FOLDERS`` here, and was never pruned)."""
    store = WatchedStore()
    for i in range(FOLDERS):
        store.put(f"many/f{i:03d}/notes.txt", b"x")
    ns = Namespace(store, folders_ahead=0)
    sizes: list[int] = []
    store.during_list = lambda prefix: sizes.append(ns.listings.in_flight())
    try:
        assert len(ns.children("many")) == FOLDERS
        for i in range(FOLDERS):
            assert list(ns.children(f"many/f{i:03d}")) == ["notes.txt"]
        assert ns.lists == FOLDERS + 1 == len(sizes)
        assert max(sizes) == 1  # the folder being listed, and only it
        assert ns.listings.in_flight() == 0  # nothing left once the LISTs are done
    finally:
        ns.close()


def test_the_folder_table_stays_empty_after_a_walk_with_loads_ahead() -> None:
    store = WatchedStore()
    for i in range(40):
        store.put(f"w/f{i:02d}/sub/k.txt", b"x")
    ns = Namespace(store, folders_ahead=8)
    try:
        for i in range(40):
            assert list(ns.children(f"w/f{i:02d}")) == ["sub"]
        wait(list(ns.resolver._loading.values()))  # loads ahead still running (they load no further)
        assert ns.lists >= 40 and ns.listings.in_flight() == 0
    finally:
        ns.close()


def test_concurrent_visits_of_one_folder_share_one_list() -> None:
    store = WatchedStore()
    store.put("d/a.txt", b"x")
    ns = Namespace(store, folders_ahead=0)
    entered, release = threading.Event(), threading.Event()

    def hold(prefix: str) -> None:
        entered.set()
        assert release.wait(30)

    store.during_list = hold
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            first = pool.submit(ns.children, "d")
            assert entered.wait(30)  # the LIST is in flight
            others = [pool.submit(ns.children, "d") for _ in range(3)]
            release.set()
            results = [first.result(), *(f.result() for f in others)]
        assert all(list(r) == ["a.txt"] for r in results)
        assert ns.lists == 1 and ns.listings.in_flight() == 0
    finally:
        ns.close()


def test_a_failed_list_is_not_remembered() -> None:
    store = WatchedStore()
    store.put("d/a.txt", b"x")
    ns = Namespace(store, folders_ahead=0)
    failures = [OSError(5, "LIST of d/ failed: 503 after retries")]

    def flaky(prefix: str) -> None:
        if failures:
            raise failures.pop()

    store.during_list = flaky
    try:
        with pytest.raises(OSError, match="LIST of d/ failed"):
            ns.children("d")
        assert ns.listings.in_flight() == 0
        assert list(ns.children("d")) == ["a.txt"]  # asked again at once
    finally:
        ns.close()


def shape(ns: Namespace, folder: str, name: str) -> tuple[int, ...]:
    node = ns.children(folder)[name]
    assert isinstance(node, FileNode) and node.spec is not None
    return node.spec.shape


def test_a_new_listing_invalidates_the_head_of_another_version() -> None:
    store = MemoryStore("bkt")
    write_raw_array(store, "p/x", np.arange(4.0), compression=False)
    ns = Namespace(store, ttl=300, attr_ttl=300, folders_ahead=0)
    try:
        assert shape(ns, "p", "x.npy") == (4,)
        write_raw_array(store, "p/x", np.arange(6.0), compression=False)
        ns.listings.forget("p")  # as when the listing expires
        assert shape(ns, "p", "x.npy") == (6,)  # the cached HEAD of (4,) was dropped
    finally:
        ns.close()
