"""Writes after a commit point stored the file, through one handle still open (issue 26, the shared
descriptor gap), without a kernel: ``CcFilesystem`` over a memory store, driven as ``ccfs/operations.py``
drives it. ``{ cmd1; cmd2; } > f``, ``exec 3>f; echo x >&3; echo y >&3``, a forked child writing after
its parent's close, and ``fsync`` then more writes: each sends FLUSH (or fsync) between writes of one
handle, and the stored object must be everything written."""

from __future__ import annotations

import errno
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ccfs.filesystem import CcFilesystem
from ccfs.mountoptions import MountOptions
from cottoncandy.arrays.raw import read_raw_array
from cottoncandy.storage.base import CopiedRange, ObjectInfo, Piece
from cottoncandy.storage.memory import MemoryStore

MiB = 2**20
CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.part_size = 5 * MiB  # the least a copied stretch may be: a big file has copied and sent parts
    return store


def writable(store: MemoryStore, tmp_path: Path, **options: object) -> CcFilesystem:
    return CcFilesystem(store, options=MountOptions(rw=True, cache_dir=str(tmp_path / "cache"),
                                                     **options))  # type: ignore[arg-type]


def writes(fs: CcFilesystem, fh: int, data: bytes, at: int, step: int = 128 * 1024) -> int:
    for offset in range(0, len(data), step):
        assert fs.write(fh, data[offset : offset + step], at + offset) == len(data[offset : offset + step])
    return at + len(data)


def test_two_commands_sharing_one_descriptor(store: MemoryStore, tmp_path: Path) -> None:
    """``{ echo a; echo b; } > f``: the shell's FLUSH before any byte, echo a's exit (FLUSH stores
    'a'), echo b's write and exit, the shell's own close, RELEASE: 'a' then 'b', one object."""
    fs = writable(store, tmp_path)
    fh = fs.create("/f.txt", CREATE)
    fs.flush(fh)  # the shell hands the descriptor on and closes its copy: nothing written yet
    fs.write(fh, b"a\n", 0)
    fs.flush(fh)  # the first command exits: stored
    assert store.get("f.txt") == b"a\n"
    first = store.head("f.txt").etag
    fs.write(fh, b"b\n", 2)  # the second command writes on (refused before: EOPNOTSUPP)
    assert fs.getattr("/f.txt")["st_size"] == 4
    fs.flush(fh)  # its exit stores everything: the next close reports this commit
    assert store.get("f.txt") == b"a\nb\n" and store.head("f.txt").etag != first
    fs.flush(fh)  # the shell's close: nothing new, nothing stored
    fs.release(fh)
    assert store.get("f.txt") == b"a\nb\n"
    assert fs.getattr("/f.txt")["st_size"] == 4
    assert os.listdir(tmp_path / "cache" / "writes") == []  # the staged file is gone after the last release


def test_many_commits_through_one_descriptor(store: MemoryStore, tmp_path: Path) -> None:
    """``exec 3>f; echo $i >&3`` many times, ``exec 3>&-``: each builtin's redirection closes a dup."""
    fs = writable(store, tmp_path)
    fh = fs.create("/log.txt", CREATE)
    at = 0
    for i in range(20):
        at = writes(fs, fh, f"line {i}\n".encode(), at)
        fs.flush(fh)
        assert store.get("log.txt") == "".join(f"line {j}\n" for j in range(i + 1)).encode()
    fs.release(fh)
    assert store.get("log.txt") == "".join(f"line {j}\n" for j in range(20)).encode()


def test_a_big_file_written_on_copies_what_it_stored(store: MemoryStore, tmp_path: Path) -> None:
    """A multipart file stored at FLUSH, then a child appends: the stored stretch is copied by the
    server, only the new bytes are sent, and the result is every byte in order."""
    fs = writable(store, tmp_path)
    first = os.urandom(12 * MiB + 7)
    more = os.urandom(3 * MiB)
    fh = fs.create("/big.bin", CREATE)
    writes(fs, fh, first, 0)
    fs.flush(fh)  # the parent closes its copy: stored (a multipart upload)
    assert store.get("big.bin") == first
    writes(fs, fh, more, len(first))  # the forked child writes on
    pieces: list[object] = []
    compose = store.compose

    def seen(key: str, parts: Iterable[Piece], *args: Any, **kwargs: Any) -> ObjectInfo:
        listed = list(parts)
        pieces.extend(listed)
        return compose(key, listed, *args, **kwargs)

    store.compose = seen  # type: ignore[method-assign]
    fs.flush(fh)
    fs.release(fh)
    assert store.get("big.bin") == first + more
    copied = sum(p.end - p.start for p in pieces if isinstance(p, CopiedRange))
    sent = sum(len(p) for p in pieces if not isinstance(p, CopiedRange))  # type: ignore[arg-type]
    assert copied >= 10 * MiB and sent < len(more) + 5 * MiB  # the stored stretch copied, not sent again


def test_fsync_then_more_writes_and_a_rewrite_in_place(store: MemoryStore, tmp_path: Path) -> None:
    fs = writable(store, tmp_path)
    fh = fs.create("/n.txt", CREATE)
    fs.write(fh, b"hello world", 0)
    fs.fsync(fh)
    assert store.get("n.txt") == b"hello world"
    fs.write(fh, b"W", 6)  # in place, before the end
    fs.write(fh, b"!", 11)
    assert fs.read(fh, 100, 0) == b"hello World!"  # read back: the stored bytes and the new
    fs.fsync(fh)
    assert store.get("n.txt") == b"hello World!"
    fs.truncate("/n.txt", 5, fh)
    fs.flush(fh)
    fs.release(fh)
    assert store.get("n.txt") == b"hello"


def test_an_array_written_on_stays_one_array(store: MemoryStore, tmp_path: Path) -> None:
    """A .npy stored whole, then rows rewritten through the same handle: still the raw array, its
    metadata kept; a byte past what its header promises is EFBIG (it never becomes a second object)."""
    fs = writable(store, tmp_path)
    array = np.arange(64, dtype="<f8").reshape(8, 8)
    out = io.BytesIO()
    np.save(out, array)
    data = out.getvalue()
    header = len(data) - array.nbytes
    fh = fs.create("/a.npy", CREATE)
    writes(fs, fh, data, 0)
    fs.flush(fh)
    assert np.array_equal(read_raw_array(store, "a"), array)
    fs.write(fh, np.full(8, -1.0).tobytes(), header + 8 * 8)  # row 1
    with pytest.raises(OSError) as caught:
        fs.write(fh, b"x", len(data))
    assert caught.value.errno == errno.EFBIG
    fs.flush(fh)
    fs.release(fh)
    expected = array.copy()
    expected[1] = -1.0
    assert np.array_equal(read_raw_array(store, "a"), expected)
    assert [info.key for info in store.iter_objects()] == ["a"]


def test_another_writer_in_between_is_stale(store: MemoryStore, tmp_path: Path) -> None:
    """The commit after the first one is conditional on the version this mount stored: another
    writer's version in between is kept and the FLUSH that would overwrite it is ESTALE."""
    fs = writable(store, tmp_path)
    fh = fs.create("/f.txt", CREATE)
    fs.write(fh, b"mine 1\n", 0)
    fs.flush(fh)
    store.put("f.txt", b"theirs\n")
    fs.write(fh, b"mine 2\n", 7)
    with pytest.raises(OSError) as caught:
        fs.flush(fh)
    assert caught.value.errno == errno.ESTALE and "f.txt" in str(caught.value)
    with pytest.raises(OSError):
        fs.release(fh)
    assert store.get("f.txt") == b"theirs\n"


def test_last_writer_wins_still_never_stores_a_file_missing_its_start(store: MemoryStore, tmp_path: Path) -> None:
    """With --last-writer-wins the commit carries no condition, but what this mount stored first is
    read back pinned to its version: once another writer replaced it, that start is gone, so the
    commit is ESTALE rather than an object without it; theirs is kept."""
    fs = writable(store, tmp_path, last_writer_wins=True)
    fh = fs.create("/f.txt", CREATE)
    fs.write(fh, b"mine 1\n", 0)
    fs.flush(fh)
    store.put("f.txt", b"theirs\n")
    fs.write(fh, b"mine 2\n", 7)
    with pytest.raises(OSError) as caught:
        fs.flush(fh)
    assert caught.value.errno == errno.ESTALE
    with pytest.raises(OSError):
        fs.release(fh)
    assert store.get("f.txt") == b"theirs\n"


def test_writes_after_a_commit_are_stored_at_unmount(store: MemoryStore, tmp_path: Path) -> None:
    """The mount ends before the last FLUSH/RELEASE of a continued file: its changes are stored, as
    any staged file's are (``writes.recovery.settle``)."""
    fs = writable(store, tmp_path)
    fh = fs.create("/f.txt", CREATE)
    fs.write(fh, b"a\n", 0)
    fs.flush(fh)
    fs.write(fh, b"b\n", 2)  # never flushed, never released
    fs.close()
    assert store.get("f.txt") == b"a\nb\n"
