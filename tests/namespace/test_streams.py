"""A folder's entries handed out as its LIST pages arrive (``namespace.streams``): the entries are
exactly those the whole listing gives, whatever the pages and the name clashes; page 1's entries
are out while page 2 is still being listed; a lookup's stream sends no HEAD; a HEAD that fails for
a passing reason fails the visit as a whole listing would; and on the real server a big folder
costs its LIST pages and one HEAD per array, the HEADs overlapping the LIST."""

from __future__ import annotations

import errno
import json
import random
import threading
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest

from cottoncandy.arrays.raw import write_raw_array
from cottoncandy.namespace.facade import Namespace
from cottoncandy.namespace.listings import FolderListing
from cottoncandy.namespace.nodes import FileNode, FolderNode, Node
from cottoncandy.namespace.streams import pages_of
from cottoncandy.storage import MemoryStore
from cottoncandy.storage.base import Listing, ObjectInfo


class PagedStore(MemoryStore):
    """A memory store that lists like S3: pages of ``page`` entries (a common prefix counts as one)
    in key order; ``before_page(n)`` runs before page ``n`` (0-based) is given."""

    def __init__(self, page: int = 3) -> None:
        super().__init__("bkt")
        self.page = page
        self.before_page = lambda n: None
        self.pages = 0
        self.failing: set[str] = set()

    def list_dir_pages(self, prefix: str, delimiter: str = "/") -> Iterator[Listing]:
        whole = self.list_dir(prefix, delimiter)
        held = FolderListing(folders=[p[len(prefix):].rstrip("/") for p in whole.prefixes],
                             objects={o.key[len(prefix):]: o for o in whole.objects})
        for n, page in enumerate(pages_of(held, self.page)):
            self.before_page(n)
            self.pages += 1
            yield Listing(prefixes=[prefix + name + "/" for name in page.folders], objects=list(page.objects.values()))

    def head(self, key: str) -> ObjectInfo:
        if key in self.failing:
            raise OSError(errno.EIO, f"503 Slow Down: {key}")
        return super().head(key)


def heads(store: MemoryStore) -> list[str]:
    return [key for op, key in store.requests if op == "head"]


def shape_of(node: Node) -> tuple[str, str, int]:
    if isinstance(node, FolderNode):
        return ("folder", node.prefix, 0)
    return ("array" if node.spec is not None else "object", node.key, node.size)


def streamed(ns: Namespace, path: str) -> list[tuple[str, Node]]:
    stream = ns.stream(path)
    index = 0
    while stream.wait(index):
        index += 1
    return list(stream.entries)


def test_streamed_entries_are_what_the_whole_listing_gives_whatever_the_pages() -> None:
    """Random folders full of name clashes (k beside k.npy, k/ and k.npy/; raw arrays and plain
    objects; names with characters that sort before '/' and '.'), cut into pages of 1 to 7: the
    entries streamed are exactly the whole listing's, each once."""
    rng = random.Random(7)
    stems = ["k", "k!", "k.npy", "k-1", "a", "a.b", "z", "k.npy.npy"]
    for trial in range(60):
        store = PagedStore(page=rng.randint(1, 7))
        for stem in rng.sample(stems, rng.randint(1, len(stems))):
            what = rng.choice(["array", "object", "folder", "both"])
            if what in ("array", "both"):
                write_raw_array(store, f"d/{stem}", np.arange(3, dtype="<i2"), compression=None)
            if what == "object":
                store.put(f"d/{stem}", b"plain")
            if what in ("folder", "both"):
                store.put(f"d/{stem}/inside", b"x")
        got = Namespace(store, folders_ahead=0)
        want = Namespace(store, folders_ahead=0)
        try:
            entries = streamed(got, "d")
            names = [name for name, _ in entries]
            assert len(names) == len(set(names)), (trial, names)
            expected = want.children("d")
            assert {name: shape_of(node) for name, node in entries} == {
                name: shape_of(node) for name, node in expected.items()}, trial
        finally:
            got.close()
            want.close()


def test_page_one_is_out_while_page_two_is_being_listed() -> None:
    store = PagedStore(page=10)
    for i in range(25):
        write_raw_array(store, f"big/a{i:02d}", np.arange(4, dtype="<f4") + i, compression=None)
    release = threading.Event()
    store.before_page = lambda n: n == 1 and release.wait(10)  # page 2 waits for the test
    ns = Namespace(store, folders_ahead=0, attr_ttl=0.2)  # entries held back 1 s at most
    try:
        stream = ns.stream("big")
        assert stream.wait(0)  # returns while page 2 is held
        assert not stream.done and store.pages == 1
        # a00-a08 are settled by page 1 (a09's rival a09/ could still come on page 2)
        assert stream.wait(8) and [name for name, _ in stream.entries] == [f"a{i:02d}.npy" for i in range(9)]
        assert all(isinstance(node, FileNode) and node.size == 128 + 16 for _, node in stream.entries)
        release.set()
        assert not stream.wait(25) and stream.done
        assert sorted(name for name, _ in stream.entries) == [f"a{i:02d}.npy" for i in range(25)]
        assert sorted(heads(store)) == [f"big/a{i:02d}" for i in range(25)]  # one HEAD each
        store.requests.clear()
        assert ns.lookup("big/a24.npy").size == 128 + 16 and heads(store) == []  # the stream's nodes are kept
    finally:
        release.set()
        ns.close()


def test_a_folder_listed_within_the_hold_reaches_its_reader_whole() -> None:
    """A folder whose visit ends within the hold (5 x --attr-ttl, at most 5 s: 2 s here) is handed
    out in one go (the kernel then keeps every entry's attributes from the same moment, and
    ``ls -l``'s stats find them fresh); one whose pages keep coming is streamed after the hold."""
    store = PagedStore(page=10)
    for i in range(30):
        write_raw_array(store, f"quick/a{i:02d}", np.arange(2, dtype="<i4"), compression=None)
        write_raw_array(store, f"slow/a{i:02d}", np.arange(2, dtype="<i4"), compression=None)
    release = threading.Event()
    store.before_page = lambda n: n == 2 and release.wait(10)
    ns = Namespace(store, folders_ahead=0, attr_ttl=0.4)
    try:
        release.set()
        quick = ns.stream("quick")
        assert quick.wait(0) and quick.done and len(quick.entries) == 30
        release.clear()
        slow = ns.stream("slow")
        assert slow.wait(0) and not slow.done  # after the 2 s hold, while page 3 is held
        assert 10 <= len(slow.entries) < 30
    finally:
        release.set()
        ns.close()


def test_a_lookup_lists_without_heads_and_a_read_joining_it_heads() -> None:
    store = PagedStore(page=4)
    for i in range(10):
        write_raw_array(store, f"p/f/a{i}", np.arange(2, dtype="<i4"), compression=None)
    ns = Namespace(store, folders_ahead=0)
    try:
        assert isinstance(ns.lookup("p/f"), FolderNode)  # ``cd p/f``, ``stat p/f``
        assert heads(store) == []
        assert sorted(name for name, _ in streamed(ns, "p/f")) == [f"a{i}.npy" for i in range(10)]
        assert sorted(heads(store)) == [f"p/f/a{i}" for i in range(10)]
    finally:
        ns.close()


def test_a_head_failing_for_a_passing_reason_fails_the_visit_as_a_whole_listing_would() -> None:
    """Whether ``a3`` is a raw array (``a3.npy``) or not (``a3``) is unknown: nothing after it is
    guessed, and the visit ends with EIO naming it (``children`` raises the same)."""
    store = PagedStore(page=2)
    for i in range(6):
        write_raw_array(store, f"f/a{i}", np.arange(2, dtype="<i4"), compression=None)
    store.failing.add("f/a3")
    release = threading.Event()
    store.before_page = lambda n: n == 1 and release.wait(10)  # page 2 once page 1 is handed out
    ns = Namespace(store, folders_ahead=0, attr_ttl=0.2)
    try:
        stream = ns.stream("f")
        assert stream.wait(0)
        release.set()
        with pytest.raises(OSError) as failed:
            index = 0
            while stream.wait(index):
                index += 1
        assert failed.value.errno == errno.EIO and "f/a3" in str(failed.value)
        # settled by page 1 (a1 waits for page 2, which a3's failure leaves undecided)
        assert [name for name, _ in stream.entries] == ["a0.npy"]
        store.failing.clear()
        assert sorted(name for name, _ in streamed(ns, "f")) == [f"a{i}.npy" for i in range(6)]
    finally:
        release.set()
        ns.close()


def test_pages_out_of_order_are_decided_as_a_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A store whose pages are not in S3's order (a name on page 2 sorting before page 1's last):
    nothing is settled early, and the entries are still the whole listing's."""
    store = PagedStore(page=2)
    for name in ("b", "c", "a", "a.npy"):
        write_raw_array(store, f"u/{name}", np.arange(2, dtype="<i4"), compression=None)

    def shuffled(prefix: str, delimiter: str = "/") -> Iterator[Listing]:
        whole = store.list_dir(prefix, delimiter)
        objects = sorted(whole.objects, key=lambda info: info.key, reverse=True)
        for start in range(0, len(objects), 2):
            yield Listing(prefixes=[], objects=objects[start:start + 2])

    monkeypatch.setattr(store, "list_dir_pages", shuffled)
    ns = Namespace(store, folders_ahead=0)
    want = Namespace(store, folders_ahead=0)
    try:
        entries = streamed(ns, "u")
        assert {n: shape_of(node) for n, node in entries} == {
            n: shape_of(node) for n, node in want.children("u").items()}
        assert {n for n, _ in entries} == {"a", "a.npy", "b.npy", "c.npy"}
    finally:
        ns.close()
        want.close()


def test_a_big_folder_on_the_server_costs_its_pages_and_one_head_per_array(s3, s3_store) -> None:  # type: ignore[no-untyped-def]
    """2,100 arrays and a subfolder on the real server: 3 LIST pages, 2,100 HEADs, no more; and
    what the stream gives is what a whole listing gives."""
    spec = {"bucket": s3_store.bucket, "prefix": "wide/a", "count": 2100, "body": "\x00" * 16,
            "metadata": {"dtype": "float32", "shape": "(4,)", "order": "C", "compression": "False"},
            "access_key": "testing"}
    urllib.request.urlopen(urllib.request.Request(f"{s3.endpoint_url}/_local-s3/fill", method="POST",
                                                  data=json.dumps(spec).encode()), timeout=60).read()
    s3_store.put("wide/a001000.npy/x", b"x")  # a folder beside a001000
    ns = Namespace(s3_store, folders_ahead=0)
    want = Namespace(s3_store, folders_ahead=0)
    try:
        s3.clear_log()
        entries = streamed(ns, "wide")
        logged = s3.requests(at_least=2103)
        lists = [r for r in logged if r.method == "GET"]
        assert len(lists) == 3 and sum(r.method == "HEAD" for r in logged) == 2100, len(logged)
        assert {n: shape_of(node) for n, node in entries} == {
            n: shape_of(node) for n, node in want.children("wide").items()}
        assert isinstance(dict(entries)["a001000.npy"], FolderNode)
        assert isinstance(dict(entries)["a001000"], FileNode)  # the folder took its .npy name
    finally:
        ns.close()
        want.close()


def test_a_read_while_another_caller_lists_the_folder_gets_every_entry() -> None:
    """The folder's LIST is already running for someone else (a lookup of a file in it): the stream
    gets no page of its own and must still give the whole folder, not an empty one."""
    store = PagedStore(page=4)
    for i in range(10):
        write_raw_array(store, f"s/a{i}", np.arange(2, dtype="<i4"), compression=None)
    release, listing = threading.Event(), threading.Event()
    store.before_page = lambda n: n == 0 and (listing.set(), release.wait(10))
    ns = Namespace(store, folders_ahead=0, attr_ttl=0.2)
    try:
        other = threading.Thread(target=ns.listings.get, args=("s",))
        other.start()
        assert listing.wait(10)  # the other caller's LIST is under way
        stream = ns.stream("s")
        release.set()
        index = 0
        while stream.wait(index):
            index += 1
        assert sorted(name for name, _ in stream.entries) == [f"a{i}.npy" for i in range(10)]
        other.join()
    finally:
        release.set()
        ns.close()


def test_a_read_joining_a_lookup_stream_as_it_ends_is_never_lost_or_stuck() -> None:
    """A lookup's stream (LIST only) ending just as a read joins: the read gets a visit that gives
    every entry, and nothing deadlocks (the stream's end took the resolver's lock under its own
    while a joining read held the resolver's and waited for the stream's)."""
    store = PagedStore(page=3)
    for i in range(5):
        write_raw_array(store, f"r/a{i}", np.arange(2, dtype="<i4"), compression=None)
    for round_ in range(30):
        ns = Namespace(store, folders_ahead=0, attr_ttl=0.05)
        try:
            ns.resolver.stream("r", wanted=False)
            done = threading.Event()
            got: list[list[str]] = []

            def read(ns: Namespace = ns, got: list[list[str]] = got, done: threading.Event = done) -> None:
                stream = ns.stream("r")
                index = 0
                while stream.wait(index):
                    index += 1
                got.append(sorted(name for name, _ in stream.entries))
                done.set()

            threading.Thread(target=read, daemon=True).start()
            assert done.wait(10), f"round {round_}: stuck"
            assert got == [[f"a{i}.npy" for i in range(5)]], round_
        finally:
            ns.close()


def test_no_thread_to_start_fails_the_visit_instead_of_hanging(monkeypatch: pytest.MonkeyPatch) -> None:
    store = PagedStore()
    write_raw_array(store, "t/a", np.arange(2, dtype="<i4"), compression=None)
    ns = Namespace(store, folders_ahead=0)

    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    try:
        monkeypatch.setattr(threading.Thread, "start", no_thread)
        stream = ns.stream("t")
        with pytest.raises(RuntimeError, match="new thread"):
            stream.wait(0)
        monkeypatch.undo()
        assert [name for name, _ in streamed(ns, "t")] == ["a.npy"]  # the next visit is a new one
    finally:
        ns.close()
