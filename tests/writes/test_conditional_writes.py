"""Two writers of one key through two --rw mounts' writers (issue 26 item 5): the first wins, the
other's close() gets EEXIST (a new name) or ESTALE (an overwrite of the version it opened), unless
--last-writer-wins; nothing of the loser is stored."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import numpy as np
import pytest

from cottoncandy.arrays.raw import read_raw_array
from cottoncandy.namespace.facade import Namespace
from cottoncandy.storage import MemoryStore
from cottoncandy.writes.settings import WriteSettings
from cottoncandy.writes.writable import StoreWriter


def npy(arr: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, arr)
    return out.getvalue()


def writer(store: MemoryStore, **settings: object) -> StoreWriter:
    return StoreWriter(store, Namespace(store, ttl=600, folders_ahead=0), WriteSettings(**settings))  # type: ignore[arg-type]


def test_two_writers_of_one_new_name_one_wins() -> None:
    store = MemoryStore("bkt")
    first, second = writer(store), writer(store)
    a, b = first.create("x.npy", os.O_WRONLY), second.create("x.npy", os.O_WRONLY)
    first.write(a, 0, npy(np.arange(4.0)))
    second.write(b, 0, npy(np.ones(4)))
    first.flush(a)
    with pytest.raises(OSError) as err:
        second.flush(b)
    assert err.value.errno == errno.EEXIST
    np.testing.assert_array_equal(read_raw_array(store, "x"), np.arange(4.0))


def test_an_overwrite_of_a_replaced_version_is_stale_unless_last_writer_wins() -> None:
    store = MemoryStore("bkt")
    store.put("notes.txt", b"v1")
    ours = writer(store)
    handle = ours.open("notes.txt", os.O_WRONLY | os.O_TRUNC, ours.namespace.lookup)
    store.put("notes.txt", b"v2 from elsewhere")
    ours.write(handle, 0, b"ours")
    with pytest.raises(OSError) as err:
        ours.flush(handle)
    assert err.value.errno == errno.ESTALE and store.get("notes.txt") == b"v2 from elsewhere"
    relaxed = writer(store, last_writer_wins=True)
    handle = relaxed.create("notes.txt", os.O_WRONLY)
    relaxed.write(handle, 0, b"ours anyway")
    relaxed.flush(handle)
    assert store.get("notes.txt") == b"ours anyway"


def test_a_staged_rewrite_of_a_replaced_version_is_stale(tmp_path: Path) -> None:
    from cottoncandy.writes.staged_kind import StagedFiles
    from cottoncandy.writes.staging import StagingArea

    store = MemoryStore("bkt")
    store.put("log.txt", b"line 1\n")
    staging = StagedFiles(store, StagingArea(tmp_path))
    ours = StoreWriter(store, Namespace(store, ttl=600, folders_ahead=0), WriteSettings(), staging=staging)
    handle = ours.open("log.txt", os.O_RDWR, ours.namespace.lookup)  # staged: changed in place
    ours.write(handle, 7, b"line 2\n")
    ours.fsync(handle, False)  # the version seen at open: stored
    assert store.get("log.txt") == b"line 1\nline 2\n"
    store.put("log.txt", b"replaced elsewhere\n")
    ours.write(handle, 14, b"line 3\n")
    with pytest.raises(OSError) as err:
        ours.fsync(handle, False)
    assert err.value.errno == errno.ESTALE and store.get("log.txt") == b"replaced elsewhere\n"
    ours.close()
