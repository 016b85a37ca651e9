"""Staged files behind the write seam, without a kernel (issue 26 items 3-4): what numpy's
``open_memmap``, an ``r+`` memmap, an append and a refused commit send, as ``ccfs/operations.py`` would."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest

from ccfs.filesystem import CcFilesystem
from ccfs.mountoptions import MountOptions
from cottoncandy.arrays.raw import read_raw_array, write_raw_array
from cottoncandy.formats.npy import npy_header
from cottoncandy.formats.raw import ArraySpec
from cottoncandy.storage.memory import MemoryStore

MiB = 2**20
CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def writable(store: MemoryStore, tmp_path: Path, **options: object) -> CcFilesystem:
    return CcFilesystem(store, options=MountOptions(rw=True, cache_dir=str(tmp_path / "cache"),
                                                     **options))  # type: ignore[arg-type]


def test_open_memmap_w_plus(store: MemoryStore, tmp_path: Path) -> None:
    """Header, close; reopen O_RDWR, a byte at the end, close (FLUSH) before any data; pages out of
    order; fsync stores it; nothing is stored before."""
    fs = writable(store, tmp_path)
    array = np.arange(3 * MiB // 8, dtype="<f8").reshape(-1, 64)
    header = npy_header(ArraySpec(np.dtype("<f8"), array.shape))
    fh = fs.create("/d/x.npy", CREATE)
    fs.write(fh, header, 0)
    fs.flush(fh)
    fs.release(fh)
    assert not store.exists("d/x") and fs.getattr("/d/x.npy")["st_size"] == len(header)
    fh = fs.open("/d/x.npy", os.O_RDWR)
    assert fs.read(fh, len(header), 0) == header
    end = len(header) + array.nbytes
    fs.write(fh, b"\0", end - 1)
    fs.flush(fh)  # numpy closes its file object here; the mmap keeps the handle
    assert not store.exists("d/x")
    body = array.tobytes()
    pages = list(range(0, len(body), 65536))
    for start in pages[::-1]:
        fs.write(fh, body[start : start + 65536], len(header) + start)
    fs.fsync(fh)
    np.testing.assert_array_equal(read_raw_array(store, "d/x"), array)
    assert fs.getattr("/d/x.npy")["st_size"] == end
    fs.release(fh)
    assert not list((tmp_path / "cache" / "writes").iterdir())  # the staged file is gone
    fs.close()


def test_r_plus_row_update_and_append(store: MemoryStore, tmp_path: Path) -> None:
    array = np.zeros((1000, 256), dtype="<f4")
    write_raw_array(store, "m", array, compression=False)
    store.put("t.csv", b"a,b\n")
    fs = writable(store, tmp_path)
    header = len(npy_header(ArraySpec(np.dtype("<f4"), array.shape)))
    fh = fs.open("/m.npy", os.O_RDWR)
    fs.write(fh, np.ones(256, "<f4").tobytes(), header + 10 * 1024)
    fs.flush(fh)
    assert read_raw_array(store, "m")[10].sum() == 0  # FLUSH is no commit point of a staged file
    fs.fsync(fh)
    fs.release(fh)
    expected = array.copy()
    expected[10] = 1
    np.testing.assert_array_equal(read_raw_array(store, "m"), expected)
    fh = fs.open("/t.csv", os.O_WRONLY | os.O_APPEND)
    fs.write(fh, b"1,2\n", 4)
    fs.flush(fh)
    fs.release(fh)  # the last release stores it
    assert store.get("t.csv") == b"a,b\n1,2\n"
    fs.close()


def test_refused_fsync_is_the_programs_error(store: MemoryStore, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store.put("t.bin", bytes(100))
    fs = writable(store, tmp_path)
    fh = fs.open("/t.bin", os.O_RDWR)
    fs.write(fh, b"x", 50)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "denied")

    monkeypatch.setattr(store, "compose", refuse)
    with pytest.raises(OSError) as caught:
        fs.fsync(fh)
    assert caught.value.errno == errno.EACCES and "t.bin" in str(caught.value)
    assert store.get("t.bin") == bytes(100)
    with pytest.raises(OSError) as again:  # the last release tries once more; the mount logs its refusal
        fs.release(fh)
    assert again.value.errno == errno.EACCES and store.get("t.bin") == bytes(100)
    with pytest.raises(OSError) as told:  # the next stat says so, once
        fs.getattr("/t.bin")
    assert told.value.errno == errno.EACCES and fs.getattr("/t.bin")["st_size"] == 100
    assert not list((tmp_path / "cache" / "writes").iterdir())  # given up: nothing staged is left
    fs.close()


def test_write_cache_cap_is_enospc(store: MemoryStore, tmp_path: Path) -> None:
    store.put("big.bin", bytes(10))
    fs = writable(store, tmp_path, write_cache_size=MiB)
    fh = fs.open("/big.bin", os.O_RDWR)
    with pytest.raises(OSError) as caught:
        fs.write(fh, bytes(2 * MiB), 0)
    assert caught.value.errno == errno.ENOSPC
    fs.release(fh)
    assert store.get("big.bin") == bytes(10)
    fs.close()
