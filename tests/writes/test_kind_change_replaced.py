"""A file that changes kind between commits (issue 26: a plain ``.npy`` is the raw array ``NAME``, other
bytes are ``NAME.npy``) keeps one object per path: the version it replaced under the other key is
removed at its ETag, and kept (one log line, the close still succeeds) when another version is there."""

from __future__ import annotations

import errno
import io
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.arrays.raw import read_raw_array
from cottoncandy.namespace.facade import Namespace
from cottoncandy.namespace.nodes import FileNode
from cottoncandy.storage import MemoryStore
from cottoncandy.writes.settings import WriteSettings
from cottoncandy.writes.staged_kind import StagedFiles
from cottoncandy.writes.staging import StagingArea
from cottoncandy.writes.writable import StoreWriter


def npy(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, arr)
    return out.getvalue()


def keys(store: MemoryStore) -> list[str]:
    return [info.key for info in store.list_dir("").objects]


def writer(store: MemoryStore, tmp_path: Path) -> StoreWriter:
    staging = StagedFiles(store, StagingArea(tmp_path))
    return StoreWriter(store, Namespace(store, ttl=600, folders_ahead=0), WriteSettings(), staging=staging)


def test_bytes_stored_at_a_flush_then_completed_to_an_array_leave_only_the_array(tmp_path: Path) -> None:
    store = MemoryStore("bkt")
    ours = writer(store, tmp_path)
    data = npy(np.arange(6.0))
    handle = ours.create("n.npy", os.O_WRONLY)
    ours.write(handle, 0, data[:6])
    ours.flush(handle)  # a copy of the descriptor closed: six bytes stored as n.npy
    assert keys(store) == ["n.npy"] and list(ours.namespace.children("")) == ["n.npy"]  # listed: mended below
    ours.write(handle, 6, data[6:])
    ours.flush(handle)
    ours.release(handle)
    assert keys(store) == ["n"]
    np.testing.assert_array_equal(read_raw_array(store, "n"), np.arange(6.0))
    shown = ours.namespace.children("")
    node = shown["n.npy"]
    assert list(shown) == ["n.npy"] and isinstance(node, FileNode) and node.size == len(data)
    ours.close()


@pytest.mark.parametrize("flags", [os.O_WRONLY | os.O_TRUNC, os.O_RDWR])
def test_an_array_rewritten_as_other_bytes_leaves_only_the_bytes(tmp_path: Path, flags: int) -> None:
    store = MemoryStore("bkt")
    seed = writer(store, tmp_path / "seed")
    handle = seed.create("n.npy", os.O_WRONLY)
    seed.write(handle, 0, npy(np.arange(4.0)))
    seed.flush(handle)
    seed.release(handle)
    assert keys(store) == ["n"]
    ours = writer(store, tmp_path / "ours")
    handle = ours.open("n.npy", flags, ours.namespace.lookup)
    ours.write(handle, 0, b"not an array")
    ours.fsync(handle, False)
    ours.release(handle)
    assert keys(store) == ["n.npy"]
    stored = store.get("n.npy")
    assert stored.startswith(b"not an array")
    ours.close()


def test_a_replaced_version_changed_elsewhere_is_kept_and_the_close_succeeds(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore("bkt")
    seed = writer(store, tmp_path / "seed")
    handle = seed.create("n.npy", os.O_WRONLY)
    seed.write(handle, 0, npy(np.arange(4.0)))
    seed.flush(handle)
    seed.release(handle)
    ours = writer(store, tmp_path / "ours")
    handle = ours.open("n.npy", os.O_WRONLY | os.O_TRUNC, ours.namespace.lookup)
    ours.write(handle, 0, b"not an array")
    elsewhere = npy(np.ones(3))
    store.put("n", elsewhere[128:], store.head("n").metadata)  # another writer's version of the array
    with caplog.at_level(logging.WARNING, logger="cottoncandy.writes"):
        ours.flush(handle)  # no error: the user's bytes are stored
        ours.release(handle)
    assert keys(store) == ["n", "n.npy"] and store.get("n.npy") == b"not an array"
    assert store.get("n") == elsewhere[128:]
    kept = [r.getMessage() for r in caplog.records if "kept" in r.getMessage()]
    assert len(kept) == 1 and "bkt/n.npy" in kept[0] and "bkt/n was kept" in kept[0], kept
    ours.close()


def test_an_overwrite_taken_over_from_its_stream_is_conditional_on_the_version_opened(tmp_path: Path) -> None:
    """``O_TRUNC`` over a stored file, then a write out of order: the staged file that takes the stream
    over has no base, and overwrites the version opened (If-Match), not a new name (was EEXIST)."""
    store = MemoryStore("bkt")
    store.put("x.txt", b"old contents")
    ours = writer(store, tmp_path)
    handle = ours.open("x.txt", os.O_WRONLY | os.O_TRUNC, ours.namespace.lookup)
    ours.write(handle, 0, b"abc")
    ours.write(handle, 10, b"def")  # out of order: staged
    ours.fsync(handle, False)
    assert store.get("x.txt") == b"abc" + bytes(7) + b"def"
    store.put("x.txt", b"theirs")
    ours.write(handle, 3, b"g")
    with pytest.raises(OSError) as err:
        ours.fsync(handle, False)
    assert err.value.errno == errno.ESTALE and store.get("x.txt") == b"theirs"
    ours.close()
