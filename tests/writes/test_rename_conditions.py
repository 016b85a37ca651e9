"""A rename's copy carries a write condition (issue 26 item 5): it lands where the mount showed
nothing (``If-None-Match: *``) or over the version it showed at the new name (``If-Match``), so an
object another writer stored there meanwhile is never overwritten silently: EEXIST/ESTALE, theirs
kept, the old name kept; a folder rename removes only its own copies. ``--last-writer-wins``: no
condition. The memory and local stores check conditions themselves; against the S3 server the
condition is seen on the CopyObject request (moto 5.2.6 ignores both on CopyObject's destination)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from cottoncandy.namespace.facade import Namespace
from cottoncandy.namespace.nodes import FileNode
from cottoncandy.storage import LocalStore, MemoryStore
from cottoncandy.storage.base import ObjectStore
from cottoncandy.writes.settings import WriteSettings
from cottoncandy.writes.tree_changes import TreeChanges


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return MemoryStore("bkt") if request.param == "memory" else LocalStore(tmp_path / "bkt")


def changes(store: ObjectStore, **settings: Any) -> tuple[TreeChanges, Namespace]:
    ns = Namespace(store, ttl=600, folders_ahead=0)  # listings trusted 10 min: another writer is unseen
    return TreeChanges(store, ns, WriteSettings(**settings)), ns


def test_a_name_created_meanwhile_is_not_overwritten(store: ObjectStore) -> None:
    store.put("a.txt", b"mine")
    tree, ns = changes(store)
    assert sorted(ns.children("", ahead=False)) == ["a.txt"]  # b.txt is not there, as far as the mount knows
    store.put("b.txt", b"theirs")
    with pytest.raises(OSError) as caught:
        tree.rename("a.txt", "b.txt")
    assert caught.value.errno == errno.EEXIST
    assert store.get("b.txt") == b"theirs" and store.get("a.txt") == b"mine"


def test_a_version_replaced_meanwhile_is_not_overwritten(store: ObjectStore) -> None:
    store.put("a.txt", b"mine")
    store.put("b.txt", b"theirs 1")
    tree, ns = changes(store)
    assert isinstance(ns.lookup("b.txt"), FileNode)  # the version the mount shows: 'theirs 1'
    store.put("b.txt", b"theirs 2")
    with pytest.raises(OSError) as caught:
        tree.rename("a.txt", "b.txt")
    assert caught.value.errno == errno.ESTALE
    assert store.get("b.txt") == b"theirs 2" and store.get("a.txt") == b"mine"
    tree.rename("a.txt", "c.txt")  # a name nobody took: done
    assert store.get("c.txt") == b"mine"


def test_the_version_shown_is_replaced_by_a_rename(store: ObjectStore) -> None:
    """mv over a file the mount shows, unchanged since: If-Match holds, the rename replaces it."""
    store.put("a.txt", b"mine")
    store.put("b.txt", b"old")
    tree, ns = changes(store)
    ns.lookup("b.txt")
    tree.rename("a.txt", "b.txt")
    assert store.get("b.txt") == b"mine" and not store.exists("a.txt")


def test_last_writer_wins_overwrites(store: ObjectStore) -> None:
    store.put("a.txt", b"mine")
    tree, ns = changes(store, last_writer_wins=True)
    ns.children("", ahead=False)
    store.put("b.txt", b"theirs")
    tree.rename("a.txt", "b.txt")
    assert store.get("b.txt") == b"mine"


def test_a_folder_rename_onto_a_name_taken_meanwhile_keeps_theirs(store: ObjectStore) -> None:
    for name in ("f/1", "f/2", "f/3"):
        store.put(name, name.encode())
    tree, ns = changes(store)
    ns.children("", ahead=False)
    store.put("g/2", b"theirs")  # created by another writer after the mount listed the bucket
    with pytest.raises(OSError) as caught:
        tree.rename("f", "g")
    assert caught.value.errno == errno.EEXIST
    assert store.get("g/2") == b"theirs"  # never removed as one of the rename's copies
    assert sorted(i.key for i in store.iter_objects("")) == ["f/1", "f/2", "f/3", "g/2"]


def test_the_s3_store_sends_the_condition_on_copy_object(s3_store) -> None:  # type: ignore[no-untyped-def]
    sent: list[dict[str, str]] = []

    def seen(request: Any, **_: Any) -> None:
        sent.append({k.lower(): v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()})

    s3_store.put("a.txt", b"mine")
    s3_store.put("b.txt", b"old")
    tree, ns = changes(s3_store)
    shown = ns.lookup("b.txt")
    s3_store.client.meta.events.register("before-send.s3.CopyObject", seen)
    tree.rename("a.txt", "b.txt")
    tree.rename("b.txt", "c.txt")
    assert [h.get("if-match", "").strip('"') for h in sent] == [shown.info.etag.strip('"'), ""]
    assert [h.get("if-none-match") for h in sent] == [None, "*"]
    assert s3_store.get("c.txt") == b"mine"
