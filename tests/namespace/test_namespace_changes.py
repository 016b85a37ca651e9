"""``Namespace.changed``: keys written or removed on this machine are mended into the listings held,
with one HEAD each and no LIST; and ``changes.Change`` refuses malformed messages before use."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from cottoncandy import changes
from cottoncandy.arrays.raw import write_raw_array
from cottoncandy.namespace.facade import MANY_CHANGES, Namespace
from cottoncandy.storage import MemoryStore


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore("bkt")
    write_raw_array(store, "d/a", np.arange(3.0))
    write_raw_array(store, "d/deep/x", np.arange(2.0))
    return store


def names(ns: Namespace, path: str) -> list[str]:
    return sorted(ns.children(path, ahead=False))


def test_writes_and_removals_are_mended_without_a_list(store: MemoryStore) -> None:
    ns = Namespace(store, ttl=600, folders_ahead=0)
    assert names(ns, "") == ["d"] and names(ns, "d") == ["a.npy", "deep"]
    with pytest.raises(FileNotFoundError):
        ns.lookup("d/new/y.npy")  # remembered missing
    lists = ns.lists
    write_raw_array(store, "d/b", np.arange(4.0))
    write_raw_array(store, "d/new/y", np.arange(5.0))
    write_raw_array(store, "top/z", np.arange(1.0))
    assert ns.changed(["d/b", "d/new/y", "top/z"]) == 3
    assert names(ns, "") == ["d", "top"]
    assert names(ns, "d") == ["a.npy", "b.npy", "deep", "new"]
    assert ns.lookup("d/new/y.npy").size > 0 and ns.lookup("d/b.npy").size > 0
    assert ns.lists == lists  # d, d/new (its miss was listed) and the root were mended: no LIST

    store.delete("d/deep/x")
    ns.changed(["d/deep/x"])
    assert names(ns, "d") == ["a.npy", "b.npy", "new"]  # deep was listed, so it is known empty now
    with pytest.raises(FileNotFoundError):
        ns.lookup("d/deep")


def test_a_removal_in_a_folder_not_held_asks_its_parent_again(store: MemoryStore) -> None:
    ns = Namespace(store, ttl=600, folders_ahead=0)
    assert names(ns, "d") == ["a.npy", "deep"]
    store.delete("d/deep/x")
    ns.changed(["d/deep/x"])  # d/deep was never listed: whether it is empty is unknown
    assert names(ns, "d") == ["a.npy"]


def test_keys_outside_the_tree_and_hints_that_lie_change_nothing(store: MemoryStore) -> None:
    ns = Namespace(store, prefix="d", ttl=600, folders_ahead=0)
    assert names(ns, "") == ["a.npy", "deep"]
    assert ns.changed(["elsewhere/q", "dx"]) == 0
    ns.changed(["d/ghost"])  # a hint about a key that is not there: the store decides
    assert names(ns, "") == ["a.npy", "deep"]


def test_many_keys_in_one_folder_relist_it(store: MemoryStore) -> None:
    ns = Namespace(store, ttl=600, folders_ahead=0)
    assert names(ns, "d") == ["a.npy", "deep"]
    keys = [f"d/m{i:03d}" for i in range(MANY_CHANGES + 1)]
    for key in keys:
        store.put(key, b"x")
    assert ns.changed(keys) == 0  # no HEADs: the listing is dropped, one LIST answers them all
    assert len(names(ns, "d")) == 2 + len(keys)


@pytest.mark.parametrize("data, why", [
    (b"\xff", "not JSON"), (b"[1]", "version-1"), (b'{"v": 2}', "version-1"),
    (b'{"v": 1, "scope": "s", "keys": "k"}', "list"),
    (b'{"v": 1, "scope": "s", "keys": [""]}', "non-empty"),
    (b'{"v": 1, "scope": "s", "keys": [7]}', "non-empty"),
    (changes.Change("s", ("k" * (changes.MAX_KEY_BYTES + 1),)).encode(), "bytes"),
    (changes.Change("s", tuple(f"k{i}" for i in range(changes.MAX_KEYS + 1))).encode(), "at most"),
    (b" " * (changes.MAX_MESSAGE + 1), "message of"),
])
def test_malformed_messages_are_refused_with_the_reason(data: bytes, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        changes.Change.decode(data)


def test_a_message_round_trips_and_big_changes_are_split() -> None:
    change = changes.Change("s3 http://h:1 b", ("a/b", "ü/ø", 'q"x'))
    assert changes.Change.decode(change.encode()) == change
    keys = [f"k/{i:05d}" + "é" * 200 for i in range(3000)] + [f"e/{i}" + "😀" * 250 for i in range(1000)]
    groups = list(changes._chunks(keys))
    assert [k for g in groups for k in g] == keys
    for group in groups:
        assert len(changes.Change("s", tuple(group)).encode()) <= changes.MAX_MESSAGE


def test_no_mount_costs_nothing_and_never_raises(tmp_path) -> None:  # type: ignore[no-untyped-def]
    table = tmp_path / "mountinfo"
    table.write_text("36 25 0:991 / /nowhere rw,nosuid - fuse.ccfs ccfs:s3://bkt rw,user_id=0\n"
                     "37 25 0:5 / /proc rw - proc proc rw\n")
    [entry] = changes.local_mounts("bkt", str(table))
    assert (entry.mountpoint, entry.device, entry.target) == ("/nowhere", "0:991", "s3://bkt")
    assert changes.local_mounts("other", str(table)) == []
    assert changes.tell(entry, changes.Change("s", ("k",))) is False  # no daemon: skipped at once


def test_names_no_folder_entry_can_have_are_not_mended_in(store: MemoryStore) -> None:
    ns = Namespace(store, ttl=600, folders_ahead=0)
    assert names(ns, "d") == ["a.npy", "deep"]
    store.put("d/..", b"x")
    store.put("d/.", b"x")
    ns.changed(["d/..", "d/."])
    assert names(ns, "d") == ["a.npy", "deep"]  # as a LIST shows it: left out


def test_a_folder_written_here_again_and_again_is_still_listed_again(store: MemoryStore) -> None:
    """Mending does not keep a listing forever: one due for a LIST is dropped instead, so what other
    machines wrote shows within twice the TTL however often this machine writes there."""
    import time

    ns = Namespace(store, ttl=0.5, folders_ahead=0)
    assert names(ns, "d") == ["a.npy", "deep"]
    write_raw_array(store, "d/elsewhere", np.arange(1.0))  # no message: another machine's write
    deadline = time.monotonic() + 1.2
    i = 0
    while time.monotonic() < deadline:
        write_raw_array(store, f"d/here{i}", np.arange(1.0))
        ns.changed([f"d/here{i}"])
        i += 1
        time.sleep(0.1)
    assert "elsewhere.npy" in names(ns, "d")


def test_a_new_listener_takes_the_address_its_exiting_predecessor_gives_back() -> None:
    """The kernel gives a mount's device number back at unmount: the next mount can get the same
    number while the last daemon still exits. The newcomer waits for the address (bounded), and a
    stopping listener gives the address back before its threads end."""
    device = f"0:{os.getpid() % 100000 + 900000}"
    old = changes.ChangeListener("scope", lambda keys: None)
    assert old.start(device)
    new = changes.ChangeListener("scope", lambda keys: None)
    started: list[bool] = []
    waiter = threading.Thread(target=lambda: started.append(new.start(device)))
    waiter.start()
    time.sleep(0.3)
    assert not started  # still waiting: the address is held
    old.stop()
    waiter.join(timeout=changes.BIND_WAIT)
    try:
        assert started == [True]
        old.stop()  # twice is harmless
    finally:
        new.stop()
    gone = changes.ChangeListener("scope", lambda keys: None)
    try:
        assert gone.start(device)  # given back at once: no wait
    finally:
        gone.stop()


def test_a_head_answer_older_than_the_mounts_own_write_is_not_applied(store: MemoryStore) -> None:
    """The mount is told of its own writes too: a change message's HEAD asked before the mount
    stored (or removed) the key answers about an older state, and must not undo what ``stored``
    /``removed`` just mended (a removed name came back, or a new one vanished)."""
    ns = Namespace(store, ttl=600, folders_ahead=0)
    assert names(ns, "d") == ["a.npy", "deep"]
    asked, answer = threading.Event(), threading.Event()
    head = store.head_if_exists

    def slow_head(key: str):  # type: ignore[no-untyped-def]
        found = head(key)  # the state before the write below
        asked.set()
        answer.wait(10)
        return found

    store.head_if_exists = slow_head  # type: ignore[method-assign]
    told = threading.Thread(target=ns.changed, args=(["d/b"],))
    told.start()
    assert asked.wait(10)
    info = write_raw_array(store, "d/b", np.arange(4.0))  # the mount's own write, mended at once
    ns.stored("d/b", store.head("d/b") if info is None else info)
    answer.set()
    told.join(10)
    assert names(ns, "d") == ["a.npy", "b.npy", "deep"]  # the older "missing" answer was not applied
    store.head_if_exists = head  # type: ignore[method-assign]
    store.delete("d/b")
    ns.changed(["d/b"])  # a later message is applied as before
    assert names(ns, "d") == ["a.npy", "deep"]
