"""A rename of a file still open for writing, without a kernel (issue 26): the open file follows its
name (``cottoncandy/writes/moves.py``). ``CcFilesystem`` over a memory store, driven as
``ccfs/operations.py`` drives it: rename, then write more, fsync, close; after the last close the new
name holds everything written and the old name is gone, in every state a file open for writing can
be in (streamed and stored then written on, staged and fsynced, opened over an object, an upload under
way, a short ``.npy`` kept for its reopen), over an existing name, and under a renamed folder."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import numpy as np
import pytest

from ccfs.filesystem import CcFilesystem
from ccfs.mountoptions import MountOptions
from cottoncandy.arrays.raw import read_raw_array
from cottoncandy.storage.memory import MemoryStore

MiB = 2**20
CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.part_size = 5 * MiB  # a big file is a multipart upload, copied stretches are allowed
    return store


def writable(store: MemoryStore, tmp_path: Path, **options: object) -> CcFilesystem:
    return CcFilesystem(store, options=MountOptions(rw=True, cache_dir=str(tmp_path / "cache"),
                                                     **options))  # type: ignore[arg-type]


def writes(fs: CcFilesystem, fh: int, data: bytes, at: int, step: int = 1 << 20) -> int:
    for offset in range(0, len(data), step):
        assert fs.write(fh, data[offset : offset + step], at + offset) == len(data[offset : offset + step])
    return at + len(data)


def keys(store: MemoryStore) -> list[str]:
    return sorted(info.key for info in store.iter_objects())


def test_a_continued_file_renamed_after_its_first_flush(store: MemoryStore, tmp_path: Path) -> None:
    """``{ echo a; mv f g; echo b; } > f``-like: stored at the first FLUSH, renamed, written on: the
    later commits go to the new name (they went to the old one, recreating it)."""
    fs = writable(store, tmp_path)
    fh = fs.create("/f.txt", CREATE)
    fs.write(fh, b"a\n", 0)
    fs.flush(fh)
    fs.rename("/f.txt", "/g.txt")
    assert keys(store) == ["g.txt"]  # what was stored moved at once
    fs.write(fh, b"b\n", 2)
    assert fs.getattr("/g.txt")["st_size"] == 4
    fs.flush(fh)
    assert store.get("g.txt") == b"a\nb\n"
    fs.write(fh, b"c\n", 4)
    fs.release(fh)
    assert keys(store) == ["g.txt"] and store.get("g.txt") == b"a\nb\nc\n"
    with pytest.raises(FileNotFoundError):
        fs.getattr("/f.txt")


def test_a_staged_file_renamed_after_fsync_copies_from_its_new_name(store: MemoryStore, tmp_path: Path) -> None:
    """An ``r+`` file of 12 MiB (an unchanged stretch is copied by the server), fsynced, renamed,
    changed again: the last commit copies from the moved version (the old key is gone)."""
    body = os.urandom(12 * MiB)
    store.put("x.bin", body)
    fs = writable(store, tmp_path)
    fh = fs.open("/x.bin", os.O_RDWR)
    fs.write(fh, b"FIRST", 0)
    fs.fsync(fh)
    fs.rename("/x.bin", "/y.bin")
    assert keys(store) == ["y.bin"]
    fs.write(fh, b"LAST", 11 * MiB)
    fs.fsync(fh)
    fs.flush(fh)
    fs.release(fh)
    expected = bytearray(body)
    expected[0:5] = b"FIRST"
    expected[11 * MiB : 11 * MiB + 4] = b"LAST"
    assert keys(store) == ["y.bin"] and store.get("y.bin") == bytes(expected)


def test_an_existing_file_opened_to_change_renamed_before_any_commit(store: MemoryStore, tmp_path: Path) -> None:
    """``O_RDWR`` over a stored object, renamed before any commit: the new name has the object with
    the changes, the old name is gone; renamed with no change at all, it is simply moved."""
    store.put("x.txt", b"hello world")
    store.put("u.txt", b"unchanged")
    fs = writable(store, tmp_path)
    fh = fs.open("/x.txt", os.O_RDWR)
    fs.write(fh, b"W", 6)
    fs.rename("/x.txt", "/y.txt")
    fs.release(fh)
    other = fs.open("/u.txt", os.O_RDWR)
    fs.rename("/u.txt", "/v.txt")
    fs.release(other)
    assert keys(store) == ["v.txt", "y.txt"]
    assert store.get("y.txt") == b"hello World" and store.get("v.txt") == b"unchanged"


def test_renamed_over_an_existing_name(store: MemoryStore, tmp_path: Path) -> None:
    """Over a name the mount shows: replaced (its version seen), the old name gone; over a name
    someone else replaced since the mount showed it: ESTALE, nothing moved, the file written on
    stays at its own name."""
    store.put("dst.txt", b"old destination")
    store.put("taken.txt", b"first")
    fs = writable(store, tmp_path)
    assert fs.getattr("/dst.txt")["st_size"] == 15  # shown: its version is the one the rename replaces
    fh = fs.create("/src.txt", CREATE)
    fs.write(fh, b"one\n", 0)
    fs.flush(fh)
    fs.rename("/src.txt", "/dst.txt")
    fs.write(fh, b"two\n", 4)
    fs.release(fh)
    assert store.get("dst.txt") == b"one\ntwo\n" and not store.exists("src.txt")

    assert fs.getattr("/taken.txt")["st_size"] == 5
    store.put("taken.txt", b"theirs, stored later")  # this mount still shows 'first'
    fh = fs.create("/mine.txt", CREATE)
    fs.write(fh, b"mine\n", 0)
    fs.flush(fh)
    with pytest.raises(OSError) as caught:
        fs.rename("/mine.txt", "/taken.txt")
    assert caught.value.errno == errno.ESTALE
    fs.write(fh, b"more\n", 5)
    fs.release(fh)
    assert store.get("taken.txt") == b"theirs, stored later"
    assert store.get("mine.txt") == b"mine\nmore\n"


def test_an_upload_under_way_is_moved_when_it_completes(store: MemoryStore, tmp_path: Path) -> None:
    """A streamed file whose multipart upload has begun (its key cannot change): renamed, written on,
    closed: completed under the old key, then moved; only the new name is left (was EBUSY)."""
    fs = writable(store, tmp_path)
    data = os.urandom(13 * MiB + 3)
    fh = fs.create("/big.bin", CREATE)
    at = writes(fs, fh, data[: 7 * MiB], 0)  # the upload has begun
    fs.rename("/big.bin", "/moved.bin")
    assert fs.getattr("/moved.bin")["st_size"] == 7 * MiB
    writes(fs, fh, data[at:], at)
    fs.flush(fh)
    fs.release(fh)
    assert keys(store) == ["moved.bin"] and store.get("moved.bin") == data


def test_a_short_npy_kept_for_its_reopen_follows_its_name(store: MemoryStore, tmp_path: Path) -> None:
    """``open_memmap``'s header, close (kept, unstored), rename, reopen under the new name and fill:
    the raw array of the new name; nothing ever under the old one."""
    array = np.arange(40, dtype="<i4").reshape(4, 10)
    out = io.BytesIO()
    np.save(out, array)
    data = out.getvalue()
    header = len(data) - array.nbytes
    fs = writable(store, tmp_path)
    fh = fs.create("/a.npy", CREATE)
    fs.write(fh, data[:header], 0)
    fs.flush(fh)
    fs.release(fh)  # kept, short of its data
    fs.rename("/a.npy", "/b.npy")
    fh = fs.open("/b.npy", os.O_RDWR)
    fs.write(fh, data[header:], header)
    fs.fsync(fh)
    fs.release(fh)
    assert keys(store) == ["b"]
    assert np.array_equal(read_raw_array(store, "b"), array)


def test_a_raw_array_open_r_plus_renamed_stays_an_array(store: MemoryStore, tmp_path: Path) -> None:
    """``np.load(mmap_mode='r+')`` of a raw array, fsync, rename to another ``.npy`` name, a row
    more, close: the raw array of the new name with both rows changed."""
    array = np.arange(64, dtype="<f8").reshape(8, 8)
    from cottoncandy.arrays.raw import write_raw_array
    write_raw_array(store, "p/a", array)
    fs = writable(store, tmp_path)
    size = fs.getattr("/p/a.npy")["st_size"]
    header = size - array.nbytes
    fh = fs.open("/p/a.npy", os.O_RDWR)
    fs.write(fh, np.full(8, -1.0).tobytes(), header)
    fs.fsync(fh)
    fs.rename("/p/a.npy", "/p/b.npy")
    fs.write(fh, np.full(8, -2.0).tobytes(), header + 64)
    fs.release(fh)
    expected = array.copy()
    expected[0], expected[1] = -1.0, -2.0
    assert keys(store) == ["p/b"]
    assert np.array_equal(read_raw_array(store, "p/b"), expected)


def test_a_folder_renamed_with_files_open_under_it(store: MemoryStore, tmp_path: Path) -> None:
    """``mv d e`` while ``d/f.txt`` (stored, written on) and ``d/big.bin`` (uploading) are open:
    both follow; ``d`` is empty after their last close."""
    store.put("d/other.txt", b"other")
    fs = writable(store, tmp_path)
    f = fs.create("/d/f.txt", CREATE)
    fs.write(f, b"a\n", 0)
    fs.flush(f)
    big = fs.create("/d/big.bin", CREATE)
    data = os.urandom(11 * MiB)
    at = writes(fs, big, data[: 6 * MiB], 0)
    fs.rename("/d", "/e")
    fs.write(f, b"b\n", 2)
    fs.release(f)
    writes(fs, big, data[at:], at)
    fs.flush(big)
    fs.release(big)
    assert keys(store) == ["e/big.bin", "e/f.txt", "e/other.txt"]
    assert store.get("e/f.txt") == b"a\nb\n" and store.get("e/big.bin") == data


def test_a_new_file_renamed_before_any_byte_is_stored_costs_no_copy(store: MemoryStore, tmp_path: Path) -> None:
    """zarr's ``.partial``: written, renamed before its close, closed: one PUT under the new name."""
    fs = writable(store, tmp_path)
    copies: list[tuple[str, str]] = []
    copy = store.copy

    def counted(src: str, dst: str, **kwargs: object) -> None:
        copies.append((src, dst))
        copy(src, dst, **kwargs)  # type: ignore[arg-type]

    store.copy = counted  # type: ignore[method-assign]
    fh = fs.create("/0.partial", CREATE)
    fs.write(fh, b"chunk", 0)
    fs.rename("/0.partial", "/0")
    fs.flush(fh)
    fs.release(fh)
    assert keys(store) == ["0"] and copies == []


def test_a_renamed_file_still_open_at_unmount_is_stored_under_its_new_name(store: MemoryStore,
                                                                           tmp_path: Path) -> None:
    """A file written on after a FLUSH, renamed, written on, never closed: the mount's end stores it
    (``recovery.settle``) under the name it has then, over the moved version."""
    fs = writable(store, tmp_path)
    fh = fs.create("/f.txt", CREATE)
    fs.write(fh, b"a\n", 0)
    fs.flush(fh)
    fs.write(fh, b"b\n", 2)
    fs.rename("/f.txt", "/g.txt")
    fs.write(fh, b"c\n", 4)  # never flushed, never released
    fs.close()
    assert keys(store) == ["g.txt"] and store.get("g.txt") == b"a\nb\nc\n"


def test_an_array_renamed_to_bytes_then_written_on_keeps_its_offsets(store: MemoryStore, tmp_path: Path) -> None:
    """A ``.npy`` stored as the raw array at its FLUSH, renamed to a name that is not ``.npy``: the
    object under the new name is the ``.npy`` bytes the program wrote (a rename keeps the bytes the
    mount shows), so a write after it lands at the program's offsets, never shifted by the header."""
    array = np.arange(16, dtype="<f8")
    out = io.BytesIO()
    np.save(out, array)
    data = out.getvalue()
    fs = writable(store, tmp_path)
    fh = fs.create("/a.npy", CREATE)
    writes(fs, fh, data, 0)
    fs.flush(fh)
    fs.rename("/a.npy", "/b.bin")
    assert keys(store) == ["b.bin"] and store.get("b.bin") == data
    fs.write(fh, b"\x93", 0)
    fs.write(fh, b"\xff" * 8, len(data) - 8)
    fs.release(fh)
    assert keys(store) == ["b.bin"] and store.get("b.bin") == data[:-8] + b"\xff" * 8


def test_a_rewrite_of_an_existing_file_renamed_before_its_close(store: MemoryStore, tmp_path: Path) -> None:
    """``open(x, 'wb')`` over a stored object (streamed, its version seen), renamed before its close,
    small and with its upload under way: only the new name is left, holding the new bytes."""
    store.put("x.txt", b"old x")
    big = os.urandom(12 * MiB)
    store.put("b.bin", b"old b")
    fs = writable(store, tmp_path)
    fh = fs.open("/x.txt", os.O_WRONLY | os.O_TRUNC)
    fs.write(fh, b"new x", 0)
    fs.rename("/x.txt", "/y.txt")
    fs.flush(fh)
    fs.release(fh)
    fh = fs.open("/b.bin", os.O_WRONLY | os.O_TRUNC)
    at = writes(fs, fh, big[: 6 * MiB], 0)  # its upload (If-Match the version seen) has begun
    fs.rename("/b.bin", "/c.bin")
    writes(fs, fh, big[at:], at)
    fs.flush(fh)
    fs.release(fh)
    assert keys(store) == ["c.bin", "y.txt"]
    assert store.get("y.txt") == b"new x" and store.get("c.bin") == big


def test_a_file_open_over_a_replaced_object_is_not_renamed(store: MemoryStore, tmp_path: Path) -> None:
    """An ``r+`` file of 12 MiB (its unchanged stretches are copied from the version it stands on),
    the object replaced by another writer, then renamed while open: ESTALE, and nothing moves; before,
    their version was moved to the new name and the next commit copied its unchanged stretches from
    it, storing a mix of the two versions under the file's If-Match of the moved copy."""
    ours, theirs = os.urandom(12 * MiB), os.urandom(12 * MiB)
    store.put("x.bin", ours)
    fs = writable(store, tmp_path)
    fh = fs.open("/x.bin", os.O_RDWR)
    fs.write(fh, b"MINE", 0)
    store.put("x.bin", theirs)  # another writer
    with pytest.raises(OSError) as refused:
        fs.rename("/x.bin", "/y.bin")
    assert refused.value.errno == errno.ESTALE
    assert keys(store) == ["x.bin"] and store.get("x.bin") == theirs
    with pytest.raises(OSError) as stale:  # its commit is If-Match of the version it opened over
        fs.release(fh)
    assert stale.value.errno == errno.ESTALE
    assert keys(store) == ["x.bin"] and store.get("x.bin") == theirs


def test_an_array_upload_under_way_renamed_to_bytes_is_exdev(store: MemoryStore, tmp_path: Path) -> None:
    """``np.save`` of a 7 MiB array whose upload has begun (its key is the raw array's: the body without
    the ``.npy`` header), renamed to a name that is not ``.npy``: EXDEV, as for a stored raw array (a
    rename keeps the bytes the mount shows; moving that body would drop the header). Before, the body
    was completed under ``big`` and copied to ``big.bin`` as it was: the file lost its header under mv.
    The file stays where it was and is stored whole."""
    array = np.arange(7 * MiB // 8, dtype="<f8")
    out = io.BytesIO()
    np.save(out, array)
    data = out.getvalue()
    fs = writable(store, tmp_path)
    fh = fs.create("/big.npy", CREATE)
    at = writes(fs, fh, data[: 6 * MiB], 0)  # the upload has begun
    with pytest.raises(OSError) as refused:
        fs.rename("/big.npy", "/big.bin")
    assert refused.value.errno == errno.EXDEV
    writes(fs, fh, data[at:], at)
    fs.flush(fh)
    fs.release(fh)
    assert keys(store) == ["big"]
    np.testing.assert_array_equal(read_raw_array(store, "big"), array)


def test_a_folder_holding_a_file_open_over_a_replaced_object_is_not_renamed(store: MemoryStore,
                                                                           tmp_path: Path) -> None:
    """``mv d e`` while ``d/x.bin`` is open ``r+`` (12 MiB: its unchanged stretches are copied from the
    version it stands on) and another writer replaced ``d/x.bin``: ESTALE, nothing copied or removed
    (the file would have followed the folder's copy of *their* version and stored a mix of the two)."""
    ours, theirs = os.urandom(12 * MiB), os.urandom(12 * MiB)
    store.put("d/x.bin", ours)
    store.put("d/other.txt", b"other")
    fs = writable(store, tmp_path)
    fh = fs.open("/d/x.bin", os.O_RDWR)
    fs.write(fh, b"MINE", 0)
    store.put("d/x.bin", theirs)
    with pytest.raises(OSError) as refused:
        fs.rename("/d", "/e")
    assert refused.value.errno == errno.ESTALE
    assert keys(store) == ["d/other.txt", "d/x.bin"] and store.get("d/x.bin") == theirs
    with pytest.raises(OSError):
        fs.release(fh)
    assert store.get("d/x.bin") == theirs
