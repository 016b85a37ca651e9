"""A folder rename copies its objects several at once (``TreeChanges._copy_all``), all or nothing:
one copy failing, or the caller giving up (a FUSE request interrupted), leaves the old keys and no
copy. Memory, local and the local S3 server (``store``: tests/writes/conftest.py), each wrapped to
hold or fail chosen copies."""

from __future__ import annotations

import errno
import threading
import time

import pytest

from cottoncandy import waits
from cottoncandy.namespace.facade import Namespace
from cottoncandy.storage.base import ObjectStore
from cottoncandy.storage.conditions import WriteCondition
from cottoncandy.storage.wrapper import WrapperStore
from cottoncandy.writes.settings import WriteSettings
from cottoncandy.writes.tree_changes import TreeChanges

MEMBERS = [f"f/{i:02d}" for i in range(20)]


class HeldCopies(WrapperStore):
    """The first ``parties`` copies wait at a barrier: they pass only if that many are under way at
    once (one after another, the first would wait alone until the barrier broke, failing the rename)."""

    def __init__(self, inner: ObjectStore, parties: int) -> None:
        super().__init__(inner)
        self.barrier = threading.Barrier(parties, timeout=10)
        self.lock = threading.Lock()
        self.calls = 0

    def copy(self, src: str, dst: str, *, condition: WriteCondition | None = None,
             source_etag: str | None = None) -> None:
        with self.lock:
            self.calls += 1
            held = self.calls <= self.barrier.parties
        if held:
            self.barrier.wait()
        self.inner.copy(src, dst, condition=condition, source_etag=source_etag)


class FailingCopy(WrapperStore):
    """The copy of ``key`` fails (EIO) once the others before it have started."""

    def __init__(self, inner: ObjectStore, key: str) -> None:
        super().__init__(inner)
        self.key = key

    def copy(self, src: str, dst: str, *, condition: WriteCondition | None = None,
             source_etag: str | None = None) -> None:
        if src == self.key:
            time.sleep(0.05)  # the copies beside it land first: they must be removed
            raise OSError(errno.EIO, f"copy of {src} failed")
        self.inner.copy(src, dst, condition=condition, source_etag=source_etag)


class CopyThatWaits(WrapperStore):
    """The copy of ``key`` waits (up to 10 s) the way the store's own waits do, asking this thread's
    give-up check: it ends early only if the caller's check reached the pool's thread."""

    def __init__(self, inner: ObjectStore, key: str) -> None:
        super().__init__(inner)
        self.key = key
        self.waiting = threading.Event()

    def copy(self, src: str, dst: str, *, condition: WriteCondition | None = None,
             source_etag: str | None = None) -> None:
        if src == self.key:
            self.waiting.set()
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                waits.check()
                time.sleep(0.02)
        self.inner.copy(src, dst, condition=condition, source_etag=source_etag)


def renamer(store: ObjectStore) -> TreeChanges:
    ns = Namespace(store, ttl=600, folders_ahead=0)
    ns.children("", ahead=False)
    return TreeChanges(store, ns, WriteSettings())


def fill(store: ObjectStore) -> None:
    for key in MEMBERS:
        store.put(key, key.encode())


def keys(store: ObjectStore) -> list[str]:
    return sorted(info.key for info in store.iter_objects(""))


def test_copies_run_several_at_once(store: ObjectStore) -> None:
    fill(store)
    held = HeldCopies(store, parties=4)
    renamer(held).rename("f", "g")  # BrokenBarrierError if the copies ran one at a time
    assert keys(store) == sorted("g/" + key[2:] for key in MEMBERS)
    assert all(store.get("g/" + key[2:]) == key.encode() for key in MEMBERS)


def test_a_failed_copy_removes_every_copy_and_keeps_the_old_keys(store: ObjectStore) -> None:
    fill(store)
    with pytest.raises(OSError) as caught:
        renamer(FailingCopy(store, "f/05")).rename("f", "g")
    assert caught.value.errno == errno.EIO
    assert keys(store) == MEMBERS  # no copy left, nothing deleted
    assert all(store.get(key) == key.encode() for key in MEMBERS)


def test_the_callers_give_up_reaches_the_copies_under_way(store: ObjectStore) -> None:
    fill(store)
    slow = CopyThatWaits(store, "f/03")
    tree = renamer(slow)
    began = time.monotonic()
    signalled = waits.giving_up(lambda: errno.EINTR if slow.waiting.is_set() else None)  # the reader's signal
    with signalled, pytest.raises(waits.GaveUp) as caught:
        tree.rename("f", "g")
    assert caught.value.errno == errno.EINTR
    assert time.monotonic() - began < 8  # the held copy gave up; it did not wait its 10 s out
    assert keys(store) == MEMBERS
