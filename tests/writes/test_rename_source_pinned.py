"""A rename copies only the version of the old name the mount showed (``ObjectStore.copy``'s
``source_etag``): another writer's newer version written at the old key after the mount looked, before
the copy, is neither copied in the user's name nor deleted with the old name -- the rename fails with
ESTALE and their object stays at the old key (the review's silent loss: copy the newer version? no --
copy the old version, then delete theirs). Memory, local and the local S3 server; the S3 store also
sends ``CopySourceIfMatch`` for the window between its own HEAD and the CopyObject. And a version
written at the old key after the copy is not deleted with it (``ObjectStore.delete_versions``: S3's
``If-Match`` on DeleteObject, which moto 5.2.6 honours): ESTALE, both names kept."""

from __future__ import annotations

import errno
from typing import Any

import pytest

from cottoncandy.namespace.facade import Namespace
from cottoncandy.namespace.nodes import FileNode
from cottoncandy.storage.base import ObjectStore
from cottoncandy.storage.conditions import WriteCondition
from cottoncandy.storage.wrapper import WrapperStore
from cottoncandy.writes.settings import WriteSettings
from cottoncandy.writes.tree_changes import TreeChanges


class WritesBeforeCopy(WrapperStore):
    """The other writer: stores ``theirs`` at ``key`` just before that key's copy is sent (after the
    mount listed or looked it up), as a racing writer would. A folder's copies run several at once:
    the race is tied to one key, not to whichever copy starts first."""

    def __init__(self, inner: ObjectStore, theirs: bytes, key: str) -> None:
        super().__init__(inner)
        self.theirs, self.key = theirs, key

    def copy(self, src: str, dst: str, *, condition: WriteCondition | None = None,
             source_etag: str | None = None) -> None:
        if src == self.key:
            self.inner.put(src, self.theirs)
        self.inner.copy(src, dst, condition=condition, source_etag=source_etag)


class WritesAfterCopy(WrapperStore):
    """The other writer: stores ``theirs`` at ``key`` just after that key's copy landed, before the
    rename deletes the old name."""

    def __init__(self, inner: ObjectStore, theirs: bytes, key: str) -> None:
        super().__init__(inner)
        self.theirs, self.key = theirs, key

    def copy(self, src: str, dst: str, *, condition: WriteCondition | None = None,
             source_etag: str | None = None) -> None:
        self.inner.copy(src, dst, condition=condition, source_etag=source_etag)
        if src == self.key:
            self.inner.put(src, self.theirs)


def changes(store: ObjectStore) -> tuple[TreeChanges, Namespace]:
    ns = Namespace(store, ttl=600, folders_ahead=0)  # listings trusted 10 min: another writer is unseen
    return TreeChanges(store, ns, WriteSettings()), ns


def test_a_file_replaced_after_it_was_shown_is_not_renamed(store: ObjectStore) -> None:
    store.put("a.txt", b"mine")
    racing = WritesBeforeCopy(store, b"theirs", "a.txt")
    tree, ns = changes(racing)
    assert isinstance(ns.lookup("a.txt"), FileNode)  # the version the mount shows: 'mine'
    with pytest.raises(OSError) as caught:
        tree.rename("a.txt", "b.txt")
    assert caught.value.errno == errno.ESTALE and "a.txt" in str(caught.value)
    assert store.get("a.txt") == b"theirs" and not store.exists("b.txt")


def test_a_folder_member_replaced_after_the_listing_stops_the_rename(store: ObjectStore) -> None:
    for name in ("f/1", "f/2"):
        store.put(name, name.encode())
    racing = WritesBeforeCopy(store, b"theirs", "f/1")  # replaced after the listing
    tree, ns = changes(racing)
    ns.children("", ahead=False)
    with pytest.raises(OSError) as caught:
        tree.rename("f", "g")
    assert caught.value.errno == errno.ESTALE
    assert store.get("f/1") == b"theirs" and store.get("f/2") == b"f/2"
    assert sorted(i.key for i in store.iter_objects("")) == ["f/1", "f/2"]  # no copy left, nothing deleted


def test_the_s3_store_pins_the_copy_source(s3_store) -> None:  # type: ignore[no-untyped-def]
    sent: list[dict[str, str]] = []

    def seen(request: Any, **_: Any) -> None:
        sent.append({k.lower(): v.decode() if isinstance(v, bytes) else str(v) for k, v in request.headers.items()})

    s3_store.put("a.txt", b"mine")
    tree, ns = changes(s3_store)
    shown = ns.lookup("a.txt")
    s3_store.client.meta.events.register("before-send.s3.CopyObject", seen)
    tree.rename("a.txt", "b.txt")
    assert [h.get("x-amz-copy-source-if-match", "").strip('"') for h in sent] == [shown.info.etag.strip('"')]
    assert s3_store.get("b.txt") == b"mine" and not s3_store.exists("a.txt")


def test_a_file_replaced_after_its_copy_keeps_both_names(store: ObjectStore) -> None:
    store.put("a.txt", b"mine")
    tree, ns = changes(WritesAfterCopy(store, b"theirs", "a.txt"))
    ns.lookup("a.txt")
    with pytest.raises(OSError) as caught:
        tree.rename("a.txt", "b.txt")
    assert caught.value.errno == errno.ESTALE
    assert store.get("b.txt") == b"mine" and store.get("a.txt") == b"theirs"


def test_a_folder_member_replaced_after_its_copy_is_kept(store: ObjectStore) -> None:
    for name in ("f/1", "f/2"):
        store.put(name, name.encode())
    tree, ns = changes(WritesAfterCopy(store, b"theirs", "f/1"))
    ns.children("", ahead=False)
    with pytest.raises(OSError) as caught:
        tree.rename("f", "g")
    assert caught.value.errno == errno.ESTALE
    assert store.get("f/1") == b"theirs" and not store.exists("f/2")
    assert store.get("g/1") == b"f/1" and store.get("g/2") == b"f/2"
