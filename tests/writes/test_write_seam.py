"""The write seam without a kernel: ``CcFilesystem`` over a memory store, as ``ccfs/operations.py``
drives it (create, write, flush, release), read-only by default and writable with ``rw``."""

from __future__ import annotations

import errno
import io
import os

import numpy as np
import pytest

from ccfs.filesystem import CcFilesystem
from ccfs.mountoptions import MountOptions
from cottoncandy.arrays.raw import read_raw_array
from cottoncandy.storage.memory import MemoryStore
from cottoncandy.writes.settings import WriteSettings
from cottoncandy.writes.writable import AlreadySaid, StoreWriter

MiB = 2**20
CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def npy_bytes(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array, allow_pickle=True)
    return out.getvalue()


def save(fs: CcFilesystem, path: str, data: bytes, step: int = 128 * 1024) -> None:
    """What ``np.save``/``cp`` send: create, sequential writes, flush, release."""
    fh = fs.create(path, CREATE)
    for offset in range(0, len(data), step):
        assert fs.write(fh, data[offset : offset + step], offset) == len(data[offset : offset + step])
    fs.flush(fh)
    fs.release(fh)


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.part_size = MiB  # several parts for arrays of a few MiB
    return store


def writable(store: MemoryStore, **settings: object) -> CcFilesystem:
    """A writable filesystem whose writer streams only (no staged kind: what it refuses is refused)."""
    return CcFilesystem(store, options=MountOptions(rw=True),
                        writer=lambda namespace: StoreWriter(store, namespace,
                                                             WriteSettings(**settings)))  # type: ignore[arg-type]


def test_default_mount_refuses_every_change_with_erofs(store: MemoryStore) -> None:
    store.put("a.txt", b"x")
    fs = CcFilesystem(store)
    for call in (lambda: fs.create("/b.txt", CREATE), lambda: fs.open("/a.txt", os.O_WRONLY),
                 lambda: fs.unlink("/a.txt"), lambda: fs.mkdir("/d"), lambda: fs.rmdir("/d"),
                 lambda: fs.rename("/a.txt", "/c.txt"), lambda: fs.truncate("/a.txt", 0)):
        with pytest.raises(OSError) as caught:
            call()
        assert caught.value.errno == errno.EROFS
    assert fs.getattr("/a.txt")["st_mode"] & 0o777 == 0o444
    assert sorted(store._objects) == ["a.txt"]


@pytest.mark.parametrize("shape", [(3, 4), (1000, 1000)])  # one PUT; one multipart upload of 8 MB
def test_np_save_becomes_the_raw_array(store: MemoryStore, shape: tuple[int, ...]) -> None:
    fs = writable(store)
    array = np.arange(np.prod(shape), dtype="<f8").reshape(shape)
    save(fs, "/d/x.npy", npy_bytes(array))
    assert np.array_equal(read_raw_array(store, "d/x"), array)
    assert "d/x.npy" not in store._objects
    assert fs.getattr("/d/x.npy")["st_size"] == len(npy_bytes(array))  # listed at once, its .npy size
    assert fs.getxattr("/d/x.npy", "user.cottoncandy.shape") == ",".join(map(str, shape)).encode()
    assert fs.writer.memory.used == 0  # type: ignore[attr-defined]


def test_fortran_order_and_compression(store: MemoryStore) -> None:
    fs = writable(store, compression="gzip", memory=64 * MiB)
    array = np.asfortranarray(np.arange(600_000, dtype="<i4").reshape(600, 1000))
    save(fs, "/f.npy", npy_bytes(array))
    back = read_raw_array(store, "f")
    assert np.array_equal(back, array)
    assert store.head("f").metadata["compression"] == "gzip"  # type: ignore[index]


def test_other_files_and_object_arrays_are_stored_byte_for_byte(store: MemoryStore) -> None:
    fs = writable(store)
    notes = os.urandom(3 * MiB + 17)
    save(fs, "/notes.txt", notes)
    objects = npy_bytes(np.array([{"a": 1}, None], dtype=object))
    save(fs, "/o.npy", objects)
    save(fs, "/empty.npy", b"")
    assert store.get("notes.txt") == notes
    assert store.get("o.npy") == objects
    assert store.get("empty.npy") == b""
    assert fs.getattr("/notes.txt")["st_size"] == len(notes)


def test_a_short_npy_is_never_visible(store: MemoryStore) -> None:
    fs = writable(store)
    data = npy_bytes(np.zeros((1000, 1000)))
    for cut in (200, 3 * MiB):  # header only (open_memmap's first close); mid-upload
        fh = fs.create("/short.npy", CREATE)
        fs.write(fh, data[:cut], 0)
        fs.flush(fh)
        fs.release(fh)
        assert store._objects == {}
        with pytest.raises(FileNotFoundError):
            fs.getattr("/short.npy")
    assert fs.writer.memory.used == 0  # type: ignore[attr-defined]


def test_a_write_out_of_order_is_refused_without_harm(store: MemoryStore) -> None:
    fs = writable(store)
    fh = fs.create("/a.bin", CREATE)
    fs.write(fh, b"abc", 0)
    with pytest.raises(OSError) as caught:
        fs.write(fh, b"z", 10)
    assert caught.value.errno == errno.EOPNOTSUPP
    fs.flush(fh)
    fs.release(fh)
    assert store.get("a.bin") == b"abc"


def test_a_file_being_written_shows_its_size(store: MemoryStore) -> None:
    fs = writable(store)
    fh = fs.create("/a.bin", CREATE)
    fs.write(fh, b"12345", 0)
    assert fs.getattr("/a.bin")["st_size"] == 5
    assert fs.getattr("/a.bin")["st_mode"] & 0o200
    fs.release(fh)
    assert store.get("a.bin") == b"12345"


def test_a_refused_upload_reaches_flush_and_stores_nothing(store: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    fs = writable(store)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "AccessDenied")

    monkeypatch.setattr(store, "put", refuse)
    fh = fs.create("/x.npy", CREATE)
    fs.write(fh, npy_bytes(np.ones(10)), 0)
    with pytest.raises(OSError) as caught:
        fs.flush(fh)
    assert caught.value.errno == errno.EACCES and "x" in str(caught.value)
    with pytest.raises(AlreadySaid):  # the same refusal at every later commit point, logged once
        fs.release(fh)
    assert store._objects == {}


def test_memory_is_bounded_across_files(store: MemoryStore) -> None:
    fs = writable(store, memory=4 * MiB, memory_wait=0.2)
    first = fs.create("/a.bin", CREATE)
    fs.write(first, b"x" * (4 * MiB), 0)  # one file alone always goes
    second = fs.create("/b.bin", CREATE)
    with pytest.raises(OSError) as caught:
        fs.write(second, b"y" * MiB, 0)
    assert caught.value.errno == errno.ENOMEM
    fs.release(first)
    fs.write(second, b"y" * MiB, 0)
    fs.release(second)
    assert store.get("b.bin") == b"y" * MiB
